/**
 * Small helpers the op definitions share: allocation through the kernel table, raw contiguous
 * copies, scalar promotion.
 *
 * @module
 */

import { kernels } from "../kernels/mod.ts";
import { type Shape, sizeOf } from "../shape.ts";
import { Tensor, type TensorLike } from "../tensor.ts";

/** A new contiguous tensor of `shape` with zeroed storage from the active kernels' allocator. */
export function empty(shape: Shape): Tensor {
  return new Tensor(kernels.alloc(sizeOf(shape)), shape);
}

/** `t` itself when contiguous, else a contiguous copy; never recorded (for use inside ops). */
export function dense(t: Tensor): Tensor {
  if (t.isContiguous()) return t;
  const out = empty(t.shape);
  kernels.copyStrided(t.shape, t.data, t.offset, t.strides, out.data, 0, out.strides);
  return out;
}

/** Promotes a number to a scalar tensor; tensors pass through. */
export function toTensor(x: TensorLike): Tensor {
  return typeof x === "number" ? new Tensor(new Float32Array([x]), []) : x;
}

/** s · t as a new contiguous tensor, straight through the kernel (no recording). */
export function scaled(t: Tensor, s: number): Tensor {
  const source = dense(t);
  const out = empty(t.shape);
  kernels.scale(source.data, source.offset, s, out.data, 0, t.size);
  return out;
}
