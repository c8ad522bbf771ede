/**
 * Reductions and scans beyond sum / mean / max: `min`, `topk`, `var`, `std`, `logsumexp`, `norm`
 * (composites), and the primitives `cumsum` and `prod`, with PyTorch's semantics.
 *
 * `cumsum` is a primitive whose gradient is the reversed scan of the output gradient (the same op
 * with `reverse` set), so it stays exact and twice differentiable. `prod`'s gradient is the product
 * of the other elements, computed without dividing by zero: with one zero in a slice only that
 * element gets a gradient (the product of the rest), with two or more none does, as in PyTorch.
 *
 * @module
 */

import { normalizeDim, normalizeDims, sizeOf } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { add, div, mul, sub } from "./arith.ts";
import { cast, eq, expectFloat, ne, where } from "./compare.ts";
import { gather } from "./index.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { max, mean, sum } from "./reduce.ts";
import { abs, exp, log, neg, pow, sqrt } from "./unary.ts";
import { dense, empty } from "./util.ts";
import { permute, reshape, transpose } from "./view.ts";

/** The shape after reducing `dims` (kept as size 1 with `keepDim`). */
function reducedShape(shape: readonly number[], dims: readonly number[], keepDim: boolean) {
  const out: number[] = [];
  shape.forEach((size, i) => {
    if (!dims.includes(i)) out.push(size);
    else if (keepDim) out.push(1);
  });
  return out;
}

/** Minimum of `x` over `dims` (all when omitted); ties share the gradient equally, as for max. */
export function min(x: Tensor, dims?: number | readonly number[], keepDim = false): Tensor {
  expectFloat("min", x);
  return neg(max(neg(x), dims, keepDim));
}

/** Options of {@linkcode variance} and {@linkcode std}. */
export interface VarOptions {
  /** Divide by N − correction (default 1: the unbiased estimate, as PyTorch; 0: the population). */
  correction?: number;
  /** Keep the reduced dims as size 1 (default false). */
  keepDim?: boolean;
}

/**
 * Variance over `dims` (all when omitted): Σ(x − mean)² / (N − correction), PyTorch's `var`
 * (exported as `var`, a reserved word in TypeScript, so also as `variance`). N − correction ≤ 0
 * gives Infinity or NaN, as in PyTorch.
 */
export function variance(
  x: Tensor,
  dims?: number | readonly number[],
  options: VarOptions = {},
): Tensor {
  expectFloat("var", x);
  const list = normalizeDims(dims, x.ndim, "var");
  const n = sizeOf(list.map((d) => x.shape[d]));
  const centered = sub(x, mean(x, list, true));
  const squares = sum(mul(centered, centered), list, options.keepDim ?? false);
  return div(squares, Math.max(0, n - (options.correction ?? 1)));
}

export { variance as var };

/** Standard deviation over `dims`: √var (same options). */
export function std(
  x: Tensor,
  dims?: number | readonly number[],
  options: VarOptions = {},
): Tensor {
  return sqrt(variance(x, dims, options));
}

/**
 * log Σ exp(x) over `dims` (all when omitted), computed stably: the maximum is subtracted first
 * (treated as a constant, which leaves the gradient, softmax(x), exact). Slices of −∞ give −∞.
 */
export function logsumexp(x: Tensor, dims?: number | readonly number[], keepDim = false): Tensor {
  expectFloat("logsumexp", x);
  const list = normalizeDims(dims, x.ndim, "logsumexp");
  const peak = max(x, list, true).detach();
  const shift = where(eq(abs(peak), Infinity), 0, peak);
  const out = add(log(sum(exp(sub(x, shift)), list, true)), shift);
  return keepDim ? out : reshape(out, reducedShape(x.shape, list, false));
}

/**
 * The p-norm over `dims` (all when omitted): (Σ|x|^p)^(1/p) for p > 0; p = Infinity is max |x|,
 * −Infinity min |x|, 0 the count of non-zeros (no gradient). The default p = 2 is PyTorch's
 * `norm`/`linalg.vector_norm`; at an all-zero slice the gradient is 0, as in PyTorch.
 */
export function norm(
  x: Tensor,
  p = 2,
  dims?: number | readonly number[],
  keepDim = false,
): Tensor {
  expectFloat("norm", x);
  if (p === Infinity) return max(abs(x), dims, keepDim);
  if (p === -Infinity) return min(abs(x), dims, keepDim);
  if (p === 0) return sum(cast(ne(x, 0), "float32"), dims, keepDim).detach();
  if (!(p > 0)) throw new RangeError(`norm: p must be > 0, 0 or ±Infinity, got ${p}`);
  if (p === 1) return sum(abs(x), dims, keepDim);
  const total = sum(p === 2 ? mul(x, x) : pow(abs(x), p), dims, keepDim);
  // (·)^(1/p) has an infinite slope at 0: take the root of 1 there and select 0, so no 0·∞.
  const zero = eq(total, 0);
  const root = p === 2 ? sqrt(where(zero, 1, total)) : pow(where(zero, 1, total), 1 / p);
  return where(zero, 0, root);
}

/** Attributes of {@linkcode cumsumOp}. */
export interface ScanAttrs {
  /** The dimension scanned. */
  dim: number;
  /** Sum from the end of the dim backwards (the gradient of a forward scan). */
  reverse: boolean;
}

