/**
 * # WebAssembly SIMD GEMM for tapegrad
 *
 * `wasmGemm` implements the backend's {@link Gemm} contract (C = op(A)·op(B) + beta·C, row-major,
 * offsets and leading dimensions in elements) with kernels generated at load time by
 * `kernels.ts` through the small assembler in `encoder.ts`: no binary blob, no compiler.
 *
 * **Paths** (chosen from the shape and layout only, never from the thread count):
 * - *packed* (the general case): op(A) is copied into panels of `mr` rows and op(B) into panels of
 *   8 columns, K-major and zero-padded, so the micro-kernel reads both sequentially (rows that
 *   run along K are transposed 4×4 at a time with shuffles). The micro-kernel keeps an `mr`×8
 *   tile of C in `mr`·2 f32x4 accumulators, 5×8 in both variants. With relaxed SIMD's
 *   `f32x4.relaxed_madd` (one FMA where the CPU has it) four of the five A values of a k step
 *   come in as one vector and are splatted by shuffles (10 accumulators + 2 B vectors + the A
 *   vector + 1 splat = 14 of the 15 vector registers V8 allocates on x64): Deno compiles every
 *   wasm load with an explicit bounds check, and on Intel cores those checks share ports with the
 *   FMAs, so fewer loads per FMA is what counts. mul+add needs a temporary and keeps five
 *   load-splats. K is cut into equal blocks of at most {@link KC_MAX} (the same cut for every
 *   element), M into blocks of 48 panels that stay in L2 while an 8-column B panel stays in L1. Edge tiles compute the zero-padded tile and
 *   store only the lanes inside C.
 * - *dot* (A·Bᵀ, both operands contiguous in K: the Linear forward X·Wᵀ, including N = 10): no
 *   packing at all; tiles of 6 rows of A × 2 rows of B (12 accumulators) run vector dot products
 *   and reduce the lanes at the end. Used when K ≥ {@link DOT_MIN_K} or N < 8.
 * - *gemv* (m = 1, batch-1 inference): x·Wᵀ runs 1×4 dot tiles straight off the unpacked
 *   weights; x·B (B stored [k, n]) streams B's rows in 16-column groups.
 * Small problems take the same paths: the fixed cost is about a microsecond, so only products
 * below roughly a thousand multiply-adds would be faster in plain TypeScript.
 *
 * **Memory**: one shared `WebAssembly.Memory` (`memory.ts`) imported by every instance. An operand
 * that already lives there (a view over its buffer, e.g. from `wasmFloat32`) is used in place;
 * others are copied in with one `TypedArray.set` per matrix (or per row when the leading
 * dimension leaves big gaps) into a grow-only scratch block, then packed by wasm. C is computed in
 * place when it lives in the memory, else in scratch and copied out row by row (so elements
 * between rows of a strided C are never touched). A, B and C must not overlap.
 *
 * **Threads** (`pool.ts`): a GEMM of at least {@link PARALLEL_MIN_MACS} multiply-adds is offered to
 * the ready workers as work-sharing jobs (first the packing, then the compute): every thread runs
 * the same export and claims chunks (groups of panels, rows or columns) from an atomic counter in
 * the shared memory. The calling thread always works too, so a worker that is asleep or
 * descheduled costs nothing: it finds the job closed or drained and skips it. Every element of C
 * is computed by the same instruction sequence whichever thread takes its chunk, so 1 and N
 * threads give bitwise the same C. A product with little work per byte copied in (a gemv whose
 * matrix had to be copied, N = 10 over a copied batch) stays on one thread: moving the fresh
 * copy between cores costs more than the second core saves. Workers start
 * at the first large GEMM; thread count: {@link setThreads}, else env `TAPEGRAD_THREADS` (read
 * only when --allow-env already grants it), else the core count (`node:os` in Node,
 * `navigator.hardwareConcurrency` elsewhere).
 *
 * When the runtime lacks SIMD or shared memory, {@link wasmAvailable} is false and callers keep
 * the TypeScript reference kernel.
 *
 * @module
 */

import {
  buildKernelModule,
  JOB_NAMES,
  type JobName,
  type KernelConfig,
  type KernelExports,
  NR,
  PLAIN_CONFIG,
  RELAXED_CONFIG,
  relaxedSimdSupported,
  simdSupported,
} from "./kernels.ts";
import { allocBytes, freeBytes, heapF32, MAX_PAGES, memory, pointerOf } from "./memory.ts";
import { KernelPool } from "./pool.ts";
import { readEnv } from "../../platform/env.ts";
import { hardwareConcurrency } from "../../platform/threads.ts";
import type { Gemm } from "../gemm.ts";

