/**
 * Reference kernels of the Linear layer (Y = X·Wᵀ + b, optionally followed by ReLU) and its
 * gradients, built on the reference GEMM. The weight and bias gradients are accumulated (+=), so
 * the op can sum them straight into a parameter's existing `.grad`. The products are written once
 * here, over any {@link Gemm}, and shared with the WebAssembly kernels.
 *
 * @module
 */

import { type Gemm, gemmReference } from "./gemm.ts";
import type {
  LinearBackwardArgs,
  LinearBackwardKernel,
  LinearForwardKernel,
  LinearOperands,
} from "./types.ts";

/**
 * Y = X·Wᵀ (+ bias) into `out` [N, out] at `outOffset` through `gemm`: the bias, when given, is
 * written into every row first and the product accumulated onto it.
 */
export function linearProduct(
  gemm: Gemm,
  a: LinearOperands,
  bias: Float32Array | null,
  biasOffset: number,
  out: Float32Array,
  outOffset: number,
): void {
  const { rows, inFeatures, outFeatures } = a;
  if (bias !== null) {
    const b = bias.subarray(biasOffset, biasOffset + outFeatures);
    for (let r = 0; r < rows; r++) out.set(b, outOffset + r * outFeatures);
  }
  gemm(
    a.xTrans,
    true,
    rows,
    outFeatures,
    inFeatures,
    a.x,
    a.xOffset,
    a.ldx,
    a.w,
    a.wOffset,
    inFeatures,
    bias === null ? 0 : 1,
    out,
    outOffset,
    outFeatures,
  );
}

/**
 * gx = G·W, gw += Gᵀ·X and gb += 1ᵀ·G through `gemm`, for the output gradient G at `g[go]`
 * (already masked when ReLU was fused); `ones` holds at least N ones.
 */
export function linearGradients(
  gemm: Gemm,
  a: LinearBackwardArgs,
  g: Float32Array,
  go: number,
  ones: Float32Array,
): void {
  const { rows, inFeatures, outFeatures } = a;
  if (a.gx !== null) {
    gemm(
      false,
      false,
      rows,
      inFeatures,
      outFeatures,
      g,
      go,
      outFeatures,
      a.w,
      a.wOffset,
      inFeatures,
      0,
      a.gx,
      a.gxOffset,
      inFeatures,
    );
  }
  if (a.gw !== null) {
    gemm(
      true,
      a.xTrans,
      outFeatures,
      inFeatures,
      rows,
      g,
      go,
      outFeatures,
      a.x,
      a.xOffset,
      a.ldx,
      1,
      a.gw,
      a.gwOffset,
      inFeatures,
    );
  }
  if (a.gb !== null) {
    gemm(
      false,
      false,
      1,
      outFeatures,
      rows,
      ones,
      0,
      rows,
      g,
      go,
      outFeatures,
      1,
      a.gb,
      a.gbOffset,
      outFeatures,
    );
  }
}

/** Y = X·Wᵀ + bias, then ReLU when asked (see {@linkcode LinearForwardKernel}). */
export const linearForwardReference: LinearForwardKernel = (a) => {
  linearProduct(gemmReference, a, a.bias, a.biasOffset, a.out, a.outOffset);
  if (a.relu) {
    const end = a.outOffset + a.rows * a.outFeatures;
    for (let i = a.outOffset; i < end; i++) if (!(a.out[i] > 0)) a.out[i] = 0;
  }
};

/** gx = G'·W, gw += G'ᵀ·X, gb += 1ᵀ·G' (see {@linkcode LinearBackwardKernel}). */
export const linearBackwardReference: LinearBackwardKernel = (a) => {
  let g = a.gy;
  let go = a.gyOffset;
  if (a.y !== null) {
    const masked = new Float32Array(a.rows * a.outFeatures);
    for (let i = 0; i < masked.length; i++) masked[i] = a.y[a.yOffset + i] > 0 ? g[go + i] : 0;
    g = masked;
    go = 0;
  }
  linearGradients(gemmReference, a, g, go, new Float32Array(a.rows).fill(1));
};
