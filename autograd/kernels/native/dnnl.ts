/**
 * The convolutions of the native backend on oneDNN (`libdnnl.so.2`, Debian's `libdnnl2`, the
 * library PyTorch's CPU convolutions run on), opened through Deno's FFI like the BLAS.
 *
 * Why: an im2col convolution around `cblas_sgemm` pays for layout passes and copies between the
 * JavaScript heap and the wasm memory on every pass (half of AlexNet's convolution time on the
 * Intel Xeon), while oneDNN's JIT kernels convolve directly, in blocked layouts, on memory it
 * reads and writes in place. Measured there at batch 128 on 2 threads, AlexNet's three
 * convolutions forward took 2.2 ms on oneDNN against 7.3 ms on the im2col path.
 *
 * How:
 * - Each pass is a oneDNN primitive built once per shape and cached (a plan; the 32 most recent
 *   shapes per kernel, an evicted plan destroying its oneDNN objects). Tensors stay NCHW
 *   (filters OIHW) on the caller's side; the primitive picks its own layouts (`format_tag_any`)
 *   and plain↔blocked reorders run around it, skipped where the layouts agree. The blocked copies
 *   live in buffers the plan owns.
 * - The forward pass fuses bias and ReLU (a post-op). The backward pass masks the output
 *   gradient with ReLU's derivative taken from the output (`eltwise_relu_use_dst_for_bwd`), then
 *   runs backward-data (gx) and backward-weights (gw and gb) on the masked gradient.
 * - Every array goes to oneDNN as a `"buffer"` parameter (`dnnl_memory_set_data_handle` before
 *   each run), so JavaScript-heap arrays and views of the shared wasm memory alike are used in
 *   place. Structs oneDNN fills (memory and operation descriptors) are byte arrays sized from
 *   oneDNN 2.x's headers with room to spare; only oneDNN 2 is accepted (3 changed the C API).
 * - Threads: oneDNN runs on its OpenMP runtime; {@linkcode Dnnl.setThreads} sets its team size
 *   through `omp_set_num_threads` (libgomp, loaded with it), and `OMP_WAIT_POLICY` defaults to
 *   passive so its idle threads sleep instead of spinning on the cores BLAS and tapegrad's pool use.
 * - A shape oneDNN refuses (it rejects a descriptor: e.g. padding it cannot express) runs on the
 *   fallback kernels it was given (the im2col path), decided once per shape.
 *
 * Results agree with the reference kernels to float32 rounding (other sum orders); the same
 * thread count gives the same bits run after run.
 *
 * @module
 */

import {
  addressOf,
  copyFromPointer,
  ffiUnavailable,
  type ForeignLibrary,
  type ForeignPointer,
  type ForeignSymbols,
  openLibrary,
  pointerAt,
  readEnv,
  readInt32,
  withEnvDefault,
} from "../../platform/mod.ts";
import type { ConvGeometry } from "../conv.ts";
import { parkThreads, profileAdd, profiling } from "../wasm/gemm.ts";
import { message, tryOpen } from "./blas.ts";
import type { ConvBackwardKernel, ConvForwardKernel } from "../types.ts";

/** Bytes of `dnnl_memory_desc_t` in oneDNN 2.x (dnnl_types.h; `sizeof` gave 696 for 2.6.3). */
const MD_SIZE = 696;
/** The byte arrays the memory descriptors live in: room to spare beyond {@link MD_SIZE}. */
const MD_BYTES = 1024;
/** Bytes for an operation descriptor: the largest used, `dnnl_convolution_desc_t`, has 5976. */
const OP_DESC_BYTES = 8192;

/** oneDNN 2.x enum values (dnnl_types.h). */
const DNNL = {
  cpu: 1,
  f32: 3,
  tagAny: 1,
  tagA: 2,
  tagAbcd: 5,
  forwardTraining: 64,
  convolutionDirect: 1,
  eltwiseRelu: 0x1f,
  eltwiseReluUseDst: 0x100,
  streamDefault: 1,
  argSrc: 1,
  argDst: 17,
  argWeights: 33,
  argBias: 41,
  argDiffSrc: 129,
  argDiffDst: 145,
  argDiffWeights: 161,
  argDiffBias: 169,
  querySrc: 129,
  queryDiffSrc: 130,
  queryWeights: 131,
  queryDiffWeights: 132,
  queryDst: 133,
  queryDiffDst: 134,
  queryImplInfo: 8,
  runtimeOmp: 2,
} as const;

