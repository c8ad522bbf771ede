/**
 * The WGSL reduction kernels: sums, means, maxima and products over any set of dims of a strided
 * view, first-arg maxima and minima, running sums, softmax and log-softmax along an axis (forward
 * and backward), the fused softmax cross-entropy and the negative log-likelihood (the loss stays
 * a device scalar), layer normalisation (forward, and both backward passes), gather and a
 * deterministic scatter-add.
 *
 * Reductions run one workgroup of {@linkcode REDUCE_WG} threads per output where the reduced
 * extent is long (each thread folds a strided share, then a tree in workgroup memory), one thread
 * per output where it is short or where many outputs lie side by side in the input (so threads
 * read neighbouring words). Every order is fixed, so results repeat run to run; they differ
 * from the CPU's float64 accumulations by float32 rounding. Scatter-add has no float atomics to
 * lean on in WGSL: one thread per destination scans the index along the scattered dim and adds
 * the matching sources in index order, which is the CPU's order, so it is bitwise the CPU's.
 *
 * Indices cannot be checked on the host without a read: a gather index out of range reads NaN
 * (0 for int32 and bool), a scatter-add index out of range adds nowhere, and a loss label out of
 * range makes the loss NaN, so the divergence guard sees it.
 *
 * @module
 */

import type { DType } from "../../dtype.ts";
import { f32Bits, type GpuStorage, LINEAR_ID_WGSL, webgpu, WORKGROUP_1D } from "./runtime.ts";
import { MAX_DIMS, STRIDED_WGSL, STRIDED_WORDS, stridedParams } from "./tensor.ts";

/** Threads per workgroup of the kernels that give one workgroup to each output (or row). */
export const REDUCE_WG = 64;
/** Reduced extents up to this many run one thread per output (no workgroup tree). */
export const SERIAL_MAX = 16;
/**
 * At least this many outputs that lie next to each other in the input (a sum over the batch dims
 * of a gradient) also run one thread per output: neighbouring threads then read neighbouring
 * words, where a workgroup per output would read one column with every thread.
 */
export const COLUMN_MIN_OUTPUTS = 1024;
/** Most workgroups in one grid dimension. */
const MAX_GROUPS = 65535;

/** A 2-D grid of `n` workgroups (the x dimension is limited to 65535). */
function grid(n: number): [number, number] {
  if (n <= MAX_GROUPS) return [n, 1];
  const y = Math.ceil(n / MAX_GROUPS);
  return [Math.ceil(n / y), y];
}

/** WGSL: the workgroup's index in a {@linkcode grid}. */
const GROUP_ID_WGSL =
  `fn groupId(wid: vec3u, groups: vec3u) -> u32 { return wid.x + wid.y * groups.x; }`;

/** WGSL: NaN by its bits (comparisons with NaN are not reliable in every shader compiler). */
const NAN_WGSL = `fn isNan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn negInf() -> f32 { return bitcast<f32>(0xff800000u); }`;

/** What a reduction folds with: sum (and mean), max (NaN wins, as the CPU's) or product. */
export type ReduceKind = "sum" | "max" | "prod";

const COMBINE: Record<ReduceKind, { identity: string; combine: string }> = {
  sum: { identity: "0.0", combine: "return a + b;" },
  // The CPU keeps v unless v <= acc, so a NaN replaces the maximum and stays.
  max: {
    identity: "negInf()",
    combine: "if (isNan(a)) { return a; } return select(a, b, !(b <= a));",
  },
  prod: { identity: "1.0", combine: "return a * b;" },
};

/**
 * The strided view `x` with its kept dims first and its reduced dims last, neighbours merged
 * where they step as one (size-1 dims dropped), so that flat index m·R + r walks output m's
 * reduced elements r in row-major order.
 */
export function reducedView(
  shape: readonly number[],
  strides: readonly number[],
  dims: readonly number[],
): { shape: number[]; strides: number[]; outputs: number; extent: number; kept: number } {
  const kept = shape.map((_, d) => d).filter((d) => !dims.includes(d));
  const merged = (group: number[]) => {
    const s: number[] = [];
    const st: number[] = [];
    for (const d of group) {
      if (shape[d] === 1) continue;
      const last = s.length - 1;
      if (last >= 0 && st[last] === strides[d] * shape[d]) {
        s[last] *= shape[d];
        st[last] = strides[d];
      } else {
        s.push(shape[d]);
        st.push(strides[d]);
      }
    }
    return { s, st };
  };
  const a = merged(kept);
  const b = merged([...dims].sort((p, q) => p - q));
  const outputs = kept.reduce((n, d) => n * shape[d], 1);
  const extent = dims.reduce((n, d) => n * shape[d], 1);
  return {
    shape: [...a.s, ...b.s],
    strides: [...a.st, ...b.st],
    outputs,
    extent,
    kept: a.s.length,
  };
}

