/**
 * The tiled WGSL matrix product every WebGPU product op runs on: C[z] = op(A)·op(B) (+ beta·C)
 * with an optional fused epilogue (a bias per column or per row, then ReLU), for any M, N, K.
 *
 * One kernel source serves every product: {@linkcode gemmWgsl} writes the tiled loop around three
 * hooks the caller supplies — `loadA(z, i, p)`, `loadB(z, p, j)` (called only in bounds) and
 * `store(z, i, j, v)` — so the plain strided GEMM here and the implicit-GEMM convolutions in
 * `conv.ts` share the tiling and differ only in how an element is addressed.
 *
 * Tiling: a workgroup of 16×16 threads computes a 64×64 tile of C, each thread a 4×4 block of it
 * (rows `ty + 16·r`, columns `tx + 16·c`, so neighbouring threads read neighbouring shared-memory
 * words and write neighbouring C elements). K advances 16 at a time through two shared tiles
 * (A as [16][64], B as [16][64], rows padded to 65 words against bank conflicts: 8.3 KiB of the
 * 16 KiB a workgroup may use). Every element load and store is bounds-checked, so edges of any
 * size are handled by zeros, never by padding the operands.
 *
 * The grid is x: column tiles, y: row tiles, z: the batch (or the K slice, for split-K); grids
 * wider than WebGPU's 65535 are split into several dispatches with tile bases as parameters.
 *
 * @module
 */

import { f32Bits, type GpuKernel, type GpuStorage, type WebGpu, webgpu } from "./runtime.ts";

/** Rows of C per workgroup. */
export const TILE_M = 64;
/** Columns of C per workgroup. */
export const TILE_N = 64;
/** K per step through shared memory. */
export const TILE_K = 16;
/** Threads per workgroup along each axis (16×16 = 256, each computing 4×4 of C). */
const THREADS = 16;
/** Outputs per thread along each axis. */
const PER_THREAD = TILE_M / THREADS;
/** Shared-memory row length: one word of padding against bank conflicts. */
const LDS = TILE_M + 1;
/** Most workgroups in one grid dimension. */
const MAX_GROUPS = 65535;

/** The parameter word where a kernel's own (hook) parameters start; words 0…7 are the loop's. */
export const GEMM_HOOK_BASE = 8;

/** WGSL for hook parameter `i` as u32 (`pu`), i32 (`pi`) or f32 (`pf`). */
export function hookParam(i: number, kind: "u" | "i" | "f" = "u"): string {
  return `p${kind}(${GEMM_HOOK_BASE + i}u)`;
}

/** What a kernel built by {@linkcode gemmWgsl} plugs into the tiled loop. */
export interface GemmHooks {
  /**
   * Binding declarations (read-only inputs from binding 1, then the read-write outputs) and any
   * helper functions, including `fn loadA(z: u32, i: u32, p: u32) -> f32` (element (i, p) of
   * op(A) in batch z), `fn loadB(z: u32, p: u32, j: u32) -> f32` and
   * `fn store(z: u32, i: u32, j: u32, v: f32)` (the accumulated C element).
   */
  source: string;
  /**
   * Which index of A varies fastest in memory ("k": row-major A; "m": a transposed view), so that
   * neighbouring threads load neighbouring words.
   */
  aFast: "k" | "m";
  /** Which index of B varies fastest in memory ("n": row-major B; "k": a transposed view). */
  bFast: "k" | "n";
}

/**
 * The WGSL of a tiled product over `hooks`. Parameters 0…6: M, N, K, the K slice length (0: all
 * of K; else workgroup z computes K range [z·slice, (z+1)·slice), for split-K), the row-tile,
 * column-tile and z bases of this dispatch (for grids split across dispatches).
 */
