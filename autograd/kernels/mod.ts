/**
 * The backend boundary: every hot loop the ops run goes through the {@linkcode kernels} table, so a
 * faster implementation (WebAssembly SIMD, workers, a system BLAS) can replace the reference
 * TypeScript kernels one by one with {@linkcode useKernels}, and tests can compare each
 * replacement with {@linkcode referenceKernels}. {@linkcode useBackend} installs a whole backend
 * ("auto", "native", "wasm", "reference") and says which it chose and why; the thread count
 * ({@linkcode setThreads}) goes to whichever backend runs the large products.
 *
 * @module
 */

import {
  col2im,
  convBackwardReference,
  convForwardReference,
  im2col,
  maxPoolBackward,
  maxPoolForward,
} from "./conv.ts";
import {
  addInto,
  binary,
  copyStrided,
  dropoutMask,
  scale,
  unary,
  unaryBackward,
  where,
} from "./elementwise.ts";
import { gather, type GatherKernel, scatterAdd, type ScatterAddKernel } from "./gather.ts";
import { type Gemm, gemmReference } from "./gemm.ts";
import { linearBackwardReference, linearForwardReference } from "./linear.ts";
import { adamStepReference, sgdStepReference } from "./optim.ts";
import { quantizedLinearReference } from "./quantized.ts";
import {
  wasmAdamStep,
  wasmAddInto,
  wasmAvailable,
  wasmConvBackward,
  wasmConvForward,
  wasmGemm,
  wasmLinearBackward,
  wasmLinearForward,
  wasmQuantizedLinear,
  wasmQuantizedLinearWith,
  wasmSgdStep,
  wasmUnary,
  wasmUnaryBackward,
  wasmZero,
} from "./wasm/mod.ts";
import { persistentFloat32 } from "./wasm/memory.ts";
import { getThreads as wasmGetThreads, setThreads as wasmSetThreads } from "./wasm/mod.ts";
import {
  type Blas,
  type Dnnl,
  envIfGranted,
  loadBlas,
  loadDnnl,
  nativeKernels,
} from "./native/mod.ts";
import {
  argmaxAxis,
  crossEntropyBackward,
  crossEntropyForward,
  maxAxis,
  softmaxAxis,
  softmaxAxisBackward,
  sumAxis,
} from "./reduce.ts";

export type { Gemm } from "./gemm.ts";
export type { ConvGeometry } from "./conv.ts";
export type { BinaryKind, UnaryKind } from "./elementwise.ts";
export type * from "./types.ts";
import type {
  AdamStepKernel,
  AddIntoKernel,
  ArgReduceKernel,
  AxisReduceKernel,
  BinaryKernel,
  Col2imKernel,
  ConvBackwardKernel,
  ConvForwardKernel,
  CopyStridedKernel,
  CrossEntropyBackwardKernel,
  CrossEntropyForwardKernel,
  DropoutMaskKernel,
  Im2colKernel,
  LinearBackwardKernel,
  LinearForwardKernel,
  MaxPoolBackwardKernel,
  MaxPoolForwardKernel,
  QuantizedLinearKernel,
  ScaleKernel,
  SgdStepKernel,
  SoftmaxBackwardKernel,
  SoftmaxKernel,
  UnaryBackwardKernel,
  UnaryKernel,
  WhereKernel,
  ZeroKernel,
} from "./types.ts";

