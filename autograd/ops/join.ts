/**
 * Joining and splitting: `cat` (a primitive: one strided copy per input into its part of the
 * output; its gradient is a view of each part), `stack` (cat of unsqueezed inputs), and `split`,
 * `chunk`, `unbind` (views).
 *
 * @module
 */

import type { DType } from "../dtype.ts";
import { kernels } from "../kernels/mod.ts";
import { formatShape, normalizeDim } from "../shape.ts";
import type { AnyTensor, Tensor } from "../tensor.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { empty } from "./util.ts";
import { narrow, squeeze, unsqueeze } from "./view.ts";

/** Attributes of {@linkcode catOp}. */
export interface CatAttrs {
  /** The dimension joined along. */
  dim: number;
  /** Each input's size along it. */
  sizes: number[];
}

/** Concatenation along `dim`; `sizes` are the inputs' sizes along it. */
export const catOp: OpDef<AnyTensor[], CatAttrs, null> = defineOp<AnyTensor[], CatAttrs, null>({
  name: "cat",
  forward(inputs, { dim, sizes }) {
    const shape = [...inputs[0].shape];
    shape[dim] = sizes.reduce((a, b) => a + b, 0);
    const out = empty(shape, inputs[0].dtype);
    let at = 0;
    inputs.forEach((t, i) => {
      kernels.copyStrided(
        t.shape,
        t.data,
        t.offset,
        t.strides,
        out.data,
        at * out.strides[dim],
        out.strides,
      );
      at += sizes[i];
    });
    return { out, saved: null };
  },
  backward(g, _saved, inputs, { dim, sizes }) {
    let at = 0;
    return inputs.map((t, i) => {
      const part = t.requiresGrad ? narrow(g, dim, at, sizes[i]) : null;
      at += sizes[i];
      return part;
    });
  },
});

/**
 * The tensors joined along `dim` (PyTorch's `torch.cat`): same dtype and number of dimensions, the
 * same sizes except along `dim`. Always a new tensor.
 */
export function cat<D extends DType>(tensors: readonly Tensor<D>[], dim = 0): Tensor<D> {
  if (tensors.length === 0) throw new RangeError("cat: expected at least one tensor");
  const first = tensors[0];
  const d = normalizeDim(dim, Math.max(first.ndim, 1), "cat");
  for (const t of tensors) {
    const fits = t.ndim === first.ndim && t.shape.every((s, i) => i === d || s === first.shape[i]);
    if (t.dtype !== first.dtype || !fits) {
      throw new RangeError(
        `cat: cannot join ${
          tensors.map((u) => `${u.dtype}${formatShape(u.shape)}`).join(", ")
        } along dimension ${dim} (same dtype and sizes except along dim)`,
      );
    }
  }
  if (first.ndim === 0) throw new RangeError("cat: zero-dimensional tensors cannot be joined");
  return applyOp(catOp, [...tensors], { dim: d, sizes: tensors.map((t) => t.shape[d]) });
}

/**
 * The tensors (all of one shape and dtype) stacked along a new dimension `dim` (PyTorch's
 * `torch.stack`).
 */
export function stack<D extends DType>(tensors: readonly Tensor<D>[], dim = 0): Tensor<D> {
  if (tensors.length === 0) throw new RangeError("stack: expected at least one tensor");
  const shape = tensors[0].shape;
  if (tensors.some((t) => formatShape(t.shape) !== formatShape(shape))) {
    throw new RangeError(
      `stack: all tensors must have one shape, got ${
        tensors.map((t) => formatShape(t.shape)).join(", ")
      }`,
    );
  }
  const d = normalizeDim(dim, shape.length + 1, "stack");
  return cat(tensors.map((t) => unsqueeze(t, d)), d);
}

/**
 * Views of consecutive pieces of `x` along `dim` (PyTorch's `torch.split`): pieces of
 * `sizeOrSizes` entries each (the last may be smaller), or of the listed sizes, which must add up
 * to the dimension's size.
 */
export function split<D extends DType>(
  x: Tensor<D>,
  sizeOrSizes: number | readonly number[],
  dim = 0,
): Tensor<D>[] {
  const d = normalizeDim(dim, x.ndim, "split");
  const n = x.shape[d];
  let sizes: number[];
  if (typeof sizeOrSizes === "number") {
    if (!Number.isInteger(sizeOrSizes) || sizeOrSizes < 1) {
      throw new RangeError(`split: the size must be a positive integer, got ${sizeOrSizes}`);
    }
    sizes = [];
    for (let at = 0; at < n; at += sizeOrSizes) sizes.push(Math.min(sizeOrSizes, n - at));
    if (n === 0) sizes.push(0);
  } else {
    sizes = [...sizeOrSizes];
    if (
      !sizes.every((s) => Number.isInteger(s) && s >= 0) || sizes.reduce((a, b) => a + b, 0) !== n
    ) {
      throw new RangeError(
        `split: sizes [${sizes.join(", ")}] do not add up to dimension ${dim} of ${
          formatShape(x.shape)
        }`,
      );
    }
  }
  let at = 0;
  return sizes.map((s) => {
    const piece = narrow(x, d, at, s);
    at += s;
    return piece;
  });
}

/**
 * `x` cut into `chunks` views along `dim` of ⌈size / chunks⌉ entries each (PyTorch's
 * `torch.chunk`: the last is smaller, and there may be fewer than `chunks`).
 */
export function chunk<D extends DType>(x: Tensor<D>, chunks: number, dim = 0): Tensor<D>[] {
  if (!Number.isInteger(chunks) || chunks < 1) {
    throw new RangeError(`chunk: the number of chunks must be a positive integer, got ${chunks}`);
  }
  const d = normalizeDim(dim, x.ndim, "chunk");
  return split(x, Math.max(Math.ceil(x.shape[d] / chunks), 1), d);
}

/** The slices of `x` along `dim`, each without that dimension (PyTorch's `unbind`; views). */
export function unbind<D extends DType>(x: Tensor<D>, dim = 0): Tensor<D>[] {
  const d = normalizeDim(dim, x.ndim, "unbind");
  return Array.from({ length: x.shape[d] }, (_, i) => squeeze(narrow(x, d, i, 1), d));
}
