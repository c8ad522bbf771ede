/**
 * What the trainer trains on, whatever the data: a {@linkcode Task} holds a training and a test
 * {@linkcode BatchSource} (batches of model inputs and int32 targets, in an order that is a pure
 * function of the seed and the epoch, so a resumed run sees the same batches), the target value
 * the loss ignores, and the unit its throughput is counted in.
 *
 * Two kinds: images (MNIST, Fashion-MNIST through {@linkcode DataLoader}'s uint8 fast path) and
 * the first-names corpus (data/names.ts) for the character models: `names-gpt` batches rows of
 * {@linkcode encodeSequences} (inputs and targets [N, 16], padding targets -1), `names-mlp` batches
 * every (3-character context, next character) pair of its names ({@linkcode encodeContexts}). A
 * names batch is always `batchSize` names in `DataLoader`'s order with `dropLast`, as the PyTorch
 * reference (bench/names_reference.md) replays it.
 *
 * @module
 */

import { type AnyTensor, Tensor } from "../autograd/mod.ts";
import { type Dataset, describeSource } from "../data/datasets.ts";
import { batchCount, DataLoader, epochOrder, normalizationFor } from "../data/loader.ts";
import {
  CharVocab,
  encodeContexts,
  encodeSequences,
  IGNORE_TARGET,
  loadNames,
  NAMES_BLOCK_SIZE,
  type NamesCorpus,
} from "../data/names.ts";
import type { TrainConfig } from "./configs.ts";

/** One batch: the model's input, the targets of its output rows, and how many targets count. */
export interface TaskBatch {
  /** Model input: float32 images [N, 1, 28, 28], or int32 tokens [N, T] / contexts [N, 3]. */
  x: AnyTensor;
  /** One target per row of the flattened logits; {@linkcode Task.ignoreIndex} where none. */
  y: Int32Array;
  /** Targets that count (not ignored): images, or characters. */
  count: number;
}

/** Batches over one split. */
export interface BatchSource {
  /** Examples (images or names) in the split. */
  readonly size: number;
  /** Examples per batch. */
  readonly batchSize: number;
  /** Batches in one epoch. */
  readonly batchesPerEpoch: number;
  /** The batches of `epoch` (0-based) from batch `start` on. */
  epoch(epoch: number, start?: number): Iterable<TaskBatch>;
}

/** The data of a training run. */
export interface Task {
  /** Training batches (shuffled by the seed). */
  train: BatchSource;
  /** Test or validation batches, in order. */
  test: BatchSource;
  /** Target value the loss and the error count skip (undefined: none). */
  ignoreIndex?: number;
  /** What throughput counts, per second: "img" or "char". */
  unit: string;
  /**
   * Which test figure picks `best.safetensors`: the error (the classifiers) or the loss (the
   * names models, whose next-character error says little about how well they model names).
   */
  selectBy: "error" | "loss";
  /** One line on where the data came from, for the log. */
  description: string;
  /** Strings the checkpoints record beside the config (e.g. the vocabulary). */
  metadata: Record<string, string>;
}

/** Whether a config trains on the first-names corpus. */
export function isNamesConfig(c: Pick<TrainConfig, "dataset">): boolean {
  return c.dataset === "names";
}

/** The MNIST loader as a task's batch source (every label counts). */
export function imageBatches(loader: DataLoader): BatchSource {
  return {
    size: loader.size,
    batchSize: loader.batchSize,
    batchesPerEpoch: loader.batchesPerEpoch,
    *epoch(epoch, start = 0) {
      for (const { x, y } of loader.epoch(epoch, start)) yield { x, y, count: y.length };
    },
  };
}

/** The task of an image dataset: the MNIST loader, with shifts, normalisation and limits. */
export function imageTask(data: Dataset, c: TrainConfig): Task {
  const normalization = normalizationFor(c.dataset);
  const wrap = imageBatches;
  const train = new DataLoader(data.train.images, data.train.labels, {
    batchSize: c.batchSize,
    seed: c.seed,
    maxShift: c.augmentShift,
    normalization,
    limit: c.limitTrain || undefined,
  });
  // Evaluated at the training batch size: a larger batch would grow the kernels' scratch in
  // wasm memory (which never shrinks) and leave its activations to a late garbage collection;
  // at batch 1000, AlexNet's resident memory rose by about 300 MiB.
  const test = new DataLoader(data.test.images, data.test.labels, {
    batchSize: c.batchSize,
    shuffle: false,
    normalization,
    limit: c.limitTest || undefined,
  });
  return {
    train: wrap(train),
    test: wrap(test),
    unit: "img",
    selectBy: "error",
    description: `${c.dataset} from ${describeSource(data.source)}`,
    metadata: {},
  };
}

/** How a names model reads a name: whole rows (the transformer) or 3-character contexts. */
export type NamesEncoding = "sequences" | "contexts";

/** The encoding a names model needs. */
export function namesEncoding(model: string): NamesEncoding {
  return model === "names-mlp" ? "contexts" : "sequences";
}

/** Options of {@linkcode NamesBatches}. */
export interface NamesBatchesOptions {
  /** Names per batch. */
  batchSize: number;
  /** Shuffle each epoch in DataLoader's order (default true). */
  shuffle?: boolean;
  /** Drop the last, smaller batch (default: as `shuffle`). */
  dropLast?: boolean;
  /** Seed of the order. */
  seed?: number;
  /** Context length of the MLP (default 3) or row length of the transformer (default 16). */
  blockSize?: number;
}

/**
 * Batches of names for a character model. Epoch e visits the names in the order
 * `new Rng(streamSeed(seed, e, -1)).permutation(size)` (DataLoader's), cut into batches of
 * `batchSize` names; a batch holds the names' rows of inputs [B, T] and targets (sequences), or all
 * their (context, next character) pairs (contexts).
 */