/** A strided operand: storage, element offset, shape and strides. */
export interface GpuView {
  /** The storage. */
  storage: GpuStorage;
  /** Element offset of the first element. */
  offset: number;
  /** Its shape. */
  shape: readonly number[];
  /** Its strides in elements. */
  strides: readonly number[];
}

/**
 * out[outOffset + m] = fold over the reduced `dims` of `x` (kind; times `scale` for a sum, so a
 * mean is a scaled sum), m in row-major order of the kept dims. NaN wins a max; an empty extent
 * gives the identity (0, −∞ or 1).
 */
export function gpuReduce(
  kind: ReduceKind,
  x: GpuView,
  dims: readonly number[],
  out: GpuStorage,
  outOffset: number,
  scale = 1,
): void {
  const gpu = webgpu();
  const view = reducedView(x.shape, x.strides, dims);
  if (view.shape.length > MAX_DIMS) {
    throw new RangeError(`webgpu ${kind}: ${view.shape.length} dimensions after merging`);
  }
  if (view.outputs === 0) return;
  const serial = view.extent <= SERIAL_MAX ||
    (view.outputs >= COLUMN_MIN_OUTPUTS && view.kept > 0 && view.strides[view.kept - 1] === 1);
  const { identity, combine } = COMBINE[kind];
  const finish = kind === "sum" ? "v * pf(2u)" : "v";
  const head = `${NAN_WGSL}
${STRIDED_WGSL}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
fn combine(a: f32, b: f32) -> f32 { ${combine} }
fn load(m: u32, r: u32) -> f32 { return x[stridedOffset(m * pu(1u) + r, 4u)]; }
fn finish(v: f32) -> f32 { return ${finish}; }`;
  const params = [
    view.outputs,
    view.extent,
    f32Bits(scale),
    outOffset,
    ...stridedParams(view.shape, view.strides, x.offset),
  ];
  const storages = [x.storage, out];
  if (serial) {
    const kernel = gpu.kernel(
      `reduce_${kind}_serial`,
      `${head}
${LINEAR_ID_WGSL}
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let m = linearId(gid, groups);
  if (m >= pu(0u)) { return; }
  var acc: f32 = ${identity};
  for (var r = 0u; r < pu(1u); r++) { acc = combine(acc, load(m, r)); }
  out[pu(3u) + m] = finish(acc);
}`,
      1,
      1,
    );
    gpu.dispatch1d(kernel, storages, params, view.outputs);
    return;
  }
  const kernel = gpu.kernel(
    `reduce_${kind}_tree${REDUCE_WG}`,
    `${head}
${GROUP_ID_WGSL}
var<workgroup> part: array<f32, ${REDUCE_WG}>;
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let m = groupId(wid, groups);
  if (m >= pu(0u)) { return; }
  var acc: f32 = ${identity};
  for (var r = t; r < pu(1u); r += ${REDUCE_WG}u) { acc = combine(acc, load(m, r)); }
  part[t] = acc;
  workgroupBarrier();
  for (var s = ${REDUCE_WG / 2}u; s > 0u; s >>= 1u) {
    if (t < s) { part[t] = combine(part[t], part[t + s]); }
    workgroupBarrier();
  }
  if (t == 0u) { out[pu(3u) + m] = finish(part[0]); }
}`,
    1,
    1,
  );
  gpu.dispatch(kernel, storages, params, grid(view.outputs));
}

/**
 * out[m] = the first index along `dim` of the largest (argmax) or smallest (argmin) element of
 * `x`, as int32, m in row-major order of the other dims. A NaN counts as the maximum (the first
 * NaN wins), and as the minimum too, as on the CPU (whose argmin is the argmax of −x).
 */
