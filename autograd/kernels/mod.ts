/**
 * The backend boundary: every hot loop the ops run goes through the {@linkcode kernels} table, so a
 * faster implementation (WebAssembly SIMD, workers) can replace the reference TypeScript kernels one
 * by one with {@linkcode useKernels}, and tests can compare each replacement with
 * {@linkcode referenceKernels}.
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
import {
  wasmAdamStep,
  wasmAddInto,
  wasmAvailable,
  wasmConvBackward,
  wasmConvForward,
  wasmGemm,
  wasmLinearBackward,
  wasmLinearForward,
  wasmSgdStep,
  wasmUnary,
  wasmUnaryBackward,
  wasmZero,
} from "./wasm/mod.ts";
import { persistentFloat32 } from "./wasm/memory.ts";

export { getThreads, setThreads } from "./wasm/mod.ts";
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
});

/**
 * The kernels in use now. Ops read entries from this object at call time. Where the runtime
 * supports WebAssembly SIMD and shared memory, the defaults are the WebAssembly kernels (on all
 * cores): GEMM, the Linear layer's passes, the batched convolution passes, ReLU / leaky ReLU and their gradients, gradient
 * accumulation, zeroing, the SGD / Adam updates (bitwise equal to the reference), and persistent
 * storage in the wasm memory for long-lived tensors; every other entry is the reference kernel.
 */
export const kernels: Kernels = wasmAvailable
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
  }
  : { ...referenceKernels };

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
