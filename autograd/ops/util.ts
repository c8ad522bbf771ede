/**
 * Small helpers the op definitions share: allocation through the kernel table, raw contiguous
 * copies, scalar promotion.
 *
 * @module
 */

import { type DType, storageFor, type StorageOf } from "../dtype.ts";
import { type Device, deviceBackend } from "../device.ts";
import { kernels } from "../kernels/mod.ts";
import { type Shape, sizeOf } from "../shape.ts";
import { type AnyTensor, Tensor, type TensorLike } from "../tensor.ts";

/**
 * A new contiguous tensor of `shape` with zeroed storage: float32 from the active kernels'
 * allocator, other dtypes on the JS heap.
 */
export function empty(shape: Shape): Tensor;
/** A new contiguous zeroed tensor of `shape` and `dtype`. */
export function empty<D extends DType>(shape: Shape, dtype: D): Tensor<D>;
export function empty(shape: Shape, dtype: DType = "float32"): AnyTensor {
  const n = sizeOf(shape);
  return new Tensor(dtype === "float32" ? kernels.alloc(n) : storageFor(dtype, n), shape);
}

/** A new contiguous zeroed tensor of `shape` and `dtype` on `device`. */
export function emptyOn<D extends DType>(device: Device, shape: Shape, dtype: D): Tensor<D> {
  if (device === "cpu") return empty(shape, dtype);
  return new Tensor<D>(deviceBackend(device).zeros(dtype, sizeOf(shape)), shape);
}

/**
 * `t` on `device`: itself when there, a device copy of a one-element CPU tensor (a number an op
 * promoted; cached by value, since such scalars are never written), else an error naming `op`.
 */
export function onDevice<D extends DType>(op: string, t: Tensor<D>, device: Device): Tensor<D> {
  if (t.device === device) return t;
  if (t.device !== "cpu" || t.size !== 1 || t.requiresGrad) {
    throw new Error(
      `${op}: operands on ${t.device} and ${device}; move them to one device with .to("${device}")`,
    );
  }
  const value = t.data[t.offset];
  const key = `${device} ${t.dtype} ${Object.is(value, -0) ? "-0" : value}`;
  let base = scalars.get(key);
  if (base === undefined) {
    if (scalars.size > 4096) scalars.clear();
    base = t.contiguous().to(device);
    scalars.set(key, base);
  }
  return new Tensor<D>(base.storage as Tensor<D>["storage"], t.shape, t.shape.map(() => 0), 0);
}

/** Device copies of one-element CPU tensors by device, dtype and value. */
const scalars = new Map<string, AnyTensor>();

/** `t` itself when contiguous, else a contiguous copy; never recorded (for use inside ops). */
export function dense<D extends DType>(t: Tensor<D>): Tensor<D> {
  if (t.isContiguous()) return t;
  const out = empty(t.shape, t.dtype);
  kernels.copyStrided(t.shape, t.data, t.offset, t.strides, out.data, 0, out.strides);
  return out;
}

/** The contiguous elements of `t` as a typed array starting at index 0 (a view when possible). */
export function flatData<D extends DType>(t: Tensor<D>): StorageOf<D> {
  const d = dense(t);
  return d.data.subarray(d.offset, d.offset + d.size) as StorageOf<D>;
}

/** Promotes a number to a scalar float32 tensor; tensors pass through. */
export function toTensor(x: TensorLike): Tensor {
  return typeof x === "number" ? new Tensor(new Float32Array([x]), []) : x;
}

/** Promotes a number to a scalar tensor of `like`'s dtype; tensors pass through. */
export function scalarLike(x: AnyTensor | number, like: AnyTensor): AnyTensor {
  if (typeof x !== "number") return x;
  const data = storageFor(like.dtype, 1);
  data[0] = x;
  return new Tensor(data, []);
}