export function gpuArgReduce(
  kind: "argmax" | "argmin",
  x: GpuView,
  dim: number,
  out: GpuStorage,
): void {
  const gpu = webgpu();
  const view = reducedView(x.shape, x.strides, [dim]);
  if (view.outputs === 0) return;
  const kernel = gpu.kernel(
    `${kind}_tree${REDUCE_WG}`,
    `${NAN_WGSL}
${STRIDED_WGSL}
${GROUP_ID_WGSL}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;
var<workgroup> bestV: array<f32, ${REDUCE_WG}>;
var<workgroup> bestI: array<u32, ${REDUCE_WG}>;
const NONE: u32 = 0xffffffffu;
// Whether (vb, ib) beats (va, ia): a NaN beats any number, then the larger value, then the
// lower index (a thread that saw only −∞ holds index NONE, so a real index wins a tie).
fn beats(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  let na = isNan(va);
  let nb = isNan(vb);
  if (na || nb) { return nb && (!na || ib < ia); }
  if (vb != va) { return vb > va; }
  return ib < ia;
}
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let m = groupId(wid, groups);
  if (m >= pu(0u)) { return; }
  var v: f32 = negInf();
  var i: u32 = NONE;
  for (var r = t; r < pu(1u); r += ${REDUCE_WG}u) {
    let raw = x[stridedOffset(m * pu(1u) + r, 4u)];
    let w = ${kind === "argmin" ? "-raw" : "raw"};
    if (w > v || (isNan(w) && !isNan(v))) { v = w; i = r; }
  }
  bestV[t] = v;
  bestI[t] = i;
  workgroupBarrier();
  for (var s = ${REDUCE_WG / 2}u; s > 0u; s >>= 1u) {
    if (t < s && beats(bestV[t], bestI[t], bestV[t + s], bestI[t + s])) {
      bestV[t] = bestV[t + s];
      bestI[t] = bestI[t + s];
    }
    workgroupBarrier();
  }
  if (t == 0u) { out[m] = select(i32(bestI[0]), 0, bestI[0] == NONE); }
}`,
    1,
    1,
  );
  gpu.dispatch(
    kernel,
    [x.storage, out],
    [view.outputs, view.extent, 0, 0, ...stridedParams(view.shape, view.strides, x.offset)],
    grid(view.outputs),
  );
}

/**
 * Running sums along the middle axis of contiguous [outer, n, inner] data from `xOffset`, into
 * contiguous `out`; `reverse` sums from the end. One thread per line, in order (as the CPU).
 */
export function gpuCumsum(
  x: GpuStorage,
  xOffset: number,
  outer: number,
  n: number,
  inner: number,
  reverse: boolean,
  out: GpuStorage,
): void {
  const gpu = webgpu();
  const kernel = gpu.kernel(
    "cumsum",
    `${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let line = linearId(gid, groups);
  let n = pu(1u);
  let inner = pu(2u);
  if (line >= pu(0u)) { return; }
  let base = (line / inner) * n * inner + line % inner;
  var total: f32 = 0.0;
  for (var k = 0u; k < n; k++) {
    let at = base + select(k, n - 1u - k, pu(4u) != 0u) * inner;
    total += x[pu(3u) + at];
    out[at] = total;
  }
}`,
    1,
    1,
  );
  const lines = outer * inner;
  gpu.dispatch1d(kernel, [x, out], [lines, n, inner, xOffset, reverse ? 1 : 0], lines);
}

/** WGSL shared by the line kernels: a workgroup per line of [outer, n, inner], tree helpers. */
const LINE_WGSL = `${NAN_WGSL}
${GROUP_ID_WGSL}
var<workgroup> part: array<f32, ${REDUCE_WG}>;
// The tree sum / max of every thread's value; all threads get the result.
fn treeSum(t: u32, v: f32) -> f32 {
  part[t] = v;
  workgroupBarrier();
  for (var s = ${REDUCE_WG / 2}u; s > 0u; s >>= 1u) {
    if (t < s) { part[t] = part[t] + part[t + s]; }
    workgroupBarrier();
  }
  let total = part[0];
  workgroupBarrier();
  return total;
}
fn treeMax(t: u32, v: f32) -> f32 {
  part[t] = v;
  workgroupBarrier();
  for (var s = ${REDUCE_WG / 2}u; s > 0u; s >>= 1u) {
    if (t < s && part[t + s] > part[t]) { part[t] = part[t + s]; }
    workgroupBarrier();
  }
  let best = part[0];
  workgroupBarrier();
  return best;
}`;

/**
 * Softmax (or log-softmax) along the middle axis of contiguous [outer, n, inner] data from
 * `xOffset` into contiguous `out`, the maximum subtracted first (as `kernels.softmaxAxis`).
 */
export function gpuSoftmax(
  x: GpuStorage,
  xOffset: number,
  outer: number,
  n: number,
  inner: number,
  log: boolean,
  out: GpuStorage,
): void {
  const gpu = webgpu();
  const write = log
    ? `let logTotal = log(total) + peak;
  for (var k = t; k < n; k += ${REDUCE_WG}u) { out[base + k * inner] = x[xo + base + k * inner] - logTotal; }`
    : `let inv = 1.0 / total;
  for (var k = t; k < n; k += ${REDUCE_WG}u) { out[base + k * inner] = exp(x[xo + base + k * inner] - peak) * inv; }`;
  const kernel = gpu.kernel(
    log ? "logSoftmax" : "softmax",
    `${LINE_WGSL}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let line = groupId(wid, groups);
  if (line >= pu(0u)) { return; }
  let n = pu(1u);
  let inner = pu(2u);
  let xo = pu(3u);
  let base = (line / inner) * n * inner + line % inner;
  var m: f32 = negInf();
  for (var k = t; k < n; k += ${REDUCE_WG}u) {
    let v = x[xo + base + k * inner];
    if (v > m) { m = v; }
  }
  let peak = treeMax(t, m);
  var s: f32 = 0.0;
  for (var k = t; k < n; k += ${REDUCE_WG}u) { s += exp(x[xo + base + k * inner] - peak); }
  let total = treeSum(t, s);
  ${write}
}`,
    1,
    1,
  );
  const lines = outer * inner;
  gpu.dispatch(kernel, [x, out], [lines, n, inner, xOffset], grid(lines));
}

