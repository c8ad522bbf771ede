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

// Normalisation, attention, pooling and general convolution (naive loops).

/** (x − mean)/√(var + ε) per group of elements, the group of each multi-index given by `groupOf`. */
function normalizeGroups(x: Ref, groupOf: (idx: number[]) => number, eps: number): Ref {
  const sums = new Map<number, [number, number, number]>();
  const keys = Array.from(x.data, (_, i) => groupOf(unravel(i, x.shape)));
  keys.forEach((key, i) => {
    const s = sums.get(key) ?? [0, 0, 0];
    s[0] += x.data[i];
    s[1] += x.data[i] * x.data[i];
    s[2]++;
    sums.set(key, s);
  });
  const data = x.data.map((v, i) => {
    const [s, q, n] = sums.get(keys[i])!;
    const m = s / n;
    return (v - m) / Math.sqrt(q / n - m * m + eps);
  });
  return { shape: [...x.shape], data };
}

/** Affine map y·w[c] + b[c] with c = channelOf(idx). */
function affine(y: Ref, w: Ref | null, b: Ref | null, channelOf: (idx: number[]) => number): Ref {
  return build(y.shape, (idx) => {
    const c = channelOf(idx);
    return at(y, idx) * (w ? w.data[c] : 1) + (b ? b.data[c] : 0);
  });
}

/** Layer norm over the last `k` dims; w and b (optional) have those dims' shape. */
export function layerNorm(x: Ref, k: number, w: Ref | null, b: Ref | null, eps = 1e-5): Ref {
  const lead = x.shape.slice(0, x.shape.length - k);
  const tail = x.shape.slice(x.shape.length - k);
  const flat = (idx: number[], shape: number[]) => idx.reduce((s, v, d) => s * shape[d] + v, 0);
  const y = normalizeGroups(x, (idx) => flat(idx.slice(0, x.shape.length - k), lead), eps);
  return affine(y, w, b, (idx) => flat(idx.slice(x.shape.length - k), tail));
}

/** Batch norm of [N, C, *] with the batch's statistics (training mode). */
export function batchNorm(x: Ref, w: Ref | null, b: Ref | null, eps = 1e-5): Ref {
  return affine(normalizeGroups(x, (idx) => idx[1], eps), w, b, (idx) => idx[1]);
}

/** Group norm of [N, C, *] with `groups` groups of channels. */
export function groupNorm(x: Ref, groups: number, w: Ref | null, b: Ref | null, eps = 1e-5): Ref {
  const per = x.shape[1] / groups;
  const y = normalizeGroups(x, (idx) => idx[0] * groups + Math.floor(idx[1] / per), eps);
  return affine(y, w, b, (idx) => idx[1]);
}

/**
 * softmax(q·kᵀ·scale + mask) for q [..., L, E], k [..., S, E] with equal leading dims: [..., L, S];
 * `mask(i, j)` gives the additive mask (−∞ to block).
 */
export function attentionWeights(
  q: Ref,
  k: Ref,
  scale: number,
  mask: (i: number, j: number) => number = () => 0,
): Ref {
  const [L, E] = q.shape.slice(-2);
  const S = k.shape[k.shape.length - 2];
  const lead = q.shape.slice(0, -2);
  return build([...lead, L, S], (idx) => {
    const pre = idx.slice(0, -2);
    const [i, jOut] = idx.slice(-2);
    const scores = Array.from({ length: S }, (_, j) => {
      let s = 0;
      for (let e = 0; e < E; e++) s += at(q, [...pre, i, e]) * at(k, [...pre, j, e]);
      return s * scale + mask(i, j);
    });
    const m = Math.max(...scores);
    const z = scores.reduce((a, x) => a + Math.exp(x - m), 0);
    return Math.exp(scores[jOut] - m) / z;
  });
}

/**
 * softmax(q·kᵀ·scale + mask)·v for q [..., L, E], k [..., S, E], v [..., S, Ev] with equal leading
 * dims; `mask(i, j)` gives the additive mask (−∞ to block).
 */