const B = "buffer" as const;
const P = "pointer" as const;
const SYMBOLS = {
  dnnl_version: { parameters: [], result: P },
  dnnl_engine_create: { parameters: [B, "i32", "usize"], result: "i32" },
  dnnl_stream_create: { parameters: [B, P, "u32"], result: "i32" },
  dnnl_memory_desc_init_by_tag: { parameters: [B, "i32", B, "i32", "i32"], result: "i32" },
  dnnl_memory_desc_equal: { parameters: [B, B], result: "i32" },
  dnnl_memory_desc_get_size: { parameters: [B], result: "usize" },
  dnnl_convolution_forward_desc_init: {
    parameters: [B, "i32", "i32", B, B, B, B, B, B, B],
    result: "i32",
  },
  dnnl_convolution_backward_data_desc_init: {
    parameters: [B, "i32", B, B, B, B, B, B],
    result: "i32",
  },
  dnnl_convolution_backward_weights_desc_init: {
    parameters: [B, "i32", B, B, B, B, B, B, B],
    result: "i32",
  },
  dnnl_eltwise_forward_desc_init: { parameters: [B, "i32", "i32", B, "f32", "f32"], result: "i32" },
  dnnl_eltwise_backward_desc_init: { parameters: [B, "i32", B, B, "f32", "f32"], result: "i32" },
  dnnl_primitive_attr_create: { parameters: [B], result: "i32" },
  dnnl_primitive_attr_set_post_ops: { parameters: [P, P], result: "i32" },
  dnnl_post_ops_create: { parameters: [B], result: "i32" },
  dnnl_post_ops_append_eltwise: { parameters: [P, "f32", "i32", "f32", "f32"], result: "i32" },
  dnnl_primitive_desc_create: { parameters: [B, B, P, P, P], result: "i32" },
  dnnl_primitive_desc_query: { parameters: [P, "i32", "i32", B], result: "i32" },
  dnnl_primitive_desc_query_md: { parameters: [P, "i32", "i32"], result: P },
  dnnl_reorder_primitive_desc_create: { parameters: [B, B, P, B, P, P], result: "i32" },
  dnnl_primitive_create: { parameters: [B, P], result: "i32" },
  dnnl_memory_create: { parameters: [B, B, P, P], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: [P, B], result: "i32" },
  dnnl_primitive_execute: { parameters: [P, P, "i32", B], result: "i32" },
  dnnl_stream_wait: { parameters: [P], result: "i32" },
  dnnl_primitive_desc_destroy: { parameters: [P], result: "i32" },
  dnnl_primitive_destroy: { parameters: [P], result: "i32" },
  dnnl_memory_destroy: { parameters: [P], result: "i32" },
  dnnl_primitive_attr_destroy: { parameters: [P], result: "i32" },
  dnnl_post_ops_destroy: { parameters: [P], result: "i32" },
  // transa, transb, offsetc, M, N, K, alpha, A, lda, ao, B, ldb, bo, beta, C, ldc, co
  dnnl_gemm_u8s8s32: {
    parameters: [
      "u8",
      "u8",
      "u8",
      "i64",
      "i64",
      "i64",
      "f32",
      B,
      "i64",
      "u8",
      B,
      "i64",
      "i8",
      "f32",
      B,
      "i64",
      B,
    ],
    result: "i32",
  },
} as const satisfies ForeignSymbols;

const OMP_SYMBOLS = {
  omp_set_num_threads: { parameters: ["i32"], result: "void" },
} as const satisfies ForeignSymbols;

type Library = ForeignLibrary<typeof SYMBOLS>;
type Symbols = Library["symbols"];

/** Library names tried in order when `TAPEGRAD_DNNL` is not set. */
export const DNNL_CANDIDATES: readonly string[] = ["libdnnl.so.2", "libdnnl.2.dylib"];

/** An opened oneDNN: convolution kernels over it and its thread control. */
export interface Dnnl {
  /** The path or name the library was opened under. */
  readonly path: string;
  /** Version and threading runtime, e.g. "oneDNN 2.6.3 (OpenMP)". */
  readonly description: string;
  /** Sets the size of oneDNN's thread team (no-op when its runtime is not OpenMP). */
  setThreads(n: number): void;
  /**
   * Convolution kernels on oneDNN; shapes it refuses, and those below `minMacs` multiply-adds
   * (default {@link DNNL_MIN_MACS}), run on the `fallback` kernels.
   */
  convKernels(
    fallback: { convForward: ConvForwardKernel; convBackward: ConvBackwardKernel },
    minMacs?: number,
  ): { convForward: ConvForwardKernel; convBackward: ConvBackwardKernel };
  /** out = max(x, 0) over `n` floats (in place when out is x), on arrays where they are. */
  relu(x: Float32Array, xOffset: number, out: Float32Array, outOffset: number, n: number): void;
  /** out = gy where y > 0, else 0, over `n` floats (ReLU's gradient from its output). */
  reluBackward(
    gy: Float32Array,
    gyOffset: number,
    y: Float32Array,
    yOffset: number,
    out: Float32Array,
    outOffset: number,
    n: number,
  ): void;
  /**
   * sums = inputs · weightsᵀ in exact int32 (`dnnl_gemm_u8s8s32`): inputs [m, k] bytes 0..127,
   * weights [n, k] int8, sums [m, n], all row-major and dense. With inputs below 128 no pair of
   * products can saturate oneDNN's 16-bit intermediate on CPUs without VNNI, so every CPU gives
   * the exact sums. Products below {@link DNNL_MIN_MACS} multiply-adds run on the calling
   * thread alone (see `alone`).
   */
  int8Product(
    inputs: Uint8Array,
    weights: Int8Array,
    sums: Int32Array,
    m: number,
    n: number,
    k: number,
  ): void;
  /**
   * How many oneDNN objects (primitives, memory objects) the cached plans hold: it stays bounded
   * however many shapes run, as evicted plans destroy theirs.
   */
  liveObjects(): number;
}

