/**
 * The Linear layer in WebAssembly: the contracts of `linearForwardReference` /
 * `linearBackwardReference`, with every operand moved into the wasm memory at most once per pass.
 *
 * Done as separate ops, a Linear + ReLU training step copies the same activations in and out of
 * the wasm memory several times: the GEMM's output out, back in for ReLU and out again; the
 * output gradient in for ReLU's mask, out, then in once for each of the three backward products.
 * Here the forward output is computed in scratch, gets its bias and ReLU there and is copied out
 * once; the backward pass copies G (and y, for the mask) in once, masks it in scratch and runs
 * gx = G'·W, gw += G'ᵀ·X and gb += 1ᵀ·G' (the matrix-vector path) on that one copy.
 *
 * @module
 */

import { linearGradients, linearProduct } from "../linear.ts";
import type { LinearBackwardKernel, LinearForwardKernel } from "../types.ts";
import { wasmUnary, wasmUnaryBackward } from "./elementwise.ts";
import { wasmGemm } from "./gemm.ts";
import { heapF32, persistentFloat32 } from "./memory.ts";
import { copyOut, placeIn, placeOut, region } from "./scratch.ts";

/** A view of `n` floats at byte address `ptr` of the wasm memory. */
function view(ptr: number, n: number): Float32Array {
  return heapF32().subarray(ptr >> 2, (ptr >> 2) + n);
}

let ones: Float32Array | null = null;

/** At least `n` ones in the wasm memory (the row vector of the bias gradient's 1ᵀ·G). */
function onesOf(n: number): Float32Array {
  if (ones === null || ones.length < n) {
    ones = persistentFloat32(Math.max(n, 1024));
    ones.fill(1);
  }
  return ones;
}

/** Y = X·Wᵀ + bias (+ ReLU) in wasm (see `linearForwardReference`). */
export const wasmLinearForward: LinearForwardKernel = (a) => {
  const n = a.rows * a.outFeatures;
  const outPtr = placeOut("linear.out", a.out, a.outOffset, n);
  const y = view(outPtr, n);
  linearProduct(wasmGemm, a, a.bias, a.biasOffset, y, 0);
  if (a.relu) wasmUnary("relu", y, 0, y, 0, n, 0);
  copyOut(outPtr, a.out, a.outOffset, n);
};

/** gx = G'·W, gw += G'ᵀ·X, gb += 1ᵀ·G' in wasm (see `linearBackwardReference`). */
export const wasmLinearBackward: LinearBackwardKernel = (a) => {
  const n = a.rows * a.outFeatures;
  // Views made before a memory grow stay valid: the memory is shared, so its buffers never detach.
  let g = view(placeIn("linear.gy", a.gy, a.gyOffset, n), n);
  if (a.y !== null) {
    // Never mask in place: G may be the caller's own array.
    const masked = view(region("linear.masked", 4 * n), n);
    const y = view(placeIn("linear.y", a.y, a.yOffset, n), n);
    wasmUnaryBackward("relu", g, y, y, masked, n, 0); // y > 0 exactly where the input was > 0
    g = masked;
  }
  linearGradients(wasmGemm, a, g, 0, onesOf(a.rows));
};
