/**
 * Indexing: `gather` and `scatterAdd` (the two primitives, each the other's gradient, so both are
 * differentiable any number of times), and the composites built on them or on views:
 * `indexSelect` and `embedding` (a gather by a broadcast index, which the kernel runs as one row
 * copy per index; their gradients are row-wise scatter-adds, never a dense one-hot), `select` and
 * `index` (views), `flip`, `roll`, `pad`, `repeat` and `tile`.
 *
 * Indices are int32 tensors; an `Int32Array` or a `number[]` is accepted wherever an index tensor
 * is, as a 1-D index. Indices must lie in [0, size) (PyTorch's rule for these ops): an index out of
 * range throws a RangeError naming the op.
 *
 * @module
 */

import { type DType, expectDType } from "../dtype.ts";
import { kernels } from "../kernels/mod.ts";
import { formatShape, normalizeDim, normalizeDims } from "../shape.ts";
import { type AnyTensor, Tensor } from "../tensor.ts";
import { cast, eq, where } from "./compare.ts";
import { cat } from "./join.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { empty } from "./util.ts";
import {
  clone,
  expand,
  flatten,
  narrow,
  reshape,
  sliceScatter,
  squeeze,
  unsqueeze,
} from "./view.ts";

/** An index argument: an int32 tensor, or a 1-D list of integers as an `Int32Array` or array. */
export type Indices = Tensor<"int32"> | Int32Array | readonly number[];

/** The index as an int32 tensor; throws naming `op` for another dtype or non-integers. */
function toIndex(indices: Indices, op: string): Tensor<"int32"> {
  if (indices instanceof Tensor) {
    expectDType(`${op} (indices)`, [indices], ["int32"]);
    return indices;
  }
  if (!(indices instanceof Int32Array) && !indices.every((v) => Number.isInteger(v))) {
    throw new TypeError(`${op}: indices must be integers, got [${indices.join(", ")}]`);
  }
  const data = indices instanceof Int32Array ? indices : Int32Array.from(indices);
  return new Tensor(data, [data.length]);
}

/** Attributes of {@linkcode gatherOp}. */
export interface GatherAttrs {
  /** The dimension indexed along. */
  dim: number;
  /** The op named in errors (indexSelect and embedding run as gathers). */
  op: string;
}

function outOfRange(op: string, value: number, dim: number, size: number): RangeError {
  return new RangeError(
    `${op}: index ${value} is out of range for dimension ${dim} of size ${size}`,
  );
}

/** out[p] = x[p with coordinate `dim` replaced by index[p]]; out has the index's shape. */
export const gatherOp: OpDef<[AnyTensor, Tensor<"int32">], GatherAttrs, null> = defineOp<
  [AnyTensor, Tensor<"int32">],
  GatherAttrs,
  null
>({
  name: "gather",
  forward([x, index], { dim, op }) {
    const out = empty(index.shape, x.dtype);
    const bad = kernels.gather(
      index.shape,
      x.data,
      x.offset,
      x.strides,
      dim,
      x.shape[dim],
      index.data,
      index.offset,
      index.strides,
      out.data,
      0,
    );
    if (bad !== null) throw outOfRange(op, bad, dim, x.shape[dim]);
    return { out, saved: null };
  },
  backward(g, _saved, [x, index], { dim }) {
    return [scatterAdd(empty(x.shape), dim, index, g), null];
  },
});

/** A copy of x with src[p] added at x[p with coordinate `dim` replaced by index[p]]. */
export const scatterAddOp: OpDef<
  [AnyTensor, Tensor<"int32">, AnyTensor],
  { dim: number },
  null
> = defineOp<
  [AnyTensor, Tensor<"int32">, AnyTensor],
  { dim: number },
  null