/** What {@linkcode loadDnnl} found: the library, or why there is none. */
export type DnnlLoad =
  | { readonly dnnl: Dnnl; readonly reason: string }
  | { readonly dnnl: null; readonly reason: string };

let cached: DnnlLoad | null = null;

/**
 * How long oneDNN's idle OpenMP threads spin before they sleep (libgomp's `GOMP_SPINCOUNT`, in
 * spins; the passive policy alone means none). A short spin spans the gaps between the reorders
 * and the convolution of one pass without holding the cores through the BLAS products: on the
 * Intel Xeon, 2 threads, AlexNet's step (means of 150 steps, alternated runs) took 20.8–21.3 ms at
 * 3000 against 22.9–23.7 ms passive, 21.4–21.7 at 1000, 21.1 at 10000 and 21.6–22.6 at 30000.
 */
const GOMP_SPINCOUNT = "3000";

/**
 * Opens oneDNN once (later calls return the same answer) from `TAPEGRAD_DNNL=/path` or the usual
 * names; `TAPEGRAD_DNNL=off` declines it. Never throws and never prompts.
 */
export function loadDnnl(): DnnlLoad {
  cached ??= withEnvDefault(
    "OMP_WAIT_POLICY",
    "passive",
    () => withEnvDefault("GOMP_SPINCOUNT", GOMP_SPINCOUNT, open),
  );
  return cached;
}

function open(): DnnlLoad {
  const unavailable = ffiUnavailable();
  if (unavailable !== null) return { dnnl: null, reason: unavailable };
  const forced = readEnv("TAPEGRAD_DNNL");
  if (forced === "off") return { dnnl: null, reason: "TAPEGRAD_DNNL=off" };
  const candidates = forced ? [forced] : DNNL_CANDIDATES;
  const failures: string[] = [];
  for (const path of candidates) {
    const lib = tryOpen(path, SYMBOLS, failures);
    if (lib === null) continue;
    // dnnl_version_t: int major, minor, patch; const char *hash; unsigned cpu_runtime, …
    const version = lib.symbols.dnnl_version()!;
    const [major, minor, patch] = [0, 4, 8].map((at) => readInt32(version, at));
    const runtime = readInt32(version, 24, true);
    if (major !== 2) {
      failures.push(`${path}: oneDNN ${major}.${minor}, not 2.x`);
      lib.close();
      continue;
    }
    const omp = runtime === DNNL.runtimeOmp ? openOmp() : null;
    const description = `oneDNN ${major}.${minor}.${patch} (${
      runtime === DNNL.runtimeOmp ? "OpenMP" : `runtime ${runtime}`
    })`;
    try {
      return {
        dnnl: wrap(lib.symbols, path, description, omp),
        reason: `${description} from ${path}`,
      };
    } catch (e) {
      failures.push(`${path}: ${message(e)}`);
      lib.close();
    }
  }
  const where = forced ? `TAPEGRAD_DNNL=${forced}` : "the usual names";
  return {
    dnnl: null,
    reason: `no oneDNN 2 could be opened from ${where} (${failures.join("; ")})`,
  };
}

function openOmp(): ForeignLibrary<typeof OMP_SYMBOLS> | null {
  try {
    return openLibrary("libgomp.so.1", OMP_SYMBOLS);
  } catch {
    return null;
  }
}

/** A oneDNN handle written into an out-parameter. */
function handle(): BigUint64Array {
  return new BigUint64Array(1);
}

function pointer(out: BigUint64Array): ForeignPointer {
  return pointerAt(out[0]);
}

/** One primitive and its argument list, ready to run. */
interface Stage {
  primitive: ForeignPointer;
  args: BigUint64Array;
}

/** One operand as the caller stores it (plain) and as the primitive wants it (inner). */
interface Operand {
  /** Memory object over the caller's array. */
  plain: ForeignPointer;
  /** Memory object over the plan's blocked buffer, or the plain one when the layouts agree. */
  inner: ForeignPointer;
  /** The blocked buffer, or null when the primitive reads the caller's array directly. */
  buffer: Float32Array | null;
  /** The plain→inner (or inner→plain, for outputs) reorder, or null. */
  reorder: Stage | null;
  /** The inner descriptor. */
  md: Uint8Array;
}

