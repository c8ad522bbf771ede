/**
 * The driver of the WebAssembly `qdot` kernel (`quantized_kernels.ts`): the contract of
 * `quantizedDotReference`, bit for bit. The weights are used in place when they live in the wasm
 * memory (a quantized layer puts them there), else copied in; the quantized input and the int32
 * result go through scratch regions.
 *
 * @module
 */

import type { QuantizedDotKernel } from "../types.ts";
import { defaultEngine, type Engine } from "./gemm.ts";
import { heapF32, pointerOf } from "./memory.ts";
import { region } from "./scratch.ts";

/** The byte address of `bytes` in the wasm memory: in place when it lives there, else a copy. */
function bytesIn(name: string, bytes: Int8Array | Uint8Array): number {
  const p = pointerOf(bytes);
  if (p >= 0) return p;
  const ptr = region(name, bytes.byteLength);
  new Uint8Array(heapF32().buffer, ptr, bytes.byteLength).set(
    new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  );
  return ptr;
}

/** `quantizedDot` on the kernels of `engine` (a test may pass one with the plain-SIMD kernels). */
export function quantizedDotOn(engine: () => Engine): QuantizedDotKernel {
  return (x, w, out, m, n, kp) => {
    if (m === 0 || n === 0) return;
    const wPtr = bytesIn("q.w", w.subarray(0, n * kp));
    const xPtr = bytesIn("q.x", x.subarray(0, m * kp));
    const outPtr = pointerOf(out) >= 0 ? pointerOf(out) : region("q.out", 4 * m * n);
    engine().job("qdot", m * n * kp, Math.ceil(n / 4), (chunk, counter) => [
      xPtr,
      wPtr,
      outPtr,
      m,
      n,
      kp,
      chunk,
      counter,
    ]);
    if (pointerOf(out) < 0) out.set(new Int32Array(heapF32().buffer, outPtr, m * n));
  };
}

/** `quantizedDot` in wasm SIMD (see `QuantizedDotKernel`), on the default engine's threads. */
export const wasmQuantizedDot: QuantizedDotKernel = quantizedDotOn(defaultEngine);
