/**
 * The Linear layer on a system BLAS: the contracts of `linearForwardReference` /
 * `linearBackwardReference` (products written once in `../linear.ts`) over a native
 * {@link Gemm}. X, W, Y and the gradients are read and written where they are; the only extra
 * memory, when ReLU was fused, is wasm scratch for the forward output (ReLU'd there, then copied
 * out once) and for the masked output gradient (G must not be masked in place: it may be the
 * caller's own array), and a vector of ones for the bias gradient's 1ᵀ·G.
 *
 * ReLU and its mask use the WebAssembly elementwise kernels where they run, else the reference.
 *
 * @module
 */

import { unary, unaryBackward } from "../elementwise.ts";
import type { Gemm } from "../gemm.ts";
import { linearGradients, linearProduct } from "../linear.ts";
import type { LinearBackwardKernel, LinearForwardKernel } from "../types.ts";
import type { Dnnl } from "./dnnl.ts";
import { wasmAvailable, wasmFloat32, wasmUnary, wasmUnaryBackward } from "../wasm/mod.ts";
import { heapF32 } from "../wasm/memory.ts";
import { copyOut, placeOut } from "../wasm/scratch.ts";

const reluBackward = wasmAvailable ? wasmUnaryBackward : unaryBackward;

/**
 * A grow-only scratch array, on the JavaScript heap or (`inWasm`, where it exists) in the wasm
 * memory. TypeScript loops over a shared buffer run several times slower than over an ordinary
 * one, so only scratch that wasm kernels write (the ReLU mask) goes there.
 */
export class Scratch {
  #array: Float32Array = new Float32Array(0);

  /** A scratch array; nothing is allocated until the first {@linkcode Scratch.get}. */
  constructor(readonly inWasm = false) {}

  /** At least `n` floats; the contents are whatever the last user left. */
  get(n: number): Float32Array {
    if (this.#array.length < n) {
      const size = Math.max(n, Math.ceil(this.#array.length * 1.25));
      this.#array = this.inWasm && wasmAvailable ? wasmFloat32(size) : new Float32Array(size);
    }
    return this.#array;
  }
}

const masked = new Scratch(true);
const heapMasked = new Scratch(false);
let ones: Float32Array = new Float32Array(0);

function onesOf(n: number): Float32Array {
  if (ones.length < n) ones = new Float32Array(Math.max(n, 1024)).fill(1);
  return ones;
}

/**
 * Y = X·Wᵀ + bias (+ ReLU) with `gemm` (see `linearForwardReference`). With ReLU (and the wasm
 * kernels) the product goes into wasm scratch, gets its ReLU there and is copied out once; BLAS
 * writes wasm memory as readily as a JavaScript array, and ReLU on `out` itself would copy it in
 * and out again.
 */
export function createNativeLinearForward(
  gemm: Gemm,
  dnnl: Dnnl | null = null,
): LinearForwardKernel {
  return (a) => {
    const n = a.rows * a.outFeatures;
    if (a.relu && dnnl !== null) {
      linearProduct(gemm, a, a.bias, a.biasOffset, a.out, a.outOffset);
      dnnl.relu(a.out, a.outOffset, a.out, a.outOffset, n);
      return;
    }
    if (!a.relu || !wasmAvailable) {
      linearProduct(gemm, a, a.bias, a.biasOffset, a.out, a.outOffset);
      if (a.relu) unary("relu", a.out, a.outOffset, a.out, a.outOffset, n, 0);
      return;
    }
    const ptr = placeOut("native.linear.out", a.out, a.outOffset, n);
    const y = heapF32().subarray(ptr >> 2, (ptr >> 2) + n);
    linearProduct(gemm, a, a.bias, a.biasOffset, y, 0);
    wasmUnary("relu", y, 0, y, 0, n, 0);
    copyOut(ptr, a.out, a.outOffset, n);
  };
}

/** gx = G'·W, gw += G'ᵀ·X, gb += 1ᵀ·G' with `gemm` (see `linearBackwardReference`). */
export function createNativeLinearBackward(
  gemm: Gemm,
  dnnl: Dnnl | null = null,
): LinearBackwardKernel {
  return (a) => {
    const n = a.rows * a.outFeatures;
    let g = a.gy;
    let go = a.gyOffset;
    if (a.y !== null && dnnl !== null) {
      const m = heapMasked.get(n);
      dnnl.reluBackward(a.gy, a.gyOffset, a.y, a.yOffset, m, 0, n);
      g = m;
      go = 0;
    } else if (a.y !== null) {
      const m = masked.get(n).subarray(0, n);
      const y = a.y.subarray(a.yOffset, a.yOffset + n);
      // y > 0 exactly where the pre-activation was > 0, so the mask comes from the output.
      reluBackward("relu", a.gy.subarray(go, go + n), y, y, m, n, 0);
      g = m;
      go = 0;
    }
    linearGradients(gemm, a, g, go, onesOf(a.rows));
  };
}
