/**
 * Tensor factories: from nested arrays or typed arrays, constant fills, ranges and seeded random
 * tensors. Shapes may be given as one array or as separate numbers (`zeros([2, 3])`,
 * `zeros(2, 3)`), as in PyTorch.
 *
 * @module
 */

import type { Device } from "./device.ts";
import { type AnyStorage, checkDTypeName, type DType, dtypeOf, storageFor } from "./dtype.ts";
import { kernels } from "./kernels/mod.ts";
import { defaultRng, Rng } from "./rng.ts";
import { checkShape, formatShape, type Shape, sizeOf } from "./shape.ts";
import { type AnyTensor, type NestedArray, Tensor } from "./tensor.ts";

/** Options shared by the factories. */
export interface TensorOptions<D extends DType = DType> {
  /** Shape of the result (for `tensor()`: reshapes flat data; default inferred). */
  shape?: Shape;
  /** Mark the new tensor as a leaf that receives `.grad` (default false; float32 only). */
  requiresGrad?: boolean;
  /** Element type (default float32; `tensor()` of a typed array takes the array's). */
  dtype?: D;
  /** Where the tensor lives (default "cpu"); a device must be opened with `useDevice` first. */
  device?: Device;
}

/** `t` moved to `device` when one other than the CPU is asked for, keeping `requiresGrad`. */
function placed<T extends AnyTensor>(t: T, device: Device | undefined): T {
  return device === undefined || device === "cpu" ? t : t.to(device) as T;
}

function finish<T extends AnyTensor>(t: T, options: TensorOptions, op: string): T {
  if (options.requiresGrad && t.dtype !== "float32") {
    throw new TypeError(
      `${op}: only float32 tensors can require grad (this one is ${t.dtype}); gradients flow ` +
        "only through floating-point values",
    );
  }
  const out = placed(t, options.device);
  out.requiresGrad = options.requiresGrad ?? false;
  return out;
}

/** New zeroed storage: float32 from the kernels' allocator (wasm memory where it has room). */
function allocate(dtype: DType, n: number): AnyStorage {
  return dtype === "float32" ? kernels.alloc(n) : storageFor(dtype, n);
}

function dtypeOption(options: TensorOptions, fallback: DType, op: string): DType {
  const dtype = options.dtype ?? fallback;
  checkDTypeName(dtype, op);
  return dtype;
}

function inferShape(value: NestedArray): number[] {
  const shape: number[] = [];
  let level: NestedArray = value;
  while (Array.isArray(level)) {
    shape.push(level.length);
    if (level.length === 0) break;
    level = level[0];
  }
  return shape;
}

/**
 * A tensor from nested arrays (`tensor([[1, 2], [3, 4]])`), a number (a scalar) or a flat typed
 * array with `shape`. A Float32Array, Int32Array or Uint8Array is used as storage without copying
 * (its dtype is float32, int32 or bool); nested arrays become float32 unless `dtype` says
 * otherwise (booleans in nested arrays are fine for bool).
 *
 * @example A leaf that records its gradient
 * ```ts
 * import { tensor } from "@tapegrad/tapegrad";
 *
 * const w = tensor([[1, 2], [3, 4]], { requiresGrad: true });
 * const loss = w.mul(w).sum(); // Σ w²
 * loss.backward();
 * console.log(loss.item(), w.grad?.toArray()); // 30 [[2, 4], [6, 8]]
 * ```
 *
 * @example Labels as an int32 tensor
 * ```ts
 * import { tensor } from "@tapegrad/tapegrad";
 *
 * const labels = tensor([3, 1, 4], { dtype: "int32" });
 * console.log(labels.dtype, labels.toArray()); // int32 [3, 1, 4]
 * ```
 */