export type { Gemm } from "../gemm.ts";

/** Largest K block of the packed path (K is split into equal blocks no longer than this). */
export const KC_MAX = 384;
/** M panels per L2 block (and most per chunk) in the packed path. */
const MC_PANELS = 48;
/** The A·Bᵀ dot path is used from this K up (below it, the lane reduction costs too much). */
export const DOT_MIN_K = 64;
/** GEMMs with fewer multiply-adds than this stay on the calling thread. */
export const PARALLEL_MIN_MACS = 1 << 17;
/** Products with fewer multiply-adds per byte of operands copied in stay on the calling thread. */
const MIN_MACS_PER_COPIED_BYTE = 16;

const JOB = {
  packAB: JOB_NAMES.indexOf("packAB"),
  compute: JOB_NAMES.indexOf("compute"),
  dot: JOB_NAMES.indexOf("dot"),
  dotRow: JOB_NAMES.indexOf("dotRow"),
  gemvN: JOB_NAMES.indexOf("gemvN"),
};

let profile: Map<string, number> | null = null;

/**
 * Diagnostics: while a map is set, every wasm job adds its wall time (ms) under its export name,
 * and copies between JavaScript arrays and the wasm memory under "copy in/out". `null` stops it.
 */
export function setKernelProfile(map: Map<string, number> | null): void {
  profile = map;
}

/** Adds `ms` to the active kernel profile under `name` (no-op when none is set). */
export function profileAdd(name: string, ms: number): void {
  if (profile !== null) profile.set(name, (profile.get(name) ?? 0) + ms);
}

/** Whether a kernel profile is being recorded. */
export function profiling(): boolean {
  return profile !== null;
}

/** M panels per L2 block in the packed path (for drivers that call `compute` themselves). */
export const MC_BLOCK_PANELS = 48;

/** The K block length used for a given K: equal blocks of at most KC_MAX. */
function blockK(k: number): number {
  const blocks = Math.ceil(k / KC_MAX);
  return Math.ceil(k / blocks);
}

function checkOperand(
  name: string,
  arr: Float32Array,
  offset: number,
  rows: number,
  cols: number,
  ld: number,
  shape: string,
): void {
  if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(ld) || (rows > 1 && ld < cols)) {
    throw new RangeError(
      `wasmGemm ${shape}: ${name} stored [${rows},${cols}] with offset ${offset}, leading dimension ${ld} is invalid`,
    );
  }
  if (rows > 0 && cols > 0 && offset + (rows - 1) * ld + cols > arr.length) {
    throw new RangeError(
      `wasmGemm ${shape}: ${name} stored [${rows},${cols}] (offset ${offset}, ld ${ld}) overruns its array of ${arr.length}`,
    );
  }
}

/** A location in the shared memory: byte address and row stride in bytes. */
interface Placed {
  ptr: number;
  ld: number;
}

/** One instantiated kernel module with its scratch space, optionally driving a worker pool. */
export class Engine {
  readonly exports: KernelExports;
  private readonly fns: ((...args: number[]) => void)[];
  private scratchPtr = 0;
  private scratchBytes = 0;
  /** An i32 in the shared memory from which the threads of a job claim chunks. */
  private readonly counter: Int32Array;
  private threads = 1;
  /** Jobs run with more than one thread (for tests and diagnostics). */
  parallelJobs = 0;
  /** Testing aid: when false, multi-threaded jobs are left entirely to the workers. */
  callerComputes = true;

  constructor(
    readonly config: KernelConfig,
    readonly module: WebAssembly.Module,
    private readonly pool: KernelPool | null,
  ) {
    const instance = new WebAssembly.Instance(module, { env: { memory: memory! } });
    this.exports = instance.exports as unknown as KernelExports;
    const ex = instance.exports as Record<string, (...args: number[]) => void>;
    this.fns = JOB_NAMES.map((name) => ex[name]);
    this.counter = new Int32Array(memory!.buffer, allocBytes(64), 1);
  }

  setThreads(n: number): void {
    this.threads = this.pool ? n : 1;
  }

  getThreads(): number {
    return this.threads;
  }

  whenReady(): Promise<void> {
    return this.pool ? this.pool.whenReady(this.threads - 1) : Promise.resolve();
  }

