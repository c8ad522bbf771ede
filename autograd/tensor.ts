/**
 * The strided Float32 {@linkcode Tensor}: a Float32Array storage seen through a shape, strides and an
 * offset, so views (transpose, slice, expand, …) share storage instead of copying. Every method that
 * computes something is a thin call to the differentiable op of the same name in `ops/`.
 *
 * @module
 */

import { formatTensor } from "./format.ts";
import { kernels } from "./kernels/mod.ts";
import * as ops from "./ops/functions.ts";
import { contiguousStrides, type Shape, sizeOf } from "./shape.ts";
import { backward, type BackwardOptions, type TapeEntry } from "./tape.ts";

/** A scalar or a tensor: arithmetic accepts either on both sides. */
export type TensorLike = Tensor | number;

/** Nested arrays of numbers, as `tensor()` accepts and `toArray()` returns. */
export type NestedArray = number | NestedArray[];

/** An n-dimensional array of float32 values with reverse-mode automatic differentiation. */
export class Tensor {
  /** The storage, possibly shared with other views. Element (i, j, …) is at offset + Σ index·stride. */
  readonly data: Float32Array;
  /** Size of each dimension, outermost first. */
  readonly shape: Shape;
  /** Storage step of each dimension (0 for an expanded/broadcast dimension). */
  readonly strides: readonly number[];
  /** Position of element (0, 0, …) in `data`. */
  readonly offset: number;
  /** Whether gradients flow to (or through) this tensor. Set it on leaves you want `.grad` for. */
  requiresGrad: boolean;
  /** Accumulated gradient of a leaf after `backward()`; null until then. */
  grad: Tensor | null = null;
  /** The tape entry that produced this tensor, or null for a leaf (created by the user). */
  gradFn: TapeEntry | null = null;

  /**
   * Wraps storage without copying. Most code uses the factories (`tensor`, `zeros`, …) instead.
   *
   * @param data Storage.
   * @param shape Dimensions.
   * @param strides Element step per dimension; row-major when omitted.
   * @param offset Index of the first element in `data`.
   */
  constructor(data: Float32Array, shape: Shape, strides?: readonly number[], offset = 0) {
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    this.requiresGrad = false;
  }

