/**
 * View ops: new shapes, strides and offsets over the same storage, never a copy (except `reshape`
 * of a layout no view can express, which copies first, and `contiguous` / `clone`, whose job is to
 * copy). Each backward rule maps the gradient back onto the input's layout.
 *
 * @module
 */

import type { DType } from "../dtype.ts";
import { kernels } from "../kernels/mod.ts";
import { checkShape, formatShape, normalizeDim, type Shape, sizeOf } from "../shape.ts";
import { type AnyTensor, Tensor } from "../tensor.ts";
import { applyOp, defineOp } from "./op.ts";
import { reduceTo } from "./reduce.ts";
import { empty } from "./util.ts";

/**
 * Strides that let `newShape` view the same elements as (shape, strides) in row-major order, or
 * null when no such strides exist (the data would have to be copied). Dimensions are matched in
 * chunks whose elements are evenly spaced in storage; a chunk may be split or merged freely.
 */
export function viewStrides(
  shape: Shape,
  strides: readonly number[],
  newShape: Shape,
): number[] | null {
  const out = new Array<number>(newShape.length).fill(1);
  if (sizeOf(shape) === 0 || shape.length === 0) {
    let step = 1;
    for (let d = newShape.length - 1; d >= 0; d--) {
      out[d] = step;
      step *= Math.max(newShape[d], 1);
    }
    return out;
  }
  let viewDim = newShape.length - 1;
  let chunkStride = strides[strides.length - 1];
  let chunkSize = 1;
  let viewSize = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    chunkSize *= shape[d];
    const chunkEnds = d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== chunkSize * chunkStride);
    if (!chunkEnds) continue;
    while (viewDim >= 0 && (viewSize < chunkSize || newShape[viewDim] === 1)) {
      out[viewDim] = viewSize * chunkStride;
      viewSize *= newShape[viewDim];
      viewDim--;
    }
    if (viewSize !== chunkSize) return null;
    if (d > 0) {
      chunkStride = strides[d - 1];
      chunkSize = 1;
      viewSize = 1;
    }
  }
  return viewDim === -1 ? out : null;
}

/** Resolves one -1 in a requested shape and checks the element count. */
export function resolveShape(op: string, from: Shape, requested: readonly number[]): number[] {
  const shape = [...requested];
  const unknown = shape.indexOf(-1);
  if (unknown !== shape.lastIndexOf(-1)) {
    throw new RangeError(`${op}: only one dimension can be -1, got ${formatShape(requested)}`);
  }
  const size = sizeOf(from);
  if (unknown >= 0) {
    const known = sizeOf(shape.filter((_, i) => i !== unknown));
    if (known === 0 || size % known !== 0) {
      throw new RangeError(
        `${op}: cannot reshape ${formatShape(from)} (${size} elements) to ${
          formatShape(requested)
        }`,
      );
    }
    shape[unknown] = size / known;
  }
  checkShape(shape, op);
  if (sizeOf(shape) !== size) {
    throw new RangeError(
      `${op}: cannot reshape ${formatShape(from)} (${size} elements) to ${formatShape(shape)} (${
        sizeOf(shape)
      } elements)`,
    );
  }
  return shape;
}

/** A view with the same elements in the same order under a new shape (reshape, squeeze, flatten …). */
export const restrideOp = defineOp<[AnyTensor], { shape: number[]; strides: number[] }, null>({
  name: "reshape",
  forward([x], { shape, strides }) {
    return { out: new Tensor<DType>(x.storage, shape, strides, x.offset), saved: null };
  },
  backward(g, _saved, [x]) {
    return [reshape(g, x.shape)];
  },
});

/** Swaps two dimensions. */
export const transposeOp = defineOp<[AnyTensor], { dim0: number; dim1: number }, null>({
  name: "transpose",
  forward([x], { dim0, dim1 }) {
    const shape = [...x.shape];
    const strides = [...x.strides];
    [shape[dim0], shape[dim1]] = [shape[dim1], shape[dim0]];
    [strides[dim0], strides[dim1]] = [strides[dim1], strides[dim0]];
    return { out: new Tensor<DType>(x.storage, shape, strides, x.offset), saved: null };
  },
  backward(g, _saved, _inputs, { dim0, dim1 }) {
    return [transpose(g, dim0, dim1)];
  },
});

/** Reorders all dimensions. */
export const permuteOp = defineOp<[AnyTensor], { dims: number[] }, null>({
  name: "permute",
  forward([x], { dims }) {
    const shape = dims.map((d) => x.shape[d]);
    const strides = dims.map((d) => x.strides[d]);
    return { out: new Tensor<DType>(x.storage, shape, strides, x.offset), saved: null };
  },
  backward(g, _saved, _inputs, { dims }) {
    const inverse = new Array<number>(dims.length);
    dims.forEach((d, i) => (inverse[d] = i));
    return [permute(g, inverse)];
  },
});

/** Every `step`-th element from `start`, `length` of them, along `dim`. */
export const sliceOp = defineOp<
  [AnyTensor],
  { dim: number; start: number; length: number; step: number },
  null