function wrap(
  s: Symbols,
  path: string,
  description: string,
  omp: ForeignLibrary<typeof OMP_SYMBOLS> | null,
): Dnnl {
  const check = (status: number, what: string): void => {
    if (status !== 0) throw new Error(`oneDNN ${what}: status ${status}`);
  };
  const engineOut = handle();
  check(s.dnnl_engine_create(engineOut, DNNL.cpu, 0n), "engine_create");
  const engine = pointer(engineOut);
  const streamOut = handle();
  check(s.dnnl_stream_create(streamOut, engine, DNNL.streamDefault), "stream_create");
  const stream = pointer(streamOut);

  // Every oneDNN object a plan makes is recorded while the plan is built (`building`): the
  // primitives and memory objects live as long as the plan, the descriptors and attributes only
  // until its primitives exist (a primitive keeps its own copy of what it needs).
  let kept: (() => void)[] = [];
  let temporary: (() => void)[] = [];
  let live = 0;
  const record = (
    list: (() => void)[],
    at: ForeignPointer,
    destroy: (p: ForeignPointer) => number,
  ) => {
    live++;
    list.push(() => {
      live--;
      destroy(at);
    });
    return at;
  };
  const keep = (at: ForeignPointer, destroy: (p: ForeignPointer) => number) =>
    record(kept, at, destroy);
  const temp = (at: ForeignPointer, destroy: (p: ForeignPointer) => number) =>
    record(temporary, at, destroy);
  const releaseAll = (list: (() => void)[]) => list.splice(0).forEach((destroy) => destroy());
  /** Builds a plan, returning it with the release of its objects; a failed build leaks none. */
  const building = <T>(make: () => T): Built<T> => {
    const [outerKept, outerTemporary] = [kept, temporary];
    const mine: (() => void)[] = [];
    [kept, temporary] = [mine, []];
    try {
      return { plan: make(), release: () => releaseAll(mine) };
    } catch (e) {
      releaseAll(mine);
      throw e;
    } finally {
      releaseAll(temporary);
      [kept, temporary] = [outerKept, outerTemporary];
    }
  };

  const dims = (values: number[]) => new BigInt64Array(values.map(BigInt));
  const desc = (shape: number[], tag: number): Uint8Array => {
    const md = new Uint8Array(MD_BYTES);
    check(
      s.dnnl_memory_desc_init_by_tag(md, shape.length, dims(shape), DNNL.f32, tag),
      "memory_desc_init_by_tag",
    );
    return md;
  };
  const primitiveDesc = (
    op: Uint8Array,
    hint: ForeignPointer,
    attr: ForeignPointer = null,
  ): ForeignPointer => {
    const out = handle();
    check(s.dnnl_primitive_desc_create(out, op, attr, engine, hint), "primitive_desc_create");
    return temp(pointer(out), s.dnnl_primitive_desc_destroy);
  };
  const queried = (pd: ForeignPointer, what: number, index = 0): Uint8Array => {
    const md = new Uint8Array(MD_BYTES);
    const at = s.dnnl_primitive_desc_query_md(pd, what, index);
    if (at === null) throw new Error(`oneDNN: primitive has no memory for query ${what}`);
    copyFromPointer(at, md.subarray(0, MD_SIZE));
    return md;
  };
  const primitive = (pd: ForeignPointer): ForeignPointer => {
    const out = handle();
    check(s.dnnl_primitive_create(out, pd), "primitive_create");
    return keep(pointer(out), s.dnnl_primitive_destroy);
  };
  const memory = (md: Uint8Array): ForeignPointer => {
    const out = handle();
    check(s.dnnl_memory_create(out, md, engine, null), "memory_create");
    return keep(pointer(out), s.dnnl_memory_destroy);
  };
  const stage = (prim: ForeignPointer, args: [number, ForeignPointer][]): Stage => {
    const packed = new BigUint64Array(2 * args.length);
    args.forEach(([arg, mem], i) => {
      packed[2 * i] = BigInt(arg);
      packed[2 * i + 1] = addressOf(mem);
    });
    return { primitive: prim, args: packed };
  };
  const reorder = (
    from: Uint8Array,
    fromMem: ForeignPointer,
    to: Uint8Array,
    toMem: ForeignPointer,
  ) => {
    const out = handle();
    check(
      s.dnnl_reorder_primitive_desc_create(out, from, engine, to, engine, null),
      "reorder_primitive_desc_create",
    );
    const pd = temp(pointer(out), s.dnnl_primitive_desc_destroy);
    return stage(primitive(pd), [[DNNL.argSrc, fromMem], [DNNL.argDst, toMem]]);
  };
  /** An operand stored `plain` that the primitive wants as `inner`; `output` reorders back. */
  const operand = (plainMd: Uint8Array, innerMd: Uint8Array, output: boolean): Operand => {
    const plain = memory(plainMd);
    if (s.dnnl_memory_desc_equal(plainMd, innerMd) !== 0) {
      return { plain, inner: plain, buffer: null, reorder: null, md: innerMd };
    }
    const inner = memory(innerMd);
    const buffer = offHeap(Number(s.dnnl_memory_desc_get_size(innerMd)) / 4);
    check(s.dnnl_memory_set_data_handle(inner, buffer), "memory_set_data_handle");
    const r = output
      ? reorder(innerMd, inner, plainMd, plain)
      : reorder(plainMd, plain, innerMd, inner);
    return { plain, inner, buffer, reorder: r, md: innerMd };
  };
  // oneDNN keeps the pointer until the primitive runs, so the bytes must not move meanwhile: V8
  // keeps typed arrays of up to 64 bytes inside its heap, where the collector moves them, until
  // their buffer is asked for. `subarray` asks for it (the data then moves out of the heap for
  // good), and the plan's own buffers are made off the heap (`offHeap`).
  const bind = (mem: ForeignPointer, array: Float32Array, offset: number, n: number): void => {
    check(
      s.dnnl_memory_set_data_handle(mem, array.subarray(offset, offset + n)),
      "set_data_handle",
    );
  };
  const run = (st: Stage | null): void => {
    if (st === null) return;
    check(s.dnnl_primitive_execute(st.primitive, stream, st.args.length / 2, st.args), "execute");
  };

  /** The plain descriptors and the forward operation of one convolution shape. */
  const shapeOf = (g: ConvGeometry, N: number, O: number) => {
    const src = [N, g.channels, g.height, g.width];
    const wei = [O, g.channels, g.kernelH, g.kernelW];
    const dst = [N, O, g.outH, g.outW];
    // oneDNN wants the padding on each side such that the output size comes out exactly:
    // PyTorch's floor drops what the right/bottom padding would have added.
    const padR = [
      (g.outH - 1) * g.strideH + g.kernelH - g.height - g.padH,
      (g.outW - 1) * g.strideW + g.kernelW - g.width - g.padW,
    ];
    const strides = dims([g.strideH, g.strideW]);
    const padL = dims([g.padH, g.padW]);
    const padRight = dims(padR);
    const plain = {
      src: desc(src, DNNL.tagAbcd),
      wei: desc(wei, DNNL.tagAbcd),
      bias: desc([O], DNNL.tagA),
      dst: desc(dst, DNNL.tagAbcd),
    };
    const any = {
      src: desc(src, DNNL.tagAny),
      wei: desc(wei, DNNL.tagAny),
      dst: desc(dst, DNNL.tagAny),
    };
    const forwardOp = new Uint8Array(OP_DESC_BYTES);
    check(
      s.dnnl_convolution_forward_desc_init(
        forwardOp,
        DNNL.forwardTraining,
        DNNL.convolutionDirect,
        any.src,
        any.wei,
        plain.bias,
        any.dst,
        strides,
        padL,
        padRight,
      ),
      "convolution_forward_desc_init",
    );
    return { plain, any, forwardOp, strides, padL, padRight };
  };

  interface ForwardPlan {
    src: Operand;
    wei: Operand;
    bias: ForeignPointer;
    dst: Operand;
    conv: Stage;
  }
  const forwardPlan = (g: ConvGeometry, N: number, O: number, relu: boolean): ForwardPlan => {
    const sh = shapeOf(g, N, O);
    let attr: ForeignPointer = null;
    if (relu) {
      const attrOut = handle();
      check(s.dnnl_primitive_attr_create(attrOut), "primitive_attr_create");
      attr = temp(pointer(attrOut), s.dnnl_primitive_attr_destroy);
      const opsOut = handle();
      check(s.dnnl_post_ops_create(opsOut), "post_ops_create");
      const ops = temp(pointer(opsOut), s.dnnl_post_ops_destroy);
      check(s.dnnl_post_ops_append_eltwise(ops, 1, DNNL.eltwiseRelu, 0, 0), "append_eltwise");
      check(s.dnnl_primitive_attr_set_post_ops(attr, ops), "attr_set_post_ops");
    }
    const pd = primitiveDesc(sh.forwardOp, null, attr);
    const src = operand(sh.plain.src, queried(pd, DNNL.querySrc), false);
    const wei = operand(sh.plain.wei, queried(pd, DNNL.queryWeights), false);
    const dst = operand(sh.plain.dst, queried(pd, DNNL.queryDst), true);
    const bias = memory(sh.plain.bias);
    const conv = stage(primitive(pd), [
      [DNNL.argSrc, src.inner],
      [DNNL.argWeights, wei.inner],
      [DNNL.argBias, bias],
      [DNNL.argDst, dst.inner],
    ]);
    return { src, wei, bias, dst, conv };
  };

  interface BackwardPlan {
    /** The (masked) output gradient as each primitive reads it. */
    gyData: Operand | null;
    gyWeights: Operand | null;
    wei: Operand | null;
    gx: Operand | null;
    data: Stage | null;
    src: Operand | null;
    gw: Operand | null;
    gb: ForeignPointer | null;
    weights: Stage | null;
  }
  const backwardPlan = (
    g: ConvGeometry,
    N: number,
    O: number,
    wantGx: boolean,
    wantGw: boolean,
  ): BackwardPlan => {
    const sh = shapeOf(g, N, O);
    const hint = primitiveDesc(sh.forwardOp, null);
    const plan: BackwardPlan = {
      gyData: null,
      gyWeights: null,
      wei: null,
      gx: null,
      data: null,
      src: null,
      gw: null,
      gb: null,
      weights: null,
    };
    if (wantGx) {
      const op = new Uint8Array(OP_DESC_BYTES);
      check(
        s.dnnl_convolution_backward_data_desc_init(
          op,
          DNNL.convolutionDirect,
          sh.any.src,
          sh.any.wei,
          sh.any.dst,
          sh.strides,
          sh.padL,
          sh.padRight,
        ),
        "convolution_backward_data_desc_init",
      );
      const pd = primitiveDesc(op, hint);
      plan.gyData = operand(sh.plain.dst, queried(pd, DNNL.queryDiffDst), false);
      plan.wei = operand(sh.plain.wei, queried(pd, DNNL.queryWeights), false);
      plan.gx = operand(sh.plain.src, queried(pd, DNNL.queryDiffSrc), true);
      plan.data = stage(primitive(pd), [
        [DNNL.argDiffDst, plan.gyData.inner],
        [DNNL.argWeights, plan.wei.inner],
        [DNNL.argDiffSrc, plan.gx.inner],
      ]);
    }
    if (wantGw) {
      const op = new Uint8Array(OP_DESC_BYTES);
      check(
        s.dnnl_convolution_backward_weights_desc_init(
          op,
          DNNL.convolutionDirect,
          sh.any.src,
          sh.any.wei,
          sh.plain.bias,
          sh.any.dst,
          sh.strides,
          sh.padL,
          sh.padRight,
        ),
        "convolution_backward_weights_desc_init",
      );
      const pd = primitiveDesc(op, hint);
      const gyMd = queried(pd, DNNL.queryDiffDst);
      // Backward-data and backward-weights usually read the gradient in the same layout: reorder once.
      plan.gyWeights = plan.gyData !== null && s.dnnl_memory_desc_equal(gyMd, plan.gyData.md) !== 0
        ? plan.gyData
        : operand(sh.plain.dst, gyMd, false);
      plan.src = operand(sh.plain.src, queried(pd, DNNL.querySrc), false);
      plan.gw = operand(sh.plain.wei, queried(pd, DNNL.queryDiffWeights), true);
      plan.gb = memory(sh.plain.bias);
      plan.weights = stage(primitive(pd), [
        [DNNL.argSrc, plan.src.inner],
        [DNNL.argDiffDst, plan.gyWeights.inner],
        [DNNL.argDiffWeights, plan.gw.inner],
        [DNNL.argDiffBias, plan.gb],
      ]);
    }
    return plan;
  };
  const convKernels: Dnnl["convKernels"] = (fallback, minMacs = DNNL_MIN_MACS) => {
    /** Whether a convolution goes to the fallback for its size (or emptiness). */
    const small = (g: ConvGeometry, N: number, O: number): boolean =>
      N === 0 || O === 0 ||
      N * O * g.outH * g.outW * g.channels * g.kernelH * g.kernelW < minMacs;
    const forwards = new Plans<ForwardPlan>();
    const backwards = new Plans<BackwardPlan>();
    const convForward: ConvForwardKernel = (a) => {
      const { g, batch: N, outChannels: O } = a;
      const key = `${geometryKey(g)}|${N}|${O}|${a.relu}`;
      const plan = small(g, N, O)
        ? null
        : forwards.get(key, () => building(() => forwardPlan(g, N, O, a.relu)));
      if (plan === null) {
        fallback.convForward(a);
        return;
      }
      parkThreads();
      const t0 = profiling() ? performance.now() : 0;
      const inSize = N * g.channels * g.height * g.width;
      bind(plan.src.plain, a.x, a.xOffset, inSize);
      run(plan.src.reorder);
      bind(plan.wei.plain, a.w, a.wOffset, O * g.channels * g.kernelH * g.kernelW);
      run(plan.wei.reorder);
      if (a.bias === null) bind(plan.bias, zerosOf(O), 0, O);
      else bind(plan.bias, a.bias, a.biasOffset, O);
      bind(plan.dst.plain, a.out, a.outOffset, N * O * g.outH * g.outW);
      run(plan.conv);
      run(plan.dst.reorder);
      if (t0 !== 0) profileAdd("dnnl", performance.now() - t0);
    };
    const convBackward: ConvBackwardKernel = (a) => {
      const { g, batch: N, outChannels: O } = a;
      const relu = a.y !== null;
      const wantGx = a.gx !== null;
      const wantGw = a.gw !== null || a.gb !== null;
      if (!wantGx && !wantGw) return;
      const key = `${geometryKey(g)}|${N}|${O}|${wantGx}|${wantGw}`;
      const plan = small(g, N, O)
        ? null
        : backwards.get(key, () => building(() => backwardPlan(g, N, O, wantGx, wantGw)));
      if (plan === null) {
        fallback.convBackward(a);
        return;
      }
      parkThreads();
      const t0 = profiling() ? performance.now() : 0;
      const outSize = N * O * g.outH * g.outW;
      const inSize = N * g.channels * g.height * g.width;
      const wSize = O * g.channels * g.kernelH * g.kernelW;
      // The masked gradient (or gy itself) as every primitive below reads it.
      let gy = a.gy;
      let gyOffset = a.gyOffset;
      if (relu) {
        // Elementwise, so the flat ReLU plan serves; on the team, unlike the Linear layer's.
        const { backward } = reluOf(outSize);
        bind(backward.gy, a.gy, a.gyOffset, outSize);
        bind(backward.y, a.y!, a.yOffset, outSize);
        gy = scratchOf("masked", outSize);
        bind(backward.out, gy, 0, outSize);
        run(backward.stage);
        gyOffset = 0;
      }
      if (plan.data !== null) {
        bind(plan.gyData!.plain, gy, gyOffset, outSize);
        run(plan.gyData!.reorder);
        bind(plan.wei!.plain, a.w, a.wOffset, wSize);
        run(plan.wei!.reorder);
        bind(plan.gx!.plain, a.gx!, a.gxOffset, inSize);
        run(plan.data);
        run(plan.gx!.reorder);
      }
      if (plan.weights !== null) {
        if (plan.gyWeights !== plan.gyData) {
          bind(plan.gyWeights!.plain, gy, gyOffset, outSize);
          run(plan.gyWeights!.reorder);
        }
        bind(plan.src!.plain, a.x, a.xOffset, inSize);
        run(plan.src!.reorder);
        const gw = a.gw ?? scratchOf("gw", wSize);
        bind(plan.gw!.plain, gw, a.gw === null ? 0 : a.gwOffset, wSize);
        const gb = a.gb ?? scratchOf("gb", O);
        bind(plan.gb!, gb, a.gb === null ? 0 : a.gbOffset, O);
        run(plan.weights);
        run(plan.gw!.reorder);
      }
      if (t0 !== 0) profileAdd("dnnl", performance.now() - t0);
    };
    return { convForward, convBackward };
  };

  let threads = 1;
  /**
   * Runs `work` (a memory-bound elementwise stage, a small product) with oneDNN's team at one
   * thread: waking the team costs more than it saves, and the team, left spinning, would slow
   * the BLAS product next.
   */
  const alone = (work: () => void): void => {
    if (omp === null || threads === 1) {
      work();
      return;
    }
    omp.symbols.omp_set_num_threads(1);
    try {
      work();
    } finally {
      omp.symbols.omp_set_num_threads(threads);
    }
  };

  /** ReLU forward and backward over a flat [n] array, plain layout. */
  interface ReluPlan {
    forward: { x: ForeignPointer; out: ForeignPointer; stage: Stage };
    backward: { y: ForeignPointer; gy: ForeignPointer; out: ForeignPointer; stage: Stage };
  }
  const reluPlan = (n: number): ReluPlan => {
    const md = desc([n], DNNL.tagA);
    const fwdOp = new Uint8Array(OP_DESC_BYTES);
    check(
      s.dnnl_eltwise_forward_desc_init(
        fwdOp,
        DNNL.forwardTraining,
        DNNL.eltwiseReluUseDst,
        md,
        0,
        0,
      ),
      "eltwise_forward_desc_init",
    );
    const fwdPd = primitiveDesc(fwdOp, null);
    const bwdOp = new Uint8Array(OP_DESC_BYTES);
    check(
      s.dnnl_eltwise_backward_desc_init(bwdOp, DNNL.eltwiseReluUseDst, md, md, 0, 0),
      "eltwise_backward_desc_init",
    );
    const bwdPd = primitiveDesc(bwdOp, fwdPd);
    const [x, out, y, gy, gOut] = [0, 1, 2, 3, 4].map(() => memory(md));
    return {
      forward: { x, out, stage: stage(primitive(fwdPd), [[DNNL.argSrc, x], [DNNL.argDst, out]]) },
      backward: {
        y,
        gy,
        out: gOut,
        stage: stage(primitive(bwdPd), [
          [DNNL.argDst, y],
          [DNNL.argDiffDst, gy],
          [DNNL.argDiffSrc, gOut],
        ]),
      },
    };
  };
  const relus = new Plans<ReluPlan>();
  const reluOf = (n: number): ReluPlan => {
    const plan = relus.get(String(n), () => building(() => reluPlan(n)));
    if (plan === null) throw new Error(`oneDNN refused a ReLU over ${n} floats`);
    return plan;
  };

  return {
    path,
    description,
    setThreads: (n) => {
      threads = n;
      omp?.symbols.omp_set_num_threads(n);
    },
    convKernels,
    liveObjects: () => live,
    int8Product: (inputs, weights, sums, m, n, k) => {
      if (m === 0 || n === 0) return;
      if (inputs.length < m * k || weights.length < n * k || sums.length < m * n) {
        throw new RangeError(
          `int8Product: ${m}x${k} by ${n}x${k} needs ${m * k}, ${n * k} and ${m * n} elements; ` +
            `got ${inputs.length}, ${weights.length} and ${sums.length}`,
        );
      }
      parkThreads();
      const t0 = profiling() ? performance.now() : 0;
      const [M, N, K] = [BigInt(m), BigInt(n), BigInt(k)];
      const product = () =>
        check(
          s.dnnl_gemm_u8s8s32(
            NO,
            TRANSPOSED,
            FIXED,
            M,
            N,
            K,
            1,
            inputs,
            K,
            0,
            weights,
            K,
            0,
            0,
            sums,
            N,
            noOffset,
          ),
          "gemm_u8s8s32",
        );
      if (m * n * k < DNNL_MIN_MACS) alone(product);
      else product();
      if (t0 !== 0) profileAdd("dnnl", performance.now() - t0);
    },
    relu: (x, xOffset, out, outOffset, n) => {
      if (n === 0) return;
      const { forward } = reluOf(n);
      bind(forward.x, x, xOffset, n);
      bind(forward.out, out, outOffset, n);
      alone(() => run(forward.stage));
    },
    reluBackward: (gy, gyOffset, y, yOffset, out, outOffset, n) => {
      if (n === 0) return;
      const { backward } = reluOf(n);
      bind(backward.gy, gy, gyOffset, n);
      bind(backward.y, y, yOffset, n);
      bind(backward.out, out, outOffset, n);
      alone(() => run(backward.stage));
    },
  };
}

