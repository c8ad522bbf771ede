/**
 * Reference kernels of the Linear layer (Y = X·Wᵀ + b, optionally followed by ReLU) and its
 * gradients, built on the reference GEMM. The weight and bias gradients are accumulated (+=), so
 * the op can sum them straight into a parameter's existing `.grad`.
 *
 * @module
 */

import { gemmReference } from "./gemm.ts";
import type { LinearBackwardKernel, LinearForwardKernel } from "./types.ts";

/** Y = X·Wᵀ + bias, then ReLU when asked (see {@linkcode LinearForwardKernel}). */
export const linearForwardReference: LinearForwardKernel = (a) => {
  const { rows, inFeatures, outFeatures, out, outOffset } = a;
  let beta = 0;
  if (a.bias !== null) {
    const b = a.bias.subarray(a.biasOffset, a.biasOffset + outFeatures);
    for (let r = 0; r < rows; r++) out.set(b, outOffset + r * outFeatures);
    beta = 1;
  }
  gemmReference(
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
    beta,
    out,
    outOffset,
    outFeatures,
  );
  if (a.relu) {
    const end = outOffset + rows * outFeatures;
    for (let i = outOffset; i < end; i++) if (!(out[i] > 0)) out[i] = 0;
  }
};

/** gx = G'·W, gw += G'ᵀ·X, gb += 1ᵀ·G' (see {@linkcode LinearBackwardKernel}). */
export const linearBackwardReference: LinearBackwardKernel = (a) => {
  const { rows, inFeatures, outFeatures } = a;
  let g = a.gy;
  let go = a.gyOffset;
  if (a.y !== null) {
    const masked = new Float32Array(rows * outFeatures);
    for (let i = 0; i < masked.length; i++) {
      masked[i] = a.y[a.yOffset + i] > 0 ? g[go + i] : 0;
    }
    g = masked;
    go = 0;
  }
  if (a.gx !== null) {
    gemmReference(
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
    gemmReference(
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
    for (let o = 0; o < outFeatures; o++) {
      let s = 0;
      for (let r = 0; r < rows; r++) s += g[go + r * outFeatures + o];
      a.gb[a.gbOffset + o] += s;
    }
  }
};
