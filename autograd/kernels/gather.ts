/**
 * Gather and scatter-add along one dimension, over strided operands. The loops run row by row
 * (the last dimension innermost); when the index is broadcast along the last dimension (stride 0,
 * as `indexSelect` and `embedding` make it) a whole row shares one index and is copied with
 * `TypedArray.set` (gather) or added as one run (scatter-add), so an embedding lookup is a row
 * copy per token and its gradient a row add per token.
 *
 * @module
 */

import type { AnyStorage } from "../dtype.ts";

/**
 * out[p] = x[p with coordinate `dim` replaced by index[p]] for every position p of `shape` (the
 * index's shape); `out` is contiguous from `oo`. Returns null, or the first index value outside
 * [0, dimSize) (then `out` is partly written).
 */
export type GatherKernel = <T extends AnyStorage>(
  shape: readonly number[],
  x: T,
  xo: number,
  xStrides: readonly number[],
  dim: number,
  dimSize: number,
  index: Int32Array,
  io: number,
  iStrides: readonly number[],
  out: T,
  oo: number,
) => number | null;

/**
 * out[p with coordinate `dim` replaced by index[p]] += src[p] for every position p of `shape` (the
 * index's shape), with `out` strided by `outStrides` from `oo`. Returns null, or the first index
 * value outside [0, dimSize) (then `out` is partly updated).
 */
export type ScatterAddKernel = <T extends Float32Array | Int32Array>(
  shape: readonly number[],
  src: T,
  so: number,
  srcStrides: readonly number[],
  dim: number,
  dimSize: number,
  index: Int32Array,
  io: number,
  iStrides: readonly number[],
  out: T,
  oo: number,
  outStrides: readonly number[],
) => number | null;

/**
 * Calls `row(offsets)` once per row of `shape` (every position of all dimensions but the last),
 * with each operand's offset of the row's first element; stops early when `row` returns false.
 */
function forEachRow(
  shape: readonly number[],
  bases: number[],
  strides: readonly (readonly number[])[],
  row: (offsets: number[]) => boolean,
): void {
  const nd = shape.length;
  if (shape.some((s) => s === 0)) return;
  const counter = new Array<number>(Math.max(nd - 1, 0)).fill(0);
  const offsets = [...bases];
  while (true) {
    if (!row(offsets)) return;
    let d = nd - 2;
    for (; d >= 0; d--) {
      counter[d]++;
      for (let k = 0; k < offsets.length; k++) offsets[k] += strides[k][d];
      if (counter[d] < shape[d]) break;
      for (let k = 0; k < offsets.length; k++) offsets[k] -= strides[k][d] * shape[d];
      counter[d] = 0;
    }
    if (d < 0) return;
  }
}

/** The reference gather kernel (see {@linkcode GatherKernel}). */
export const gather: GatherKernel = (
  shape,
  x,
  xo,
  xStrides,
  dim,
  dimSize,
  index,
  io,
  iStrides,
  out,
  oo,
) => {
  const nd = shape.length;
  const last = nd - 1;
  const length = shape[last];
  // x's strides with `dim` zeroed: the row walk must not move along it (the index does).
  const walk = xStrides.map((s, d) => (d === dim ? 0 : s));
  const outStrides = new Array<number>(nd);
  for (let d = last, step = 1; d >= 0; d--) {
    outStrides[d] = step;
    step *= shape[d];
  }
  const xDim = xStrides[dim];
  const xLast = walk[last];
  const iLast = iStrides[last];
  let bad: number | null = null;
  forEachRow(shape, [xo, io, oo], [walk, iStrides, outStrides], ([xr, ir, or]) => {
    if (iLast === 0 && dim !== last) {
      const v = index[ir];
      if (v < 0 || v >= dimSize) return (bad = v), false;
      const start = xr + v * xDim;
      if (xLast === 1) out.set(x.subarray(start, start + length) as never, or);
      else for (let j = 0; j < length; j++) out[or + j] = x[start + j * xLast];
      return true;
    }
    for (let j = 0; j < length; j++) {
      const v = index[ir + j * iLast];
      if (v < 0 || v >= dimSize) return (bad = v), false;
      out[or + j] = x[xr + v * xDim + j * xLast];
    }
    return true;
  });
  return bad;
};

/** The reference scatter-add kernel (see {@linkcode ScatterAddKernel}). */
export const scatterAdd: ScatterAddKernel = (
  shape,
  src,
  so,
  srcStrides,
  dim,
  dimSize,
  index,
  io,
  iStrides,
  out,
  oo,
  outStrides,
) => {
  const last = shape.length - 1;
  const length = shape[last];
  const walk = outStrides.map((s, d) => (d === dim ? 0 : s));
  const oDim = outStrides[dim];
  const oLast = walk[last];
  const sLast = srcStrides[last];
  const iLast = iStrides[last];
  let bad: number | null = null;
  forEachRow(shape, [oo, io, so], [walk, iStrides, srcStrides], ([or, ir, sr]) => {
    if (iLast === 0 && dim !== last) {
      const v = index[ir];
      if (v < 0 || v >= dimSize) return (bad = v), false;
      const start = or + v * oDim;
      for (let j = 0; j < length; j++) out[start + j * oLast] += src[sr + j * sLast];
      return true;
    }
    for (let j = 0; j < length; j++) {
      const v = index[ir + j * iLast];
      if (v < 0 || v >= dimSize) return (bad = v), false;
      out[or + v * oDim + j * oLast] += src[sr + j * sLast];
    }
    return true;
  });
  return bad;
};