export function gemmWgsl(hooks: GemmHooks): string {
  const P = PER_THREAD;
  const lines: string[] = [];
  const loads = (TILE_M * TILE_K) / (THREADS * THREADS);
  // Tile loads: thread t loads elements t, t + 256, …; which index it maps to follows `fast`.
  for (let r = 0; r < loads; r++) {
    const e = `(t + ${r * THREADS * THREADS}u)`;
    const [ii, ka] = hooks.aFast === "k"
      ? [`${e} / ${TILE_K}u`, `${e} % ${TILE_K}u`]
      : [`${e} % ${TILE_M}u`, `${e} / ${TILE_M}u`];
    lines.push(`    {
      let ii = ${ii}; let kk = ${ka};
      let gi = row0 + ii; let gk = k0 + kk;
      var v = 0.0;
      if (gi < M && gk < kEnd) { v = loadA(z, gi, gk); }
      As[kk * ${LDS}u + ii] = v;
    }`);
    const [jj, kb] = hooks.bFast === "n"
      ? [`${e} % ${TILE_N}u`, `${e} / ${TILE_N}u`]
      : [`${e} / ${TILE_K}u`, `${e} % ${TILE_K}u`];
    lines.push(`    {
      let jj = ${jj}; let kk = ${kb};
      let gj = col0 + jj; let gk = k0 + kk;
      var v = 0.0;
      if (gj < N && gk < kEnd) { v = loadB(z, gk, gj); }
      Bs[kk * ${LDS}u + jj] = v;
    }`);
  }
  const accs: string[] = [];
  const steps: string[] = [];
  const stores: string[] = [];
  for (let r = 0; r < P; r++) {
    steps.push(`      let a${r} = As[kk * ${LDS}u + ty + ${r * THREADS}u];`);
    steps.push(`      let b${r} = Bs[kk * ${LDS}u + tx + ${r * THREADS}u];`);
  }
  for (let r = 0; r < P; r++) {
    for (let c = 0; c < P; c++) {
      accs.push(`  var c${r}${c} = 0.0;`);
      steps.push(`      c${r}${c} = fma(a${r}, b${c}, c${r}${c});`);
      stores.push(`  if (row0 + ty + ${r * THREADS}u < M && col0 + tx + ${c * THREADS}u < N) {
    store(z, row0 + ty + ${r * THREADS}u, col0 + tx + ${c * THREADS}u, c${r}${c});
  }`);
    }
  }
  return `${hooks.source}
var<workgroup> As: array<f32, ${TILE_K * LDS}>;
var<workgroup> Bs: array<f32, ${TILE_K * LDS}>;

@compute @workgroup_size(${THREADS}, ${THREADS})
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(local_invocation_index) t: u32,
) {
  let M = pu(0u);
  let N = pu(1u);
  let K = pu(2u);
  let slice = pu(3u);
  let row0 = (wid.y + pu(4u)) * ${TILE_M}u;
  let col0 = (wid.x + pu(5u)) * ${TILE_N}u;
  let z = wid.z + pu(6u);
  let tx = lid.x;
  let ty = lid.y;
  var kBegin = 0u;
  var kEnd = K;
  if (slice != 0u) {
    kBegin = min(K, z * slice);
    kEnd = min(K, kBegin + slice);
  }
${accs.join("\n")}
  for (var k0 = kBegin; k0 < kEnd; k0 += ${TILE_K}u) {
${lines.join("\n")}
    workgroupBarrier();
    for (var kk = 0u; kk < ${TILE_K}u; kk++) {
${steps.join("\n")}
    }
    workgroupBarrier();
  }
${stores.join("\n")}
}
`;
}

/**
 * Records a kernel built by {@linkcode gemmWgsl} over an [m × n] C, `z` batches (or K slices of
 * `slice` when `slice` > 0), `hookParams` following the loop's words. Splits grids wider than
 * WebGPU allows into several dispatches.
 */
export function dispatchGemm(
  gpu: WebGpu,
  kernel: GpuKernel,
  storages: readonly GpuStorage[],
  m: number,
  n: number,
  k: number,
  hookParams: readonly number[],
  z = 1,
  slice = 0,
): void {
  if (m === 0 || n === 0 || z === 0) return;
  const rowTiles = Math.ceil(m / TILE_M);
  const colTiles = Math.ceil(n / TILE_N);
  for (let zb = 0; zb < z; zb += MAX_GROUPS) {
    for (let rb = 0; rb < rowTiles; rb += MAX_GROUPS) {
      for (let cb = 0; cb < colTiles; cb += MAX_GROUPS) {
        gpu.dispatch(kernel, storages, [m, n, k, slice, rb, cb, zb, 0, ...hookParams], [
          Math.min(colTiles - cb, MAX_GROUPS),
          Math.min(rowTiles - rb, MAX_GROUPS),
          Math.min(z - zb, MAX_GROUPS),
        ]);
      }
    }
  }
}