export function tensor<D extends DType = "float32">(
  value: NestedArray | boolean[] | AnyStorage,
  options: TensorOptions<D> = {},
): Tensor<D> {
  if (ArrayBuffer.isView(value)) {
    const storage = value as AnyStorage;
    const own = dtypeOf(storage);
    if (options.dtype !== undefined && options.dtype !== own) {
      throw new TypeError(
        `tensor: a ${storage.constructor.name} holds ${own}, not ${options.dtype}; ` +
          `convert with tensor(data).to("${options.dtype}")`,
      );
    }
    const shape = options.shape ?? [storage.length];
    checkShape(shape, "tensor");
    if (sizeOf(shape) !== storage.length) {
      throw new RangeError(
        `tensor: ${storage.length} values cannot have shape ${formatShape(shape)}`,
      );
    }
    return finish(new Tensor<D>(storage as Tensor<D>["data"], shape), options, "tensor");
  }
  const dtype = dtypeOption(options, "float32", "tensor");
  const inferred = inferShape(value as NestedArray);
  const data = allocate(dtype, sizeOf(inferred));
  let position = 0;
  const fill = (v: NestedArray | boolean, dim: number): void => {
    if (dim === inferred.length) {
      if (typeof v !== "number" && typeof v !== "boolean") {
        throw new TypeError(`tensor: ragged nested array (expected a number at depth ${dim})`);
      }
      data[position++] = +v;
      return;
    }
    if (!Array.isArray(v) || v.length !== inferred[dim]) {
      throw new TypeError(
        `tensor: ragged nested array (expected length ${inferred[dim]} at depth ${dim})`,
      );
    }
    for (const item of v) fill(item, dim + 1);
  };
  fill(value as NestedArray, 0);
  const shape = options.shape ?? inferred;
  if (sizeOf(shape) !== data.length) {
    throw new RangeError(`tensor: ${data.length} values cannot have shape ${formatShape(shape)}`);
  }
  return finish(new Tensor<D>(data as Tensor<D>["data"], shape), options, "tensor");
}

/**
 * Reads the (shape, options) of a factory called as `f([2, 3], options)` or `f(2, 3)`.
 */
function shapeAndOptions(
  args: readonly unknown[],
  op: string,
): { shape: number[]; options: TensorOptions } {
  if (Array.isArray(args[0])) {
    const shape = [...args[0]] as number[];
    checkShape(shape, op);
    return { shape, options: (args[1] as TensorOptions | undefined) ?? {} };
  }
  const shape = args as number[];
  if (!shape.every((d) => typeof d === "number")) {
    throw new TypeError(
      `${op}: expected a shape array or separate sizes, e.g. ${op}([2, 3]) or ${op}(2, 3)`,
    );
  }
  checkShape(shape, op);
  return { shape: [...shape], options: {} };
}

function filled(shape: Shape, value: number, options: TensorOptions, op: string): AnyTensor {
  const dtype = dtypeOption(options, "float32", op);
  const data = allocate(dtype, sizeOf(shape));
  if (value !== 0) data.fill(value);
  return finish(new Tensor<DType>(data, shape), options, op);
}

/** A tensor of zeros: `zeros([2, 3])`, `zeros([2, 3], { dtype: "int32" })` or `zeros(2, 3)`. */
export function zeros<D extends DType = "float32">(
  shape: Shape,
  options?: TensorOptions<D>,
): Tensor<D>;
/** A float32 tensor of zeros with the given sizes. */
export function zeros(...shape: number[]): Tensor;
export function zeros(...args: unknown[]): AnyTensor {
  const { shape, options } = shapeAndOptions(args, "zeros");
  return filled(shape, 0, options, "zeros");
}

/** A tensor of ones: `ones([2, 3])` or `ones(2, 3)`. */
export function ones<D extends DType = "float32">(
  shape: Shape,
  options?: TensorOptions<D>,
): Tensor<D>;
/** A float32 tensor of ones with the given sizes. */
export function ones(...shape: number[]): Tensor;
export function ones(...args: unknown[]): AnyTensor {
  const { shape, options } = shapeAndOptions(args, "ones");
  return filled(shape, 1, options, "ones");
}