  poolStats(): { workers: number; ready: number; joinedJobs: number } {
    return {
      workers: this.pool?.size ?? 0,
      ready: this.pool?.readyCount() ?? 0,
      joinedJobs: this.pool?.joinedJobs ?? 0,
    };
  }

  terminate(): Promise<void> {
    return this.pool ? this.pool.terminate() : Promise.resolve();
  }

  /** Sends idle workers to sleep now rather than after their spin (see `KernelPool.park`). */
  park(): void {
    this.pool?.park();
  }

  /**
   * Runs export `name` as a work-sharing job over `units` units of work, on as many threads as
   * `work` (multiply-adds or comparable element operations) deserves. `args(chunk, counter)`
   * builds the argument list once the chunk size (units per claim) is known.
   */
  job(
    name: JobName,
    work: number,
    units: number,
    args: (chunk: number, counter: number) => number[],
  ): void {
    const T = this.threadsFor(work);
    const chunk = Math.max(1, Math.ceil(units / (4 * T)));
    this.run(JOB_NAMES.indexOf(name), T, args(chunk, this.counterPtr));
  }

  /** Threads to use for `macs` multiply-adds: 1 when small, else the ready ones. */
  threadsFor(macs: number): number {
    if (this.threads <= 1 || !this.pool || macs < PARALLEL_MIN_MACS) return 1;
    this.pool.ensure(this.threads - 1);
    return 1 + Math.min(this.threads - 1, this.pool.readyCount());
  }

  /** Grows the scratch block to at least `bytes`; returns its address. */
  private scratch(bytes: number): number {
    if (bytes > this.scratchBytes) {
      if (this.scratchPtr) freeBytes(this.scratchPtr);
      this.scratchBytes = Math.ceil(bytes * 1.25 / 4096) * 4096;
      this.scratchPtr = allocBytes(this.scratchBytes);
    }
    return this.scratchPtr;
  }

  /** Byte address of the chunk counter. */
  private get counterPtr(): number {
    return this.counter.byteOffset;
  }

  /**
   * Runs work-sharing job `job` (same arguments everywhere) on the calling thread and offers it
   * to `T − 1` ready workers; returns when every chunk is done.
   */
  private run(job: number, T: number, args: number[]): void {
    if (profile === null) {
      this.runUntimed(job, T, args);
      return;
    }
    const t0 = performance.now();
    try {
      this.runUntimed(job, T, args);
    } finally {
      const name = JOB_NAMES[job];
      profile.set(name, (profile.get(name) ?? 0) + performance.now() - t0);
    }
  }

  private runUntimed(job: number, T: number, args: number[]): void {
    this.counter[0] = 0; // published to workers by the Atomics.store in post()
    const pool = this.pool;
    if (T > 1 && pool) {
      this.parallelJobs++;
      for (let t = 1; t < T; t++) pool.post(t - 1, job, args);
      let error: unknown = null;
      try {
        if (this.callerComputes) this.fns[job](...args);
      } catch (e) {
        error = e;
      }
      // Always settle with the workers before the scratch is reused, even after an error.
      for (let t = 1; t < T; t++) {
        try {
          pool.finish(t - 1, !this.callerComputes);
        } catch (e) {
          error ??= e;
        }
      }
      if (error !== null) throw error;
    } else {
      this.fns[job](...args);
    }
  }

