/**
 * {@linkcode MultiheadAttention} with PyTorch's parameter names and layouts (`in_proj_weight`,
 * `in_proj_bias`, `out_proj.weight`, `out_proj.bias`), so its state dict loads in PyTorch and back.
 *
 * @module
 */

import {
  type AnyTensor,
  attentionWeights,
  formatShape,
  linear,
  matmul,
  type Rng,
  scaledDotProductAttention,
  slice,
  Tensor,
  where,
} from "../autograd/mod.ts";
import { xavierUniform } from "./init.ts";
import { Linear } from "./layers.ts";
import { Module } from "./module.ts";
import { Parameter } from "./parameter.ts";

/** Options of {@linkcode MultiheadAttention}. */
export interface MultiheadAttentionOptions {
  /** Dropout probability on the attention weights in training mode (default 0). */
  dropout?: number;
  /** Learn the input and output projection biases (default true). */
  bias?: boolean;
  /**
   * Inputs and output are [N, L, E] (true, the default here) or [L, N, E] (false). PyTorch's
   * default is false; tapegrad defaults to batch-first, the layout its other layers use.
   */
  batchFirst?: boolean;
  /** Generator for the initial weights and the dropout masks (default: the library's). */
  rng?: Rng;
}

/** Options of {@linkcode MultiheadAttention.forward}. */
export interface MultiheadAttentionForwardOptions {
  /**
   * [L, S] or [N·numHeads, L, S]: a bool mask where TRUE BLOCKS a position (PyTorch's convention for
   * this layer, the opposite of `scaledDotProductAttention`'s), or an additive float mask.
   */
  attnMask?: Tensor<"bool"> | Tensor;
  /** [N, S] bool: true marks padding keys that no query may attend to. */
  keyPaddingMask?: Tensor<"bool">;
  /**
   * Apply the causal mask (position i attends to j ≤ i). Unlike PyTorch, where it is only a hint
   * that `attnMask` is causal, it needs no `attnMask`.
   */
  isCausal?: boolean;
  /**
   * Must be false (the default here; PyTorch's is true): `forward` returns the attention output
   * only; `forwardWithWeights` returns the weights too.
   */
  needWeights?: boolean;
}

/**
 * Multi-head attention (PyTorch's `nn.MultiheadAttention`): the query, key and value are projected
 * by `in_proj_weight` [3E, E] and `in_proj_bias` [3E] (one product when they are the same tensor,
 * as in self-attention), split into `numHeads` heads of E / numHeads, attended with
 * `scaledDotProductAttention`, merged, and projected by `out_proj` (a Linear E → E). Returns the
 * attention output [N, L, E] (batch-first by default; see the options).
 */