>({
  name: "scatterAdd",
  forward([x, index, src], { dim }) {
    const out = empty(x.shape, x.dtype) as Tensor<"float32" | "int32">;
    kernels.copyStrided(x.shape, x.data, x.offset, x.strides, out.data, 0, out.strides);
    const bad = kernels.scatterAdd(
      index.shape,
      src.data as Float32Array,
      src.offset,
      src.strides,
      dim,
      x.shape[dim],
      index.data,
      index.offset,
      index.strides,
      out.data as Float32Array,
      0,
      out.strides,
    );
    if (bad !== null) throw outOfRange("scatterAdd", bad, dim, x.shape[dim]);
    return { out, saved: null };
  },
  backward(g, _saved, [x, index, src], { dim }) {
    let gs: Tensor | null = null;
    if (src.requiresGrad) {
      // src may be larger than the index: the rest of it never reached the output.
      gs = gather(g, dim, index);
      for (let d = 0; d < src.ndim; d++) {
        if (gs.shape[d] !== src.shape[d]) {
          gs = sliceScatter(gs, gs.shape.map((s, i) => (i === d ? src.shape[d] : s)), d, 0);
        }
      }
    }
    return [x.requiresGrad ? g : null, null, gs];
  },
});

function checkIndexShape(
  op: string,
  x: AnyTensor,
  dim: number,
  index: Tensor<"int32">,
  src?: AnyTensor,
): void {
  const fits = index.ndim === x.ndim &&
    index.shape.every((s, d) => (d === dim || s <= x.shape[d]) && (!src || s <= src.shape[d])) &&
    (!src || src.ndim === x.ndim);
  if (!fits) {
    throw new RangeError(
      `${op}: index ${formatShape(index.shape)} does not fit input ${formatShape(x.shape)}` +
        (src ? ` and src ${formatShape(src.shape)}` : "") +
        ` along dimension ${dim} (same number of dimensions; index sizes at most the input's ` +
        `outside dim${src ? " and at most src's everywhere" : ""})`,
    );
  }
}

function gatherAs<D extends DType>(
  op: string,
  x: Tensor<D>,
  dim: number,
  index: Tensor<"int32">,
): Tensor<D> {
  return applyOp(gatherOp, [x, index], { dim, op });
}

/**
 * Values of `x` picked along `dim` by `index` (PyTorch's `torch.gather`): for a 3-D input and
 * dim 1, out[i][j][k] = x[i][index[i][j][k]][k]. The result has the index's shape; the index has
 * as many dimensions as `x` and is no larger outside `dim`. Differentiable in `x` (the gradient is a
 * scatter-add).
 */
export function gather<D extends DType>(x: Tensor<D>, dim: number, index: Indices): Tensor<D> {
  const ix = toIndex(index, "gather");
  if (x.ndim === 0) return reshape(gather(reshape(x, [1]), 0, reshape(ix, [-1])), ix.shape);
  const d = normalizeDim(dim, x.ndim, "gather");
  checkIndexShape("gather", x, d, ix);
  return gatherAs("gather", x, d, ix);
}

/**
 * A copy of `x` with the values of `src` added at the positions `index` names along `dim`
 * (PyTorch's `Tensor.scatter_add`, out of place): for a 3-D input and dim 1,
 * out[i][index[i][j][k]][k] += src[i][j][k]. Repeated indices accumulate. float32 or int32;
 * differentiable in `x` and `src`.
 */
export function scatterAdd<D extends DType>(
  x: Tensor<D>,
  dim: number,
  index: Indices,
  src: Tensor<D>,
): Tensor<D> {
  const ix = toIndex(index, "scatterAdd");
  expectDType("scatterAdd", [x, src], ["float32", "int32"]);
  if (x.dtype !== src.dtype) {
    throw new TypeError(`scatterAdd: x is ${x.dtype} but src is ${src.dtype}`);
  }
  const d = normalizeDim(dim, x.ndim, "scatterAdd");
  checkIndexShape("scatterAdd", x, d, ix, src);
  return applyOp(scatterAddOp, [x, ix, src], { dim: d });
}

/** The index as a 1-D tensor viewed along `dim` of `outShape` (stride 0 elsewhere). */
function broadcastIndex(ix: Tensor<"int32">, dim: number, outShape: number[]): Tensor<"int32"> {
  const lined = outShape.map((s, d) => (d === dim ? s : 1));
  return expand(reshape(ix, lined), outShape);
}

/**
 * The entries of `x` at `indices` along `dim`, in that order (PyTorch's `index_select`): the
 * result has `x`'s shape with `dim` resized to the number of indices. A gather by a broadcast
 * index, so each index costs one copy of a contiguous run; the gradient adds rows back.
 */
export function indexSelect<D extends DType>(
  x: Tensor<D>,
  dim: number,
  indices: Indices,
): Tensor<D> {
  return indexSelectAs("indexSelect", x, dim, indices);
}

