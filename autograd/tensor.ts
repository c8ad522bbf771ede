/**
 * The strided {@linkcode Tensor}: storage seen through a shape, strides and an offset, so views
 * (transpose, slice, expand, …) share storage instead of copying. The storage is a host typed array
 * on the CPU, or an opaque buffer a device backend owns (`autograd/device.ts`); values come back
 * from a device only asynchronously (`await t.read()`). Every method that computes something is a
 * thin call to the op of the same name in `ops/`.
 *
 * @module
 */

import { type Device, deviceBackend, type DeviceStorage, isDevice } from "./device.ts";
import { type AnyStorage, type DType, dtypeOf, type StorageOf } from "./dtype.ts";
import { formatTensor } from "./format.ts";
import { kernels } from "./kernels/mod.ts";
import * as ops from "./ops/functions.ts";
import { contiguousStrides, type Shape, type ShapeArgs, shapeArgs, sizeOf } from "./shape.ts";
import { backward, type BackwardOptions, type TapeEntry } from "./tape.ts";

/** A scalar or a tensor: arithmetic accepts either on both sides. */
export type TensorLike = Tensor | number;

/** A tensor of any dtype. */
export type AnyTensor = Tensor<DType>;

/** Nested arrays of numbers, as `tensor()` accepts and `toArray()` returns. */
export type NestedArray = number | NestedArray[];

/** Row-major values as nested arrays of `shape` (a plain number for a scalar). */
function nest(shape: Shape, flat: ArrayLike<number>): NestedArray {
  let position = 0;
  const build = (dim: number): NestedArray => {
    if (dim === shape.length) return flat[position++];
    const out: NestedArray[] = [];
    for (let i = 0; i < shape[dim]; i++) out.push(build(dim + 1));
    return out;
  };
  return build(0);
}

let relocateStorage: (t: AnyTensor, storage: AnyStorage | DeviceStorage) => void;

/**
 * Moves `t`'s own storage to `device` in place, keeping the tensor object (so a `Module`'s
 * parameters stay the ones its optimizer holds, as PyTorch's `module.to`). Only a contiguous
 * tensor that owns all of its storage can move: a parameter or a buffer, not a view. Its gradient
 * is dropped. Coming back from a device waits for its values.
 */
export async function relocate(t: AnyTensor, device: Device): Promise<void> {
  if (t.device === device) return;
  const storage = t.storage;
  if (!t.isContiguous() || t.offset !== 0 || storage.length !== t.size) {
    throw new Error(
      `relocate: only a tensor that owns its storage can move in place (a parameter or buffer); ` +
        `shape ${formatShapeOf(t)} is a view`,
    );
  }
  let next: AnyStorage | DeviceStorage;
  if (device === "cpu") next = await t.read();
  else if (t.device === "cpu") next = deviceBackend(device).upload(t.data);
  else throw new Error(`relocate: move the ${t.device} tensor to the CPU first`);
  relocateStorage(t, next);
  t.grad = null;
}

function formatShapeOf(t: { readonly shape: Shape }): string {
  return `[${t.shape.join(", ")}]`;
}

/**
 * An n-dimensional array with reverse-mode automatic differentiation. `D` is its dtype
 * (`Tensor` alone means a float32 tensor; `Tensor<"int32">` holds indices, `Tensor<"bool">` masks).
 *
 * @example Views, products and reductions
 * ```ts
 * import { Tensor } from "@tapegrad/tapegrad";
 *
 * // Wraps the storage without copying: row-major [2, 3].
 * const x = new Tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * const t = x.transpose(); // a view, [3, 2]
 * console.log(t.shape, t.toArray()); // [3, 2] [[1, 4], [2, 5], [3, 6]]
 * console.log(x.matmul(t).toArray()); // [[14, 32], [32, 77]]
 * console.log(x.sum(1).toArray(), await x.mean().read()); // [6, 15] Float32Array [3.5]
 * ```
 */
export class Tensor<D extends DType = "float32"> {
  /** Host storage (null on a device). */
  #host: StorageOf<D> | null;
  /** Device storage (null on the CPU). */
  #onDevice: DeviceStorage | null;
  /** The element type, which follows from the storage. */
  readonly dtype: D;
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
  constructor(
    data: StorageOf<D> | DeviceStorage,
    shape: Shape,
    strides?: readonly number[],
    offset = 0,
  ) {
    if (ArrayBuffer.isView(data)) {
      this.#host = data;
      this.#onDevice = null;
      this.dtype = dtypeOf(data as AnyStorage) as D;
    } else {
      this.#host = null;
      this.#onDevice = data;
      this.dtype = data.dtype as D;
    }
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    this.requiresGrad = false;
  }