/** The table of kernels the ops call. Each entry is a plain function over Float32Array offsets. */
export interface Kernels {
  /** Short name of the implementation, e.g. "typescript". */
  name: string;
  /** Allocates zeroed storage for `n` floats (lets a backend place tensors in its own memory). */
  alloc(n: number): Float32Array;
  /**
   * Allocates zeroed storage for a long-lived tensor: parameters, their gradients, optimizer
   * state. The WebAssembly backend places it in its memory (up to a budget), so kernels use it
   * in place; it is reclaimed by the garbage collector like any array.
   */
  allocPersistent(n: number): Float32Array;
  /** C = op(A)·op(B) + beta·C. */
  gemm: Gemm;
  /** The Linear layer X·Wᵀ + b (+ ReLU when fused). */
  linearForward: LinearForwardKernel;
  /** Gradients of the Linear layer (weight and bias gradients accumulated). */
  linearBackward: LinearBackwardKernel;
  /** Unfolds an image into GEMM columns. */
  im2col: Im2colKernel;
  /** Folds GEMM columns back into an image, adding overlaps. */
  col2im: Col2imKernel;
  /** Convolution of a batch (+ bias, + ReLU when fused). */
  convForward: ConvForwardKernel;
  /** Gradients of a batched convolution with respect to input, filters and bias. */
  convBackward: ConvBackwardKernel;
  /** Max pooling forward with argmax. */
  maxPoolForward: MaxPoolForwardKernel;
  /** Max pooling backward through the saved argmax. */
  maxPoolBackward: MaxPoolBackwardKernel;
  /** Elementwise unary map. */
  unary: UnaryKernel;
  /** Derivative of a unary map. */
  unaryBackward: UnaryBackwardKernel;
  /** Broadcast binary arithmetic over strided operands. */
  binary: BinaryKernel;
  /** Elementwise selection cond ? a : b over strided operands. */
  where: WhereKernel;
  /** Strided copy between views (contiguous() and gradient scatter). */
  copyStrided: CopyStridedKernel;
  /** Gradient accumulation dst += src. */
  addInto: AddIntoKernel;
  /** Gather along one dimension by an int32 index (gather, indexSelect, embedding). */
  gather: GatherKernel;
  /** Scatter-add along one dimension by an int32 index (the gradient of gather). */
  scatterAdd: ScatterAddKernel;
  /** Zeroes a range in place (optimizers' zeroGrad). */
  zero: ZeroKernel;
  /** out = x · s. */
  scale: ScaleKernel;
  /** Inverted-dropout mask from a uniform source. */
  dropoutMask: DropoutMaskKernel;
  /** Sum over the middle axis of [outer, n, inner]. */
  sumAxis: AxisReduceKernel;
  /** Max over the middle axis of [outer, n, inner]. */
  maxAxis: AxisReduceKernel;
  /** Index of the maximum over the middle axis of [outer, n, inner]. */
  argmaxAxis: ArgReduceKernel;
  /** Softmax or log-softmax over the middle axis. */
  softmaxAxis: SoftmaxKernel;
  /** Gradient of softmax or log-softmax. */
  softmaxAxisBackward: SoftmaxBackwardKernel;
  /** Fused softmax cross-entropy, forward. */
  crossEntropyForward: CrossEntropyForwardKernel;
  /** Fused softmax cross-entropy, backward. */
  crossEntropyBackward: CrossEntropyBackwardKernel;
  /** One SGD update of a parameter tensor (momentum, Nesterov, weight decay). */
  sgdStep: SgdStepKernel;
  /** One Adam / AdamW update of a parameter tensor. */
  adamStep: AdamStepKernel;
  /** A Linear layer with int8 weights and inputs quantized at each call (quantizeDynamic). */
  quantizedLinear: QuantizedLinearKernel;
}

/** The reference TypeScript kernels: the definition of correct for every faster backend. */
export const referenceKernels: Readonly<Kernels> = Object.freeze({
  name: "typescript",
  alloc: (n: number) => new Float32Array(n),
  allocPersistent: (n: number) => new Float32Array(n),
  gemm: gemmReference,
  linearForward: linearForwardReference,
  linearBackward: linearBackwardReference,
  im2col,
  col2im,
  convForward: convForwardReference,
  convBackward: convBackwardReference,
  maxPoolForward,
  maxPoolBackward,
  unary,
  unaryBackward,
  binary,
  where,
  copyStrided,
  addInto,
  gather,
  scatterAdd,
  zero: (x: Float32Array, offset: number, n: number) => {
    x.fill(0, offset, offset + n);
  },
  scale,
  dropoutMask,
  sumAxis,
  maxAxis,
  argmaxAxis,
  softmaxAxis,
  softmaxAxisBackward,
  crossEntropyForward,
  crossEntropyBackward,
  sgdStep: sgdStepReference,
  adamStep: adamStepReference,
  quantizedLinear: quantizedLinearReference,
});