  /** C = op(A)·op(B) + beta·C: the {@link Gemm} contract (see the module comment). */
  gemm(...args: Parameters<Gemm>): void {
    const [transA, transB, m, n, k, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc] = args;
    const shape = `${transA ? "Aᵀ" : "A"}·${transB ? "Bᵀ" : "B"} m=${m} n=${n} k=${k}`;
    for (const [name, v] of [["m", m], ["n", n], ["k", k]] as const) {
      if (!Number.isInteger(v) || v < 0) {
        throw new RangeError(`wasmGemm ${shape}: ${name} must be a non-negative integer`);
      }
    }
    if (beta !== 0 && beta !== 1) {
      throw new RangeError(`wasmGemm ${shape}: beta must be 0 or 1, got ${beta}`);
    }
    const aRows = transA ? k : m;
    const aCols = transA ? m : k;
    const bRows = transB ? n : k;
    const bCols = transB ? k : n;
    checkOperand("A", a, aOffset, aRows, aCols, lda, shape);
    checkOperand("B", b, bOffset, bRows, bCols, ldb, shape);
    checkOperand("C", c, cOffset, m, n, ldc, shape);
    if (m === 0 || n === 0) return;
    if (k === 0) {
      if (beta === 0) {
        for (let i = 0; i < m; i++) c.fill(0, cOffset + i * ldc, cOffset + i * ldc + n);
      }
      return;
    }

    const MR = this.config.mr;
    const path = m === 1
      ? "gemv"
      : transB && !transA && (k >= DOT_MIN_K || n < NR)
      ? "dot"
      : "packed";

    // Scratch layout: [A copy][B copy][x copy][A panels][B panels][C buffer], 64-byte aligned.
    const align = (bytes: number): number => Math.ceil(bytes / 64) * 64;
    const aPtr0 = pointerOf(a);
    const bPtr0 = pointerOf(b);
    const cPtr0 = pointerOf(c);
    const aSpan = (aRows - 1) * lda + aCols;
    const bSpan = (bRows - 1) * ldb + bCols;
    const aCopy = aPtr0 < 0 ? align(4 * Math.min(aSpan, 2 * aRows * aCols)) : 0;
    const bCopy = bPtr0 < 0 ? align(4 * Math.min(bSpan, 2 * bRows * bCols)) : 0;
    // gemv with a strided x (Aᵀ stored [k,1]) gathers x contiguously.
    const xCopy = path === "gemv" && transA && lda !== 1 ? align(4 * k) : 0;
    const mp = Math.ceil(m / MR);
    const np = Math.ceil(n / NR);
    const aPack = path === "packed" ? align(4 * k * mp * MR) : 0;
    const bPack = path === "packed" ? align(4 * k * np * NR) : 0;
    const cBuf = cPtr0 < 0 ? align(4 * m * n) : 0;
    const base = this.scratch(aCopy + bCopy + xCopy + aPack + bPack + cBuf);
    const aCopyPtr = base;
    const bCopyPtr = aCopyPtr + aCopy;
    const xCopyPtr = bCopyPtr + bCopy;
    const aPackPtr = xCopyPtr + xCopy;
    const bPackPtr = aPackPtr + aPack;
    const cBufPtr = bPackPtr + bPack;
    const heap = heapF32(); // after any growth

    const t0 = profile === null ? 0 : performance.now();
    const A = place(heap, a, aOffset, aRows, aCols, lda, aPtr0, aCopyPtr);
    const B = place(heap, b, bOffset, bRows, bCols, ldb, bPtr0, bCopyPtr);
    let C: Placed;
    if (cPtr0 >= 0) {
      C = { ptr: cPtr0 + 4 * cOffset, ld: 4 * ldc };
    } else {
      C = { ptr: cBufPtr, ld: 4 * n };
      if (beta === 1) copyRows(c, cOffset, ldc, heap, cBufPtr >> 2, n, m, n);
    }
    if (profile !== null) profileAdd("copy in/out", performance.now() - t0);

    // A product with little work per byte copied in (a gemv of a copied matrix, N = 10 on a
    // copied batch) stays on this thread: a second core would mostly move the fresh copy between
    // caches, which measured slower than one thread alone.
    const T = aCopy + bCopy > 0 && m * n * k < MIN_MACS_PER_COPIED_BYTE * (aCopy + bCopy)
      ? 1
      : this.threadsFor(m * n * k);
    // Chunk sizes only shape the work sharing (several chunks per thread, so a slow thread is
    // covered by the others); they never change what any element of C sums, or in what order.
    // The unpacked paths cost nothing per chunk, so they cut finer: a product with few tiles
    // (N = 10 has 22 row tiles at batch 128) then splits evenly.
    const chunkOf = (units: number, unit: number, cap: number, perThread = 4): number =>
      unit * Math.max(1, Math.min(cap, Math.ceil(units / unit / (perThread * T))));
    const ctr = this.counterPtr;

    if (path === "gemv") {
      let x = A.ptr;
      if (xCopy) {
        const lda4 = A.ld >> 2;
        for (let kk = 0; kk < k; kk++) heap[(xCopyPtr >> 2) + kk] = heap[(A.ptr >> 2) + kk * lda4];
        x = xCopyPtr;
      }
      if (transB) {
        const chunk = chunkOf(n, this.config.gemvCols, 1 << 20);
        this.run(JOB.dotRow, T, [x, 0, B.ptr, B.ld, C.ptr, C.ld, k, 1, n, 0, chunk, ctr, beta]);
      } else {
        const chunk = chunkOf(n, 16, 1 << 20);
        this.run(JOB.gemvN, T, [x, B.ptr, B.ld, C.ptr, n, k, blockK(k), chunk, ctr, beta]);
      }
    } else if (path === "dot") {
      const byRows = m >= n;
      const chunk = byRows
        ? chunkOf(m, this.config.dotRows, 1 << 20, 16)
        : chunkOf(n, this.config.dotCols, 1 << 20, 16);
      this.run(JOB.dot, T, [
        A.ptr,
        A.ld,
        B.ptr,
        B.ld,
        C.ptr,
        C.ld,
        k,
        m,
        n,
        byRows ? 1 : 0,
        chunk,
        ctr,
        beta,
      ]);
    } else {
      const kc = blockK(k);
      this.run(JOB.packAB, T, [
        A.ptr,
        A.ld,
        transA ? 0 : 1,
        aPackPtr,
        m,
        B.ptr,
        B.ld,
        transB ? 1 : 0,
        bPackPtr,
        n,
        k,
        kc,
        chunkOf(mp + np, 1, 64),
        ctr,
      ]);
      // Split M when it has the panels to spare: then each thread's A panels stay its own.
      const byRows = mp >= np || np < 2 * T;
      const chunk = byRows ? chunkOf(mp, 1, MC_PANELS) : chunkOf(np, 1, 1 << 20);
      this.run(JOB.compute, T, [
        aPackPtr,
        bPackPtr,
        C.ptr,
        C.ld,
        m,
        n,
        k,
        kc,
        MC_PANELS,
        byRows ? 1 : 0,
        chunk,
        ctr,
        beta,
      ]);
    }

    if (cPtr0 < 0) {
      const h = heapF32();
      const t1 = profile === null ? 0 : performance.now();
      copyRows(h, cBufPtr >> 2, n, c, cOffset, ldc, m, n);
      if (profile !== null) profileAdd("copy in/out", performance.now() - t1);
    }
  }
}

