/**
 * Reductions over any set of dimensions: sum, mean, max (differentiable) and argmax (not).
 *
 * A reduction over several dimensions runs as a few passes over [outer, n, inner] views of
 * contiguous data, one per run of adjacent reduced dimensions, innermost first.
 *
 * @module
 */

import { deviceBackend } from "../device.ts";
import { kernels } from "../kernels/mod.ts";
import { normalizeDim, normalizeDims, type Shape, sizeOf } from "../shape.ts";
import type { AnyTensor, Tensor } from "../tensor.ts";
import { div, mul } from "./arith.ts";
import { cast, eq, expectFloat } from "./compare.ts";
import { applyOp, defineOp } from "./op.ts";
import { dense, empty } from "./util.ts";
import { expand, reshape } from "./view.ts";

type Reducer = typeof kernels.sumAxis;

/**
 * Applies `reducer` over sorted `dims` of `x`; returns the keepDim-shaped result. Reduced dims keep
 * size 1 after their pass, so the indices of the remaining runs stay valid.
 */
function reduceDims(x: Tensor, dims: readonly number[], reducer: Reducer): Tensor {
  if (dims.length === 0) {
    // Nothing to reduce: still a new tensor, never `x` itself (an op's output must be its own).
    const copy = empty(x.shape);
    kernels.copyStrided(x.shape, x.data, x.offset, x.strides, copy.data, 0, copy.strides);
    return copy;
  }
  let current = dense(x);
  let shape = [...x.shape];
  let d = dims.length - 1;
  while (d >= 0) {
    const last = dims[d];
    while (d > 0 && dims[d - 1] === dims[d] - 1) d--;
    const first = dims[d];
    const outer = sizeOf(shape.slice(0, first));
    const n = sizeOf(shape.slice(first, last + 1));
    const inner = sizeOf(shape.slice(last + 1));
    const nextShape = shape.map((size, i) => (i >= first && i <= last ? 1 : size));
    const next = empty(nextShape);
    reducer(current.data, current.offset, outer, n, inner, next.data, 0);
    current = next;
    shape = nextShape;
    d--;
  }
  return current;
}

/** Output shape of a reduction, with or without the reduced dims. */
function reducedShape(shape: Shape, dims: readonly number[], keepDim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((size, i) => {
    if (!dims.includes(i)) out.push(size);
    else if (keepDim) out.push(1);
  });
  return out;
}

interface ReduceAttrs {
  dims: number[];
  keepDim: boolean;
}

/** Broadcasts an output gradient back over the reduced dims of `shape`. */
function spread(g: Tensor, shape: Shape, dims: readonly number[]): Tensor {
  return expand(reshape(g, reducedShape(shape, dims, true)), shape);
}

/** Sum over dims. */
export const sumOp = defineOp<[Tensor], ReduceAttrs, null>({
  name: "sum",
  forward([x], { dims, keepDim }) {
    const out = reduceDims(x, dims, kernels.sumAxis);
    return { out: keepDim ? out : reshape(out, reducedShape(x.shape, dims, false)), saved: null };
  },
  backward(g, _saved, [x], { dims }) {
    return [spread(g, x.shape, dims)];
  },
});

/** Mean over dims. */
export const meanOp = defineOp<[Tensor], ReduceAttrs, null>({
  name: "mean",
  forward([x], { dims, keepDim }) {
    const total = reduceDims(x, dims, kernels.sumAxis);
    const count = sizeOf(dims.map((d) => x.shape[d]));
    kernels.scale(total.data, 0, 1 / count, total.data, 0, total.size);
    return {
      out: keepDim ? total : reshape(total, reducedShape(x.shape, dims, false)),
      saved: null,
    };
  },
  backward(g, _saved, [x], { dims }) {
    const count = sizeOf(dims.map((d) => x.shape[d]));
    return [spread(mul(g, 1 / count), x.shape, dims)];
  },
});