/**
 * The gradient of softmax (gx = y·(gy − Σ gy·y)) or log-softmax (gx = gy − exp(y)·Σ gy) from the
 * output y, over contiguous [outer, n, inner] data (as `kernels.softmaxAxisBackward`).
 */
export function gpuSoftmaxBackward(
  gy: GpuStorage,
  gyOffset: number,
  y: GpuStorage,
  yOffset: number,
  outer: number,
  n: number,
  inner: number,
  log: boolean,
  gx: GpuStorage,
): void {
  const gpu = webgpu();
  const kernel = gpu.kernel(
    log ? "logSoftmaxBackward" : "softmaxBackward",
    `${LINE_WGSL}
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> gx: array<f32>;
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let line = groupId(wid, groups);
  if (line >= pu(0u)) { return; }
  let n = pu(1u);
  let inner = pu(2u);
  let go = pu(3u);
  let yo = pu(4u);
  let base = (line / inner) * n * inner + line % inner;
  var s: f32 = 0.0;
  for (var k = t; k < n; k += ${REDUCE_WG}u) {
    let j = base + k * inner;
    s += ${log ? "gy[go + j]" : "gy[go + j] * y[yo + j]"};
  }
  let dot = treeSum(t, s);
  for (var k = t; k < n; k += ${REDUCE_WG}u) {
    let j = base + k * inner;
    gx[j] = ${log ? "gy[go + j] - exp(y[yo + j]) * dot" : "y[yo + j] * (gy[go + j] - dot)"};
  }
}`,
    2,
    1,
  );
  const lines = outer * inner;
  gpu.dispatch(kernel, [gy, y, gx], [lines, n, inner, gyOffset, yOffset], grid(lines));
}

/** Integer labels on the device: one per row, at `offset` of `storage` (int32). */
export interface GpuLabels {
  /** The int32 storage. */
  storage: GpuStorage;
  /** Element offset of row 0's label. */
  offset: number;
  /** Step between rows' labels. */
  stride: number;
  /** Rows with this label are ignored (as are negative labels). */
  ignoreIndex: number;
}

/**
 * Sums the per-row [loss, counted] pairs of `rowLoss` in one workgroup (a fixed tree), writing
 * loss[0] = total·scale and scale[0] = 1/max(counted, 1) for "mean", 1 for "sum".
 */
function sumRowLosses(
  rowLoss: GpuStorage,
  rows: number,
  mean: boolean,
  loss: GpuStorage,
  scale: GpuStorage,
) {
  const gpu = webgpu();
  const kernel = gpu.kernel(
    `lossTotal${WORKGROUP_1D}`,
    `@group(0) @binding(1) var<storage, read> rowLoss: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> scale: array<f32>;
var<workgroup> total: array<f32, ${WORKGROUP_1D}>;
var<workgroup> count: array<f32, ${WORKGROUP_1D}>;
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(local_invocation_index) t: u32) {
  var s: f32 = 0.0;
  var c: f32 = 0.0;
  for (var r = t; r < pu(0u); r += ${WORKGROUP_1D}u) {
    s += rowLoss[2u * r];
    c += rowLoss[2u * r + 1u];
  }
  total[t] = s;
  count[t] = c;
  workgroupBarrier();
  for (var h = ${WORKGROUP_1D / 2}u; h > 0u; h >>= 1u) {
    if (t < h) {
      total[t] = total[t] + total[t + h];
      count[t] = count[t] + count[t + h];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    let k = select(1.0, 1.0 / max(count[0], 1.0), pu(1u) != 0u);
    loss[0] = total[0] * k;
    scale[0] = k;
  }
}`,
    1,
    2,
  );
  gpu.dispatch(kernel, [rowLoss, loss, scale], [rows, mean ? 1 : 0], [1]);
}

/** WGSL: the label of row r and whether the row counts (params: label offset, stride, ignore). */
const LABEL_WGSL = (base: number) => `
fn labelOf(r: u32) -> i32 { return labels[pu(${base}u) + r * pu(${base + 1}u)]; }
fn counts(label: i32) -> bool { return label >= 0 && label != pi(${base + 2}u); }`;

