/**
 * The two character-level models of the first-names task: {@linkcode NamesGPT}, a small
 * pre-LayerNorm causal transformer, and {@linkcode NamesMLP}, the Bengio et al. (2003) neural
 * language model. Both take int32 token tensors and return logits over the vocabulary; parameter
 * names and shapes are those of the PyTorch modules in `bench/names_torch.py`, so state dicts load
 * in both directions.
 *
 * @module
 */

import { gelu, type Rng, type Tensor } from "../../autograd/mod.ts";
import { arange } from "../../autograd/create.ts";
import { MultiheadAttention } from "../attention.ts";
import { Embedding } from "../embedding.ts";
import type { JsonObject } from "../json.ts";
import { Linear } from "../layers.ts";
import { Module, ModuleList } from "../module.ts";
import { LayerNorm } from "../norm.ts";
import { initRng, type ModelSpec } from "./spec.ts";

/** Options of {@linkcode NamesGPT}. */
export interface NamesGPTOptions {
  /** Tokens in the vocabulary (default 28: the boundary, `-`, `a`–`z`). */
  vocabSize?: number;
  /** Longest input sequence: rows of the position embedding (default 16). */
  blockSize?: number;
  /** Model width (default 64). */
  width?: number;
  /** Transformer blocks (default 4). */
  layers?: number;
  /** Attention heads per block (default 4; must divide `width`). */
  heads?: number;
  /** Hidden width of each block's MLP (default 4 × width). */
  mlpWidth?: number;
  /** Seed of the initial weights (ignored when `rng` is given). */
  seed?: number;
  /** Generator of the initial weights (default: from `seed`, else the library's). */
  rng?: Rng;
}

/**
 * One pre-LayerNorm transformer block: `x + attn(ln1(x))` with causal self-attention, then
 * `x + fc2(gelu(fc1(ln2(x))))` (exact, erf-based GELU).
 */
export class NamesBlock extends Module {
  /** LayerNorm before the attention. */
  ln1: LayerNorm;
  /** Causal multi-head self-attention (batch-first). */
  attn: MultiheadAttention;
  /** LayerNorm before the MLP. */
  ln2: LayerNorm;
  /** width → mlpWidth. */
  fc1: Linear;
  /** mlpWidth → width. */
  fc2: Linear;

  /**
   * Creates a block.
   *
   * @param width Model width.
   * @param heads Attention heads.
   * @param mlpWidth Hidden width of the MLP.
   * @param rng Generator of the initial weights.
   */
  constructor(width: number, heads: number, mlpWidth: number, rng: Rng) {
    super();
    this.ln1 = new LayerNorm(width);
    this.attn = new MultiheadAttention(width, heads, { rng });
    this.ln2 = new LayerNorm(width);
    this.fc1 = new Linear(width, mlpWidth, { rng });
    this.fc2 = new Linear(mlpWidth, width, { rng });
  }

  /** [N, T, width] → [N, T, width]; position t sees positions 0..t only. */
  forward(x: Tensor): Tensor {
    const h = this.ln1.call(x);
    const attended = x.add(this.attn.call(h, h, h, { isCausal: true }));
    return attended.add(this.fc2.call(gelu(this.fc1.call(this.ln2.call(attended)))));
  }
}

/**
 * A character-level GPT: token embedding plus position embedding, `layers` pre-LayerNorm blocks of
 * causal self-attention and a GELU MLP ({@linkcode NamesBlock}), a final LayerNorm and a linear
 * head. No dropout, no weight tying. PyTorch's layers and default initialisation throughout
 * (embeddings N(0, 1), `in_proj_weight` Xavier uniform, projection biases zero, Linear's uniform
 * ±1/√fan_in). The PyTorch module with the same state dict (`tok.weight`, `pos.weight`,
 * `blocks.0.ln1.weight`, `blocks.0.attn.in_proj_weight`, …, `ln_f.weight`, `head.weight`):
 *
 * ```python
 * class Block(nn.Module):
 *     def __init__(self, d=64, h=4):
 *         super().__init__()
 *         self.ln1 = nn.LayerNorm(d)
 *         self.attn = nn.MultiheadAttention(d, h, batch_first=True)
 *         self.ln2 = nn.LayerNorm(d)
 *         self.fc1 = nn.Linear(d, 4 * d)
 *         self.fc2 = nn.Linear(4 * d, d)
 *     def forward(self, x, mask):
 *         h = self.ln1(x)
 *         x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
 *         return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
 *
 * class NamesGPT(nn.Module):
 *     def __init__(self, vocab=28, block=16, d=64, layers=4, h=4):
 *         super().__init__()
 *         self.tok = nn.Embedding(vocab, d)
 *         self.pos = nn.Embedding(block, d)
 *         self.blocks = nn.ModuleList([Block(d, h) for _ in range(layers)])
 *         self.ln_f = nn.LayerNorm(d)
 *         self.head = nn.Linear(d, vocab)
 * ```
 */