/** Puts a stored [rows, cols] operand where wasm can read it: in place, or copied to `dst`. */
function place(
  heap: Float32Array,
  arr: Float32Array,
  offset: number,
  rows: number,
  cols: number,
  ld: number,
  ptr: number,
  dst: number,
): Placed {
  if (ptr >= 0) return { ptr: ptr + 4 * offset, ld: 4 * ld };
  const span = (rows - 1) * ld + cols;
  if (rows === 1 || span <= 2 * rows * cols) {
    // One bulk copy, gaps included, keeps the leading dimension.
    heap.set(arr.subarray(offset, offset + span), dst >> 2);
    return { ptr: dst, ld: 4 * (rows === 1 ? cols : ld) };
  }
  copyRows(arr, offset, ld, heap, dst >> 2, cols, rows, cols);
  return { ptr: dst, ld: 4 * cols };
}

/** Copies `rows` rows of `cols` from src (row stride srcLd) into dst (row stride dstLd). */
function copyRows(
  src: Float32Array,
  srcOff: number,
  srcLd: number,
  dst: Float32Array,
  dstOff: number,
  dstLd: number,
  rows: number,
  cols: number,
): void {
  if (srcLd === cols && dstLd === cols) {
    dst.set(src.subarray(srcOff, srcOff + rows * cols), dstOff);
    return;
  }
  for (let i = 0; i < rows; i++) {
    dst.set(src.subarray(srcOff + i * srcLd, srcOff + i * srcLd + cols), dstOff + i * dstLd);
  }
}

function defaultThreads(): number {
  const n = Number.parseInt(readEnv("TAPEGRAD_THREADS") ?? "", 10);
  return Math.max(1, Math.min(64, Number.isInteger(n) && n >= 1 ? n : hardwareConcurrency()));
}

function createEngine(config: KernelConfig, withPool: boolean): Engine {
  const bytes = buildKernelModule(config, 1, MAX_PAGES);
  const module = new WebAssembly.Module(bytes as BufferSource);
  const pool = withPool ? new KernelPool(module, memory!, JOB_NAMES) : null;
  return new Engine(config, module, pool);
}

/** Whether relaxed SIMD (`f32x4.relaxed_madd`) is available; selects the fused-madd kernels. */
export const relaxedSimd: boolean = memory !== null && relaxedSimdSupported();

/**
 * Whether the wasm kernels can run here (SIMD and shared memory). When false, `wasmGemm` throws
 * and callers should use the TypeScript reference kernel.
 */