/**
 * The K slice length for split-K, or 0 to run K in one piece: a product with few output tiles and
 * a long K (a weight gradient summed over a batch) is cut into slices computed by separate
 * workgroups and summed afterwards ({@linkcode gpuSumSlices}), so it keeps a big GPU busy.
 * `force` gives the number of slices (tests).
 */
export function splitK(m: number, n: number, k: number, force?: number): number {
  const tiles = Math.ceil(m / TILE_M) * Math.ceil(n / TILE_N);
  let slices = force ??
    (tiles >= 128 || k < 1024 ? 1 : Math.min(Math.ceil(k / 512), Math.ceil(256 / tiles)));
  if (slices <= 1) return 0;
  const slice = Math.ceil(Math.ceil(k / slices) / TILE_K) * TILE_K;
  slices = Math.ceil(k / slice);
  return slices <= 1 ? 0 : slice;
}

/**
 * One strided matrix operand: element (i, j) of matrix z is at
 * offset + z·batchStride + i·rowStride + j·colStride.
 */
export interface GpuMatrix {
  /** The storage holding it. */
  storage: GpuStorage;
  /** Element offset of (0, 0) of the first matrix. */
  offset: number;
  /** Step between rows. */
  rowStride: number;
  /** Step between columns. */
  colStride: number;
  /** Step between the matrices of a batch (0 broadcasts one matrix; default 0). */
  batchStride?: number;
}

/** Options of {@linkcode gpuGemmStrided}. */
export interface GpuGemmOptions {
  /** Matrices in the batch (default 1): grid z. */
  batch?: number;
  /** C = product + beta·C; beta 0 (the default) never reads C, so NaN there is ignored. */
  beta?: number;
  /** A bias added to every row (`per: "column"`: bias[j]) or every column (`"row"`: bias[i]). */
  bias?: { storage: GpuStorage; offset: number; stride: number; per: "column" | "row" };
  /** max(·, 0) after the bias (a NaN becomes 0, as the CPU kernels do). */
  relu?: boolean;
  /**
   * Multiply A by a 0/1 mask read as `mask[i, p] > 0` (the ReLU mask of a fused output, applied
   * to its gradient as it is loaded): same indexing as a {@linkcode GpuMatrix}.
   */
  maskA?: GpuMatrix;
  /**
   * Split-K: workgroup z computes the K range [z·kSlice, (z+1)·kSlice) instead of batch z (the
   * batch strides of A and B should then be 0, C's the step between the partial products).
   */
  kSlice?: number;
}