  /**
   * The host storage, possibly shared with other views: element (i, j, …) is at
   * offset + Σ index·stride. Throws on a device tensor, whose values are read with
   * `await t.read()` (or copied to the host with `await t.cpu()`).
   */
  get data(): StorageOf<D> {
    return this.#host ?? this.#noHostData("data");
  }

  /** The storage on any device: the host typed array, or the device's opaque buffer. */
  get storage(): StorageOf<D> | DeviceStorage {
    return this.#host ?? this.#onDevice!;
  }

  /** Where the storage lives. */
  get device(): Device {
    return this.#host !== null ? "cpu" : this.#onDevice!.device;
  }

  #noHostData(caller: string): never {
    throw new Error(
      `${caller}: this tensor (shape ${formatShapeOf(this)}) lives on ${this.device}, where ` +
        "values cannot be read synchronously; read them " +
        "with `await t.read()` or `await t.array()`, or copy the tensor with `await t.cpu()`",
    );
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
    return (this.#host ?? this.#noHostData("item"))[this.offset];
  }

  /** The elements in row-major order as a new Float32Array (a copy, safe to keep). */
  toFloat32Array(): Float32Array {
    return this.dtype === "float32"
      ? (this.values() as Float32Array)
      : Float32Array.from(this.values() as ArrayLike<number>);
  }

