/**
 * Mini-batches from an image set kept as bytes: each batch is normalised on the fly into a
 * `[N, 1, rows, cols]` tensor, never the whole set at once.
 *
 * Order is a pure function of (seed, epoch): the permutation of epoch e comes from a generator
 * seeded with (seed, e), and the augmentation of batch b from one seeded with (seed, e, b). So the
 * same seed gives the same batches on every run, and a run resumed in the middle of an epoch sees
 * exactly the batches an uninterrupted one would, with no generator state to save.
 *
 * @module
 */

import { Rng } from "../autograd/rng.ts";
import { Tensor } from "../autograd/tensor.ts";
import { kernels } from "../autograd/kernels/mod.ts";
import type { IdxImages } from "./idx.ts";

/** Per-dataset normalisation: pixel/255 is mapped to (value − mean) / std. */
export interface Normalization {
  /** Mean of pixel/255 over the training set. */
  mean: number;
  /** Standard deviation of pixel/255 over the training set. */
  std: number;
}

/** MNIST's training-set statistics (the values PyTorch's MNIST example uses). */
export const MNIST_NORMALIZATION: Normalization = { mean: 0.1307, std: 0.3081 };
/** Fashion-MNIST's training-set statistics. */
export const FASHION_MNIST_NORMALIZATION: Normalization = { mean: 0.286, std: 0.353 };

/** The normalisation that goes with a dataset name (MNIST's for unknown names). */
export function normalizationFor(dataset: string): Normalization {
  return dataset === "fashion-mnist" ? FASHION_MNIST_NORMALIZATION : MNIST_NORMALIZATION;
}

/** One mini-batch. */
export interface Batch {
  /** Normalised images, `[N, 1, rows, cols]`. */
  x: Tensor;
  /** Class labels, one per image. */
  y: Int32Array;
  /** Positions of these examples in the dataset. */
  indices: Int32Array;
}

/** Options of a {@linkcode DataLoader}. */
export interface LoaderOptions {
  /** Examples per batch (default 64). */
  batchSize?: number;
  /** Reshuffle every epoch (default true). */
  shuffle?: boolean;
  /** Drop the last batch when it is smaller than `batchSize` (default false). */
  dropLast?: boolean;
  /** Seed of the shuffling and augmentation streams (default 0). */
  seed?: number;
  /** Random shifts of up to this many pixels in each direction, zero-filled (default 0: none). */
  maxShift?: number;
  /** Pixel normalisation (default MNIST's). */
  normalization?: Normalization;
  /** Use only the first `limit` examples (default: all). */
  limit?: number;
}

/**
 * Mixes (seed, epoch, batch) into one generator seed; distinct triples give unrelated streams.
 * Epoch e's order is `new Rng(streamSeed(seed, e, -1)).permutation(size)`.
 */
export function streamSeed(seed: number, epoch: number, batch: number): number {
  // Fold to 53 bits with multipliers that keep small inputs apart; SplitMix64 in Rng does the mixing.
  return ((seed * 1_000_003 + epoch) * 1_000_033 + batch + 1) % Number.MAX_SAFE_INTEGER;
}

/**
 * The order in which epoch `epoch` visits `size` examples: `new Rng(streamSeed(seed, epoch,
 * -1)).permutation(size)` when shuffling, else 0..size−1. Every loader of the library uses it, so
 * they all visit examples alike and resume alike.
 */
export function epochOrder(
  size: number,
  shuffle: boolean,
  seed: number,
  epoch: number,
): Int32Array {
  if (!shuffle) return Int32Array.from({ length: size }, (_, i) => i);
  return new Rng(streamSeed(seed, epoch, -1)).permutation(size);
}

/** Batches in an epoch of `size` examples: a last, smaller batch counts unless `dropLast`. */
export function batchCount(size: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(size / batchSize) : Math.ceil(size / batchSize);
}

/**
 * Batches over a byte image set with labels; iterate with {@linkcode DataLoader.epoch}.
 *
 * @example
 * ```ts
 * import { DataLoader } from "@tapegrad/tapegrad/data";
 *
 * // Ten blank 28×28 images (loadDataset("mnist") gives real ones) and their labels.
 * const images = { count: 10, rows: 28, cols: 28, pixels: new Uint8Array(10 * 784) };
 * const labels = Uint8Array.from({ length: 10 }, (_, i) => i);
 * const loader = new DataLoader(images, labels, { batchSize: 4, seed: 1 });
 * for (const { x, y } of loader.epoch(0)) {
 *   console.log(x.shape, y.length); // [4, 1, 28, 28] 4, twice, then [2, 1, 28, 28] 2
 * }
 * ```
 */