/** The strided GEMM kernel of one variant (compiled once per variant). */
function stridedKernel(
  gpu: WebGpu,
  aFast: "k" | "m",
  bFast: "k" | "n",
  bias: "none" | "column" | "row",
  relu: boolean,
  mask: boolean,
): GpuKernel {
  // Hook parameters: 0 aOff, 1 ars, 2 acs, 3 sA, 4 bOff, 5 brs, 6 bcs, 7 sB, 8 cOff, 9 crs,
  // 10 ccs, 11 sC, 12 beta, 13 biasOff, 14 biasStride, 15 mOff, 16 mrs, 17 mcs, 18 sM.
  const h = (i: number) => hookParam(i);
  // Strides are u32 words: wrapping arithmetic gives the right index for any stride sign.
  const bindings = [
    "@group(0) @binding(1) var<storage, read> a: array<f32>;",
    "@group(0) @binding(2) var<storage, read> b: array<f32>;",
  ];
  let next = 3;
  if (bias !== "none") {
    bindings.push(`@group(0) @binding(${next++}) var<storage, read> bias: array<f32>;`);
  }
  if (mask) bindings.push(`@group(0) @binding(${next++}) var<storage, read> mask: array<f32>;`);
  bindings.push(`@group(0) @binding(${next}) var<storage, read_write> c: array<f32>;`);
  const loadA = mask
    ? `let v = a[${h(0)} + z * ${h(3)} + i * ${h(1)} + p * ${h(2)}];
  return select(0.0, v, mask[${h(15)} + z * ${h(18)} + i * ${h(16)} + p * ${h(17)}] > 0.0);`
    : `return a[${h(0)} + z * ${h(3)} + i * ${h(1)} + p * ${h(2)}];`;
  const epilogue = [
    bias === "column" ? `v += bias[${h(13)} + j * ${h(14)}];` : "",
    bias === "row" ? `v += bias[${h(13)} + i * ${h(14)}];` : "",
    relu ? "v = select(0.0, v, v > 0.0);" : "",
  ].filter((s) => s).join("\n  ");
  const source = `${bindings.join("\n")}
fn loadA(z: u32, i: u32, p: u32) -> f32 {
  ${loadA}
}
fn loadB(z: u32, p: u32, j: u32) -> f32 {
  return b[${h(4)} + z * ${h(7)} + p * ${h(5)} + j * ${h(6)}];
}
fn store(z: u32, i: u32, j: u32, acc: f32) {
  let at = ${h(8)} + z * ${h(11)} + i * ${h(9)} + j * ${h(10)};
  var v = acc;
  let beta = ${hookParam(12, "f")};
  if (beta != 0.0) { v += beta * c[at]; }
  ${epilogue}
  c[at] = v;
}`;
  const name = `gemm_${aFast}${bFast}_${bias}${relu ? "_relu" : ""}${mask ? "_maskA" : ""}`;
  return gpu.kernel(name, gemmWgsl({ source, aFast, bFast }), next - 1, 1);
}

/**
 * C = op(A)·op(B) (+ beta·C) (+ bias) (then ReLU) over strided operands, recorded on the device:
 * A is [m × k], B [k × n], C [m × n], each addressed by its own strides, so transposed, expanded
 * or stepped views need no copy. C must not share a buffer with an input.
 */
export function gpuGemmStrided(
  m: number,
  n: number,
  k: number,
  a: GpuMatrix,
  b: GpuMatrix,
  c: GpuMatrix,
  options: GpuGemmOptions = {},
): void {
  const gpu = webgpu();
  const batch = options.batch ?? 1;
  const { bias, maskA } = options;
  // The contiguous index decides which loads neighbouring threads share (coalescing only).
  const aFast = k > 1 && a.colStride === 1 ? "k" : m > 1 && a.rowStride === 1 ? "m" : "k";
  const bFast = n > 1 && b.colStride === 1 ? "n" : k > 1 && b.rowStride === 1 ? "k" : "n";
  const kernel = stridedKernel(
    gpu,
    aFast,
    bFast,
    bias?.per ?? "none",
    options.relu === true,
    maskA !== undefined,
  );
  const storages = [a.storage, b.storage];
  if (bias !== undefined) storages.push(bias.storage);
  if (maskA !== undefined) storages.push(maskA.storage);
  storages.push(c.storage);
  const u = (x: number) => x >>> 0;
  dispatchGemm(
    gpu,
    kernel,
    storages,
    m,
    n,
    k,
    [
      u(a.offset),
      u(a.rowStride),
      u(a.colStride),
      u(a.batchStride ?? 0),
      u(b.offset),
      u(b.rowStride),
      u(b.colStride),
      u(b.batchStride ?? 0),
      u(c.offset),
      u(c.rowStride),
      u(c.colStride),
      u(c.batchStride ?? 0),
      f32Bits(options.beta ?? 0),
      u(bias?.offset ?? 0),
      u(bias?.stride ?? 0),
      u(maskA?.offset ?? 0),
      u(maskA?.rowStride ?? 0),
      u(maskA?.colStride ?? 0),
      u(maskA?.batchStride ?? 0),
    ],
    batch,
    options.kSlice ?? 0,
  );
}

