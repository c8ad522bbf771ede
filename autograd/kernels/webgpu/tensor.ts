/**
 * What every WebGPU op implementation shares: the storage of a device tensor, new output tensors,
 * the strided copy (any dtype: every element is one 32-bit word on the device) and the dense
 * form of a view, plus the WGSL that turns a flat index into a strided offset.
 *
 * @module
 */

import type { DType } from "../../dtype.ts";
import { contiguousStrides, type Shape, sizeOf } from "../../shape.ts";
import { type AnyTensor, Tensor } from "../../tensor.ts";
import { GpuStorage, LINEAR_ID_WGSL, type WebGpu, webgpu, WORKGROUP_1D } from "./runtime.ts";

/** Most dimensions a strided WebGPU kernel handles (more are merged or rejected). */
export const MAX_DIMS = 8;

/** The device storage of `t`, or an error naming `op` when `t` is not on the WebGPU device. */
export function gpuStorage(t: AnyTensor, op: string): GpuStorage {
  const storage = t.storage;
  if (!(storage instanceof GpuStorage)) {
    throw new Error(`${op}: expected a webgpu tensor, got one on ${t.device}`);
  }
  return storage;
}

/** A new contiguous tensor of `shape` and `dtype` on the device (contents undefined unless `zero`). */
export function gpuEmpty<D extends DType = "float32">(
  shape: Shape,
  dtype: D = "float32" as D,
  zero = false,
): Tensor<D> {
  return new Tensor<D>(webgpu().alloc(dtype, sizeOf(shape), zero) as never, shape);
}

/**
 * WGSL: `stridedOffset(i, base)` maps flat row-major index `i` over the shape at parameter word
 * `base + 2` (ndim at `base`, offset at `base + 1`, then MAX_DIMS sizes and MAX_DIMS strides) to a
 * storage index. {@linkcode stridedParams} writes that block.
 */
export const STRIDED_WGSL = `
fn stridedOffset(flat: u32, base: u32) -> u32 {
  let ndim = pu(base);
  var rest = flat;
  var at = pi(base + 1u);
  for (var d = i32(ndim) - 1; d >= 0; d--) {
    let size = pu(base + 2u + u32(d));
    let idx = rest % size;
    rest = rest / size;
    at += i32(idx) * pi(base + 2u + ${MAX_DIMS}u + u32(d));
  }
  return u32(at);
}
`;

/** Parameter words of one strided operand ({@linkcode STRIDED_WGSL}): 2 + 2·MAX_DIMS of them. */
export function stridedParams(
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): number[] {
  if (shape.length > MAX_DIMS) {
    throw new RangeError(`webgpu: ${shape.length} dimensions (at most ${MAX_DIMS})`);
  }
  const words = new Array<number>(2 + 2 * MAX_DIMS).fill(0);
  words[0] = shape.length;
  words[1] = offset >>> 0;
  for (let d = 0; d < shape.length; d++) {
    words[2 + d] = shape[d];
    words[2 + MAX_DIMS + d] = strides[d] >>> 0;
  }
  return words;
}

/** Words of one strided block. */
export const STRIDED_WORDS = 2 + 2 * MAX_DIMS;

function copyKernel(gpu: WebGpu) {
  return gpu.kernel(
    "copyStrided",
    `${STRIDED_WGSL}
${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = linearId(gid, groups);
  if (i >= pu(0)) { return; }
  dst[stridedOffset(i, ${1 + STRIDED_WORDS}u)] = src[stridedOffset(i, 1u)];
}`,
    1,
    1,
  );
}

/** Copies the view `src` into the view (dstShape = src.shape, dstStrides, dstOffset) of `dst`. */
export function copyStridedGpu(
  src: AnyTensor,
  dst: GpuStorage,
  dstOffset: number,
  dstStrides: readonly number[],
): void {
  const gpu = webgpu();
  const n = src.size;
  if (n === 0) return;
  gpu.dispatch1d(
    copyKernel(gpu),
    [gpuStorage(src, "copy"), dst],
    [
      n,
      ...stridedParams(src.shape, src.strides, src.offset),
      ...stridedParams(src.shape, dstStrides, dstOffset),
    ],
    n,
  );
}

/** `t` itself when contiguous from offset 0 of its own layout, else a contiguous copy. */
export function gpuDense<D extends DType>(t: Tensor<D>): Tensor<D> {
  if (t.isContiguous()) return t;
  const out = gpuEmpty(t.shape, t.dtype);
  copyStridedGpu(t, gpuStorage(out, "contiguous"), 0, contiguousStrides(t.shape));
  return out;
}