/**
 * The WebAssembly backend's table, where the runtime supports WebAssembly SIMD and shared memory
 * (else the reference table): GEMM, the Linear layer's passes, the batched convolution passes,
 * ReLU / leaky ReLU and their gradients, gradient accumulation, zeroing, quantized Linear
 * layers, the SGD / Adam updates
 * (bitwise equal to the reference), and persistent storage in the wasm memory for long-lived
 * tensors; every other entry is the reference kernel. Its results are bitwise identical for any
 * thread count.
 */
export const wasmKernels: Readonly<Kernels> = Object.freeze(
  wasmAvailable
    ? {
      ...referenceKernels,
      name: "wasm-simd",
      allocPersistent: persistentFloat32,
      gemm: wasmGemm,
      linearForward: wasmLinearForward,
      linearBackward: wasmLinearBackward,
      convForward: wasmConvForward,
      convBackward: wasmConvBackward,
      unary: wasmUnary,
      unaryBackward: wasmUnaryBackward,
      addInto: wasmAddInto,
      zero: wasmZero,
      sgdStep: wasmSgdStep,
      adamStep: wasmAdamStep,
      quantizedLinear: wasmQuantizedLinear,
    }
    : { ...referenceKernels },
);

/**
 * The kernels in use now. Ops read entries from this object at call time. On import it holds
 * {@linkcode wasmKernels} (the reference kernels where WebAssembly SIMD is missing): importing
 * tapegrad never loads native code; {@linkcode useBackend} switches.
 */
export const kernels: Kernels = { ...wasmKernels };

/**
 * Replaces some kernels (the others stay as they are) and returns a function that restores the
 * previous set, e.g. `const restore = useKernels({ gemm: fastGemm }); …; restore();`.
 */
export function useKernels(replacements: Partial<Kernels>): () => void {
  const previous = { ...kernels };
  Object.assign(kernels, replacements);
  return () => {
    Object.assign(kernels, previous);
  };
}

// ---- backends ----

/** A backend that {@linkcode useBackend} can install. */
export type BackendName = "native" | "wasm" | "reference";
/** What {@linkcode useBackend} accepts: a backend, or "auto" (the fastest that loads here). */
export type BackendRequest = "auto" | BackendName;
/** Every value {@linkcode useBackend} accepts (for flag parsing and error messages). */
export const BACKEND_REQUESTS: readonly BackendRequest[] = ["auto", "native", "wasm", "reference"];

/** What {@linkcode useBackend} installed, and why. */
export interface BackendChoice {
  /** What was asked for. */
  readonly requested: BackendRequest;
  /** What runs now. */
  readonly backend: BackendName;
  /** One line: the library and build for native, or why native (or wasm) is not running. */
  readonly reason: string;
  /** The BLAS library's path when `backend` is "native", else null. */
  readonly library: string | null;
}

/** A backend was asked for by name but cannot run here; the message says why. */
export class BackendUnavailableError extends Error {
  /** Creates the error for `backend` with the reason it cannot run. */
  constructor(readonly backend: BackendName, reason: string) {
    super(`the ${backend} backend is unavailable: ${reason}`);
    this.name = "BackendUnavailableError";
  }
}

let active: BackendChoice = {
  requested: "wasm",
  backend: wasmAvailable ? "wasm" : "reference",
  reason: wasmAvailable
    ? "the default on import"
    : "the default on import (WebAssembly SIMD or shared memory is unavailable)",
  library: null,
};
let activeBlas: Blas | null = null;
/** The oneDNN the native backend runs the convolutions on, or null. */
let activeDnnl: Dnnl | null = null;
/** The thread count asked for with setThreads (null: the wasm default, cores or env). */
let threadCount: number | null = null;

/** The backend installed now. */
export function currentBackend(): BackendChoice {
  return active;
}

/**
 * The backend named by env `TAPEGRAD_BACKEND` (read only when `--allow-env` already grants it,
 * so it never prompts), or undefined when unset. An invalid value throws, naming the valid ones.
 */