/** Running sums along a dim: the gradient is the reversed running sum of the output gradient. */
export const cumsumOp: OpDef<[Tensor], ScanAttrs, null> = defineOp<[Tensor], ScanAttrs, null>({
  name: "cumsum",
  forward([x], { dim, reverse }) {
    expectFloat("cumsum", x);
    const source = dense(x);
    const out = empty(x.shape);
    const n = x.shape[dim];
    const inner = sizeOf(x.shape.slice(dim + 1));
    const outer = sizeOf(x.shape.slice(0, dim));
    const src = source.data;
    const dst = out.data;
    const first = reverse ? n - 1 : 0;
    const step = reverse ? -1 : 1;
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const base = o * n * inner + j;
        let total = 0;
        for (let i = 0, at = first; i < n; i++, at += step) {
          total += src[source.offset + base + at * inner];
          dst[base + at * inner] = total;
        }
      }
    }
    return { out, saved: null };
  },
  backward(g, _saved, _inputs, { dim, reverse }) {
    return [applyOp(cumsumOp, [g], { dim, reverse: !reverse })];
  },
});

/** Running sums of `x` along `dim` (PyTorch's `cumsum`), accumulated in float64. */
export function cumsum(x: Tensor, dim: number): Tensor {
  return applyOp(cumsumOp, [x], { dim: normalizeDim(dim, x.ndim, "cumsum"), reverse: false });
}

/** Attributes of {@linkcode prodOp}. */
export interface ProdAttrs {
  /** The dimensions multiplied over. */
  dims: number[];
  /** Keep them as size 1. */
  keepDim: boolean;
}

/** Product over dims; the gradient is the product of the other elements of each slice. */
export const prodOp: OpDef<[Tensor], ProdAttrs, null> = defineOp<[Tensor], ProdAttrs, null>({
  name: "prod",
  forward([x], { dims, keepDim }) {
    expectFloat("prod", x);
    const kept = x.shape.map((_, i) => i).filter((i) => !dims.includes(i));
    const rows = dense(permute(x, [...kept, ...dims]));
    const n = sizeOf(dims.map((d) => x.shape[d]));
    const out = empty(reducedShape(x.shape, dims, keepDim));
    const src = rows.data;
    for (let r = 0; r < out.size; r++) {
      let p = 1;
      const base = rows.offset + r * n;
      for (let i = 0; i < n; i++) p *= src[base + i];
      out.data[r] = p;
    }
    return { out, saved: null };
  },
  backward(g, _saved, [x], { dims }) {
    const gk = reshape(g, reducedShape(x.shape, dims, true));
    const zero = eq(x, 0);
    const safe = where(zero, 1, x);
    const rest = applyOp(prodOp, [safe], { dims, keepDim: true });
    const zeros = sum(cast(zero, "float32"), dims, true);
    // x ≠ 0: the others' product is P/x when the slice has no zero, else 0;
    // x = 0: it is the product of the non-zeros when x is the slice's only zero, else 0.
    const others = where(
      zero,
      where(eq(zeros, 1), rest, 0),
      where(eq(zeros, 0), div(rest, safe), 0),
    );
    return [mul(gk, others)];
  },
});

/** Product of `x` over `dims` (all when omitted); correct gradients with zeros present. */
export function prod(x: Tensor, dims?: number | readonly number[], keepDim = false): Tensor {
  return applyOp(prodOp, [x], { dims: normalizeDims(dims, x.ndim, "prod"), keepDim });
}

/** What {@linkcode topk} returns. */
export interface TopK {
  /** The k largest (or smallest) values along the dim, sorted (differentiable). */
  values: Tensor;
  /** Their positions along the dim (int32). */
  indices: Tensor<"int32">;
}

/**
 * The `k` largest (`largest`, default) or smallest elements along `dim` (default −1), sorted, and
 * their indices (PyTorch's `topk`; NaN counts as the largest; ties keep the lower index first).
 * The values are gathered from `x` at the indices, so the gradient goes to the chosen elements
 * only.
 */
export function topk(x: Tensor, k: number, dim = -1, largest = true): TopK {
  expectFloat("topk", x);
  const d = normalizeDim(dim, Math.max(x.ndim, 1), "topk");
  const moved = x.ndim === 0 ? reshape(x, [1]) : transpose(x, d, -1);
  const n = moved.shape[moved.ndim - 1];
  if (!Number.isInteger(k) || k < 0 || k > n) {
    throw new RangeError(`topk: k = ${k} is out of range for dim ${dim} of size ${n}`);
  }
  const rows = dense(moved.detach());
  const lead = moved.shape.slice(0, -1);
  const count = sizeOf(lead);
  const idx = new Int32Array(count * k);
  const order = new Array<number>(n);
  const key = (v: number) => (v !== v ? Infinity : v);
  for (let r = 0; r < count; r++) {
    const base = rows.offset + r * n;
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => {
      const va = key(rows.data[base + a]);
      const vb = key(rows.data[base + b]);
      const nanA = rows.data[base + a] !== rows.data[base + a];
      const nanB = rows.data[base + b] !== rows.data[base + b];
      if (nanA !== nanB) return largest ? (nanA ? -1 : 1) : (nanA ? 1 : -1);
      return va === vb ? a - b : largest ? vb - va : va - vb;
    });
    for (let j = 0; j < k; j++) idx[r * k + j] = order[j];
  }
  const movedIndices = new Tensor<"int32">(idx, [...lead, k]);
  const picked = gather(moved, -1, movedIndices);
  if (x.ndim === 0) return { values: reshape(picked, []), indices: reshape(movedIndices, []) };
  return { values: transpose(picked, d, -1), indices: transpose(movedIndices, d, -1) };
}
