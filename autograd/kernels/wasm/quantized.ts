/**
 * The driver of the WebAssembly quantized Linear layer (`quantized_kernels.ts`): the contract of
 * `quantizedLinearReference`, bit for bit. It runs three jobs over the rows: `qinput` quantizes
 * the input to bytes, `qdot` sums the int8 products, `qoutput` scales them back. Operands that
 * live in the wasm memory (a QuantizedLinear keeps its weights, scales and row sums there) are used
 * in place; the others, and the per-call arrays, go through scratch regions.
 *
 * @module
 */

import type { QuantizedLinearKernel } from "../types.ts";
import { defaultEngine, type Engine } from "./gemm.ts";
import { heapF32, pointerOf } from "./memory.ts";
import { copyOut, placeIn, placeOut, region } from "./scratch.ts";

/** The byte address of `view` in the wasm memory: in place when it lives there, else a copy. */
function bytesIn(name: string, view: Int8Array | Int32Array): number {
  const p = pointerOf(view);
  if (p >= 0) return p;
  const ptr = region(name, view.byteLength);
  new Uint8Array(heapF32().buffer, ptr, view.byteLength).set(
    new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
  );
  return ptr;
}

/**
 * The int32 products of the layer, sums [m, n] = inputs [m, kp] · weights [n, kp]ᵀ, exact: the
 * native backend passes oneDNN's (`Dnnl.int8Product`) in place of the `qdot` job.
 */
export type Int8Product = (
  inputs: Uint8Array,
  weights: Int8Array,
  sums: Int32Array,
  m: number,
  n: number,
  kp: number,
) => void;

/**
 * `quantizedLinear` on the kernels of `engine` (a test may pass one with plain-SIMD kernels),
 * its products on `product` when given, else on the `qdot` job. The products are exact integers
 * either way, so the result is the same bits.
 */
export function quantizedLinearOn(
  engine: () => Engine,
  product?: Int8Product,
): QuantizedLinearKernel {
  return (a) => {
    const { rows: m, inFeatures: k, outFeatures: n, rowLength: kp } = a;
    if (m === 0 || n === 0) return;
    const e = engine();
    const x = placeIn("q.x", a.x, a.xOffset, m * k);
    const w = bytesIn("q.w", a.weights.subarray(0, n * kp));
    const sw = placeIn("q.sw", a.weightScales, 0, n);
    const rowSums = bytesIn("q.rowSums", a.rowSums.subarray(0, n));
    const bias = a.bias === null ? 0 : placeIn("q.bias", a.bias, 0, n);
    const inputs = region("q.inputs", m * kp);
    const sx = region("q.sx", 4 * m);
    const zeros = region("q.zeros", 4 * m);
    const sums = region("q.sums", 4 * m * n);
    const out = placeOut("q.out", a.out, 0, m * n);
    e.job("qinput", m * k, m, (chunk, counter) => [x, inputs, sx, zeros, m, k, kp, chunk, counter]);
    if (product === undefined) {
      e.job(
        "qdot",
        m * n * kp,
        Math.ceil(n / 4),
        (chunk, counter) => [inputs, w, sums, m, n, kp, chunk, counter],
      );
    } else {
      // Views taken after every region is placed: placing one may grow the memory.
      const heap = heapF32().buffer;
      product(
        new Uint8Array(heap, inputs, m * kp),
        new Int8Array(heap, w, n * kp),
        new Int32Array(heap, sums, m * n),
        m,
        n,
        kp,
      );
    }
    e.job("qoutput", m * n, m, (chunk, counter) => [
      sums,
      out,
      sx,
      zeros,
      sw,
      rowSums,
      bias,
      m,
      n,
      a.bias === null ? 0 : 1,
      a.relu ? 1 : 0,
      chunk,
      counter,
    ]);
    copyOut(out, a.out, 0, m * n);
  };
}

/** `quantizedLinear` in wasm SIMD (see `QuantizedLinearKernel`), on the default engine's threads. */
export const wasmQuantizedLinear: QuantizedLinearKernel = quantizedLinearOn(defaultEngine);

/** `quantizedLinear` with its products on `product` and its other passes on the default engine. */
export function wasmQuantizedLinearWith(product: Int8Product): QuantizedLinearKernel {
  return quantizedLinearOn(defaultEngine, product);
}
