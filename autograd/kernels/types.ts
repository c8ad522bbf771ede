/**
 * Signatures of the kernels in the backend table: plain functions over Float32Array offsets.
 * A faster backend implements some of them; tests compare it with the reference.
 *
 * @module
 */

import type { AnyStorage } from "../dtype.ts";
import type { BinaryKind, UnaryKind } from "./elementwise.ts";
import type { ConvGeometry } from "./conv.ts";

/**
 * Unfolds one image [C, H, W] at `xOffset` into columns [C·kh·kw, outH·outW] at `colOffset`:
 * row (c, i, j) holds the input pixel under kernel tap (i, j) for every output position, 0 where
 * the tap falls in the padding.
 */
export type Im2colKernel = (
  x: Float32Array,
  xOffset: number,
  g: ConvGeometry,
  col: Float32Array,
  colOffset: number,
) => void;

/**
 * The adjoint of {@linkcode im2col}: adds columns [C·kh·kw, outH·outW] back into an image [C, H, W]
 * (which the caller zeroes first), summing where windows overlap.
 */
export type Col2imKernel = (
  col: Float32Array,
  colOffset: number,
  g: ConvGeometry,
  x: Float32Array,
  xOffset: number,
) => void;

/**
 * Max pooling over `planes` independent [H, W] planes (N·C of them), writing the maximum of each
 * window and the flat index (within its plane) of the element that won, for the backward pass.
 * Padding never wins: it acts as −∞.
 */
export type MaxPoolForwardKernel = (
  x: Float32Array,
  planes: number,
  g: ConvGeometry,
  out: Float32Array,
  argmax: Int32Array,
) => void;

/** Routes each pooled gradient back to the input element that won its window (adds into `gx`). */
export type MaxPoolBackwardKernel = (
  gy: Float32Array,
  argmax: Int32Array,
  planes: number,
  g: ConvGeometry,
  gx: Float32Array,
) => void;

/** out[i] = f(x[i]) for i < n; `param` is the exponent of pow or the slope of leakyRelu. */
export type UnaryKernel = (
  kind: UnaryKind,
  x: Float32Array,
  xo: number,
  out: Float32Array,
  oo: number,
  n: number,
  param: number,
) => void;

/**
 * Gradient of a unary map: gx[i] = gy[i] · f′(x[i]), written with the input `x` or the output `y`,
 * whichever gives the derivative most cheaply and accurately. All arrays are contiguous from 0.
 */
export type UnaryBackwardKernel = (
  kind: UnaryKind,
  gy: Float32Array,
  x: Float32Array,
  y: Float32Array,
  gx: Float32Array,
  n: number,
  param: number,
) => void;

/**
 * out = a ∘ b elementwise, where a and b are strided views already broadcast to `shape` (stride 0
 * on broadcast dimensions) and `out` is contiguous from `oo`.
 */
export type BinaryKernel = (
  kind: BinaryKind,
  shape: readonly number[],
  a: AnyStorage,
  ao: number,
  aStrides: readonly number[],
  b: AnyStorage,
  bo: number,
  bStrides: readonly number[],
  out: AnyStorage,
  oo: number,
) => void;

/**
 * out = cond ? a : b elementwise, over strided views already broadcast to `shape` (stride 0 on
 * broadcast dimensions); `out` is contiguous from `oo`.
 */
export type WhereKernel = (
  shape: readonly number[],
  cond: Uint8Array,
  co: number,
  condStrides: readonly number[],
  a: AnyStorage,
  ao: number,
  aStrides: readonly number[],
  b: AnyStorage,
  bo: number,
  bStrides: readonly number[],
  out: AnyStorage,
  oo: number,
) => void;

/**
 * Copies a strided view of `shape` from `src` into a strided view in `dst` (either may be contiguous:
 * pass row-major strides). `contiguous()` is the case of contiguous destination strides.
 */
export type CopyStridedKernel = <T extends AnyStorage>(
  shape: readonly number[],
  src: T,
  so: number,
  srcStrides: readonly number[],
  dst: T,
  dOffset: number,
  dstStrides: readonly number[],
) => void;

/** x[i] = 0 for offset ≤ i < offset + n (zeroing gradients in place). */
export type ZeroKernel = (x: Float32Array, offset: number, n: number) => void;

/** dst[i] += src[i] for i < n (gradient accumulation). */
export type AddIntoKernel = (
  dst: Float32Array,
  dOffset: number,
  src: Float32Array,
  sOffset: number,
  n: number,
) => void;

/** out[i] = x[i] · s for i < n. */
export type ScaleKernel = (
  x: Float32Array,
  xo: number,
  s: number,
  out: Float32Array,
  oo: number,
  n: number,
) => void;

/**
 * Fills `mask` with an inverted-dropout mask from uniform 32-bit random `bits`: entry i is 0 when
 * bits[i] < p·2³² (probability p), else 1/(1 − p).
 */