/** `dnnl_gemm_u8s8s32`'s flags: A as stored, B transposed, one fixed (zero) offset for C. */
const [NO, TRANSPOSED, FIXED] = ["N", "T", "F"].map((c) => c.charCodeAt(0));
/** The C offset `dnnl_gemm_u8s8s32` adds: none. */
const noOffset = new Int32Array(1);

/**
 * Convolutions below this many multiply-adds run on the fallback: for one image oneDNN's
 * reorders and its threads' wake-ups cost more than the arithmetic. On the Intel Xeon, 2
 * threads, AlexNet's forward pass (medians): batch 1 took 0.35 ms with every convolution on the
 * im2col path against 0.65 ms on oneDNN; at batch 128, 6.8 ms all on oneDNN against 7.4 ms
 * with conv1 (11 M multiply-adds) on im2col; at batch 8 the two were within 4%.
 */
export const DNNL_MIN_MACS = 1 << 22;

/** The cache key of a convolution's geometry. */
function geometryKey(g: ConvGeometry): string {
  return [g.channels, g.height, g.width, g.kernelH, g.kernelW, g.strideH, g.strideW, g.padH, g.padW]
    .join(",");
}

/**
 * Plans by shape, most recently used last, at most {@link MAX_PLANS}; a shape oneDNN refused is
 * remembered as null (the caller then runs its fallback).
 */