function indexSelectAs<D extends DType>(
  op: string,
  x: Tensor<D>,
  dim: number,
  indices: Indices,
): Tensor<D> {
  const ix = toIndex(indices, op);
  if (ix.ndim > 1) {
    throw new RangeError(`${op}: indices must be 1-D, got shape ${formatShape(ix.shape)}`);
  }
  const d = normalizeDim(dim, x.ndim, op);
  const outShape = x.shape.map((s, i) => (i === d ? ix.size : s));
  return gatherAs(op, x, d, broadcastIndex(reshape(ix, [-1]), d, outShape));
}

/** Options of {@linkcode embedding}. */
export interface EmbeddingOptions {
  /** Row whose gradient stays zero (PyTorch's `padding_idx`; negative counts from the end). */
  paddingIdx?: number;
}

/**
 * Rows of `weight` [num, dim] picked by integer `indices` of any shape: the result has shape
 * [...indices.shape, dim] (PyTorch's `F.embedding`). The forward pass copies one row per index;
 * the gradient of `weight` adds each output row's gradient into its row (a scatter-add, so
 * repeated indices accumulate), never a dense one-hot product.
 */
export function embedding(
  indices: Indices,
  weight: Tensor,
  options: EmbeddingOptions = {},
): Tensor {
  expectDType("embedding (weight)", [weight], ["float32"]);
  if (weight.ndim !== 2) {
    throw new RangeError(
      `embedding: weight must be 2-D [num, dim], got ${formatShape(weight.shape)}`,
    );
  }
  const ix = toIndex(indices, "embedding");
  const [num, width] = weight.shape;
  const rows = indexSelectAs("embedding", weight, 0, reshape(ix, [-1]));
  const out = reshape(rows, [...ix.shape, width]);
  if (options.paddingIdx === undefined) return out;
  const p = options.paddingIdx < 0 ? options.paddingIdx + num : options.paddingIdx;
  if (!Number.isInteger(p) || p < 0 || p >= num) {
    throw new RangeError(
      `embedding: paddingIdx ${options.paddingIdx} is outside [-${num}, ${num})`,
    );
  }
  // The padding rows keep their values but pass no gradient.
  return where(unsqueeze(eq(ix, p), -1), out.detach(), out);
}

/**
 * The slice of `x` at position `i` of `dim`, with that dimension removed (PyTorch's `select`, a
 * view); negative `i` counts from the end.
 */
export function select<D extends DType>(x: Tensor<D>, dim: number, i: number): Tensor<D> {
  const d = normalizeDim(dim, x.ndim, "select");
  const size = x.shape[d];
  const at = i < 0 ? i + size : i;
  if (!Number.isInteger(i) || at < 0 || at >= size) {
    throw new RangeError(
      `select: index ${i} is out of range for dimension ${dim} of ${formatShape(x.shape)}`,
    );
  }
  return squeeze(narrow(x, d, at, 1), d);
}

/**
 * Integer indexing of the leading dimensions, PyTorch's `x[i]`, `x[i, j]`, …: `index(x, 1, -1)`
 * selects position 1 of dim 0 and the last position of dim 1, removing both (a view). Named
 * `index` because JavaScript has no operator to overload.
 */
export function index<D extends DType>(x: Tensor<D>, ...indices: number[]): Tensor<D> {
  if (indices.length > x.ndim) {
    throw new RangeError(
      `index: ${indices.length} indices for a tensor of shape ${formatShape(x.shape)}`,
    );
  }
  return indices.reduce((t, i) => select(t, 0, i), x);
}

/** `x` with the order of the entries along each of `dims` reversed (a copy, as in PyTorch). */
export function flip<D extends DType>(x: Tensor<D>, dims: number | readonly number[]): Tensor<D> {
  let out = x;
  for (const d of normalizeDims(dims, x.ndim, "flip")) {
    const n = x.shape[d];
    if (n > 1) out = indexSelect(out, d, Int32Array.from({ length: n }, (_, i) => n - 1 - i));
  }
  return out === x ? clone(x) : out;
}

/**
 * `x` rolled by `shifts` along `dims`: entries pushed past the end come back at the start
 * (PyTorch's `roll`). Without `dims` the flattened tensor rolls and keeps its shape.
 */