function labelParams(labels: GpuLabels): number[] {
  return [labels.offset, labels.stride, labels.ignoreIndex >>> 0];
}

/**
 * Softmax cross-entropy of contiguous logits [rows, classes] (from `xOffset`) against device
 * labels, label smoothing ε: writes the probabilities to `probs`, the loss (sum, or mean over
 * the counted rows) to loss[0] and the scale the gradient needs to scale[0]. A label out of
 * range gives a NaN loss. As `kernels.crossEntropyForward` with the loss scaled.
 */
export function gpuCrossEntropy(
  x: GpuStorage,
  xOffset: number,
  labels: GpuLabels,
  rows: number,
  classes: number,
  smoothing: number,
  mean: boolean,
  probs: GpuStorage,
  loss: GpuStorage,
  scale: GpuStorage,
): void {
  const gpu = webgpu();
  const rowLoss = gpu.alloc("float32", 2 * Math.max(rows, 1));
  const kernel = gpu.kernel(
    "crossEntropyRows",
    `${LINE_WGSL}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;
@group(0) @binding(4) var<storage, read_write> rowLoss: array<f32>;
${LABEL_WGSL(4)}
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let r = groupId(wid, groups);
  if (r >= pu(0u)) { return; }
  let classes = pu(1u);
  let base = pu(2u) + r * classes;
  let eps = pf(3u);
  var m: f32 = negInf();
  var sum: f32 = 0.0;
  for (var c = t; c < classes; c += ${REDUCE_WG}u) {
    let v = x[base + c];
    if (v > m) { m = v; }
    sum += v;
  }
  let peak = treeMax(t, m);
  let logits = treeSum(t, sum);
  var s: f32 = 0.0;
  for (var c = t; c < classes; c += ${REDUCE_WG}u) { s += exp(x[base + c] - peak); }
  let sumExp = treeSum(t, s);
  let inv = 1.0 / sumExp;
  for (var c = t; c < classes; c += ${REDUCE_WG}u) {
    probs[r * classes + c] = exp(x[base + c] - peak) * inv;
  }
  if (t == 0u) {
    let label = labelOf(r);
    var l: f32 = 0.0;
    var counted: f32 = 0.0;
    if (counts(label)) {
      counted = 1.0;
      if (u32(label) >= classes) {
        l = bitcast<f32>(0x7fc00000u);
      } else {
        // −Σ q·log p with log p = logit − logZ.
        let logZ = log(sumExp) + peak;
        let meanLogit = logits / f32(classes);
        l = (1.0 - eps) * (logZ - x[base + u32(label)]) + eps * (logZ - meanLogit);
      }
    }
    rowLoss[2u * r] = l;
    rowLoss[2u * r + 1u] = counted;
  }
}`,
    2,
    2,
  );
  gpu.dispatch(
    kernel,
    [x, labels.storage, probs, rowLoss],
    [rows, classes, xOffset, f32Bits(smoothing), ...labelParams(labels)],
    grid(rows),
  );
  sumRowLosses(rowLoss, rows, mean, loss, scale);
}

/**
 * The gradient of {@linkcode gpuCrossEntropy}: gx = g·scale·(p − q), zero on ignored rows (as
 * `kernels.crossEntropyBackward`), with g the output gradient at `g[gOffset]`.
 */
export function gpuCrossEntropyBackward(
  probs: GpuStorage,
  labels: GpuLabels,
  rows: number,
  classes: number,
  smoothing: number,
  g: GpuStorage,
  gOffset: number,
  scale: GpuStorage,
  gx: GpuStorage,
): void {
  const gpu = webgpu();
  const kernel = gpu.kernel(
    "crossEntropyBackward",
    `${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read> scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> gx: array<f32>;
${LABEL_WGSL(4)}
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = linearId(gid, groups);
  if (i >= pu(0u)) { return; }
  let classes = pu(1u);
  let r = i / classes;
  let c = i % classes;
  let label = labelOf(r);
  if (!counts(label)) { gx[i] = 0.0; return; }
  let eps = pf(3u);
  let s = g[pu(2u)] * scale[0];
  var v = s * (probs[i] - eps / f32(classes));
  if (u32(label) == c) { v -= s * (1.0 - eps); }
  gx[i] = v;
}`,
    4,
    1,
  );
  const n = rows * classes;
  gpu.dispatch1d(
    kernel,
    [probs, labels.storage, g, scale, gx],
    [n, classes, gOffset, f32Bits(smoothing), ...labelParams(labels)],
    n,
  );
}

/**
 * Negative log-likelihood of the strided log-probabilities [rows, classes] at the labels: loss[0]
 * = −Σ logp[r, label] (sum, or mean over the counted rows), scale[0] as in
 * {@linkcode gpuCrossEntropy}. A label out of range gives NaN.
 */