export class NamesBatches implements BatchSource {
  /** Names in the split. */
  readonly size: number;
  /** Names per batch. */
  readonly batchSize: number;
  /** How a name becomes rows. */
  readonly encoding: NamesEncoding;
  /** Real (non-padding) targets in the whole split. */
  readonly characters: number;
  readonly #shuffle: boolean;
  readonly #dropLast: boolean;
  readonly #seed: number;
  readonly #width: number;
  readonly #inputs: Int32Array;
  readonly #targets: Int32Array;
  /** Row offsets per name (contexts); undefined for sequences (one row each). */
  readonly #offsets: Int32Array | undefined;

  /**
   * Encodes `names` once.
   *
   * @param names The split's names.
   * @param vocab The vocabulary.
   * @param encoding Rows or contexts.
   * @param options Batch size, order and block size.
   */
  constructor(
    names: readonly string[],
    vocab: CharVocab,
    encoding: NamesEncoding,
    options: NamesBatchesOptions,
  ) {
    this.size = names.length;
    this.batchSize = options.batchSize;
    this.encoding = encoding;
    this.#shuffle = options.shuffle ?? true;
    this.#dropLast = options.dropLast ?? this.#shuffle;
    this.#seed = options.seed ?? 0;
    if (encoding === "sequences") {
      const e = encodeSequences(names, vocab, options.blockSize ?? NAMES_BLOCK_SIZE);
      this.#width = e.blockSize;
      this.#inputs = e.inputs;
      this.#targets = e.targets;
      this.#offsets = undefined;
      this.characters = e.characters;
    } else {
      const e = encodeContexts(names, vocab, options.blockSize ?? 3);
      this.#width = e.blockSize;
      this.#inputs = e.contexts;
      this.#targets = e.targets;
      this.#offsets = e.offsets;
      this.characters = e.count;
    }
  }

  /** Batches in one epoch. */
  get batchesPerEpoch(): number {
    return batchCount(this.size, this.batchSize, this.#dropLast);
  }

  /** The order in which epoch `epoch` visits the names. */
  order(epoch: number): Int32Array {
    return epochOrder(this.size, this.#shuffle, this.#seed, epoch);
  }

  /** The batches of epoch `epoch` from batch `start` on. */
  *epoch(epoch: number, start = 0): Generator<TaskBatch> {
    const order = this.order(epoch);
    for (let b = start; b < this.batchesPerEpoch; b++) {
      yield this.batch(
        order.subarray(b * this.batchSize, Math.min((b + 1) * this.batchSize, this.size)),
      );
    }
  }

  /** The batch of the names at `indices`. */
  batch(indices: ArrayLike<number>): TaskBatch {
    const w = this.#width;
    const offsets = this.#offsets;
    let rows = indices.length;
    if (offsets !== undefined) {
      rows = 0;
      for (let i = 0; i < indices.length; i++) {
        rows += offsets[indices[i] + 1] - offsets[indices[i]];
      }
    }
    const x = new Int32Array(rows * w);
    const y = new Int32Array(rows);
    let row = 0;
    for (let i = 0; i < indices.length; i++) {
      const from = offsets ? offsets[indices[i]] : indices[i];
      const to = offsets ? offsets[indices[i] + 1] : indices[i] + 1;
      x.set(this.#inputs.subarray(from * w, to * w), row * w);
      if (offsets) y.set(this.#targets.subarray(from, to), row);
      row += to - from;
    }
    if (offsets !== undefined) {
      return { x: new Tensor(x, [rows, w]), y, count: rows };
    }
    // Sequences: targets [B, T] flattened, padding -1.
    const targets = new Int32Array(rows * w);
    let count = 0;
    for (let i = 0; i < indices.length; i++) {
      const src = this.#targets.subarray(indices[i] * w, (indices[i] + 1) * w);
      targets.set(src, i * w);
      for (let t = 0; t < w; t++) if (src[t] !== IGNORE_TARGET) count++;
    }
    return { x: new Tensor(x, [rows, w]), y: targets, count };
  }
}

/** The metadata key holding a names checkpoint's vocabulary (its characters after the boundary). */
export const VOCAB_METADATA_KEY = "vocab";

/** The vocabulary recorded in a names checkpoint's metadata, or undefined. */
export function vocabFromMetadata(metadata: Record<string, string>): CharVocab | undefined {
  const chars = metadata[VOCAB_METADATA_KEY];
  return chars === undefined ? undefined : new CharVocab([...chars]);
}

/** The names task of a config: the corpus split, batched for the config's model. */
export async function namesTask(c: TrainConfig, corpus?: NamesCorpus): Promise<Task> {
  const names = corpus ?? await loadNames();
  const encoding = namesEncoding(c.model);
  const limit = (list: readonly string[], n: number) => (n > 0 ? list.slice(0, n) : list);
  const train = new NamesBatches(limit(names.train, c.limitTrain), names.vocab, encoding, {
    batchSize: c.batchSize,
    seed: c.seed,
  });
  // The whole validation split in one or a few batches: it is small (842 names).
  const test = new NamesBatches(limit(names.validation, c.limitTest), names.vocab, encoding, {
    batchSize: 1024,
    shuffle: false,
  });
  return {
    train,
    test,
    ignoreIndex: IGNORE_TARGET,
    unit: "char",
    selectBy: "loss",
    description: `first names (${names.names.length} names, ${names.vocab.size} tokens) from ` +
      `${names.sources.female} and ${names.sources.male}; ${train.characters} train and ` +
      `${test.characters} validation characters`,
    metadata: { [VOCAB_METADATA_KEY]: names.vocab.chars.slice(1).join("") },
  };
}