>({
  name: "slice",
  forward([x], { dim, start, length, step }) {
    const shape = [...x.shape];
    const strides = [...x.strides];
    shape[dim] = length;
    strides[dim] = x.strides[dim] * step;
    const offset = length > 0 ? x.offset + start * x.strides[dim] : x.offset;
    return { out: new Tensor<DType>(x.storage, shape, strides, offset), saved: null };
  },
  backward(g, _saved, [x], { dim, start, step }) {
    return [sliceScatter(g, x.shape, dim, start, step)];
  },
});

/**
 * Zeros of `shape` with the input written at every `step`-th position from `start` along `dim`:
 * the gradient of a slice, and a slice is its gradient.
 */
export const sliceScatterOp = defineOp<
  [Tensor],
  { shape: number[]; dim: number; start: number; step: number },
  null
>({
  name: "sliceScatter",
  forward([src], { shape, dim, start, step }) {
    const out = empty(shape);
    const strides = [...out.strides];
    strides[dim] *= step;
    const offset = src.shape[dim] > 0 ? start * out.strides[dim] : 0;
    kernels.copyStrided(src.shape, src.data, src.offset, src.strides, out.data, offset, strides);
    return { out, saved: null };
  },
  backward(g, _saved, [src], { dim, start, step }) {
    return [applyOp(sliceOp, [g], { dim, start, length: src.shape[dim], step })];
  },
});

/**
 * Zeros of `shape` holding `src` at positions start, start + step, … along `dim` (the rest of
 * `shape` must equal `src`'s shape).
 */
export function sliceScatter(
  src: Tensor,
  shape: readonly number[],
  dim: number,
  start: number,
  step = 1,
): Tensor {
  const d = normalizeDim(dim, shape.length, "sliceScatter");
  const fits = src.ndim === shape.length &&
    src.shape.every((size, i) => i === d || size === shape[i]) &&
    Number.isInteger(start) && Number.isInteger(step) && step >= 1 && start >= 0 &&
    (src.shape[d] === 0 || start + (src.shape[d] - 1) * step < shape[d]);
  if (!fits) {
    throw new RangeError(
      `sliceScatter: ${formatShape(src.shape)} does not fit into ${formatShape(shape)} at ` +
        `dimension ${dim} from ${start} with step ${step}`,
    );
  }
  return applyOp(sliceScatterOp, [src], { shape: [...shape], dim: d, start, step });
}

/** Broadcasts to a larger shape with stride 0 on the new and size-1 dimensions. */
export const expandOp = defineOp<[AnyTensor], { shape: number[] }, null>({
  name: "expand",
  forward([x], { shape }) {
    const lead = shape.length - x.ndim;
    const strides = shape.map((size, d) => {
      if (d < lead) return 0;
      return x.shape[d - lead] === size ? x.strides[d - lead] : 0;
    });
    return { out: new Tensor<DType>(x.storage, shape, strides, x.offset), saved: null };
  },
  backward(g, _saved, [x]) {
    return [reduceTo(g, x.shape)];
  },
});

/** A contiguous copy (recorded so gradients pass straight through). */
export const contiguousOp = defineOp<[AnyTensor], null, null>({
  name: "contiguous",
  forward([x]) {
    const out = empty(x.shape, x.dtype);
    kernels.copyStrided(x.shape, x.data, x.offset, x.strides, out.data, 0, out.strides);
    return { out, saved: null };
  },
  backward(g) {
    return [g];
  },
});

// Functional forms.

/** Reshape; a view when the strides allow it, else a recorded copy followed by a view. */
export function reshape<D extends DType>(x: Tensor<D>, shape: readonly number[]): Tensor<D> {
  const target = resolveShape("reshape", x.shape, shape);
  const strides = viewStrides(x.shape, x.strides, target);
  if (strides === null) return reshape(contiguous(x), target);
  return applyOp(restrideOp, [x], { shape: target, strides });
}

/** Reshape that never copies: throws when the layout cannot be viewed with the new shape. */
export function view<D extends DType>(x: Tensor<D>, shape: readonly number[]): Tensor<D> {
  const target = resolveShape("view", x.shape, shape);
  const strides = viewStrides(x.shape, x.strides, target);
  if (strides === null) {
    throw new RangeError(
      `view: a tensor of shape ${formatShape(x.shape)} with strides ${
        formatShape(x.strides)
      } cannot be ` +
        `viewed as ${formatShape(target)} without a copy; use reshape() or contiguous() first`,
    );
  }
  return applyOp(restrideOp, [x], { shape: target, strides });
}

/** Swaps dims `dim0` and `dim1`. */
export function transpose<D extends DType>(x: Tensor<D>, dim0 = -2, dim1 = -1): Tensor<D> {
  const a = normalizeDim(dim0, x.ndim, "transpose");
  const b = normalizeDim(dim1, x.ndim, "transpose");
  return applyOp(transposeOp, [x], { dim0: a, dim1: b });
}