export function backendFromEnv(): BackendRequest | undefined {
  const raw = envIfGranted("TAPEGRAD_BACKEND");
  if (raw === undefined || raw === "") return undefined;
  if (!(BACKEND_REQUESTS as readonly string[]).includes(raw)) {
    throw new RangeError(
      `TAPEGRAD_BACKEND must be one of ${BACKEND_REQUESTS.join(", ")}; got "${raw}"`,
    );
  }
  return raw as BackendRequest;
}

/**
 * Installs a whole backend into {@linkcode kernels} and returns what runs and why:
 * - "native": the products of Linear, matmul and the convolutions on the system BLAS (Deno with
 *   `--allow-ffi`; the library from `TAPEGRAD_BLAS` or the usual names), the convolutions instead
 *   on oneDNN 2 where `libdnnl.so.2` (or `TAPEGRAD_DNNL`) loads, with the int8 layers' integer
 *   products, everything else on the wasm kernels. Throws {@linkcode BackendUnavailableError} when no BLAS loads.
 * - "wasm": WebAssembly SIMD on a worker pool, bitwise identical for any thread count.
 * - "reference": the plain TypeScript kernels (the definition of correct).
 * - "auto" (the default, or env `TAPEGRAD_BACKEND`): native when a BLAS loads, else wasm, else
 *   reference; never throws for want of a library.
 *
 * The thread count ({@linkcode setThreads}) is carried over. With native, BLAS and tapegrad's
 * pool take turns on the cores: BLAS runs the products on all the threads, the pool runs the bulk
 * passes (zeroing, optimizer steps, the convolutions' layout passes, the int8 layers) on all of
 * them, and small elementwise jobs run on the calling thread alone; OpenBLAS's idle threads sleep
 * ~25 µs after a product (see `loadBlas`), the pool's after ~1 ms.
 *
 * Reproducibility: wasm gives bitwise the same results for any thread count; native gives
 * bitwise the same results run after run on the same libraries and thread count (tested), and
 * OpenBLAS and oneDNN may round differently with another thread count.
 */
export function useBackend(request: BackendRequest = backendFromEnv() ?? "auto"): BackendChoice {
  if (!(BACKEND_REQUESTS as readonly string[]).includes(request)) {
    throw new RangeError(
      `useBackend: expected one of ${BACKEND_REQUESTS.join(", ")}, got ${JSON.stringify(request)}`,
    );
  }
  if (request === "reference") {
    install(referenceKernels, null, null);
    active = { requested: request, backend: "reference", reason: "asked for", library: null };
    return active;
  }
  const wasmWhy = "WebAssembly SIMD or shared memory is unavailable";
  if (request === "native" || request === "auto") {
    const load = loadBlas();
    if (load.blas !== null) {
      const blas = load.blas;
      const dnnlLoad = loadDnnl();
      const dnnl = dnnlLoad.dnnl;
      const native = nativeKernels(blas, dnnl);
      // The im2col convolutions' layout passes are bulk passes (withThreads); on oneDNN, where
      // it loads, a convolution is one library call with its own threads, like a BLAS product.
      const im2col = {
        convForward: withThreads(native.convForward),
        convBackward: withThreads(native.convBackward),
      };
      const convs = dnnl === null ? im2col : dnnl.convKernels(im2col);
      // The products (Linear, matmul, the convolutions') on BLAS, all else on wasm. Between
      // products tapegrad's pool stays at one thread (applyThreads): a worker spinning after a
      // small elementwise job would share the cores with the next product. The bulk passes
      // (zeroing, the optimizer steps, the convolutions' layout passes) get every thread
      // (withThreads), and every BLAS call first parks the workers (native/gemm.ts) so none
      // spins through the product.
      const table: Kernels = {
        ...wasmKernels,
        gemm: native.gemm,
        linearForward: native.linearForward,
        linearBackward: native.linearBackward,
        ...convs,
        zero: withThreads(wasmKernels.zero),
        sgdStep: withThreads(wasmKernels.sgdStep),
        adamStep: withThreads(wasmKernels.adamStep),
        // The int8 layers: their integer products on oneDNN where it loads (its VNNI kernels
        // run 512-bit where wasm has 128), the input and output passes as wasm bulk passes.
        quantizedLinear: withThreads(
          dnnl === null
            ? wasmKernels.quantizedLinear
            : wasmQuantizedLinearWith((...args) => dnnl.int8Product(...args)),
        ),
        name: `native-blas${dnnl === null ? "" : "+dnnl"}+${wasmKernels.name}`,
      };
      install(table, blas, dnnl);
      active = {
        requested: request,
        backend: "native",
        reason: dnnl === null
          ? `${load.reason}; convolutions as im2col on BLAS (${dnnlLoad.reason})`
          : `${load.reason}; convolutions on ${dnnlLoad.reason}`,
        library: blas.path,
      };
      return active;
    }
    if (request === "native") throw new BackendUnavailableError("native", load.reason);
    const backend: BackendName = wasmAvailable ? "wasm" : "reference";
    install(wasmKernels, null, null);
    active = {
      requested: request,
      backend,
      reason: `native unavailable: ${load.reason}${wasmAvailable ? "" : `; ${wasmWhy}`}`,
      library: null,
    };
    return active;
  }
  if (!wasmAvailable) throw new BackendUnavailableError("wasm", wasmWhy);
  install(wasmKernels, null, null);
  active = { requested: request, backend: "wasm", reason: "asked for", library: null };
  return active;
}