/**
 * Maximum over dims. The gradient goes to the elements equal to the maximum, shared equally among
 * ties (the subgradient PyTorch's `amax` uses).
 */
export const maxOp = defineOp<[Tensor], ReduceAttrs, Tensor>({
  name: "max",
  forward([x], { dims, keepDim }) {
    const kept = reduceDims(x, dims, kernels.maxAxis);
    return { out: keepDim ? kept : reshape(kept, reducedShape(x.shape, dims, false)), saved: kept };
  },
  backward(g, kept, [x], { dims }) {
    const winners = cast(eq(x, expand(kept, x.shape)), "float32");
    const counts = sum(winners, dims, true);
    return [mul(winners, spread(div(reshape(g, counts.shape), counts), x.shape, dims))];
  },
});

/** Sum of `x` over `dims` (all when omitted); int32 and bool tensors are summed as float32. */
export function sum(x: AnyTensor, dims?: number | readonly number[], keepDim = false): Tensor {
  return applyOp(sumOp, [cast(x, "float32")], {
    dims: normalizeDims(dims, x.ndim, "sum"),
    keepDim,
  });
}

/** Mean of `x` over `dims` (all when omitted); int32 and bool tensors are averaged as float32. */
export function mean(x: AnyTensor, dims?: number | readonly number[], keepDim = false): Tensor {
  const list = normalizeDims(dims, x.ndim, "mean");
  if (sizeOf(list.map((d) => x.shape[d])) === 0) {
    throw new RangeError(`mean: the reduced dimensions of ${x.shape} are empty`);
  }
  return applyOp(meanOp, [cast(x, "float32")], { dims: list, keepDim });
}

/** Maximum of `x` over `dims` (all when omitted). */
export function max(x: Tensor, dims?: number | readonly number[], keepDim = false): Tensor {
  const list = normalizeDims(dims, x.ndim, "max");
  if (sizeOf(list.map((d) => x.shape[d])) === 0) {
    throw new RangeError(`max: the reduced dimensions of ${x.shape} are empty`);
  }
  expectFloat("max", x);
  return applyOp(maxOp, [x], { dims: list, keepDim });
}

/** Index of the first maximum along `dim` (a NaN counts as the maximum), as int32; not differentiable. */
export function argmax(x: Tensor, dim = -1, keepDim = false): Tensor<"int32"> {
  expectFloat("argmax", x);
  const d = normalizeDim(dim, x.ndim, "argmax");
  if (x.device !== "cpu") return deviceBackend(x.device).helpers.argReduce("argmax", x, d, keepDim);
  const outer = sizeOf(x.shape.slice(0, d));
  const inner = sizeOf(x.shape.slice(d + 1));
  const source = dense(x);
  const out = empty(reducedShape(x.shape, [d], keepDim), "int32");
  kernels.argmaxAxis(source.data, source.offset, outer, x.shape[d], inner, out.data, 0);
  return out;
}

/** Index of the first minimum along `dim`, as int32; not differentiable. */
export function argmin(x: Tensor, dim = -1, keepDim = false): Tensor<"int32"> {
  expectFloat("argmin", x);
  if (x.device !== "cpu") {
    const d = normalizeDim(dim, x.ndim, "argmin");
    return deviceBackend(x.device).helpers.argReduce("argmin", x, d, keepDim);
  }
  // The first minimum of x is the first maximum of −x.
  const source = dense(x);
  const negated = empty(x.shape);
  kernels.scale(source.data, source.offset, -1, negated.data, 0, x.size);
  return argmax(negated, dim, keepDim);
}

/** Sums a gradient over the dimensions that were broadcast, back to `shape` (differentiable). */
export function reduceTo(g: Tensor, shape: Shape): Tensor {
  if (g.ndim === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.ndim - shape.length;
  const dims: number[] = [];
  for (let d = 0; d < g.ndim; d++) {
    if (d < lead || (shape[d - lead] === 1 && g.shape[d] !== 1)) dims.push(d);
  }
  return reshape(sum(g, dims, true), shape);
}
