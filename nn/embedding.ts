/**
 * {@linkcode Embedding}: a lookup table of learned vectors, PyTorch's `nn.Embedding` (parameter
 * `weight` [numEmbeddings, embeddingDim], initialised N(0, 1), an optional `paddingIdx` row that is
 * zeroed and gets no gradient).
 *
 * @module
 */

import { defaultRng, embedding, type Indices, type Rng, type Tensor } from "../autograd/mod.ts";
import { normalInit } from "./init.ts";
import { Module } from "./module.ts";
import { Parameter } from "./parameter.ts";

/** Options of {@linkcode Embedding}. */
export interface EmbeddingLayerOptions {
  /**
   * A row (negative counts from the end) that starts at zero and receives no gradient, for a
   * padding token (PyTorch's `padding_idx`).
   */
  paddingIdx?: number;
  /** Generator for the initial weights (default: the library's seeded default generator). */
  rng?: Rng;
}

/**
 * Maps integer indices of any shape to rows of `weight`: input [...], output [..., embeddingDim]
 * (PyTorch's `nn.Embedding`, same name and layout). The lookup copies one row per index and its
 * gradient adds rows back (scatter-add), so the cost does not grow with `numEmbeddings`.
 */
export class Embedding extends Module<[Indices], Tensor> {
  /** Size of the table. */
  readonly numEmbeddings: number;
  /** Width of each vector. */
  readonly embeddingDim: number;
  /** The padding row (non-negative), or undefined without one. */
  readonly paddingIdx: number | undefined;
  /** The table, [numEmbeddings, embeddingDim]. */
  weight: Parameter;

  /**
   * Creates an Embedding.
   *
   * @param numEmbeddings Number of rows (the vocabulary size).
   * @param embeddingDim Width of each row.
   * @param options `paddingIdx` and `rng`.
   */
  constructor(numEmbeddings: number, embeddingDim: number, options: EmbeddingLayerOptions = {}) {
    super();
    for (
      const [name, value] of [["numEmbeddings", numEmbeddings], ["embeddingDim", embeddingDim]]
    ) {
      if (!Number.isInteger(value) || (value as number) < 1) {
        throw new RangeError(`Embedding: ${name} must be a positive integer, got ${value}`);
      }
    }
    this.numEmbeddings = numEmbeddings;
    this.embeddingDim = embeddingDim;
    const p = options.paddingIdx;
    if (p !== undefined && (!Number.isInteger(p) || p < -numEmbeddings || p >= numEmbeddings)) {
      throw new RangeError(
        `Embedding: paddingIdx ${p} is outside [-${numEmbeddings}, ${numEmbeddings})`,
      );
    }
    this.paddingIdx = p === undefined ? undefined : p < 0 ? p + numEmbeddings : p;
    this.weight = Parameter.zeros([numEmbeddings, embeddingDim]);
    normalInit(this.weight, 0, 1, options.rng ?? defaultRng());
    if (this.paddingIdx !== undefined) {
      this.weight.data.fill(
        0,
        this.paddingIdx * embeddingDim,
        (this.paddingIdx + 1) * embeddingDim,
      );
    }
  }

  /** The rows of `weight` at `indices` (an int32 tensor, `Int32Array` or `number[]`). */
  forward(indices: Indices): Tensor {
    return embedding(indices, this.weight, { paddingIdx: this.paddingIdx });
  }

  /** `numEmbeddings, embeddingDim[, paddingIdx=…]`. */
  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}` +
      (this.paddingIdx === undefined ? "" : `, paddingIdx=${this.paddingIdx}`);
  }
}