export function gpuNllLoss(
  logp: GpuView,
  labels: GpuLabels,
  mean: boolean,
  loss: GpuStorage,
  scale: GpuStorage,
): void {
  const gpu = webgpu();
  const [rows, classes] = logp.shape;
  const rowLoss = gpu.alloc("float32", 2 * Math.max(rows, 1));
  const kernel = gpu.kernel(
    "nllLossRows",
    `${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read> logp: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> rowLoss: array<f32>;
${LABEL_WGSL(5)}
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let r = linearId(gid, groups);
  if (r >= pu(0u)) { return; }
  let label = labelOf(r);
  var l: f32 = 0.0;
  var counted: f32 = 0.0;
  if (counts(label)) {
    counted = 1.0;
    if (u32(label) >= pu(1u)) {
      l = bitcast<f32>(0x7fc00000u);
    } else {
      l = -logp[u32(pi(2u) + i32(r) * pi(3u) + label * pi(4u))];
    }
  }
  rowLoss[2u * r] = l;
  rowLoss[2u * r + 1u] = counted;
}`,
    2,
    1,
  );
  gpu.dispatch1d(
    kernel,
    [logp.storage, labels.storage, rowLoss],
    [
      rows,
      classes,
      logp.offset,
      logp.strides[0] >>> 0,
      logp.strides[1] >>> 0,
      ...labelParams(labels),
    ],
    rows,
  );
  sumRowLosses(rowLoss, rows, mean, loss, scale);
}

/**
 * The loss targets q [rows, classes] scaled by scale[0]: (1 − ε)·onehot + ε/C on counted rows, 0
 * on ignored ones (the CPU's `targets`), so a loss gradient can be written in ops.
 */
export function gpuLossTargets(
  labels: GpuLabels,
  rows: number,
  classes: number,
  smoothing: number,
  scale: GpuStorage,
  q: GpuStorage,
): void {
  const gpu = webgpu();
  const kernel = gpu.kernel(
    "lossTargets",
    `${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> q: array<f32>;
${LABEL_WGSL(3)}
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = linearId(gid, groups);
  if (i >= pu(0u)) { return; }
  let classes = pu(1u);
  let label = labelOf(i / classes);
  if (!counts(label)) { q[i] = 0.0; return; }
  let k = scale[0];
  let eps = pf(2u);
  var v = k * eps / f32(classes);
  if (u32(label) == i % classes) { v += k * (1.0 - eps); }
  q[i] = v;
}`,
    2,
    1,
  );
  const n = rows * classes;
  gpu.dispatch1d(
    kernel,
    [labels.storage, scale, q],
    [n, classes, f32Bits(smoothing), ...labelParams(labels)],
    n,
  );
}

/** The dense operands of a layerNorm: x rows and the optional affine vectors. */
export interface LayerNormOperands {
  /** x: contiguous [rows, n] from `xOffset`. */
  x: GpuStorage;
  /** Element offset of x. */
  xOffset: number;
  /** Weight [n] (contiguous) and its offset, or null. */
  weight: { storage: GpuStorage; offset: number } | null;
  /** Bias [n] (contiguous) and its offset, or null. */
  bias: { storage: GpuStorage; offset: number } | null;
  /** Rows. */
  rows: number;
  /** Elements per row. */
  n: number;
}

/**
 * Layer normalisation of each row: y = (x − mean)·rstd·w + b with rstd = 1/√(var + ε) (biased
 * variance, two passes as the CPU), writing each row's mean and rstd for the backward pass.
 */
export function gpuLayerNorm(
  a: LayerNormOperands,
  eps: number,
  y: GpuStorage,
  mean: GpuStorage,
  rstd: GpuStorage,
): void {
  const gpu = webgpu();
  const kernel = gpu.kernel(
    "layerNorm",
    `${LINE_WGSL}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> meanOf: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstdOf: array<f32>;
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let r = groupId(wid, groups);
  if (r >= pu(0u)) { return; }
  let n = pu(1u);
  let base = pu(2u) + r * n;
  var s: f32 = 0.0;
  for (var i = t; i < n; i += ${REDUCE_WG}u) { s += x[base + i]; }
  let m = treeSum(t, s) / f32(n);
  var q: f32 = 0.0;
  for (var i = t; i < n; i += ${REDUCE_WG}u) {
    let d = x[base + i] - m;
    q += d * d;
  }
  let rs = 1.0 / sqrt(treeSum(t, q) / f32(n) + pf(3u));
  for (var i = t; i < n; i += ${REDUCE_WG}u) {
    var v = (x[base + i] - m) * rs;
    if (pu(4u) != 0u) { v *= w[pu(6u) + i]; }
    if (pu(5u) != 0u) { v += b[pu(7u) + i]; }
    y[r * n + i] = v;
  }
  if (t == 0u) {
    meanOf[r] = m;
    rstdOf[r] = rs;
  }
}`,
    3,
    3,
  );
  gpu.dispatch(
    kernel,
    [a.x, a.weight?.storage ?? a.x, a.bias?.storage ?? a.x, y, mean, rstd],
    [
      a.rows,
      a.n,
      a.xOffset,
      f32Bits(eps),
      a.weight === null ? 0 : 1,
      a.bias === null ? 0 : 1,
      a.weight?.offset ?? 0,
      a.bias?.offset ?? 0,
    ],
    grid(a.rows),
  );
}