  /** Number of elements (the product of the shape). */
  get size(): number {
    return sizeOf(this.shape);
  }

  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }

  /** Whether this is a leaf of the graph (not produced by a recorded op). */
  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  /** Whether the elements are laid out row-major without gaps (views may not be). */
  isContiguous(): boolean {
    let step = 1;
    for (let d = this.shape.length - 1; d >= 0; d--) {
      if (this.shape[d] !== 1 && this.strides[d] !== step) return false;
      step *= this.shape[d];
    }
    return true;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) {
      throw new RangeError(
        `item: the tensor has shape [${this.shape.join(", ")}], not a single element`,
      );
    }
    return this.data[this.offset];
  }

  /** The elements in row-major order as a new Float32Array (a copy, safe to keep). */
  toFloat32Array(): Float32Array {
    const out = new Float32Array(this.size);
    kernels.copyStrided(
      this.shape,
      this.data,
      this.offset,
      this.strides,
      out,
      0,
      contiguousStrides(this.shape),
    );
    return out;
  }

  /** The values as nested arrays (a plain number for a scalar). */
  toArray(): NestedArray {
    const flat = this.toFloat32Array();
    let position = 0;
    const build = (dim: number): NestedArray => {
      if (dim === this.shape.length) return flat[position++];
      const out: NestedArray[] = [];
      for (let i = 0; i < this.shape[dim]; i++) out.push(build(dim + 1));
      return out;
    };
    return build(0);
  }

  /** PyTorch-style text: `tensor([[1.0000, 2.0000]], requiresGrad=true)`. */
  toString(): string {
    return formatTensor(this);
  }

  /** A contiguous tensor with the same values: this one when already contiguous, else a copy. */
  contiguous(): Tensor {
    return ops.contiguous(this);
  }

  /** A copy with its own storage that stays connected to the graph. */
  clone(): Tensor {
    return ops.clone(this);
  }

  /** The same storage cut off from the graph: gradients do not flow through the result. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, this.strides, this.offset);
  }

  /**
   * Back-propagates from this tensor: fills `.grad` of every leaf that requires grad.
   *
   * @param gradient d(objective)/d(this); may be omitted for a one-element tensor (then 1).
   * @param options `retainGraph` keeps the graph for another backward pass.
   */
  backward(gradient?: Tensor, options?: BackwardOptions): void {
    backward(this, gradient, options);
  }

  // Views — no copy.

  /** A view with a new shape (one dimension may be -1); copies only when the strides do not allow a view. */
  reshape(...shape: number[]): Tensor {
    return ops.reshape(this, shape);
  }

  /** Like {@linkcode Tensor.reshape}, but throws instead of copying when no view is possible. */
  view(...shape: number[]): Tensor {
    return ops.view(this, shape);
  }

  /** Swaps two dimensions (default: the last two). */
  transpose(dim0 = -2, dim1 = -1): Tensor {
    return ops.transpose(this, dim0, dim1);
  }

  /** Reorders the dimensions: `x.permute(0, 2, 3, 1)`. */
  permute(...dims: number[]): Tensor {
    return ops.permute(this, dims);
  }

  /** Elements start..end−1 (step `step`) along `dim`; negative indices count from the end. */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor {
    return ops.slice(this, dim, start, end, step);
  }

  /** `length` elements from `start` along `dim`. */
  narrow(dim: number, start: number, length: number): Tensor {
    return ops.narrow(this, dim, start, length);
  }

  /** Broadcasts size-1 dimensions (and new leading ones) to `shape` with stride 0; -1 keeps a size. */
  expand(...shape: number[]): Tensor {
    return ops.expand(this, shape);
  }

  /** Same as {@linkcode Tensor.expand} with the shape as an array. */
  broadcastTo(shape: Shape): Tensor {
    return ops.expand(this, shape);
  }

  /** Removes one size-1 dimension, or all of them when `dim` is omitted. */
  squeeze(dim?: number): Tensor {
    return ops.squeeze(this, dim);
  }

  /** Inserts a size-1 dimension at `dim`. */
  unsqueeze(dim: number): Tensor {
    return ops.unsqueeze(this, dim);
  }

  /** Merges dimensions startDim..endDim into one. */
  flatten(startDim = 0, endDim = -1): Tensor {
    return ops.flatten(this, startDim, endDim);
  }

  // Arithmetic.

  /** this + other, broadcasting. */
  add(other: TensorLike): Tensor {
    return ops.add(this, other);
  }

  /** this − other, broadcasting. */
  sub(other: TensorLike): Tensor {
    return ops.sub(this, other);
  }

  /** this · other elementwise, broadcasting. */
  mul(other: TensorLike): Tensor {
    return ops.mul(this, other);
  }

  /** this / other elementwise, broadcasting. */
  div(other: TensorLike): Tensor {
    return ops.div(this, other);
  }

  /** −this. */
  neg(): Tensor {
    return ops.neg(this);
  }

  /** this^exponent elementwise, for a scalar exponent. */
  pow(exponent: number): Tensor {
    return ops.pow(this, exponent);
  }

  /** e^this elementwise. */
  exp(): Tensor {
    return ops.exp(this);
  }

  /** Natural logarithm elementwise. */
  log(): Tensor {
    return ops.log(this);
  }

  /** Square root elementwise. */
  sqrt(): Tensor {
    return ops.sqrt(this);
  }

  /** Absolute value elementwise. */
  abs(): Tensor {
    return ops.abs(this);
  }

  /** max(this, 0) elementwise. */
  relu(): Tensor {
    return ops.relu(this);
  }

  /** this for positive values, slope·this otherwise. */
  leakyRelu(slope = 0.01): Tensor {
    return ops.leakyRelu(this, slope);
  }

  /** 1 / (1 + e^−this) elementwise. */
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }

  /** Hyperbolic tangent elementwise. */
  tanh(): Tensor {
    return ops.tanh(this);
  }

  /** Matrix product (2-D, or batched 3-D). */
  matmul(other: Tensor): Tensor {
    return ops.matmul(this, other);
  }

  // Reductions.

  /** Sum over `dims` (all when omitted). */
  sum(dims?: number | readonly number[], keepDim = false): Tensor {
    return ops.sum(this, dims, keepDim);
  }

  /** Mean over `dims` (all when omitted). */
  mean(dims?: number | readonly number[], keepDim = false): Tensor {
    return ops.mean(this, dims, keepDim);
  }

  /** Maximum over `dims` (all when omitted); ties share the gradient equally. */
  max(dims?: number | readonly number[], keepDim = false): Tensor {
    return ops.max(this, dims, keepDim);
  }

  /** Index of the maximum along `dim` (not differentiable); values are float32 integers. */
  argmax(dim = -1, keepDim = false): Tensor {
    return ops.argmax(this, dim, keepDim);
  }

  /** Softmax along `dim` (default last), computed stably. */
  softmax(dim = -1): Tensor {
    return ops.softmax(this, dim);
  }

  /** Log-softmax along `dim` (default last), computed stably. */
  logSoftmax(dim = -1): Tensor {
    return ops.logSoftmax(this, dim);
  }
}