/** A tensor of `shape` filled with `value`. */
export function full<D extends DType = "float32">(
  shape: Shape,
  value: number,
  options: TensorOptions<D> = {},
): Tensor<D> {
  checkShape(shape, "full");
  return filled(shape, value, options, "full") as Tensor<D>;
}

/** Zeros with the shape (and, unless `options.dtype` says otherwise, the dtype) of `like`. */
export function zerosLike<D extends DType>(
  like: Tensor<D>,
  options: TensorOptions = {},
): Tensor<D> {
  return filled(like.shape, 0, { dtype: like.dtype, ...options }, "zerosLike") as Tensor<D>;
}

/** Ones with the shape (and, unless `options.dtype` says otherwise, the dtype) of `like`. */
export function onesLike<D extends DType>(like: Tensor<D>, options: TensorOptions = {}): Tensor<D> {
  return filled(like.shape, 1, { dtype: like.dtype, ...options }, "onesLike") as Tensor<D>;
}

/**
 * start, start + step, … up to but excluding `end` (one argument: 0..end−1), as a 1-D tensor:
 * int32 when every argument is an integer (as PyTorch's `arange(5)`), else float32, unless
 * `options.dtype` says which.
 */
export function arange(
  start: number,
  end?: number,
  step = 1,
  options: TensorOptions = {},
): AnyTensor {
  const [from, to] = end === undefined ? [0, start] : [start, end];
  if (step === 0 || !Number.isFinite(step)) {
    throw new RangeError(`arange: step must be finite and non-zero, got ${step}`);
  }
  const integral = [from, to, step].every(Number.isInteger);
  const dtype = dtypeOption(options, integral ? "int32" : "float32", "arange");
  const count = Math.max(0, Math.ceil((to - from) / step));
  const t = filled([count], 0, { ...options, dtype, device: "cpu" }, "arange");
  for (let i = 0; i < count; i++) t.data[i] = from + i * step;
  return placed(t, options.device);
}

/** Reads (shape, rng, options) of `rand([2, 3], rng, options)` or `rand(2, 3)`. */
function randomArgs(
  args: unknown[],
  op: string,
): { shape: number[]; rng: Rng; options: TensorOptions } {
  if (Array.isArray(args[0])) {
    const [shape, rng, options] = args as [number[], Rng | undefined, TensorOptions | undefined];
    checkShape(shape, op);
    if (rng !== undefined && !(rng instanceof Rng)) {
      throw new TypeError(`${op}: the second argument must be an Rng (the options come third)`);
    }
    return { shape: [...shape], rng: rng ?? defaultRng(), options: options ?? {} };
  }
  const { shape } = shapeAndOptions(args, op);
  return { shape, rng: defaultRng(), options: {} };
}

/** Uniform random float32 values in [0, 1) from `rng` (default: the seeded default generator). */
export function rand(shape: Shape, rng?: Rng, options?: TensorOptions<"float32">): Tensor;
/** Uniform random values in [0, 1) with the given sizes, from the default generator. */
export function rand(...shape: number[]): Tensor;
export function rand(...args: unknown[]): Tensor {
  const { shape, rng, options } = randomArgs(args, "rand");
  const t = filled(shape, 0, { ...options, dtype: "float32", device: "cpu" }, "rand") as Tensor;
  for (let i = 0; i < t.data.length; i++) t.data[i] = rng.uniform();
  return placed(t, options.device);
}

/** Standard normal float32 values from `rng` (default: the seeded default generator). */
export function randn(shape: Shape, rng?: Rng, options?: TensorOptions<"float32">): Tensor;
/** Standard normal values with the given sizes, from the default generator. */
export function randn(...shape: number[]): Tensor;
export function randn(...args: unknown[]): Tensor {
  const { shape, rng, options } = randomArgs(args, "randn");
  const t = filled(shape, 0, { ...options, dtype: "float32", device: "cpu" }, "randn") as Tensor;
  for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal();
  return placed(t, options.device);
}