/**
 * The input gradient of {@linkcode gpuLayerNorm}: dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with
 * ĝ = g·w, one workgroup per row; `g` is contiguous [rows, n] from `gOffset`.
 */
export function gpuLayerNormBackwardInput(
  a: LayerNormOperands,
  g: GpuStorage,
  gOffset: number,
  mean: GpuStorage,
  rstd: GpuStorage,
  gx: GpuStorage,
): void {
  const gpu = webgpu();
  const kernel = gpu.kernel(
    "layerNormBackwardInput",
    `${LINE_WGSL}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> meanOf: array<f32>;
@group(0) @binding(5) var<storage, read> rstdOf: array<f32>;
@group(0) @binding(6) var<storage, read_write> gx: array<f32>;
fn gh(gi: f32, i: u32) -> f32 { return select(gi, gi * w[pu(5u) + i], pu(4u) != 0u); }
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let r = groupId(wid, groups);
  if (r >= pu(0u)) { return; }
  let n = pu(1u);
  let xb = pu(2u) + r * n;
  let gb = pu(3u) + r * n;
  let m = meanOf[r];
  let rs = rstdOf[r];
  var sg: f32 = 0.0;
  var sgx: f32 = 0.0;
  for (var i = t; i < n; i += ${REDUCE_WG}u) {
    let h = gh(g[gb + i], i);
    sg += h;
    sgx += h * ((x[xb + i] - m) * rs);
  }
  let meanG = treeSum(t, sg) / f32(n);
  let meanGX = treeSum(t, sgx) / f32(n);
  for (var i = t; i < n; i += ${REDUCE_WG}u) {
    let xhat = (x[xb + i] - m) * rs;
    gx[r * n + i] = rs * (gh(g[gb + i], i) - meanG - xhat * meanGX);
  }
}`,
    5,
    1,
  );
  gpu.dispatch(
    kernel,
    [a.x, g, a.weight?.storage ?? a.x, mean, rstd, gx],
    [a.rows, a.n, a.xOffset, gOffset, a.weight === null ? 0 : 1, a.weight?.offset ?? 0],
    grid(a.rows),
  );
}

/**
 * The affine gradients of {@linkcode gpuLayerNorm}: gw[i] = Σ_r g·x̂ and gb[i] = Σ_r g, one
 * workgroup per column (a fixed tree over the rows); either output may be null.
 */
export function gpuLayerNormBackwardAffine(
  a: LayerNormOperands,
  g: GpuStorage,
  gOffset: number,
  mean: GpuStorage,
  rstd: GpuStorage,
  gw: GpuStorage | null,
  gb: GpuStorage | null,
): void {
  if (gw === null && gb === null) return;
  const gpu = webgpu();
  const outputs = [gw, gb].filter((s) => s !== null) as GpuStorage[];
  const binding = (name: string, at: number) =>
    `@group(0) @binding(${at}) var<storage, read_write> ${name}: array<f32>;`;
  const decls = [
    gw === null ? "" : binding("gw", 5),
    gb === null ? "" : binding("gb", gw === null ? 5 : 6),
  ].join("\n");
  const kernel = gpu.kernel(
    `layerNormBackwardAffine${gw === null ? "" : "_w"}${gb === null ? "" : "_b"}`,
    `${LINE_WGSL}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> meanOf: array<f32>;
@group(0) @binding(4) var<storage, read> rstdOf: array<f32>;
${decls}
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
        @builtin(local_invocation_index) t: u32) {
  let i = groupId(wid, groups);
  let n = pu(1u);
  if (i >= n) { return; }
  var sw: f32 = 0.0;
  var sb: f32 = 0.0;
  for (var r = t; r < pu(0u); r += ${REDUCE_WG}u) {
    let gi = g[pu(3u) + r * n + i];
    sw += gi * ((x[pu(2u) + r * n + i] - meanOf[r]) * rstdOf[r]);
    sb += gi;
  }
  let tw = treeSum(t, sw);
  let tb = treeSum(t, sb);
  if (t == 0u) {
    ${gw === null ? "_ = tw;" : "gw[i] = tw;"}
    ${gb === null ? "_ = tb;" : "gb[i] = tb;"}
  }
}`,
    4,
    outputs.length,
  );
  gpu.dispatch(
    kernel,
    [a.x, g, mean, rstd, ...outputs],
    [a.rows, a.n, a.xOffset, gOffset],
    grid(a.n),
  );
}