export class NamesGPT extends Module<[Tensor<"int32">], Tensor> {
  /** Token embedding, [vocabSize, width]. */
  tok: Embedding;
  /** Position embedding, [blockSize, width]. */
  pos: Embedding;
  /** The transformer blocks. */
  blocks: ModuleList<NamesBlock>;
  /** Final LayerNorm. */
  ln_f: LayerNorm;
  /** width → vocabSize. */
  head: Linear;
  /** Longest input sequence. */
  readonly blockSize: number;
  readonly #spec: ModelSpec;

  /**
   * Creates a NamesGPT.
   *
   * @param options Sizes and initialisation; see {@linkcode NamesGPTOptions}.
   */
  constructor(options: NamesGPTOptions = {}) {
    super();
    const vocabSize = options.vocabSize ?? 28;
    const blockSize = options.blockSize ?? 16;
    const width = options.width ?? 64;
    const layers = options.layers ?? 4;
    const heads = options.heads ?? 4;
    const mlpWidth = options.mlpWidth ?? 4 * width;
    for (const [key, value] of Object.entries({ vocabSize, blockSize, width, layers, heads })) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`NamesGPT: ${key} must be a positive integer, got ${value}`);
      }
    }
    const rng = initRng(options);
    this.tok = new Embedding(vocabSize, width, { rng });
    this.pos = new Embedding(blockSize, width, { rng });
    this.blocks = new ModuleList(
      Array.from({ length: layers }, () => new NamesBlock(width, heads, mlpWidth, rng)),
    );
    this.ln_f = new LayerNorm(width);
    this.head = new Linear(width, vocabSize, { rng });
    this.blockSize = blockSize;
    const spec: JsonObject = { vocabSize, blockSize, width, layers, heads, mlpWidth };
    if (options.seed !== undefined) spec.seed = options.seed;
    this.#spec = { name: "names-gpt", options: spec };
  }

  /** The registry name and options that rebuild this model. */
  get spec(): ModelSpec {
    return structuredClone(this.#spec);
  }

  /**
   * Logits [N, T, vocabSize] for tokens [N, T] (int32, T ≤ blockSize); the logits at position t
   * depend on tokens 0..t only.
   */
  forward(idx: Tensor<"int32">): Tensor {
    if (idx.ndim !== 2 || idx.shape[1] > this.blockSize || idx.shape[1] < 1) {
      throw new RangeError(
        `NamesGPT: expected int32 tokens [N, T] with 1 <= T <= ${this.blockSize}, got [${
          idx.shape.join(", ")
        }] ${idx.dtype}`,
      );
    }
    const positions = arange(0, idx.shape[1], 1, { device: idx.device }) as Tensor<"int32">;
    let x = this.tok.call(idx).add(this.pos.call(positions));
    for (let i = 0; i < this.blocks.length; i++) x = this.blocks.at(i).call(x);
    return this.head.call(this.ln_f.call(x));
  }
}

/** Options of {@linkcode NamesMLP}. */
export interface NamesMLPOptions {
  /** Tokens in the vocabulary (default 28). */
  vocabSize?: number;
  /** Previous characters the model sees (default 3). */
  contextSize?: number;
  /** Width of a character's embedding (default 16). */
  embeddingDim?: number;
  /** Width of the tanh hidden layer (default 256). */
  hidden?: number;
  /** Seed of the initial weights (ignored when `rng` is given). */
  seed?: number;
  /** Generator of the initial weights (default: from `seed`, else the library's). */
  rng?: Rng;
}

/**
 * The neural probabilistic language model of Bengio et al. (2003) on characters: the embeddings of
 * the `contextSize` previous characters, concatenated oldest first, → a tanh hidden layer →
 * logits of the next character. No direct embedding-to-output connection. The PyTorch module with
 * the same state dict (`emb.weight`, `hidden.weight`, `hidden.bias`, `out.weight`, `out.bias`):
 *
 * ```python
 * class NamesMLP(nn.Module):
 *     def __init__(self, vocab=28, context=3, dim=16, hidden=256):
 *         super().__init__()
 *         self.emb = nn.Embedding(vocab, dim)
 *         self.hidden = nn.Linear(context * dim, hidden)
 *         self.out = nn.Linear(hidden, vocab)
 *     def forward(self, ctx):
 *         return self.out(torch.tanh(self.hidden(self.emb(ctx).flatten(1))))
 * ```
 */
export class NamesMLP extends Module<[Tensor<"int32">], Tensor> {
  /** Character embedding, [vocabSize, embeddingDim]. */
  emb: Embedding;
  /** contextSize·embeddingDim → hidden. */
  hidden: Linear;
  /** hidden → vocabSize. */
  out: Linear;
  /** Previous characters per example. */
  readonly contextSize: number;
  readonly #spec: ModelSpec;