/**
 * C = op(A)·op(B) into the contiguous [m × n] region at `out` (written, not accumulated), A
 * optionally masked: split over K when few output tiles and a long K would leave the GPU idle
 * (a weight gradient summed over a batch), the slices summed in order afterwards.
 */
export function gpuGemmDense(
  m: number,
  n: number,
  k: number,
  a: GpuMatrix,
  b: GpuMatrix,
  out: { storage: GpuStorage; offset: number },
  maskA?: GpuMatrix,
  forceSlices?: number,
): void {
  const slice = splitK(m, n, k, forceSlices);
  if (slice === 0) {
    gpuGemmStrided(m, n, k, a, b, { ...out, rowStride: n, colStride: 1 }, { maskA });
    return;
  }
  const slices = Math.ceil(k / slice);
  const parts = webgpu().alloc("float32", slices * m * n);
  gpuGemmStrided(
    m,
    n,
    k,
    { ...a, batchStride: 0 },
    { ...b, batchStride: 0 },
    { storage: parts, offset: 0, rowStride: n, colStride: 1, batchStride: m * n },
    { maskA: maskA && { ...maskA, batchStride: 0 }, batch: slices, kSlice: slice },
  );
  gpuSumSlices(parts, slices, m * n, out.storage, out.offset);
}

/** Options of {@linkcode gpuGemm} beyond the reference GEMM's arguments. */
export interface GpuGemmBatch {
  /** Matrices in the batch (default 1). */
  batch?: number;
  /** Step between batch matrices of A (0 broadcasts; default 0). */
  strideA?: number;
  /** Step between batch matrices of B (0 broadcasts; default 0). */
  strideB?: number;
  /** Step between batch matrices of C (default 0). */
  strideC?: number;
  /** Bias: bias[biasOffset + j] is added to column j (or to row i with `biasPer: "row"`). */
  bias?: GpuStorage;
  /** Element offset of the bias (default 0). */
  biasOffset?: number;
  /** Whether the bias runs along the columns (the Linear layer's, default) or the rows. */
  biasPer?: "column" | "row";
  /** Apply ReLU after the bias. */
  relu?: boolean;
}

/**
 * The reference `Gemm` contract on the device: C = op(A)·op(B) + beta·C with op(A) [m, k] stored
 * [k, m] when `transA` (row stride `lda`), op(B) [k, n] stored [n, k] when `transB`, C [m, n]
 * with row stride `ldc`, offsets in elements; plus an optional batch (per-operand strides, 0 to
 * broadcast) and the fused bias / ReLU epilogue. Recorded, not waited for.
 */
export function gpuGemm(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  a: GpuStorage,
  aOffset: number,
  lda: number,
  b: GpuStorage,
  bOffset: number,
  ldb: number,
  beta: number,
  c: GpuStorage,
  cOffset: number,
  ldc: number,
  options: GpuGemmBatch = {},
): void {
  gpuGemmStrided(
    m,
    n,
    k,
    {
      storage: a,
      offset: aOffset,
      rowStride: transA ? 1 : lda,
      colStride: transA ? lda : 1,
      batchStride: options.strideA ?? 0,
    },
    {
      storage: b,
      offset: bOffset,
      rowStride: transB ? 1 : ldb,
      colStride: transB ? ldb : 1,
      batchStride: options.strideB ?? 0,
    },
    {
      storage: c,
      offset: cOffset,
      rowStride: ldc,
      colStride: 1,
      batchStride: options.strideC ?? 0,
    },
    {
      batch: options.batch,
      beta,
      relu: options.relu,
      bias: options.bias === undefined ? undefined : {
        storage: options.bias,
        offset: options.biasOffset ?? 0,
        stride: 1,
        per: options.biasPer ?? "column",
      },
    },
  );
}

/** Threads of the reduction kernels below. */
const REDUCE_THREADS = 256;

/**
 * out[outOffset + i] = Σ_s parts[s·size + i] for i < size: the sum of split-K slices, in slice
 * order (deterministic, unlike atomics).
 */
