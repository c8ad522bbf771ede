/**
 * Tensor factories: from nested arrays or a Float32Array, constant fills, ranges and seeded random
 * tensors.
 *
 * @module
 */

import { kernels } from "./kernels/mod.ts";
import { defaultRng, type Rng } from "./rng.ts";
import { checkShape, formatShape, type Shape, sizeOf } from "./shape.ts";
import { type NestedArray, Tensor } from "./tensor.ts";

/** Options shared by the factories. */
export interface TensorOptions {
  /** Shape of the result (for `tensor()`: reshapes flat data; default inferred). */
  shape?: Shape;
  /** Mark the new tensor as a leaf that receives `.grad` (default false). */
  requiresGrad?: boolean;
}

function finish(t: Tensor, options: TensorOptions): Tensor {
  t.requiresGrad = options.requiresGrad ?? false;
  return t;
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
 * A tensor from nested arrays (`tensor([[1, 2], [3, 4]])`), a number (a scalar) or flat Float32Array
 * data with `shape`. A Float32Array is used as storage without copying.
 */
export function tensor(value: NestedArray | Float32Array, options: TensorOptions = {}): Tensor {
  if (value instanceof Float32Array) {
    const shape = options.shape ?? [value.length];
    checkShape(shape, "tensor");
    if (sizeOf(shape) !== value.length) {
      throw new RangeError(
        `tensor: ${value.length} values cannot have shape ${formatShape(shape)}`,
      );
    }
    return finish(new Tensor(value, shape), options);
  }
  const inferred = inferShape(value);
  const data = kernels.alloc(sizeOf(inferred));
  let position = 0;
  const fill = (v: NestedArray, dim: number): void => {
    if (dim === inferred.length) {
      if (typeof v !== "number") {
        throw new TypeError(`tensor: ragged nested array (expected a number at depth ${dim})`);
      }
      data[position++] = v;
      return;
    }
    if (!Array.isArray(v) || v.length !== inferred[dim]) {
      throw new TypeError(
        `tensor: ragged nested array (expected length ${inferred[dim]} at depth ${dim})`,
      );
    }
    for (const item of v) fill(item, dim + 1);
  };
  fill(value, 0);
  let t = new Tensor(data, inferred);
  if (options.shape) {
    if (sizeOf(options.shape) !== data.length) {
      throw new RangeError(
        `tensor: ${data.length} values cannot have shape ${formatShape(options.shape)}`,
      );
    }
    t = new Tensor(data, options.shape);
  }
  return finish(t, options);
}

/** A tensor of zeros. */
export function zeros(shape: Shape, options: TensorOptions = {}): Tensor {
  checkShape(shape, "zeros");
  return finish(new Tensor(kernels.alloc(sizeOf(shape)), shape), options);
}

/** A tensor of ones. */
export function ones(shape: Shape, options: TensorOptions = {}): Tensor {
  return full(shape, 1, options);
}

/** A tensor filled with `value`. */
export function full(shape: Shape, value: number, options: TensorOptions = {}): Tensor {
  const t = zeros(shape, options);
  t.data.fill(value);
  return t;
}

/** Zeros with the shape of `like`. */
export function zerosLike(like: Tensor, options: TensorOptions = {}): Tensor {
  return zeros(like.shape, options);
}

/** Ones with the shape of `like`. */
export function onesLike(like: Tensor, options: TensorOptions = {}): Tensor {
  return ones(like.shape, options);
}

/** start, start + step, … up to but excluding `end` (one argument: 0..end−1), as a 1-D tensor. */
export function arange(start: number, end?: number, step = 1, options: TensorOptions = {}): Tensor {
  const [from, to] = end === undefined ? [0, start] : [start, end];
  if (step === 0 || !Number.isFinite(step)) {
    throw new RangeError(`arange: step must be finite and non-zero, got ${step}`);
  }
  const count = Math.max(0, Math.ceil((to - from) / step));
  const t = zeros([count], options);
  for (let i = 0; i < count; i++) t.data[i] = from + i * step;
  return t;
}

/** Uniform random values in [0, 1) from `rng` (default: the seeded default generator). */
export function rand(shape: Shape, rng: Rng = defaultRng(), options: TensorOptions = {}): Tensor {
  const t = zeros(shape, options);
  for (let i = 0; i < t.data.length; i++) t.data[i] = rng.uniform();
  return t;
}

/** Standard normal random values from `rng` (default: the seeded default generator). */
export function randn(shape: Shape, rng: Rng = defaultRng(), options: TensorOptions = {}): Tensor {
  const t = zeros(shape, options);
  for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal();
  return t;
}