export const wasmAvailable: boolean = memory !== null && simdSupported();

/** The kernel configuration the default engine uses (tile sizes, relaxed or not). */
export const kernelConfig: KernelConfig = relaxedSimd ? RELAXED_CONFIG : PLAIN_CONFIG;

let engine: Engine | null = null;
/** The engine behind `wasmGemm` (created on first use); other wasm drivers run jobs on it. */
export function defaultEngine(): Engine {
  if (!engine) {
    if (!wasmAvailable) {
      throw new Error("wasmGemm: WebAssembly SIMD or shared memory is unavailable");
    }
    engine = createEngine(kernelConfig, true);
    engine.setThreads(defaultThreads());
  }
  return engine;
}

/** The WebAssembly SIMD GEMM (see the module comment); same contract as the reference {@link Gemm}. */
export const wasmGemm: Gemm = (...args) => defaultEngine().gemm(...args);

/** Sets how many threads (calling thread included) large GEMMs may use; 1 disables workers. */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`wasm setThreads: expected an integer ≥ 1, got ${n}`);
  }
  // Without the wasm kernels (no shared memory, e.g. a page that is not cross-origin isolated)
  // everything runs on the calling thread: nothing to set, and nothing to throw about.
  if (wasmAvailable) defaultEngine().setThreads(Math.min(64, n));
}

/** The current thread count (calling thread included); 1 where the wasm kernels are unavailable. */
export function getThreads(): number {
  return wasmAvailable ? defaultEngine().getThreads() : 1;
}

/**
 * Resolves once every worker for the current thread count has started. Optional: GEMMs never
 * wait for workers, they run on the threads that are ready (results are identical either way).
 */
export function threadsReady(): Promise<void> {
  return wasmAvailable ? defaultEngine().whenReady() : Promise.resolve();
}

/** What {@link threadStats} reports. */
export interface ThreadStats {
  /** Threads large GEMMs may use, the calling thread included. */
  threads: number;
  /** Worker threads started. */
  workers: number;
  /** Workers ready to take jobs. */
  ready: number;
  /** Jobs offered to workers. */
  parallelJobs: number;
  /** Jobs a worker actually took part in (a late worker skips a job the caller finished). */
  joinedJobs: number;
}

/** Diagnostics about the worker threads of `wasmGemm`. */
export function threadStats(): ThreadStats {
  if (!wasmAvailable) return { threads: 1, workers: 0, ready: 0, parallelJobs: 0, joinedJobs: 0 };
  const e = defaultEngine();
  return { threads: e.getThreads(), ...e.poolStats(), parallelJobs: e.parallelJobs };
}

/**
 * Testing aid: with `false`, multi-threaded jobs are left entirely to the workers (the calling
 * thread only waits), which must not change any result. Default `true`.
 */
export function setCallerComputes(on: boolean): void {
  defaultEngine().callerComputes = on;
}

/**
 * Sends the wasm workers to sleep as soon as their current job is done, instead of letting them
 * spin for the next one: call it before handing the cores to another library's threads (the
 * native backend does, before every BLAS product). A no-op before the engine exists.
 */
export function parkThreads(): void {
  engine?.park();
}

/** Stops all worker threads (they restart on demand). Mostly for tests and clean shutdowns. */
export function stopThreads(): Promise<void> {
  return engine ? engine.terminate() : Promise.resolve();
}

/**
 * A single-threaded GEMM built for an explicit kernel configuration (e.g. {@link PLAIN_CONFIG} to
 * exercise the fallback without relaxed SIMD). Shares the memory with `wasmGemm`.
 */
export function createWasmGemm(config: KernelConfig): Gemm {
  const e = createWasmEngine(config);
  return (...args) => e.gemm(...args);
}

/**
 * An engine of its own with the given kernel configuration and no worker pool, for tests that
 * compare configurations (the plain-SIMD kernels on a machine with relaxed SIMD, say).
 *
 * @throws {Error} When WebAssembly SIMD, shared memory or a requested relaxed SIMD is missing.
 */
export function createWasmEngine(config: KernelConfig): Engine {
  if (!wasmAvailable) {
    throw new Error("createWasmEngine: WebAssembly SIMD or shared memory is unavailable");
  }
  if (config.relaxed && !relaxedSimd) {
    throw new Error("createWasmEngine: relaxed SIMD is unavailable");
  }
  return createEngine(config, false);
}
