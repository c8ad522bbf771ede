/**
 * A deliberately naive float64 reference for the ops: n-d arrays as (shape, Float64Array) and
 * every op written as the textbook loop, indexing element by element. Tests compare tapegrad's
 * float32 results with these.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Rng, type Tensor, tensor } from "../../mod.ts";

/** A float64 n-d array in row-major order. */
export interface Ref {
  shape: number[];
  data: Float64Array;
}

/** Row-major strides of a shape. */
function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = step;
    step *= shape[i];
  }
  return s;
}

/** Product of a shape. */
export function count(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The multi-index of flat position `flat` in `shape`. */
export function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return idx;
}

/** Element at a multi-index. */
export function at(a: Ref, idx: readonly number[]): number {
  const s = stridesOf(a.shape);
  let p = 0;
  for (let d = 0; d < idx.length; d++) p += idx[d] * s[d];
  return a.data[p];
}

/** Builds an array of `shape` from a function of the multi-index. */
export function build(shape: readonly number[], fn: (idx: number[]) => number): Ref {
  const n = count(shape);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = fn(unravel(i, shape));
  return { shape: [...shape], data };
}

/** Reads a tensor's values (through its strides) into a reference array. */
export function fromTensor(t: Tensor): Ref {
  return { shape: [...t.shape], data: Float64Array.from(t.toFloat32Array()) };
}

/** A tensor holding a reference array's values (rounded to float32). */
export function toTensor(a: Ref, requiresGrad = false): Tensor {
  return tensor(Float32Array.from(a.data), { shape: a.shape, requiresGrad });
}

/** A seeded source of uniform values in [-1, 1), for filling kernel operands. */
export function uniformSource(seed: number): () => number {
  const rng = new Rng(seed);
  return () => 2 * rng.uniform() - 1;
}

/** Random normal array from a seeded generator. */
export function randomRef(shape: readonly number[], rng: Rng, scale = 1): Ref {
  const data = new Float64Array(count(shape));
  // Round through float32 so the reference sees exactly the values the tensor holds.
  for (let i = 0; i < data.length; i++) data[i] = Math.fround(rng.normal() * scale);
  return { shape: [...shape], data };
}

/** Elementwise map. */
export function map(a: Ref, f: (x: number) => number): Ref {
  return { shape: [...a.shape], data: a.data.map(f) };
}

/** NumPy broadcasting of two arrays with `f` applied per element pair. */
export function broadcast(a: Ref, b: Ref, f: (x: number, y: number) => number): Ref {
  const nd = Math.max(a.shape.length, b.shape.length);
  const pa = [...new Array(nd - a.shape.length).fill(1), ...a.shape];
  const pb = [...new Array(nd - b.shape.length).fill(1), ...b.shape];
  const shape = pa.map((d, i) => Math.max(d, pb[i]));
  const ra = { shape: pa, data: a.data };
  const rb = { shape: pb, data: b.data };
  return build(
    shape,
    (idx) =>
      f(
        at(ra, idx.map((v, d) => (pa[d] === 1 ? 0 : v))),
        at(rb, idx.map((v, d) => (pb[d] === 1 ? 0 : v))),
      ),
  );
}

/** Reduction over `dims` with `f` over the list of reduced values. */
export function reduce(
  a: Ref,
  dims: readonly number[],
  keepDim: boolean,
  f: (values: number[]) => number,
): Ref {
  const keptShape = a.shape.map((d, i) => (dims.includes(i) ? 1 : d));
  const groups = new Map<number, number[]>();
  const keptStrides = stridesOf(keptShape);
  for (let i = 0; i < a.data.length; i++) {
    const idx = unravel(i, a.shape);
    let key = 0;
    idx.forEach((v, d) => (key += (dims.includes(d) ? 0 : v) * keptStrides[d]));
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(a.data[i]);
  }
  const kept = build(keptShape, (idx) => {
    let key = 0;
    idx.forEach((v, d) => (key += v * keptStrides[d]));
    return f(groups.get(key) ?? []);
  });
  return keepDim ? kept : { shape: a.shape.filter((_, i) => !dims.includes(i)), data: kept.data };
}

/** The transpose of a 2-D array. */
export function transpose2d(a: Ref): Ref {
  return build([a.shape[1], a.shape[0]], ([i, j]) => at(a, [j, i]));
}