/** The WGSL element type of a dtype on the device (bool is a u32 word). */
function wgslType(dtype: DType): string {
  return dtype === "float32" ? "f32" : dtype === "int32" ? "i32" : "u32";
}

/**
 * out[p] = x[p with coordinate `dim` replaced by index[p]] for every p of the index's shape (out is
 * contiguous); an index outside [0, dimSize) gives NaN (0 for int32 and bool).
 */
export function gpuGather(x: GpuView, dim: number, index: GpuView, out: GpuStorage, dtype: DType) {
  const gpu = webgpu();
  const n = index.shape.reduce((a, s) => a * s, 1);
  if (n === 0) return;
  const kernel = gpu.kernel(
    "gather",
    `${STRIDED_WGSL}
${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let p = linearId(gid, groups);
  if (p >= pu(0u)) { return; }
  let v = index[stridedOffset(p, 4u)];
  if (v < 0 || u32(v) >= pu(1u)) { out[p] = pu(3u); return; }
  out[p] = x[u32(i32(stridedOffset(p, ${4 + STRIDED_WORDS}u)) + v * pi(2u))];
}`,
    2,
    1,
  );
  // x walked over the index's shape with `dim` held still: the index moves along it.
  const walk = x.strides.map((s, d) => (d === dim ? 0 : s));
  gpu.dispatch1d(
    kernel,
    [x.storage, index.storage, out],
    [
      n,
      x.shape[dim],
      x.strides[dim] >>> 0,
      dtype === "float32" ? 0x7fc00000 : 0,
      ...stridedParams(index.shape, index.strides, index.offset),
      ...stridedParams(index.shape, walk, x.offset),
    ],
    n,
  );
}

/**
 * out[q] += Σ src[p] over the positions p of the index whose coordinate `dim` replaced by
 * index[p] is q, for the contiguous `out` of shape `outShape` (already holding x). One thread per
 * destination adds its sources in index order, so the sums are the CPU's, bitwise; an index out
 * of range adds nowhere.
 */
export function gpuScatterAdd(
  out: GpuStorage,
  outShape: readonly number[],
  dim: number,
  index: GpuView,
  src: GpuView,
  dtype: "float32" | "int32",
): void {
  const gpu = webgpu();
  const n = outShape.reduce((a, s) => a * s, 1);
  if (n === 0 || index.shape.some((s) => s === 0)) return;
  const T = wgslType(dtype);
  const IDX = 5 + MAX_DIMS;
  const SRC = IDX + STRIDED_WORDS;
  const kernel = gpu.kernel(
    `scatterAdd_${T}`,
    `${STRIDED_WGSL}
${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read> index: array<i32>;
@group(0) @binding(2) var<storage, read> src: array<${T}>;
@group(0) @binding(3) var<storage, read_write> out: array<${T}>;
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let q = linearId(gid, groups);
  if (q >= pu(0u)) { return; }
  let dim = pu(2u);
  // q's coordinates: along dim the destination j, elsewhere inside the index's extent or no source.
  var rest = q;
  var j = 0u;
  for (var d = i32(pu(${IDX}u)) - 1; d >= 0; d--) {
    let size = pu(${IDX + 2}u + u32(d));
    let c = rest % size;
    rest = rest / size;
    if (u32(d) == dim) { j = c; } else if (c >= pu(5u + u32(d))) { return; }
  }
  let ib = i32(stridedOffset(q, ${IDX}u));
  let sb = i32(stridedOffset(q, ${SRC}u));
  var acc = out[q];
  for (var k = 0u; k < pu(1u); k++) {
    if (index[u32(ib + i32(k) * pi(3u))] == i32(j)) { acc += src[u32(sb + i32(k) * pi(4u))]; }
  }
  out[q] = acc;
}`,
    2,
    1,
  );
  // Both walked over out's shape with `dim` held still; k steps along it.
  const still = (strides: readonly number[]) => strides.map((s, d) => (d === dim ? 0 : s));
  const indexShape = new Array<number>(MAX_DIMS).fill(0);
  index.shape.forEach((s, d) => (indexShape[d] = s));
  gpu.dispatch1d(
    kernel,
    [index.storage, src.storage, out],
    [
      n,
      index.shape[dim],
      dim,
      index.strides[dim] >>> 0,
      src.strides[dim] >>> 0,
      ...indexShape,
      ...stridedParams(outShape, still(index.strides), index.offset),
      ...stridedParams(outShape, still(src.strides), src.offset),
    ],
    n,
  );
}
