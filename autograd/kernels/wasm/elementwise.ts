/**
 * Drivers of the WebAssembly elementwise kernels (`elementwise_kernels.ts`), with the reference
 * kernels' contracts and bitwise their results: ReLU and leaky ReLU forward and backward, and
 * gradient accumulation; the exact GELU and its gradient to a few ulp (`gelu_kernels.ts`), where
 * the reference's float64 erf costs 20–40 ns per element. Operands outside the wasm memory are copied in and out: a copy runs at
 * memcpy speed (about 0.1 ns per float here), so even with two copies the SIMD loop beats a
 * JavaScript loop whose data-dependent branch mispredicts (about 5 ns per element for ReLU on
 * random signs). Small arrays use branch-free TypeScript loops for ReLU and the reference
 * kernels otherwise, as do the other unary maps.
 *
 * @module
 */

import {
  addInto as addIntoReference,
  unary as unaryReference,
  unaryBackward as unaryBackwardReference,
} from "../elementwise.ts";
import type { AddIntoKernel, UnaryBackwardKernel, UnaryKernel, ZeroKernel } from "../types.ts";
import { defaultEngine } from "./gemm.ts";
import type { JobName } from "./kernels.ts";
import { heapF32, pointerOf } from "./memory.ts";
import { copyOut, placeIn, placeOut, region } from "./scratch.ts";

/**
 * Arrays shorter than this stay in TypeScript (no copies, no call into wasm, whose fixed cost is
 * a few microseconds); ReLU and its gradient then run branch-free loops (below).
 */
export const WASM_ELEMENTWISE_MIN = 4096;

/**
 * Above this many elements an elementwise pass runs on the calling thread over the arrays where
 * they are: its operands would need gigabytes of scratch in the wasm memory (capped at 2 GiB),
 * and a memory-bound pass gains little from the copy in and out.
 */
export const WASM_ELEMENTWISE_MAX = 1 << 26;

/** Whether a pass over `n` elements goes to the wasm kernels. */
function inWasmRange(n: number): boolean {
  return n >= WASM_ELEMENTWISE_MIN && n <= WASM_ELEMENTWISE_MAX;
}

/**
 * ReLU without a data-dependent branch: the output's bits are the input's where x > 0, else 0
 * (+0), which is exactly `x > 0 ? x : 0` (NaN and −0 give +0). A branch on random signs
 * mispredicts half the time; this loop does not.
 */
function reluSmall(x: Float32Array, xo: number, out: Float32Array, oo: number, n: number): void {
  const xi = new Int32Array(x.buffer, x.byteOffset, x.length);
  const oi = new Int32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < n; i++) oi[oo + i] = xi[xo + i] & -(+(x[xo + i] > 0));
}

/** gx = x > 0 ? gy : +0 without a branch (bit masks, as {@link reluSmall}). */
function reluBackwardSmall(gy: Float32Array, x: Float32Array, gx: Float32Array, n: number): void {
  const gi = new Int32Array(gy.buffer, gy.byteOffset, gy.length);
  const oi = new Int32Array(gx.buffer, gx.byteOffset, gx.length);
  for (let i = 0; i < n; i++) oi[i] = gi[i] & -(+(x[i] > 0));
}

/** Runs elementwise job `name` over `n` elements, in chunks that are whole vectors. */
function run(name: JobName, n: number, args: (chunk: number, counter: number) => number[]): void {
  defaultEngine().job(name, n, n, (chunk, counter) => {
    const aligned = Math.max(8192, Math.ceil(chunk / 4) * 4);
    return args(aligned, counter);
  });
}

/** The address of an f64 holding `value` (the slope of leaky ReLU). */
function f64Param(value: number): number {
  const ptr = region("ew.param", 16);
  new Float64Array(heapF32().buffer, ptr, 1)[0] = value;
  return ptr;
}

/** The exact GELU (param 0) has a vector kernel; the tanh form stays in TypeScript. */
function isExactGelu(kind: string, param: number): boolean {
  return kind === "gelu" && param === 0;
}

/** ReLU, leaky ReLU and exact GELU in wasm; other maps and small arrays use the reference kernel. */
export const wasmUnary: UnaryKernel = (kind, x, xo, out, oo, n, param) => {
  if (kind === "relu" && n < WASM_ELEMENTWISE_MIN) {
    reluSmall(x, xo, out, oo, n);
    return;
  }
  if (!inWasmRange(n) || !(kind === "relu" || kind === "leakyRelu" || isExactGelu(kind, param))) {
    unaryReference(kind, x, xo, out, oo, n, param);
    return;
  }
  const xp = placeIn("ew.a", x, xo, n);
  const op = placeOut("ew.out", out, oo, n);
  if (kind === "relu") {
    run("relu", n, (chunk, ctr) => [xp, op, n, chunk, ctr]);
  } else if (kind === "gelu") {
    run("gelu", n, (chunk, ctr) => [xp, op, n, chunk, ctr]);
  } else {
    const slope = f64Param(param);
    run("leakyRelu", n, (chunk, ctr) => [xp, op, n, slope, chunk, ctr]);
  }
  copyOut(op, out, oo, n);
};

/** Gradients of ReLU, leaky ReLU and exact GELU in wasm; the rest uses the reference kernel. */
export const wasmUnaryBackward: UnaryBackwardKernel = (kind, gy, x, y, gx, n, param) => {
  if (kind === "relu" && n < WASM_ELEMENTWISE_MIN) {
    reluBackwardSmall(gy, x, gx, n);
    return;
  }
  if (!inWasmRange(n) || !(kind === "relu" || kind === "leakyRelu" || isExactGelu(kind, param))) {
    unaryBackwardReference(kind, gy, x, y, gx, n, param);
    return;
  }
  const gp = placeIn("ew.a", gy, 0, n);
  const xp = placeIn("ew.b", x, 0, n);
  const op = placeOut("ew.out", gx, 0, n);
  if (kind === "relu") {
    run("reluBackward", n, (chunk, ctr) => [gp, xp, op, n, chunk, ctr]);
  } else if (kind === "gelu") {
    const yp = placeIn("ew.c", y, 0, n);
    run("geluBackward", n, (chunk, ctr) => [gp, xp, yp, op, n, chunk, ctr]);
  } else {
    const slope = f64Param(param);
    run("leakyReluBackward", n, (chunk, ctr) => [gp, xp, op, n, slope, chunk, ctr]);
  }
  copyOut(op, gx, 0, n);
};

/** dst += src in wasm for large arrays. */
export const wasmAddInto: AddIntoKernel = (dst, dOffset, src, sOffset, n) => {
  if (!inWasmRange(n)) {
    addIntoReference(dst, dOffset, src, sOffset, n);
    return;
  }
  const dp = placeIn("ew.out", dst, dOffset, n);
  const sp = placeIn("ew.a", src, sOffset, n);
  run("addInto", n, (chunk, ctr) => [dp, sp, n, chunk, ctr]);
  copyOut(dp, dst, dOffset, n);
};

/**
 * Zeroes n floats from `offset`: in wasm (`memory.fill`) when the array lives there, since
 * `fill` on a shared buffer is several times slower than on an ordinary one; else `fill`.
 */
export const wasmZero: ZeroKernel = (x, offset, n) => {
  const p = pointerOf(x);
  if (p < 0 || n < WASM_ELEMENTWISE_MIN) {
    x.fill(0, offset, offset + n);
    return;
  }
  const ptr = p + 4 * offset;
  run("zero", n, (chunk, ctr) => [ptr, n, chunk, ctr]);
};