class Plans<T> {
  #plans = new Map<string, Built<T> | null>();

  get(key: string, build: () => Built<T>): T | null {
    let built = this.#plans.get(key);
    if (built !== undefined) {
      this.#plans.delete(key);
    } else {
      try {
        built = build();
      } catch {
        built = null;
      }
      if (this.#plans.size >= MAX_PLANS) {
        const [oldest, evicted] = this.#plans.entries().next().value!;
        this.#plans.delete(oldest);
        // Its oneDNN objects go now; its blocked buffers go with the garbage collector.
        evicted?.release();
      }
    }
    this.#plans.set(key, built);
    return built?.plan ?? null;
  }
}

/** A plan and the release of the oneDNN objects it holds. */
interface Built<T> {
  plan: T;
  release(): void;
}

/** Shapes with a cached plan per kernel. */
const MAX_PLANS = 32;

/** `n` floats over an explicit ArrayBuffer: never inside V8's heap, so never moved. */
function offHeap(n: number): Float32Array {
  return new Float32Array(new ArrayBuffer(4 * Math.max(1, n)));
}

let zeros = new Float32Array(0);
function zerosOf(n: number): Float32Array {
  if (zeros.length < n) zeros = new Float32Array(Math.max(n, 256));
  return zeros;
}

const scratch = new Map<string, Float32Array>();
function scratchOf(name: string, n: number): Float32Array {
  let a = scratch.get(name);
  if (a === undefined || a.length < n) scratch.set(name, a = new Float32Array(n));
  return a;
}