/** Matrix product of [m,k]·[k,n], or batched [B,m,k]·[B,k,n] (a 2-D side shared). */
export function matmul(a: Ref, b: Ref): Ref {
  const batched = a.shape.length === 3 || b.shape.length === 3;
  const batch = batched
    ? Math.max(a.shape.length === 3 ? a.shape[0] : 1, b.shape.length === 3 ? b.shape[0] : 1)
    : 1;
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.shape.length - 1];
  const shape = batched ? [batch, m, n] : [m, n];
  return build(shape, (idx) => {
    const [bi, i, j] = batched ? idx : [0, idx[0], idx[1]];
    let s = 0;
    for (let p = 0; p < k; p++) {
      const av = a.shape.length === 3 ? at(a, [bi, i, p]) : at(a, [i, p]);
      const bv = b.shape.length === 3 ? at(b, [bi, p, j]) : at(b, [p, j]);
      s += av * bv;
    }
    return s;
  });
}

/** Softmax (or log-softmax) along `dim`. */
export function softmax(a: Ref, dim: number, log: boolean): Ref {
  const d = dim < 0 ? dim + a.shape.length : dim;
  return build(a.shape, (idx) => {
    const values: number[] = [];
    for (let k = 0; k < a.shape[d]; k++) values.push(at(a, idx.map((v, i) => (i === d ? k : v))));
    const max = Math.max(...values);
    const z = values.reduce((s, v) => s + Math.exp(v - max), 0);
    const x = at(a, idx);
    return log ? x - max - Math.log(z) : Math.exp(x - max) / z;
  });
}

/** Mean (or sum) cross-entropy of logits [N, C] with optional label smoothing. */
export function crossEntropy(
  logits: Ref,
  labels: Int32Array,
  smoothing = 0,
  reduction: "mean" | "sum" = "mean",
): number {
  const logp = softmax(logits, 1, true);
  const [rows, classes] = logits.shape;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < classes; c++) {
      const q = (c === labels[r] ? 1 - smoothing : 0) + smoothing / classes;
      total -= q * at(logp, [r, c]);
    }
  }
  return reduction === "mean" ? total / rows : total;
}

/** Direct-loop 2-D convolution (cross-correlation) NCHW with zero padding. */
export function conv2d(x: Ref, w: Ref, bias: Ref | null, stride: number, padding: number): Ref {
  const [n, c, h, wd] = x.shape;
  const [o, , kh, kw] = w.shape;
  const oh = Math.floor((h + 2 * padding - kh) / stride) + 1;
  const ow = Math.floor((wd + 2 * padding - kw) / stride) + 1;
  return build([n, o, oh, ow], ([ni, oi, y, xx]) => {
    let s = bias ? bias.data[oi] : 0;
    for (let ci = 0; ci < c; ci++) {
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const yy = y * stride - padding + i;
          const xc = xx * stride - padding + j;
          if (yy >= 0 && yy < h && xc >= 0 && xc < wd) {
            s += at(x, [ni, ci, yy, xc]) * at(w, [oi, ci, i, j]);
          }
        }
      }
    }
    return s;
  });
}

/** Direct-loop max pooling NCHW (padding acts as −∞). */
export function maxPool2d(x: Ref, k: number, stride: number, padding: number): Ref {
  const [n, c, h, w] = x.shape;
  const oh = Math.floor((h + 2 * padding - k) / stride) + 1;
  const ow = Math.floor((w + 2 * padding - k) / stride) + 1;
  return build([n, c, oh, ow], ([ni, ci, y, xx]) => {
    let m = -Infinity;
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        const yy = y * stride - padding + i;
        const xc = xx * stride - padding + j;
        if (yy >= 0 && yy < h && xc >= 0 && xc < w) m = Math.max(m, at(x, [ni, ci, yy, xc]));
      }
    }
    return m;
  });
}

/**
 * Asserts that a tensor equals a reference array in shape and, element by element, within
 * atol + rtol·|expected|.
 */
export function assertClose(
  actual: Tensor,
  expected: Ref,
  atol = 1e-5,
  rtol = 1e-5,
  what = "value",
): void {
  assert.deepEqual([...actual.shape], expected.shape, `${what}: shape`);
  const values = actual.toFloat32Array();
  for (let i = 0; i < values.length; i++) {
    const e = expected.data[i];
    const ok = Number.isNaN(e)
      ? Number.isNaN(values[i])
      : Math.abs(values[i] - e) <= atol + rtol * Math.abs(e);
    if (!ok) {
      assert.fail(
        `${what}: element ${i} (index [${unravel(i, expected.shape).join(", ")}]) is ${
          values[i]
        }, expected ${e}`,
      );
    }
  }
}