export function roll<D extends DType>(
  x: Tensor<D>,
  shifts: number | readonly number[],
  dims?: number | readonly number[],
): Tensor<D> {
  const s = typeof shifts === "number" ? [shifts] : [...shifts];
  if (dims === undefined) {
    if (s.length !== 1) throw new RangeError(`roll: ${s.length} shifts need as many dims`);
    return reshape(roll(flatten(x), s, 0), x.shape);
  }
  const ds = (typeof dims === "number" ? [dims] : [...dims]).map((d) =>
    normalizeDim(d, x.ndim, "roll")
  );
  if (ds.length !== s.length) {
    throw new RangeError(`roll: ${s.length} shifts for ${ds.length} dims`);
  }
  let out = x;
  ds.forEach((d, i) => {
    const n = x.shape[d];
    const k = n === 0 ? 0 : ((s[i] % n) + n) % n;
    if (k !== 0) out = cat([narrow(out, d, n - k, k), narrow(out, d, 0, n - k)], d);
  });
  return out === x ? clone(x) : out;
}

/**
 * Constant padding (PyTorch's `F.pad` in "constant" mode): `pads` lists (before, after) pairs
 * starting from the LAST dimension, `[left, right, top, bottom, …]`; negative amounts crop. The
 * padding holds `value` (default 0). Differentiable in `x`.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length % 2 !== 0 || pads.length > 2 * x.ndim || !pads.every(Number.isInteger)) {
    throw new RangeError(
      `pad: expected (before, after) integer pairs for at most ${x.ndim} dims, got [${
        pads.join(", ")
      }]`,
    );
  }
  let out: Tensor = x;
  const grown: { d: number; grow: number; start: number }[] = [];
  for (let p = 0; p < pads.length / 2; p++) {
    const d = x.ndim - 1 - p;
    const [before, after] = [pads[2 * p], pads[2 * p + 1]];
    const cropStart = Math.max(-before, 0);
    const kept = out.shape[d] - cropStart - Math.max(-after, 0);
    if (kept < 0) {
      throw new RangeError(
        `pad: [${pads.join(", ")}] crops dimension ${d} of ${formatShape(x.shape)} below size 0`,
      );
    }
    if (kept !== out.shape[d]) out = narrow(out, d, cropStart, kept);
    const grow = Math.max(before, 0) + Math.max(after, 0);
    if (grow > 0) grown.push({ d, grow, start: Math.max(before, 0) });
  }
  if (out === x && grown.length === 0) return clone(x);
  const padded = (t: Tensor) =>
    grown.reduce(
      (u, { d, grow, start }) =>
        sliceScatter(u, u.shape.map((s, i) => (i === d ? s + grow : s)), d, start),
      t,
    );
  if (value === 0 || grown.length === 0) return padded(out);
  // 1 inside, 0 in the padding.
  const inside = cast(padded(empty(out.shape).add(1)), "bool");
  return where(inside, padded(out), value);
}

/**
 * `x` repeated `sizes[i]` times along each dimension (PyTorch's `Tensor.repeat`): `sizes` has at
 * least `x.ndim` entries, extra leading ones add dimensions. One copy; the gradient sums the
 * copies.
 */
export function repeat<D extends DType>(x: Tensor<D>, sizes: readonly number[]): Tensor<D> {
  if (sizes.length < x.ndim || !sizes.every((s) => Number.isInteger(s) && s >= 0)) {
    throw new RangeError(
      `repeat: [${sizes.join(", ")}] needs a non-negative integer for each of the ${x.ndim} ` +
        `dims of ${formatShape(x.shape)} (or more)`,
    );
  }
  const shape = [...new Array<number>(sizes.length - x.ndim).fill(1), ...x.shape];
  const lined = shape.flatMap((s) => [1, s]);
  const spread = shape.flatMap((s, i) => [sizes[i], s]);
  const copy = clone(expand(reshape(x, lined), spread));
  return reshape(copy, shape.map((s, i) => s * sizes[i]));
}

/**
 * `x` tiled `dims[i]` times along each dimension (PyTorch's `torch.tile`): like
 * {@linkcode repeat}, but fewer entries than dimensions are padded with leading 1s.
 */
export function tile<D extends DType>(x: Tensor<D>, dims: readonly number[]): Tensor<D> {
  const sizes = [...new Array<number>(Math.max(x.ndim - dims.length, 0)).fill(1), ...dims];
  return repeat(x, sizes);
}