export function gpuSumSlices(
  parts: GpuStorage,
  slices: number,
  size: number,
  out: GpuStorage,
  outOffset: number,
): void {
  const gpu = webgpu();
  const kernel = gpu.kernel(
    "gemmSumSlices",
    `@group(0) @binding(1) var<storage, read> parts: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${REDUCE_THREADS})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * ${REDUCE_THREADS}u;
  let size = pu(0u);
  if (i >= size) { return; }
  var s = 0.0;
  for (var z = 0u; z < pu(1u); z++) { s += parts[z * size + i]; }
  out[pu(2u) + i] = s;
}`,
    1,
    1,
  );
  gpu.dispatch1d(kernel, [parts, out], [size, slices, outOffset], size);
}

/**
 * The elements of each column of {@linkcode gpuColumnSum}: row r of column c is at
 * offset + ⌊r / inner⌋·outerStride + (r mod inner)·innerStride + c·colStride.
 */
export interface GpuColumns {
  /** The storage. */
  storage: GpuStorage;
  /** Element offset of row 0 of column 0. */
  offset: number;
  /** Rows per outer step (the batch of a [N, C, pixels] gradient has `pixels` of them). */
  inner: number;
  /** Step between outer row groups. */
  outerStride: number;
  /** Step between rows inside a group. */
  innerStride: number;
  /** Step between columns. */
  colStride: number;
}

/**
 * out[outOffset + c] = Σ_r x[r, c] over `rows` rows of `columns` columns (a bias gradient), with
 * x masked by `mask[r, c] > 0` when given (the ReLU mask of a fused output). One workgroup per
 * column sums strided rows then reduces in shared memory: a fixed order, so results repeat.
 */
export function gpuColumnSum(
  x: GpuColumns,
  rows: number,
  columns: number,
  mask: GpuColumns | null,
  out: GpuStorage,
  outOffset: number,
): void {
  const gpu = webgpu();
  const index = (base: number) =>
    `pu(${base}u) + (r / pu(${base + 1}u)) * pu(${base + 2}u) + (r % pu(${base + 1}u)) * pu(${
      base + 3
    }u) + col * pu(${base + 4}u)`;
  const kernel = gpu.kernel(
    `gemmColumnSum${mask === null ? "" : "_mask"}`,
    `@group(0) @binding(1) var<storage, read> x: array<f32>;
${
      mask === null
        ? ""
        : "@group(0) @binding(2) var<storage, read> mask: array<f32>;\n"
    }@group(0) @binding(${mask === null ? 2 : 3}) var<storage, read_write> out: array<f32>;
var<workgroup> partial: array<f32, ${REDUCE_THREADS}>;
@compute @workgroup_size(${REDUCE_THREADS})
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) groups: vec3u,
  @builtin(local_invocation_index) t: u32,
) {
  let col = wid.x + wid.y * groups.x;
  let valid = col < pu(1u);
  var s = 0.0;
  if (valid) {
    for (var r = t; r < pu(0u); r += ${REDUCE_THREADS}u) {
      let v = x[${index(3)}];
      ${mask === null ? "s += v;" : `s += select(0.0, v, mask[${index(8)}] > 0.0);`}
    }
  }
  partial[t] = s;
  workgroupBarrier();
  for (var half = ${REDUCE_THREADS / 2}u; half > 0u; half /= 2u) {
    if (t < half) { partial[t] += partial[t + half]; }
    workgroupBarrier();
  }
  if (valid && t == 0u) { out[pu(2u) + col] = partial[0]; }
}`,
    mask === null ? 1 : 2,
    1,
  );
  if (columns === 0) return;
  const u = (v: number) => v >>> 0;
  const words = (m: GpuColumns) => [
    u(m.offset),
    Math.max(1, m.inner),
    u(m.outerStride),
    u(m.innerStride),
    u(m.colStride),
  ];
  const params = [rows, columns, outOffset, ...words(x), ...(mask === null ? [] : words(mask))];
  const storages = mask === null ? [x.storage, out] : [x.storage, mask.storage, out];
  const y = Math.ceil(columns / MAX_GROUPS);
  gpu.dispatch(kernel, storages, params, [Math.ceil(columns / y), y]);
}