export type DropoutMaskKernel = (
  bits: Uint32Array,
  p: number,
  mask: Float32Array,
  n: number,
) => void;

/**
 * A reduction over the middle axis of contiguous [outer, n, inner] data at `xo`, writing
 * [outer, inner] values at `oo` of `out` (sum, max, argmax).
 */
export type AxisReduceKernel = (
  x: Float32Array,
  xo: number,
  outer: number,
  n: number,
  inner: number,
  out: Float32Array,
  oo: number,
) => void;

/**
 * out[o, i] = the first k where x[o, k, i] is largest (a NaN counts as largest), over contiguous
 * [outer, n, inner] data.
 */
export type ArgReduceKernel = (
  x: Float32Array,
  xo: number,
  outer: number,
  n: number,
  inner: number,
  out: Int32Array,
  oo: number,
) => void;

/**
 * Softmax (or log-softmax when `log`) along the middle axis of contiguous [outer, n, inner] data.
 * The maximum is subtracted first, so large logits cannot overflow exp.
 */
export type SoftmaxKernel = (
  x: Float32Array,
  outer: number,
  n: number,
  inner: number,
  out: Float32Array,
  log: boolean,
) => void;

/**
 * Gradient of softmax / log-softmax from its output y: softmax gx = y·(gy − Σ gy·y);
 * log-softmax gx = gy − exp(y)·Σ gy.
 */
export type SoftmaxBackwardKernel = (
  gy: Float32Array,
  y: Float32Array,
  outer: number,
  n: number,
  inner: number,
  gx: Float32Array,
  log: boolean,
) => void;

/**
 * Softmax cross-entropy of logits [rows, classes] against integer labels, with optional label
 * smoothing ε (target = (1 − ε)·onehot + ε/classes). Writes the softmax probabilities to `probs`
 * (kept for the backward pass) and returns the SUM of the per-row losses.
 */
export type CrossEntropyForwardKernel = (
  logits: Float32Array,
  labels: Int32Array,
  rows: number,
  classes: number,
  smoothing: number,
  probs: Float32Array,
) => number;

/** Gradient of {@linkcode crossEntropyForward} times `scale`: gx = scale·(p − q). */
export type CrossEntropyBackwardKernel = (
  probs: Float32Array,
  labels: Int32Array,
  rows: number,
  classes: number,
  smoothing: number,
  scale: number,
  gx: Float32Array,
) => void;

/**
 * Operands of a 2-D convolution, all contiguous at their offsets: input x [N, C, H, W] and filters
 * w [O, C, kh, kw] (C, H, W, kh, kw and the strides and padding come from the geometry `g`).
 */
export interface ConvOperands {
  /** Input images. */
  x: Float32Array;
  /** Index of x's first element. */
  xOffset: number;
  /** Number of images N. */
  batch: number;
  /** Filters. */
  w: Float32Array;
  /** Index of w's first element. */
  wOffset: number;
  /** Number of filters O. */
  outChannels: number;
  /** Window, stride, padding and input/output sizes. */
  g: ConvGeometry;
}

/** Arguments of {@linkcode ConvForwardKernel}. */
export interface ConvForwardArgs extends ConvOperands {
  /** Per-filter bias [O], or null. */
  bias: Float32Array | null;
  /** Index of the bias's first element. */
  biasOffset: number;
  /** Apply max(·, 0) to the result (the fused conv + bias + ReLU). */
  relu: boolean;
  /** Output [N, O, OH, OW], written (not accumulated). */
  out: Float32Array;
  /** Index of the output's first element. */
  outOffset: number;
}

/**
 * out = conv(x, w) + bias, then ReLU when `relu`: cross-correlation as in PyTorch, NCHW, zero
 * padding.
 */
export type ConvForwardKernel = (args: ConvForwardArgs) => void;

/** Arguments of {@linkcode ConvBackwardKernel}. */
export interface ConvBackwardArgs extends ConvOperands {
  /** Gradient of the output [N, O, OH, OW]. */
  gy: Float32Array;
  /** Index of gy's first element. */
  gyOffset: number;
  /**
   * The forward output when ReLU was fused (gy then counts only where y > 0), else null.
   */
  y: Float32Array | null;
  /** Index of y's first element. */
  yOffset: number;
  /** Gradient of x [N, C, H, W] (written), or null when not needed. */
  gx: Float32Array | null;
  /** Index of gx's first element. */
  gxOffset: number;
  /** Gradient of w [O, C, kh, kw] (written), or null when not needed. */
  gw: Float32Array | null;
  /** Index of gw's first element. */
  gwOffset: number;
  /** Gradient of the bias [O] (written), or null when not needed. */
  gb: Float32Array | null;
  /** Index of gb's first element. */
  gbOffset: number;
}

/** The gradients of {@linkcode ConvForwardKernel} with respect to x, w and the bias. */
export type ConvBackwardKernel = (args: ConvBackwardArgs) => void;