export function attention(
  q: Ref,
  k: Ref,
  v: Ref,
  scale: number,
  mask: (i: number, j: number) => number = () => 0,
): Ref {
  const weights = attentionWeights(q, k, scale, mask);
  const L = q.shape[q.shape.length - 2];
  const S = k.shape[k.shape.length - 2];
  const Ev = v.shape[v.shape.length - 1];
  const lead = q.shape.slice(0, -2);
  return build([...lead, L, Ev], (idx) => {
    const pre = idx.slice(0, -2);
    const [i, c] = idx.slice(-2);
    let out = 0;
    for (let j = 0; j < S; j++) out += at(weights, [...pre, i, j]) * at(v, [...pre, j, c]);
    return out;
  });
}

/** Average pooling NCHW with square window `k`, stride `s`, padding `p` (PyTorch's rules). */
export function avgPool2d(
  x: Ref,
  k: number,
  s: number,
  p: number,
  countIncludePad: boolean,
  ceilMode = false,
): Ref {
  const [n, c, h, w] = x.shape;
  const outSize = (size: number) => {
    let o = (ceilMode ? Math.ceil : Math.floor)((size + 2 * p - k) / s) + 1;
    if (ceilMode && (o - 1) * s >= size + p) o--;
    return o;
  };
  return build([n, c, outSize(h), outSize(w)], ([ni, ci, y, xx]) => {
    const y0 = y * s - p, x0 = xx * s - p;
    const y1 = Math.min(y0 + k, h + p), x1 = Math.min(x0 + k, w + p);
    let sum = 0, valid = 0;
    for (let i = y0; i < y1; i++) {
      for (let j = x0; j < x1; j++) {
        if (i >= 0 && i < h && j >= 0 && j < w) {
          sum += at(x, [ni, ci, i, j]);
          valid++;
        }
      }
    }
    return sum / (countIncludePad ? (y1 - y0) * (x1 - x0) : valid);
  });
}

/** Adaptive average pooling NCHW to [oh, ow] (bins ⌊i·H/oh⌋ .. ⌈(i+1)·H/oh⌉). */
export function adaptiveAvgPool2d(x: Ref, oh: number, ow: number): Ref {
  const [n, c, h, w] = x.shape;
  return build([n, c, oh, ow], ([ni, ci, y, xx]) => {
    const y0 = Math.floor((y * h) / oh), y1 = Math.ceil(((y + 1) * h) / oh);
    const x0 = Math.floor((xx * w) / ow), x1 = Math.ceil(((xx + 1) * w) / ow);
    let sum = 0;
    for (let i = y0; i < y1; i++) for (let j = x0; j < x1; j++) sum += at(x, [ni, ci, i, j]);
    return sum / ((y1 - y0) * (x1 - x0));
  });
}

/** Direct-loop 2-D convolution NCHW with stride, padding, dilation and groups (square). */
export function convGeneral(
  x: Ref,
  w: Ref,
  bias: Ref | null,
  stride: number,
  padding: number,
  dilation: number,
  groups: number,
): Ref {
  const [n, , h, wd] = x.shape;
  const [o, cg, kh, kw] = w.shape;
  const og = o / groups;
  const oh = Math.floor((h + 2 * padding - dilation * (kh - 1) - 1) / stride) + 1;
  const ow = Math.floor((wd + 2 * padding - dilation * (kw - 1) - 1) / stride) + 1;
  return build([n, o, oh, ow], ([ni, oi, y, xx]) => {
    let s = bias ? bias.data[oi] : 0;
    const g = Math.floor(oi / og);
    for (let ci = 0; ci < cg; ci++) {
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const yy = y * stride - padding + i * dilation;
          const xc = xx * stride - padding + j * dilation;
          if (yy >= 0 && yy < h && xc >= 0 && xc < wd) {
            s += at(x, [ni, g * cg + ci, yy, xc]) * at(w, [oi, ci, i, j]);
          }
        }
      }
    }
    return s;
  });
}