export class DataLoader {
  /** Images as bytes. */
  readonly images: IdxImages;
  /** Labels by image. */
  readonly labels: Uint8Array;
  /** Number of examples used (after `limit`). */
  readonly size: number;
  /** Examples per batch. */
  readonly batchSize: number;
  readonly #shuffle: boolean;
  readonly #dropLast: boolean;
  readonly #seed: number;
  readonly #maxShift: number;
  readonly #lookup = new Float32Array(256);
  readonly #background: number;

  /** Creates a loader; throws when the images and labels disagree or an option is invalid. */
  constructor(images: IdxImages, labels: Uint8Array, options: LoaderOptions = {}) {
    if (labels.length !== images.count) {
      throw new RangeError(`DataLoader: ${images.count} images but ${labels.length} labels`);
    }
    this.images = images;
    this.labels = labels;
    this.batchSize = options.batchSize ?? 64;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new RangeError(
        `DataLoader: batchSize must be a positive integer, got ${options.batchSize}`,
      );
    }
    const limit = options.limit ?? images.count;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`DataLoader: limit must be a positive integer, got ${limit}`);
    }
    this.size = Math.min(limit, images.count);
    this.#shuffle = options.shuffle ?? true;
    this.#dropLast = options.dropLast ?? false;
    this.#seed = options.seed ?? 0;
    this.#maxShift = options.maxShift ?? 0;
    const { mean, std } = options.normalization ?? MNIST_NORMALIZATION;
    for (let v = 0; v < 256; v++) this.#lookup[v] = (v / 255 - mean) / std;
    this.#background = this.#lookup[0];
  }

  /** Number of batches in one epoch. */
  get batchesPerEpoch(): number {
    return batchCount(this.size, this.batchSize, this.#dropLast);
  }

  /** The order in which epoch `epoch` visits the examples. */
  order(epoch: number): Int32Array {
    return epochOrder(this.size, this.#shuffle, this.#seed, epoch);
  }

  /** The batches of epoch `epoch` (0-based), starting at batch `start` (for resuming mid-epoch). */
  *epoch(epoch: number, start = 0): Generator<Batch> {
    const order = this.order(epoch);
    for (let b = start; b < this.batchesPerEpoch; b++) {
      const indices = order.subarray(
        b * this.batchSize,
        Math.min((b + 1) * this.batchSize, this.size),
      );
      const shifts = this.#maxShift > 0 ? new Rng(streamSeed(this.#seed, epoch, b)) : null;
      yield this.batch(indices, shifts);
    }
  }

  /** Builds the batch of the given examples (shifted randomly when `shifts` is given). */
  batch(indices: Int32Array, shifts: Rng | null = null): Batch {
    const { rows, cols, pixels } = this.images;
    const plane = rows * cols;
    const x = new Tensor(kernels.alloc(indices.length * plane), [indices.length, 1, rows, cols]);
    const y = new Int32Array(indices.length);
    const out = x.data;
    const lookup = this.#lookup;
    const span = 2 * this.#maxShift + 1;
    for (let n = 0; n < indices.length; n++) {
      const index = indices[n];
      y[n] = this.labels[index];
      const src = index * plane;
      const dst = n * plane;
      const dy = shifts ? shifts.int(span) - this.#maxShift : 0;
      const dx = shifts ? shifts.int(span) - this.#maxShift : 0;
      if (dx === 0 && dy === 0) {
        for (let i = 0; i < plane; i++) out[dst + i] = lookup[pixels[src + i]];
        continue;
      }
      // Output pixel (r, c) reads input (r − dy, c − dx); outside the image is background.
      for (let r = 0; r < rows; r++) {
        const sr = r - dy;
        const rowOut = dst + r * cols;
        if (sr < 0 || sr >= rows) {
          out.fill(this.#background, rowOut, rowOut + cols);
          continue;
        }
        // Columns c0..c1−1 read inside the image; the margins are background.
        const rowIn = src + sr * cols - dx;
        const c0 = Math.max(0, dx);
        const c1 = Math.min(cols, cols + dx);
        out.fill(this.#background, rowOut, rowOut + c0);
        for (let c = c0; c < c1; c++) out[rowOut + c] = lookup[pixels[rowIn + c]];
        out.fill(this.#background, rowOut + c1, rowOut + cols);
      }
    }
    return { x, y, indices: Int32Array.from(indices) };
  }
}