export class MultiheadAttention
  extends Module<[Tensor, Tensor, Tensor, MultiheadAttentionForwardOptions?], Tensor> {
  /** Model width E. */
  readonly embedDim: number;
  /** Number of heads. */
  readonly numHeads: number;
  /** Width of one head, E / numHeads. */
  readonly headDim: number;
  /** Attention-weight dropout probability (training mode only). */
  readonly dropout: number;
  /** Whether inputs are [N, L, E]. */
  readonly batchFirst: boolean;
  /** The query, key and value projections stacked, [3E, E]. */
  in_proj_weight: Parameter;
  /** Their biases stacked, [3E], or null without bias. */
  in_proj_bias: Parameter | null;
  /** The output projection. */
  out_proj: Linear;
  readonly #rng: Rng | undefined;

  /**
   * Creates the layer: `in_proj_weight` from Xavier uniform, the biases zero, `out_proj.weight` as
   * a Linear's (PyTorch's initialisation).
   *
   * @param embedDim Model width E.
   * @param numHeads Heads (must divide E).
   * @param options `dropout`, `bias`, `batchFirst`, `rng`.
   */
  constructor(embedDim: number, numHeads: number, options: MultiheadAttentionOptions = {}) {
    super();
    if (
      !Number.isInteger(embedDim) || !Number.isInteger(numHeads) || numHeads < 1 || embedDim < 1
    ) {
      throw new RangeError(
        `MultiheadAttention: embedDim and numHeads must be positive integers, got ${embedDim}, ${numHeads}`,
      );
    }
    if (embedDim % numHeads !== 0) {
      throw new RangeError(
        `MultiheadAttention: embedDim ${embedDim} is not divisible by numHeads ${numHeads}`,
      );
    }
    const dropout = options.dropout ?? 0;
    if (!(dropout >= 0 && dropout < 1)) {
      throw new RangeError(`MultiheadAttention: dropout must be in [0, 1), got ${dropout}`);
    }
    this.embedDim = embedDim;
    this.numHeads = numHeads;
    this.headDim = embedDim / numHeads;
    this.dropout = dropout;
    this.batchFirst = options.batchFirst ?? true;
    this.#rng = options.rng;
    const bias = options.bias ?? true;
    this.in_proj_weight = Parameter.zeros([3 * embedDim, embedDim]);
    this.in_proj_bias = bias ? Parameter.zeros([3 * embedDim]) : null;
    this.out_proj = new Linear(embedDim, embedDim, { bias, rng: options.rng });
    this.out_proj.bias?.data.fill(0);
    xavierUniform(this.in_proj_weight, { rng: options.rng });
  }

  /** Projection `i` (0 query, 1 key, 2 value; `count` of them at once) of x [N, L, E]. */
  #project(x: Tensor, i: number, count: number): Tensor {
    const E = this.embedDim;
    // All three: the parameters themselves, so linear adds into their gradients directly.
    const part = (p: Parameter) => (count === 3 ? p : slice(p, 0, i * E, (i + count) * E));
    const bias = this.in_proj_bias === null ? undefined : part(this.in_proj_bias);
    return linear(x, part(this.in_proj_weight), bias);
  }

  /** [N, L, count·E] → `count` tensors [N, H, L, hd] (views where the layout allows). */
  #heads(x: Tensor, count: number): Tensor[] {
    const [n, l] = x.shape;
    const split = x.reshape(n, l, count, this.numHeads, this.headDim).permute(2, 0, 3, 1, 4);
    return Array.from({ length: count }, (_, i) => split.narrow(0, i, 1).squeeze(0));
  }

  /** The combined additive or bool mask for scores [N, H, L, S], or undefined. */
  #mask(options: MultiheadAttentionForwardOptions, n: number, l: number, s: number) {
    const { attnMask, keyPaddingMask } = options;
    let mask: Tensor | undefined;
    if (attnMask !== undefined) {
      const expected = [[l, s], [n * this.numHeads, l, s]];
      if (
        !expected.some((e) =>
          e.length === attnMask.ndim && e.every((d, i) => d === attnMask.shape[i])
        )
      ) {
        throw new RangeError(
          `MultiheadAttention: attnMask ${formatShape(attnMask.shape)} must be [${l}, ${s}] or [${
            n * this.numHeads
          }, ${l}, ${s}]`,
        );
      }
      const additive = blocked(attnMask);
      mask = attnMask.ndim === 3 ? additive.reshape(n, this.numHeads, l, s) : additive;
    }
    if (keyPaddingMask !== undefined) {
      if (
        keyPaddingMask.ndim !== 2 || keyPaddingMask.shape[0] !== n || keyPaddingMask.shape[1] !== s
      ) {
        throw new RangeError(
          `MultiheadAttention: keyPaddingMask ${
            formatShape(keyPaddingMask.shape)
          } must be [${n}, ${s}]`,
        );
      }
      const padding = blocked(keyPaddingMask).reshape(n, 1, 1, s);
      mask = mask === undefined ? padding : mask.add(padding);
    }
    return mask;
  }

  /**
   * Attends `query` [N, L, E] to `key` [N, S, E] and `value` [N, S, E] (sequence-first when
   * `batchFirst` is false); returns [N, L, E]. For the attention weights too, call
   * {@linkcode MultiheadAttention.forwardWithWeights}.
   */
  forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    options: MultiheadAttentionForwardOptions = {},
  ): Tensor {
    if (options.needWeights === true) {
      throw new TypeError(
        "MultiheadAttention: forward returns the output only; call forwardWithWeights for the " +
          "attention weights (PyTorch's need_weights=True)",
      );
    }
    return this.#attend(query, key, value, options, null).output;
  }

  /**
   * As {@linkcode MultiheadAttention.forward}, and also returns the attention weights (after
   * dropout, as PyTorch's `need_weights=True`): [N, L, S] averaged over the heads, or
   * [N, numHeads, L, S] with `averageAttnWeights: false`. The weights are part of the graph, so a
   * loss may use them.
   */
  forwardWithWeights(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    options: MultiheadAttentionForwardOptions & { averageAttnWeights?: boolean } = {},
  ): { output: Tensor; weights: Tensor } {
    const { output, weights } = this.#attend(
      query,
      key,
      value,
      options,
      options.averageAttnWeights ?? true,
    );
    return { output, weights: weights! };
  }

  /** The layer's computation; with `average` non-null the weights are computed apart and kept. */
  #attend(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    options: MultiheadAttentionForwardOptions,
    average: boolean | null,
  ): { output: Tensor; weights?: Tensor } {
    const E = this.embedDim;
    for (const [name, t] of [["query", query], ["key", key], ["value", value]] as const) {
      if (t.ndim !== 3 || t.shape[2] !== E) {
        throw new RangeError(
          `MultiheadAttention: ${name} ${formatShape(t.shape)} must be ${
            this.batchFirst ? "[N, L, E]" : "[L, N, E]"
          } with E = ${E}`,
        );
      }
    }
    const toBatchFirst = (t: Tensor) => (this.batchFirst ? t : t.transpose(0, 1));
    const selfAttention = query === key && key === value;
    const q0 = toBatchFirst(query);
    let q: Tensor, k: Tensor, v: Tensor;
    if (selfAttention) {
      [q, k, v] = this.#heads(this.#project(q0, 0, 3), 3);
    } else {
      [q] = this.#heads(this.#project(q0, 0, 1), 1);
      if (key === value) [k, v] = this.#heads(this.#project(toBatchFirst(key), 1, 2), 2);
      else {
        [k] = this.#heads(this.#project(toBatchFirst(key), 1, 1), 1);
        [v] = this.#heads(this.#project(toBatchFirst(value), 2, 1), 1);
      }
    }
    const [n, , l] = q.shape;
    const s = k.shape[2];
    const mask = this.#mask(options, n, l, s);
    const causal = options.isCausal === true;
    const attention = {
      mask: causal && mask !== undefined ? mask.add(causalAdditive(l, s)) : mask,
      causal: causal && mask === undefined,
      dropout: this.training ? this.dropout : 0,
      rng: this.#rng,
    };
    let out: Tensor;
    let weights: Tensor | undefined;
    if (average === null) out = scaledDotProductAttention(q, k, v, attention);
    else {
      weights = attentionWeights(q, k, attention);
      out = matmul(weights, v);
      if (average) weights = weights.mean(1);
    }
    const merged = out.permute(0, 2, 1, 3).reshape(n, l, E);
    const y = this.out_proj.call(merged);
    return { output: this.batchFirst ? y : y.transpose(0, 1), weights };
  }

  /** Width, heads, dropout and layout, as PyTorch shows them. */
  override extraRepr(): string {
    return `embedDim=${this.embedDim}, numHeads=${this.numHeads}, dropout=${this.dropout}, batchFirst=${this.batchFirst}`;
  }
}

/** A mask in this layer's convention (bool true blocks) as an additive float mask. */
function blocked(mask: AnyTensor): Tensor {
  return mask.dtype === "bool" ? where(mask as Tensor<"bool">, -Infinity, 0) : (mask as Tensor);
}

/** [L, S] additive causal mask (−∞ above the diagonal), for combining with another mask. */
function causalAdditive(l: number, s: number): Tensor {
  const data = new Float32Array(l * s);
  for (let i = 0; i < l; i++) data.fill(-Infinity, i * s + Math.min(i + 1, s), (i + 1) * s);
  return new Tensor(data, [l, s]);
}