/** Direct-loop 1-D convolution [N, C, L] with stride, padding, dilation and groups. */
export function conv1d(
  x: Ref,
  w: Ref,
  bias: Ref | null,
  stride: number,
  padding: number,
  dilation: number,
  groups: number,
): Ref {
  const [n, , l] = x.shape;
  const [o, cg, k] = w.shape;
  const og = o / groups;
  const ol = Math.floor((l + 2 * padding - dilation * (k - 1) - 1) / stride) + 1;
  return build([n, o, ol], ([ni, oi, t]) => {
    let s = bias ? bias.data[oi] : 0;
    const g = Math.floor(oi / og);
    for (let ci = 0; ci < cg; ci++) {
      for (let j = 0; j < k; j++) {
        const p = t * stride - padding + j * dilation;
        if (p >= 0 && p < l) s += at(x, [ni, g * cg + ci, p]) * at(w, [oi, ci, j]);
      }
    }
    return s;
  });
}

/** erf in float64, naively: the Maclaurin series for |x| < 3, the continued fraction of erfc beyond. */
export function erf(x: number): number {
  const z = Math.abs(x);
  let v: number;
  if (z < 3) {
    let term = z;
    let sum = z;
    for (let n = 0; Math.abs(term) > 1e-17; n++) {
      term *= (-z * z * (2 * n + 1)) / ((n + 1) * (2 * n + 3));
      sum += term;
    }
    v = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = z;
    for (let n = 2000; n >= 1; n--) f = z + n / 2 / f;
    v = 1 - Math.exp(-z * z) / (Math.sqrt(Math.PI) * f);
  }
  return x < 0 ? -v : v;
}

/** PyTorch's `matmul` on any ranks: vectors promoted and squeezed back, batch dims broadcast. */
export function matmulNd(a: Ref, b: Ref): Ref {
  const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
  const bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
  const [m, k] = as.slice(-2);
  const n = bs[bs.length - 1];
  const nb = Math.max(as.length, bs.length) - 2;
  const pa = [...new Array(nb - (as.length - 2)).fill(1), ...as.slice(0, -2)];
  const pb = [...new Array(nb - (bs.length - 2)).fill(1), ...bs.slice(0, -2)];
  const batch = pa.map((d, i) => Math.max(d, pb[i]));
  const ra = { shape: [...pa, m, k], data: a.data };
  const rb = { shape: [...pb, k, n], data: b.data };
  const full = build([...batch, m, n], (idx) => {
    const bi = idx.slice(0, nb);
    const [i, j] = idx.slice(nb);
    let s = 0;
    for (let p = 0; p < k; p++) {
      s += at(ra, [...bi.map((v, d) => (pa[d] === 1 ? 0 : v)), i, p]) *
        at(rb, [...bi.map((v, d) => (pb[d] === 1 ? 0 : v)), p, j]);
    }
    return s;
  });
  const shape = [...batch];
  if (a.shape.length !== 1) shape.push(m);
  if (b.shape.length !== 1) shape.push(n);
  return { shape, data: full.data };
}

/** Running sums along `dim`. */
export function cumsum(a: Ref, dim: number): Ref {
  return build(a.shape, (idx) => {
    let s = 0;
    for (let t = 0; t <= idx[dim]; t++) s += at(a, idx.map((v, d) => (d === dim ? t : v)));
    return s;
  });
}

/** The k largest (or smallest) values along `dim`, sorted, or their indices (`indices` true). */
export function topk(a: Ref, k: number, dim: number, largest: boolean, indices = false): Ref {
  const shape = a.shape.map((s, d) => (d === dim ? k : s));
  return build(shape, (idx) => {
    const line = Array.from(
      { length: a.shape[dim] },
      (_, t) => [at(a, idx.map((v, d) => (d === dim ? t : v))), t],
    );
    line.sort((x, y) => (largest ? y[0] - x[0] : x[0] - y[0]) || x[1] - y[1]);
    return line[idx[dim]][indices ? 1 : 0];
  });
}

/** (Σ|x|^p)^(1/p) over a list. */
export function pnorm(v: number[], p: number): number {
  return v.reduce((s, x) => s + Math.abs(x) ** p, 0) ** (1 / p);
}
