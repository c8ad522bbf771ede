/**
 * Named scratch regions in the shared wasm memory for the kernel drivers (`conv.ts`,
 * `elementwise.ts`), and the copies between JavaScript arrays and the memory. A region is
 * grow-only and reused from call to call; each driver call uses distinct names for the regions
 * it needs at the same time, so nothing else ever holds a pointer into one.
 *
 * @module
 */

import { profileAdd, profiling } from "./gemm.ts";
import { allocBytes, freeBytes, heapF32, pointerOf } from "./memory.ts";

const regions = new Map<string, { ptr: number; bytes: number }>();

/** The address of scratch region `name`, at least `bytes` long (64-byte aligned). */
export function region(name: string, bytes: number): number {
  const r = regions.get(name);
  if (r !== undefined && r.bytes >= bytes) return r.ptr;
  if (r !== undefined) freeBytes(r.ptr);
  const size = Math.max(64, Math.ceil(bytes * 1.25 / 64) * 64);
  const ptr = allocBytes(size);
  regions.set(name, { ptr, bytes: size });
  return ptr;
}

/**
 * The byte address of `n` floats of `arr` from `offset` in the wasm memory: in place when `arr`
 * lives there, else copied into region `name`.
 */
export function placeIn(name: string, arr: Float32Array, offset: number, n: number): number {
  const p = pointerOf(arr);
  if (p >= 0) return p + 4 * offset;
  const ptr = region(name, 4 * n);
  const t0 = profiling() ? performance.now() : 0;
  heapF32().set(arr.subarray(offset, offset + n), ptr >> 2);
  if (t0 !== 0) profileAdd("copy in/out", performance.now() - t0);
  return ptr;
}

/** Where an output of `n` floats goes: in place when `arr` lives in wasm memory, else region `name`. */
export function placeOut(name: string, arr: Float32Array, offset: number, n: number): number {
  const p = pointerOf(arr);
  return p >= 0 ? p + 4 * offset : region(name, 4 * n);
}

/** Copies an output computed at `ptr` into `arr`, unless it was computed in place. */
export function copyOut(ptr: number, arr: Float32Array, offset: number, n: number): void {
  if (pointerOf(arr) >= 0) return;
  const t0 = profiling() ? performance.now() : 0;
  arr.set(heapF32().subarray(ptr >> 2, (ptr >> 2) + n), offset);
  if (t0 !== 0) profileAdd("copy in/out", performance.now() - t0);
}