  /**
   * Creates a NamesMLP.
   *
   * @param options Sizes and initialisation; see {@linkcode NamesMLPOptions}.
   */
  constructor(options: NamesMLPOptions = {}) {
    super();
    const vocabSize = options.vocabSize ?? 28;
    const contextSize = options.contextSize ?? 3;
    const embeddingDim = options.embeddingDim ?? 16;
    const hidden = options.hidden ?? 256;
    for (const [key, value] of Object.entries({ vocabSize, contextSize, embeddingDim, hidden })) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`NamesMLP: ${key} must be a positive integer, got ${value}`);
      }
    }
    const rng = initRng(options);
    this.emb = new Embedding(vocabSize, embeddingDim, { rng });
    this.hidden = new Linear(contextSize * embeddingDim, hidden, { rng });
    this.out = new Linear(hidden, vocabSize, { rng });
    this.contextSize = contextSize;
    const spec: JsonObject = { vocabSize, contextSize, embeddingDim, hidden };
    if (options.seed !== undefined) spec.seed = options.seed;
    this.#spec = { name: "names-mlp", options: spec };
  }

  /** The registry name and options that rebuild this model. */
  get spec(): ModelSpec {
    return structuredClone(this.#spec);
  }

  /** Logits [N, vocabSize] for contexts [N, contextSize] (int32 tokens, oldest first). */
  forward(ctx: Tensor<"int32">): Tensor {
    if (ctx.ndim !== 2 || ctx.shape[1] !== this.contextSize) {
      throw new RangeError(
        `NamesMLP: expected int32 contexts [N, ${this.contextSize}], got [${
          ctx.shape.join(", ")
        }] ${ctx.dtype}`,
      );
    }
    return this.out.call(this.hidden.call(this.emb.call(ctx).flatten(1)).tanh());
  }
}

/** Largest size any option of a names model may take when read from a file (2^16). */
export const MAX_NAMES_MODEL_SIZE = 1 << 16;

/**
 * The parameter shapes, by PyTorch name, that a names model's options imply, computed without
 * building it, so a file's tensors can be checked before anything is allocated.
 *
 * @param name "names-gpt" or "names-mlp".
 * @param options The model's recorded options (`spec.options`).
 * @throws {RangeError} For another name, an unknown option, or a size that is not an integer in
 *   1..{@linkcode MAX_NAMES_MODEL_SIZE}.
 */
export function namesParameterShapes(
  name: string,
  options: Readonly<Record<string, unknown>>,
): Record<string, number[]> {
  const keys = name === "names-gpt"
    ? ["vocabSize", "blockSize", "width", "layers", "heads", "mlpWidth"]
    : name === "names-mlp"
    ? ["vocabSize", "contextSize", "embeddingDim", "hidden"]
    : undefined;
  if (keys === undefined) throw new RangeError(`namesParameterShapes: unknown model "${name}"`);
  const size = (key: string, fallback: number): number => {
    const v = Object.hasOwn(options, key) ? options[key] : fallback;
    if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > MAX_NAMES_MODEL_SIZE) {
      throw new RangeError(
        `${name}: option "${key}" must be an integer in 1..${MAX_NAMES_MODEL_SIZE}, got ${
          JSON.stringify(v)?.slice(0, 40)
        }`,
      );
    }
    return v as number;
  };
  for (const key of Object.keys(options)) {
    if (key !== "seed" && !keys.includes(key)) {
      throw new RangeError(`${name}: no option "${key}" (options: ${keys.join(", ")}, seed)`);
    }
  }
  const vocab = size("vocabSize", 28);
  if (name === "names-mlp") {
    const context = size("contextSize", 3);
    const dim = size("embeddingDim", 16);
    const hidden = size("hidden", 256);
    return {
      "emb.weight": [vocab, dim],
      "hidden.weight": [hidden, context * dim],
      "hidden.bias": [hidden],
      "out.weight": [vocab, hidden],
      "out.bias": [vocab],
    };
  }
  const width = size("width", 64);
  const layers = size("layers", 4);
  const mlp = size("mlpWidth", 4 * width);
  const shapes: Record<string, number[]> = {
    "tok.weight": [vocab, width],
    "pos.weight": [size("blockSize", 16), width],
  };
  size("heads", 4);
  for (let i = 0; i < layers; i++) {
    const b = `blocks.${i}.`;
    Object.assign(shapes, {
      [`${b}ln1.weight`]: [width],
      [`${b}ln1.bias`]: [width],
      [`${b}attn.in_proj_weight`]: [3 * width, width],
      [`${b}attn.in_proj_bias`]: [3 * width],
      [`${b}attn.out_proj.weight`]: [width, width],
      [`${b}attn.out_proj.bias`]: [width],
      [`${b}ln2.weight`]: [width],
      [`${b}ln2.bias`]: [width],
      [`${b}fc1.weight`]: [mlp, width],
      [`${b}fc1.bias`]: [mlp],
      [`${b}fc2.weight`]: [width, mlp],
      [`${b}fc2.bias`]: [width],
    });
  }
  Object.assign(shapes, {
    "ln_f.weight": [width],
    "ln_f.bias": [width],
    "head.weight": [vocab, width],
    "head.bias": [vocab],
  });
  return shapes;
}
