/**
 * Mini-batches from tensors held in memory: {@linkcode TensorDataset} pairs inputs of any shape
 * (float32, or int32 such as token ids) with int32 targets along their first dimension, and
 * {@linkcode TensorDataLoader} cuts it into batches of copied, contiguous rows (PyTorch's
 * `TensorDataset` and `DataLoader`; named `TensorDataLoader` because `DataLoader` is the MNIST
 * byte loader of `loader.ts`).
 *
 * Order is a pure function of (seed, epoch), the same as the MNIST loader's: epoch e visits the
 * examples in the order `new Rng(streamSeed(seed, e, -1)).permutation(length)`, so a run resumed in
 * the middle of an epoch sees the batches an uninterrupted one would.
 *
 * @module
 */

import type { DType, StorageOf } from "../autograd/dtype.ts";
import { kernels } from "../autograd/kernels/mod.ts";
import { Tensor } from "../autograd/tensor.ts";
import { batchCount, epochOrder } from "./loader.ts";

/** Input dtypes a {@linkcode TensorDataset} holds. */
export type DatasetInputDType = "float32" | "int32";

/** Examples as rows: `inputs[i]` and `targets[i]` along the first dimension. */
export class TensorDataset<D extends DatasetInputDType = "float32"> {
  /** The inputs [length, ...], contiguous. */
  readonly inputs: Tensor<D>;
  /** The targets [length, ...], contiguous. */
  readonly targets: Tensor<"int32">;

  /**
   * Pairs `inputs` with `targets` (copied to contiguous storage only when they are views; detached
   * from any graph).
   *
   * @param inputs float32 or int32 tensor [length, ...].
   * @param targets int32 tensor [length, ...], or an `Int32Array` of one target per example.
   */
  constructor(inputs: Tensor<D>, targets: Tensor<"int32"> | Int32Array) {
    const y = targets instanceof Int32Array
      ? new Tensor<"int32">(targets, [targets.length])
      : targets;
    if (inputs.dtype !== "float32" && inputs.dtype !== "int32") {
      throw new TypeError(`TensorDataset: inputs must be float32 or int32, got ${inputs.dtype}`);
    }
    if (y.dtype !== "int32") {
      throw new TypeError(`TensorDataset: targets must be int32, got ${y.dtype}`);
    }
    if (inputs.ndim === 0 || y.ndim === 0 || inputs.shape[0] !== y.shape[0]) {
      throw new RangeError(
        `TensorDataset: inputs [${inputs.shape.join(", ")}] and targets [${
          y.shape.join(", ")
        }] must have one row per example (the same first dimension)`,
      );
    }
    this.inputs = own(inputs);
    this.targets = own(y);
  }

  /** Number of examples. */
  get length(): number {
    return this.inputs.shape[0];
  }

  /** Example `i` as [input, target] (copies). */
  get(i: number): [Tensor<D>, Tensor<"int32">] {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) {
      throw new RangeError(`TensorDataset: example ${i} is outside [0, ${this.length})`);
    }
    const [x, y] = this.batch(Int32Array.of(i));
    return [x.reshape(x.shape.slice(1)), y.reshape(y.shape.slice(1))];
  }

  /** The examples at `indices` as [inputs, targets], rows copied in that order. */
  batch(indices: Int32Array): [Tensor<D>, Tensor<"int32">] {
    return [gatherRows(this.inputs, indices), gatherRows(this.targets, indices)];
  }
}

/** `t` detached, as a contiguous tensor starting at offset 0 (copied only when needed). */
function own<D extends DType>(t: Tensor<D>): Tensor<D> {
  if (t.isContiguous() && t.offset === 0) return new Tensor<D>(t.data, t.shape);
  return new Tensor<D>(t.values(), t.shape);
}

/** Rows `indices` of contiguous `t` as a new contiguous tensor (one `set` per row). */
function gatherRows<D extends DType>(t: Tensor<D>, indices: Int32Array): Tensor<D> {
  const row = t.shape.slice(1).reduce((a, b) => a * b, 1);
  const n = indices.length * row;
  const data = (t.dtype === "float32" ? kernels.alloc(n) : new Int32Array(n)) as StorageOf<D>;
  for (let r = 0; r < indices.length; r++) {
    const start = indices[r] * row;
    data.set(t.data.subarray(start, start + row) as never, r * row);
  }
  return new Tensor<D>(data, [indices.length, ...t.shape.slice(1)]);
}

/** Options of a {@linkcode TensorDataLoader}. */
export interface TensorLoaderOptions {
  /** Examples per batch (default 64). */
  batchSize?: number;
  /** Reshuffle every epoch (default true). */
  shuffle?: boolean;
  /** Drop the last batch when it is smaller than `batchSize` (default false). */
  dropLast?: boolean;
  /** Seed of the shuffling stream (default 0). */
  seed?: number;
}

/**
 * Batches over a {@linkcode TensorDataset}: `for (const [x, y] of loader)` runs one epoch (the
 * next one each time it is iterated, as PyTorch reshuffles), {@linkcode TensorDataLoader.epoch}
 * a given epoch from a given batch. Each batch holds copies of its rows, contiguous.
 */
export class TensorDataLoader<D extends DatasetInputDType = "float32"> {
  /** The examples. */
  readonly dataset: TensorDataset<D>;
  /** Examples per batch. */
  readonly batchSize: number;
  readonly #shuffle: boolean;
  readonly #dropLast: boolean;
  readonly #seed: number;
  #nextEpoch = 0;

  /** Creates a loader; throws on an invalid option. */
  constructor(dataset: TensorDataset<D>, options: TensorLoaderOptions = {}) {
    this.dataset = dataset;
    this.batchSize = options.batchSize ?? 64;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new RangeError(
        `TensorDataLoader: batchSize must be a positive integer, got ${options.batchSize}`,
      );
    }
    this.#shuffle = options.shuffle ?? true;
    this.#dropLast = options.dropLast ?? false;
    this.#seed = options.seed ?? 0;
  }

  /** Number of batches in one epoch (PyTorch's `len(loader)`). */
  get length(): number {
    return batchCount(this.dataset.length, this.batchSize, this.#dropLast);
  }

  /** The order in which epoch `epoch` visits the examples. */
  order(epoch: number): Int32Array {
    return epochOrder(this.dataset.length, this.#shuffle, this.#seed, epoch);
  }

  /** The batches of epoch `epoch` (0-based) as [x, y], starting at batch `start`. */
  *epoch(epoch: number, start = 0): Generator<[Tensor<D>, Tensor<"int32">]> {
    const order = this.order(epoch);
    const n = this.dataset.length;
    for (let b = start; b < this.length; b++) {
      yield this.dataset.batch(
        order.subarray(b * this.batchSize, Math.min((b + 1) * this.batchSize, n)),
      );
    }
  }

  /** One epoch: epoch 0 the first time, then 1, 2, … */
  [Symbol.iterator](): Generator<[Tensor<D>, Tensor<"int32">]> {
    return this.epoch(this.#nextEpoch++);
  }
}