/** Reorders the dimensions; `dims` must be a permutation of 0..ndim−1. */
export function permute<D extends DType>(x: Tensor<D>, dims: readonly number[]): Tensor<D> {
  if (dims.length !== x.ndim) {
    throw new RangeError(
      `permute: ${dims.length} dims given for a tensor of shape ${formatShape(x.shape)}`,
    );
  }
  const norm = dims.map((d) => normalizeDim(d, x.ndim, "permute"));
  if (new Set(norm).size !== norm.length) {
    throw new RangeError(`permute: [${dims.join(", ")}] repeats a dimension`);
  }
  return applyOp(permuteOp, [x], { dims: norm });
}

/** Python-style slice along `dim`: start (default 0), end (default size), positive step. */
export function slice<D extends DType>(
  x: Tensor<D>,
  dim: number,
  start?: number,
  end?: number,
  step = 1,
): Tensor<D> {
  const d = normalizeDim(dim, x.ndim, "slice");
  if (!Number.isInteger(step) || step < 1) {
    throw new RangeError(`slice: step must be a positive integer, got ${step}`);
  }
  const size = x.shape[d];
  const clamp = (i: number) => Math.min(Math.max(i < 0 ? i + size : i, 0), size);
  const s = clamp(start ?? 0);
  const e = clamp(end ?? size);
  const length = e > s ? Math.ceil((e - s) / step) : 0;
  return applyOp(sliceOp, [x], { dim: d, start: s, length, step });
}

/** `length` elements of `dim` starting at `start` (which must lie inside the tensor). */
export function narrow<D extends DType>(
  x: Tensor<D>,
  dim: number,
  start: number,
  length: number,
): Tensor<D> {
  const d = normalizeDim(dim, x.ndim, "narrow");
  const size = x.shape[d];
  const s = start < 0 ? start + size : start;
  if (
    !Number.isInteger(s) || !Number.isInteger(length) || s < 0 || length < 0 || s + length > size
  ) {
    throw new RangeError(
      `narrow: start ${start}, length ${length} is outside dimension ${dim} of ${
        formatShape(x.shape)
      }`,
    );
  }
  return applyOp(sliceOp, [x], { dim: d, start: s, length, step: 1 });
}

/** Broadcasts to `shape` (-1 keeps a size) without copying. */
export function expand<D extends DType>(x: Tensor<D>, shape: readonly number[]): Tensor<D> {
  if (shape.length < x.ndim) {
    throw new RangeError(
      `expand: cannot expand ${formatShape(x.shape)} to fewer dimensions ${formatShape(shape)}`,
    );
  }
  const lead = shape.length - x.ndim;
  const target = shape.map((s, d) => (s === -1 && d >= lead ? x.shape[d - lead] : s));
  checkShape(target, "expand");
  for (let d = lead; d < target.length; d++) {
    const from = x.shape[d - lead];
    if (from !== 1 && from !== target[d]) {
      throw new RangeError(
        `expand: cannot expand ${formatShape(x.shape)} to ${formatShape(shape)} (dimension ${d})`,
      );
    }
  }
  if (target.length === x.ndim && target.every((s, d) => s === x.shape[d])) return x;
  return applyOp(expandOp, [x], { shape: target });
}

/** Removes dimension `dim` if it has size 1 (all size-1 dimensions when omitted). */
export function squeeze<D extends DType>(x: Tensor<D>, dim?: number): Tensor<D> {
  const keep = (
    size: number,
    d: number,
  ) => (dim === undefined ? size !== 1 : d !== normalizeDim(dim, x.ndim, "squeeze") || size !== 1);
  const shape: number[] = [];
  const strides: number[] = [];
  x.shape.forEach((size, d) => {
    if (keep(size, d)) {
      shape.push(size);
      strides.push(x.strides[d]);
    }
  });
  if (shape.length === x.ndim) return x;
  return applyOp(restrideOp, [x], { shape, strides });
}

/** Inserts a size-1 dimension at `dim` (−1 appends). */
export function unsqueeze<D extends DType>(x: Tensor<D>, dim: number): Tensor<D> {
  const d = normalizeDim(dim, x.ndim + 1, "unsqueeze");
  const shape = [...x.shape];
  const strides = [...x.strides];
  shape.splice(d, 0, 1);
  strides.splice(d, 0, d < x.ndim ? x.strides[d] * x.shape[d] : 1);
  return applyOp(restrideOp, [x], { shape, strides });
}

/** Merges dims startDim..endDim into one. */
export function flatten<D extends DType>(x: Tensor<D>, startDim = 0, endDim = -1): Tensor<D> {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normalizeDim(startDim, x.ndim, "flatten");
  const e = normalizeDim(endDim, x.ndim, "flatten");
  if (s > e) throw new RangeError(`flatten: startDim ${startDim} comes after endDim ${endDim}`);
  const shape = [...x.shape.slice(0, s), sizeOf(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

/** A contiguous tensor with the same values (the tensor itself when already contiguous). */
export function contiguous<D extends DType>(x: Tensor<D>): Tensor<D> {
  return x.isContiguous() ? x : applyOp(contiguousOp, [x], null);
}

/** A copy with its own storage, connected to the graph. */
export function clone<D extends DType>(x: Tensor<D>): Tensor<D> {
  return applyOp(contiguousOp, [x], null);
}