/**
 * A wasm kernel run with tapegrad's pool at the whole thread count while the native backend
 * holds it at one. Measured on the 2-core AMD EPYC, alternating processes: with OpenBLAS's
 * threads sleeping soon after their products (`loadBlas`) and the SGD step on both cores, the
 * MLP's step took 0.92 of the time (median of 12 pairs), AlexNet's 71 against 79 ms; the SGD
 * step on both cores with OpenBLAS spinning was slower than on one. Without wasm SIMD (the
 * reference kernels) nothing changes.
 */
function withThreads<A extends unknown[]>(kernel: (...args: A) => void): (...args: A) => void {
  return (...args) => {
    const n = wasmAvailable ? effectiveThreads() : 1;
    if (n > 1) wasmSetThreads(n);
    try {
      kernel(...args);
    } finally {
      if (n > 1) wasmSetThreads(1);
    }
  };
}

/** Puts `table` into `kernels` and hands the thread count to the backend that uses it. */
function install(table: Readonly<Kernels>, blas: Blas | null, dnnl: Dnnl | null): void {
  const threads = effectiveThreads();
  Object.assign(kernels, table);
  activeBlas = blas;
  activeDnnl = dnnl;
  applyThreads(threads);
}

function effectiveThreads(): number {
  threadCount ??= wasmAvailable
    ? wasmGetThreads()
    : Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
  return threadCount;
}

function applyThreads(n: number): void {
  if (activeBlas !== null) {
    activeBlas.setThreads(n);
    activeDnnl?.setThreads(n);
    // The pool's workers get only the bulk passes (withThreads); idle, they sleep (pool.ts).
    if (wasmAvailable) wasmSetThreads(1);
  } else if (wasmAvailable) {
    wasmSetThreads(n);
  }
}

/**
 * Sets how many threads (the calling thread included) large products may use: the wasm worker
 * pool's size, or with the native backend the BLAS library's thread count. 1 runs everything on
 * the calling thread.
 */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`setThreads: expected an integer ≥ 1, got ${n}`);
  }
  threadCount = Math.min(64, n);
  applyThreads(threadCount);
}

/**
 * The thread count large products use now (see {@linkcode setThreads}): BLAS's under the native
 * backend, else the wasm pool's, and 1 where neither runs (the TypeScript kernels, e.g. in a page
 * that is not cross-origin isolated), whatever `setThreads` asked for.
 */
export function getThreads(): number {
  if (activeBlas !== null) return effectiveThreads();
  return wasmAvailable ? wasmGetThreads() : 1;
}