/** Operands shared by {@linkcode LinearForwardKernel} and {@linkcode LinearBackwardKernel}. */
export interface LinearOperands {
  /** Input rows X [N, in]: stored row-major with row stride `ldx`, or transposed (see `xTrans`). */
  x: Float32Array;
  /** Index of X's first element. */
  xOffset: number;
  /** Whether X is stored as Xᵀ [in, N] (a transposed view), with row stride `ldx`. */
  xTrans: boolean;
  /** Row stride of X's storage. */
  ldx: number;
  /** Number of rows N. */
  rows: number;
  /** Input features. */
  inFeatures: number;
  /** Weights W [out, in], contiguous. */
  w: Float32Array;
  /** Index of W's first element. */
  wOffset: number;
  /** Output features. */
  outFeatures: number;
}

/** Arguments of {@linkcode LinearForwardKernel}. */
export interface LinearForwardArgs extends LinearOperands {
  /** Bias [out], or null. */
  bias: Float32Array | null;
  /** Index of the bias's first element. */
  biasOffset: number;
  /** Apply max(·, 0) to the result (the fused Linear + ReLU). */
  relu: boolean;
  /** Output Y [N, out], contiguous, written (not accumulated). */
  out: Float32Array;
  /** Index of Y's first element. */
  outOffset: number;
}

/** Y = X·Wᵀ + bias, then ReLU when `relu`: the Linear layer's forward pass. */
export type LinearForwardKernel = (args: LinearForwardArgs) => void;

/** Arguments of {@linkcode LinearBackwardKernel}. */
export interface LinearBackwardArgs extends LinearOperands {
  /** Gradient of the output G [N, out], contiguous (not modified). */
  gy: Float32Array;
  /** Index of G's first element. */
  gyOffset: number;
  /** The forward output when ReLU was fused (G then counts only where y > 0), else null. */
  y: Float32Array | null;
  /** Index of y's first element. */
  yOffset: number;
  /** Gradient of X [N, in], contiguous, written; or null when not needed. */
  gx: Float32Array | null;
  /** Index of gx's first element. */
  gxOffset: number;
  /** Gradient of W [out, in], contiguous, accumulated into (+=); or null when not needed. */
  gw: Float32Array | null;
  /** Index of gw's first element. */
  gwOffset: number;
  /** Gradient of the bias [out], accumulated into (+=); or null when not needed. */
  gb: Float32Array | null;
  /** Index of gb's first element. */
  gbOffset: number;
}

/**
 * The gradients of {@linkcode LinearForwardKernel}: gx = G'·W, gw += G'ᵀ·X, gb += 1ᵀ·G', where G' is
 * G masked by y > 0 when ReLU was fused. Accumulating lets the weights' gradients be summed
 * straight into the parameters' existing `.grad`.
 */
export type LinearBackwardKernel = (args: LinearBackwardArgs) => void;

/** One SGD update of n elements in place (see `sgdStepReference` in `optim.ts`). */
export type SgdStepKernel = (
  param: Float32Array,
  paramOffset: number,
  grad: Float32Array,
  gradOffset: number,
  n: number,
  lr: number,
  weightDecay: number,
  momentum: number,
  dampening: number,
  nesterov: boolean,
  buffer: Float32Array | null,
  firstStep: boolean,
) => void;

/** One Adam / AdamW update of n elements in place (see `adamStepReference` in `optim.ts`). */
export type AdamStepKernel = (
  param: Float32Array,
  paramOffset: number,
  grad: Float32Array,
  gradOffset: number,
  n: number,
  expAvg: Float32Array,
  expAvgSq: Float32Array,
  step: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  decoupled: boolean,
) => void;

/** Arguments of {@linkcode QuantizedLinearKernel}. */
export interface QuantizedLinearArgs {
  /** The input rows, [rows, inFeatures] row-major from `xOffset`. */
  x: Float32Array;
  /** Index of the input's first element. */
  xOffset: number;
  /** Number of input rows. */
  rows: number;
  /** Input size. */
  inFeatures: number;
  /** Output size. */
  outFeatures: number;
  /** Row stride of `weights`: inFeatures padded to a multiple of 16, with kp · 2 · 127² < 2³¹. */
  rowLength: number;
  /** int8 weights [outFeatures, rowLength], −127..127, zero-padded. */
  weights: Int8Array;
  /** One scale per weight row. */
  weightScales: Float32Array;
  /** Σ of each weight row. */
  rowSums: Int32Array;
  /** The bias [outFeatures], or null. */
  bias: Float32Array | null;
  /** ReLU on the result (x > 0 ? x : 0), fused. */
  relu: boolean;
  /** The output [rows, outFeatures], written from index 0. */
  out: Float32Array;
}

/**
 * A dynamically quantized Linear layer: each input row quantized to seven bits, the exact int32
 * product with the int8 weights, and the float32 result (the steps of
 * `autograd/kernels/quantized.ts`; every backend gives the reference's bits).
 */
export type QuantizedLinearKernel = (args: QuantizedLinearArgs) => void;