  /** The elements in row-major order, as a new typed array of this dtype (a copy, safe to keep). */
  values(): StorageOf<D> {
    if (this.#host === null) this.#noHostData("values");
    const out = new (this.data.constructor as new (n: number) => StorageOf<D>)(this.size);
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

  /**
   * The elements in row-major order as a new typed array, on every device: a device tensor's values
   * come back once the device has computed them (the only call that waits on it). On the CPU it
   * resolves at once; the synchronous form is {@linkcode Tensor.values}.
   */
  read(): Promise<StorageOf<D>> {
    if (this.#host !== null) return Promise.resolve(this.values());
    return deviceBackend(this.#onDevice!.device).read(this) as Promise<StorageOf<D>>;
  }

  /** The values as nested arrays, on every device (see {@linkcode Tensor.toArray}). */
  async array(): Promise<NestedArray> {
    return nest(this.shape, await this.read());
  }

  /** The values as nested arrays (a plain number for a scalar; booleans as 0 and 1). */
  toArray(): NestedArray {
    if (this.#host === null) this.#noHostData("toArray");
    return nest(this.shape, this.values());
  }

  /** PyTorch-style text: `tensor([[1.0000, 2.0000]], requiresGrad=true)`. */
  toString(): string {
    return formatTensor(this);
  }

  /** A contiguous tensor with the same values: this one when already contiguous, else a copy. */
  contiguous(): Tensor<D> {
    return ops.contiguous(this);
  }

  /** A copy with its own storage that stays connected to the graph. */
  clone(): Tensor<D> {
    return ops.clone(this);
  }

  /** The same storage cut off from the graph: gradients do not flow through the result. */
  detach(): Tensor<D> {
    return new Tensor<D>(this.storage, this.shape, this.strides, this.offset);
  }

  /**
   * The values converted to `dtype` (this tensor when it already has it). float32 → int32 rounds
   * toward zero; anything → bool is `value !== 0`. A conversion is not differentiable.
   */
  to<E extends DType>(dtype: E): Tensor<E>;
  /**
   * A copy of the values on `device` (this tensor when already there), contiguous. The move is
   * not recorded on the tape: the copy is a new leaf that keeps `requiresGrad`, so move
   * parameters before building the graph (as `Module.to` does). Open a device first with
   * `await useDevice("webgpu")`. Values come back from a device asynchronously, with
   * {@linkcode Tensor.cpu}.
   */
  to(device: Device): Tensor<D>;
  to(target: DType | Device): AnyTensor {
    return isDevice(target) ? this.#moveTo(target) : ops.cast(this, target);
  }

  /** A CPU copy of a device tensor once its values are computed (this tensor when on the CPU). */
  async cpu(): Promise<Tensor<D>> {
    if (this.#host !== null) return this;
    const moved = new Tensor<D>(await this.read(), this.shape);
    moved.requiresGrad = this.requiresGrad;
    return moved;
  }

  static {
    relocateStorage = (t, storage) => {
      if (ArrayBuffer.isView(storage)) {
        t.#host = storage;
        t.#onDevice = null;
      } else {
        t.#host = null;
        t.#onDevice = storage;
      }
    };
  }

  #moveTo(device: Device): Tensor<D> {
    if (device === this.device) return this;
    if (device === "cpu") {
      throw new Error(
        `to("cpu"): the values of a ${this.device} tensor come back asynchronously; use \`await t.cpu()\``,
      );
    }
    if (this.#host === null) {
      throw new Error(`to("${device}"): move the ${this.device} tensor to the CPU first`);
    }
    const moved = new Tensor<D>(deviceBackend(device).upload(this.values()), this.shape);
    moved.requiresGrad = this.requiresGrad;
    return moved;
  }

  /**
   * Back-propagates from this tensor: fills `.grad` of every leaf that requires grad.
   *
   * @param gradient d(objective)/d(this); may be omitted for a one-element tensor (then 1).
   * @param options `retainGraph` keeps the graph for another backward pass.
   */
  backward(gradient?: Tensor, options?: BackwardOptions): void {
    backward(this as Tensor, gradient, options);
  }

  // Views — no copy.

  /** A view with a new shape (one dimension may be -1); copies only when the strides do not allow a view. */
  reshape(...shape: ShapeArgs): Tensor<D> {
    return ops.reshape(this, shapeArgs(shape));
  }

  /** Like {@linkcode Tensor.reshape}, but throws instead of copying when no view is possible. */
  view(...shape: ShapeArgs): Tensor<D> {
    return ops.view(this, shapeArgs(shape));
  }

  /** Swaps two dimensions (default: the last two). */
  transpose(dim0 = -2, dim1 = -1): Tensor<D> {
    return ops.transpose(this, dim0, dim1);
  }

  /** Reorders the dimensions: `x.permute(0, 2, 3, 1)`. */
  permute(...dims: ShapeArgs): Tensor<D> {
    return ops.permute(this, shapeArgs(dims));
  }

  /** Elements start..end−1 (step `step`) along `dim`; negative indices count from the end. */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor<D> {
    return ops.slice(this, dim, start, end, step);
  }

  /** `length` elements from `start` along `dim`. */
  narrow(dim: number, start: number, length: number): Tensor<D> {
    return ops.narrow(this, dim, start, length);
  }

  /** Broadcasts size-1 dimensions (and new leading ones) to `shape` with stride 0; -1 keeps a size. */
  expand(...shape: ShapeArgs): Tensor<D> {
    return ops.expand(this, shapeArgs(shape));
  }

  /** Same as {@linkcode Tensor.expand} with the shape as an array. */
  broadcastTo(shape: Shape): Tensor<D> {
    return ops.expand(this, shape);
  }

  /** Removes one size-1 dimension, or all of them when `dim` is omitted. */
  squeeze(dim?: number): Tensor<D> {
    return ops.squeeze(this, dim);
  }

  /** Inserts a size-1 dimension at `dim`. */
  unsqueeze(dim: number): Tensor<D> {
    return ops.unsqueeze(this, dim);
  }

  /** Merges dimensions startDim..endDim into one. */
  flatten(startDim = 0, endDim = -1): Tensor<D> {
    return ops.flatten(this, startDim, endDim);
  }

  // Indexing, joining, splitting (autograd/ops/index.ts, join.ts).

  /** The slice at position `i` of `dim`, that dimension removed (a view). */
  select(dim: number, i: number): Tensor<D> {
    return ops.select(this, dim, i);
  }

  /** Integer indexing of the leading dimensions, PyTorch's `x[i, j]` (a view). */
  index(...indices: number[]): Tensor<D> {
    return ops.index(this, ...indices);
  }

  /** The entries at `indices` along `dim` (PyTorch's `index_select`). */
  indexSelect(dim: number, indices: ops.Indices): Tensor<D> {
    return ops.indexSelect(this, dim, indices);
  }

  /** Values picked along `dim` by `index` (PyTorch's `gather`). */
  gather(dim: number, index: ops.Indices): Tensor<D> {
    return ops.gather(this, dim, index);
  }

  /** A copy with `src` added at the positions `index` names along `dim` (`scatter_add`). */
  scatterAdd(dim: number, index: ops.Indices, src: Tensor<D>): Tensor<D> {
    return ops.scatterAdd(this, dim, index, src);
  }

  /** The entries along `dims` in reverse order (a copy): `x.flip(0)`, `x.flip([0, 1])`. */
  flip(...dims: ShapeArgs): Tensor<D> {
    return ops.flip(this, shapeArgs(dims));
  }

  /** Rolled by `shifts` along `dims` (the flattened tensor without `dims`). */
  roll(shifts: number | readonly number[], dims?: number | readonly number[]): Tensor<D> {
    return ops.roll(this, shifts, dims);
  }

  /** Repeated `sizes[i]` times along each dimension: `x.repeat(2, 1)`. */
  repeat(...sizes: ShapeArgs): Tensor<D> {
    return ops.repeat(this, shapeArgs(sizes));
  }

  /** Tiled like {@linkcode Tensor.repeat}, missing leading counts taken as 1. */
  tile(...dims: ShapeArgs): Tensor<D> {
    return ops.tile(this, shapeArgs(dims));
  }

  /** Views of consecutive pieces along `dim` of one size or of the listed sizes. */
  split(sizeOrSizes: number | readonly number[], dim = 0): Tensor<D>[] {
    return ops.split(this, sizeOrSizes, dim);
  }

  /** `chunks` views along `dim` of ⌈size / chunks⌉ entries each. */
  chunk(chunks: number, dim = 0): Tensor<D>[] {
    return ops.chunk(this, chunks, dim);
  }

  /** The slices along `dim`, each without that dimension (views). */
  unbind(dim = 0): Tensor<D>[] {
    return ops.unbind(this, dim);
  }

  // Arithmetic.

  /** this + other, broadcasting. */
  add(other: TensorLike): Tensor {
    return ops.add(this as Tensor, other);
  }

  /** this − other, broadcasting. */
  sub(other: TensorLike): Tensor {
    return ops.sub(this as Tensor, other);
  }

  /** this · other elementwise, broadcasting. */
  mul(other: TensorLike): Tensor {
    return ops.mul(this as Tensor, other);
  }

  /** this / other elementwise, broadcasting. */
  div(other: TensorLike): Tensor {
    return ops.div(this as Tensor, other);
  }

  /** −this. */
  neg(): Tensor {
    return ops.neg(this as Tensor);
  }

  /** this^exponent elementwise, for a scalar exponent. */
  pow(exponent: number): Tensor {
    return ops.pow(this as Tensor, exponent);
  }

  /** e^this elementwise. */
  exp(): Tensor {
    return ops.exp(this as Tensor);
  }

  /** Natural logarithm elementwise. */
  log(): Tensor {
    return ops.log(this as Tensor);
  }

  /** Square root elementwise. */
  sqrt(): Tensor {
    return ops.sqrt(this as Tensor);
  }

  /** Absolute value elementwise. */
  abs(): Tensor {
    return ops.abs(this as Tensor);
  }

  /** max(this as Tensor, 0) elementwise. */
  relu(): Tensor {
    return ops.relu(this as Tensor);
  }

  /** this for positive values, slope·this otherwise. */
  leakyRelu(slope = 0.01): Tensor {
    return ops.leakyRelu(this as Tensor, slope);
  }

  /** 1 / (1 + e^−this) elementwise. */
  sigmoid(): Tensor {
    return ops.sigmoid(this as Tensor);
  }

  /** Hyperbolic tangent elementwise. */
  tanh(): Tensor {
    return ops.tanh(this as Tensor);
  }

  /** The error function elementwise. */
  erf(): Tensor {
    return ops.erf(this as Tensor);
  }

  /** ln(1 + this) elementwise, accurate near 0. */
  log1p(): Tensor {
    return ops.log1p(this as Tensor);
  }

  /** e^this − 1 elementwise, accurate near 0. */
  expm1(): Tensor {
    return ops.expm1(this as Tensor);
  }

  /** Sine elementwise. */
  sin(): Tensor {
    return ops.sin(this as Tensor);
  }

  /** Cosine elementwise. */
  cos(): Tensor {
    return ops.cos(this as Tensor);
  }

  /** 1/√this elementwise. */
  rsqrt(): Tensor {
    return ops.rsqrt(this as Tensor);
  }

  /** 1/this elementwise. */
  reciprocal(): Tensor {
    return ops.reciprocal(this as Tensor);
  }

  /** this² elementwise. */
  square(): Tensor {
    return ops.square(this as Tensor);
  }

  /** −1, 0 or 1 by sign (zero gradient). */
  sign(): Tensor {
    return ops.sign(this as Tensor);
  }

  /** ⌊this⌋ elementwise (zero gradient). */
  floor(): Tensor {
    return ops.floor(this as Tensor);
  }

  /** Rounds to the nearest integer, halves to even (zero gradient). */
  round(): Tensor {
    return ops.round(this as Tensor);
  }

  /** Limits the values to [min, max]; either bound may be omitted. */
  clamp(min?: number | Tensor, max?: number | Tensor): Tensor {
    return ops.clamp(this as Tensor, min, max);
  }

  /** Matrix product (2-D, or batched 3-D). */
  matmul(other: Tensor): Tensor {
    return ops.matmul(this as Tensor, other);
  }

  // Comparisons: bool results, no gradient.

  /** this == other elementwise (bool). */
  eq(other: AnyTensor | number): Tensor<"bool"> {
    return ops.eq(this as Tensor, other);
  }

  /** this != other elementwise (bool). */
  ne(other: AnyTensor | number): Tensor<"bool"> {
    return ops.ne(this as Tensor, other);
  }

  /** this < other elementwise (bool). */
  lt(other: AnyTensor | number): Tensor<"bool"> {
    return ops.lt(this as Tensor, other);
  }

  /** this <= other elementwise (bool). */
  le(other: AnyTensor | number): Tensor<"bool"> {
    return ops.le(this as Tensor, other);
  }

  /** this > other elementwise (bool). */
  gt(other: AnyTensor | number): Tensor<"bool"> {
    return ops.gt(this as Tensor, other);
  }

  /** this >= other elementwise (bool). */
  ge(other: AnyTensor | number): Tensor<"bool"> {
    return ops.ge(this as Tensor, other);
  }

  /** `value` where `mask` is true, this elsewhere (broadcasting). */
  maskedFill(mask: Tensor<"bool">, value: number): Tensor {
    return ops.maskedFill(this as Tensor, mask, value);
  }

  // Reductions.

  /** Sum over `dims` (all when omitted). */
  sum(dims?: number | readonly number[], keepDim = false): Tensor {
    return ops.sum(this as Tensor, dims, keepDim);
  }

  /** Mean over `dims` (all when omitted). */
  mean(dims?: number | readonly number[], keepDim = false): Tensor {
    return ops.mean(this as Tensor, dims, keepDim);
  }

  /** Maximum over `dims` (all when omitted); ties share the gradient equally. */
  max(dims?: number | readonly number[], keepDim = false): Tensor {
    return ops.max(this as Tensor, dims, keepDim);
  }

  /** Minimum over `dims` (all when omitted); ties share the gradient equally. */
  min(dims?: number | readonly number[], keepDim = false): Tensor {
    return ops.min(this as Tensor, dims, keepDim);
  }

  /** Product over `dims` (all when omitted). */
  prod(dims?: number | readonly number[], keepDim = false): Tensor {
    return ops.prod(this as Tensor, dims, keepDim);
  }

  /** Variance over `dims` with `correction` (default 1, unbiased). */
  var(dims?: number | readonly number[], options?: ops.VarOptions): Tensor {
    return ops.variance(this as Tensor, dims, options);
  }

  /** Standard deviation over `dims` with `correction` (default 1, unbiased). */
  std(dims?: number | readonly number[], options?: ops.VarOptions): Tensor {
    return ops.std(this as Tensor, dims, options);
  }

  /** log Σ exp over `dims` (all when omitted), computed stably. */
  logsumexp(dims?: number | readonly number[], keepDim = false): Tensor {
    return ops.logsumexp(this as Tensor, dims, keepDim);
  }

  /** The p-norm over `dims` (default p = 2 over everything). */
  norm(p = 2, dims?: number | readonly number[], keepDim = false): Tensor {
    return ops.norm(this as Tensor, p, dims, keepDim);
  }

  /** Running sums along `dim`. */
  cumsum(dim: number): Tensor {
    return ops.cumsum(this as Tensor, dim);
  }

  /** The k largest (or smallest) values along `dim` and their int32 indices, sorted. */
  topk(k: number, dim = -1, largest = true): ops.TopK {
    return ops.topk(this as Tensor, k, dim, largest);
  }

  /** Index of the (first) maximum along `dim`, as int32; not differentiable. */
  argmax(dim = -1, keepDim = false): Tensor<"int32"> {
    return ops.argmax(this as Tensor, dim, keepDim);
  }

  /** Index of the (first) minimum along `dim`, as int32; not differentiable. */
  argmin(dim = -1, keepDim = false): Tensor<"int32"> {
    return ops.argmin(this as Tensor, dim, keepDim);
  }

  /** Softmax along `dim` (default last), computed stably. */
  softmax(dim = -1): Tensor {
    return ops.softmax(this as Tensor, dim);
  }

  /** Log-softmax along `dim` (default last), computed stably. */
  logSoftmax(dim = -1): Tensor {
    return ops.logSoftmax(this as Tensor, dim);
  }
}
