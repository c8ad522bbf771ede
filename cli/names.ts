/**
 * The first-names checkpoints in the tasks: loading a `names-gpt` or `names-mlp` model with its
 * vocabulary, its validation loss in nats per character (`deno task eval`), and sampling names
 * from it (`deno task sample`).
 *
 * @module
 */

import { noGrad, type Rng, Tensor } from "../autograd/mod.ts";
import { type CharVocab, loadNames } from "../data/names.ts";
import {
  checkModelSpec,
  type Checkpoint,
  CheckpointError,
  loadCheckpoint,
  restoreCheckpoint,
} from "../nn/checkpoint.ts";
import type { Module } from "../nn/module.ts";
import { StateDictError } from "../nn/module.ts";
import { createModel, type ModelOptions } from "../nn/models/registry.ts";
import { namesParameterShapes } from "../nn/models/names.ts";
import { describeStateDictError } from "./common.ts";
import { readCheckpointFile } from "./report.ts";
import { NamesBatches, namesEncoding, vocabFromMetadata } from "./tasks.ts";
import { evaluateOnDevice } from "./trainer.ts";

/** The registry names of the character models. */
export const NAMES_MODELS: readonly string[] = ["names-gpt", "names-mlp"];

/** A names model loaded from a checkpoint. */
export interface LoadedNamesModel {
  /** The model, in eval mode; it takes int32 tokens. */
  model: Module<[Tensor<"int32">], Tensor>;
  /** "names-gpt" or "names-mlp". */
  modelName: string;
  /** Its vocabulary (from the checkpoint's metadata). */
  vocab: CharVocab;
  /** The context it reads: the GPT's block size, or the MLP's previous characters. */
  context: number;
  /** Everything the file held. */
  checkpoint: Checkpoint;
}

/** Whether `path` is a readable checkpoint of a names model (false for anything else). */
export async function isNamesCheckpoint(path: string): Promise<boolean> {
  try {
    const checkpoint = await loadCheckpoint(path);
    return NAMES_MODELS.includes(checkpoint.spec?.name ?? "");
  } catch {
    return false;
  }
}

/**
 * Loads a names checkpoint (a run's last/best/model file) and rebuilds its model.
 *
 * @throws {CheckpointError} When the file is missing, names another model, lacks the vocabulary,
 *   or its weights do not fit.
 */
export async function loadNamesModel(path: string): Promise<LoadedNamesModel> {
  const checkpoint = await readCheckpointFile(path);
  const spec = checkpoint.spec;
  if (spec === undefined || !NAMES_MODELS.includes(spec.name)) {
    throw new CheckpointError(
      path,
      `not a names model (the file records ${
        spec ? `model ${JSON.stringify(spec.name)}` : "no model"
      }; sampling needs a checkpoint of --config names-gpt or names-mlp)`,
    );
  }
  let vocab: CharVocab | undefined;
  try {
    vocab = vocabFromMetadata(checkpoint.metadata);
  } catch (error) {
    throw new CheckpointError(path, `metadata "vocab": ${(error as Error).message}`);
  }
  if (vocab === undefined) {
    throw new CheckpointError(path, 'the file records no vocabulary ("vocab" metadata)');
  }
  let model: Module<[Tensor<"int32">], Tensor>;
  try {
    // Options and the shapes they imply are checked against the file before anything is built.
    const shapes = namesParameterShapes(spec.name, spec.options);
    const missing = Object.keys(shapes).filter((k) => !Object.hasOwn(checkpoint.modelState, k));
    const unexpected = Object.keys(checkpoint.modelState).filter((k) => !Object.hasOwn(shapes, k));
    const mismatched = Object.entries(shapes).filter(([k, shape]) =>
      Object.hasOwn(checkpoint.modelState, k) &&
      checkpoint.modelState[k].shape.join(",") !== shape.join(",")
    ).map(([key, expected]) => ({
      key,
      expected,
      actual: [...checkpoint.modelState[key].shape],
    }));
    if (missing.length + unexpected.length + mismatched.length > 0) {
      const module = spec.name === "names-gpt" ? "NamesGPT" : "NamesMLP";
      throw new StateDictError(module, missing, unexpected, mismatched);
    }
    checkModelSpec(path, spec, checkpoint.modelState);
    model = createModel(spec.name, spec.options as ModelOptions) as unknown as Module<
      [Tensor<"int32">],
      Tensor
    >;
    restoreCheckpoint(checkpoint, { model }, path);
  } catch (error) {
    if (error instanceof StateDictError) {
      throw new CheckpointError(
        path,
        `the weights do not fit the model the file names (${spec.name} ${
          JSON.stringify(spec.options)
        }).\n${describeStateDictError(error)}`,
      );
    }
    if (error instanceof RangeError) {
      throw new CheckpointError(path, `metadata "model_options" rejected: ${error.message}`);
    }
    throw error;
  }
  const options = spec.options as Record<string, number>;
  if ((options.vocabSize ?? 28) !== vocab.size) {
    throw new CheckpointError(
      path,
      `the model has ${options.vocabSize} tokens but the vocabulary ${vocab.size}`,
    );
  }
  model.eval();
  const context = spec.name === "names-mlp" ? options.contextSize ?? 3 : options.blockSize ?? 16;
  return { model, modelName: spec.name, vocab, context, checkpoint };
}

/** The loss of a names model over a split. */
export interface NamesEvaluation {
  /** Mean cross-entropy per character (every character and each name's end), nats. */
  loss: number;
  /** The same in bits. */
  bitsPerChar: number;
  /** Characters whose most likely prediction is wrong, as a fraction. */
  error: number;
  /** Characters counted. */
  characters: number;
  /** Names in the split. */
  names: number;
}

/** Evaluates a names model on the corpus's "validation" or "train" split, without gradients. */
export async function evaluateNames(
  loaded: LoadedNamesModel,
  split: "validation" | "train",
  limit?: number,
): Promise<NamesEvaluation> {
  const corpus = await loadNames();
  const list = corpus[split].slice(0, limit ?? corpus[split].length);
  const batches = new NamesBatches(list, loaded.vocab, namesEncoding(loaded.modelName), {
    batchSize: 1024,
    shuffle: false,
    blockSize: loaded.context,
  });
  // On the model's device: a names model moved to a GPU evaluates there, with one read.
  const result = await evaluateOnDevice(
    loaded.model as unknown as Module<[Tensor], Tensor>,
    batches,
    -1,
  );
  return {
    loss: result.loss,
    bitsPerChar: result.loss / Math.LN2,
    error: result.error,
    characters: batches.characters,
    names: list.length,
  };
}

/** Options of {@linkcode sampleNames}. */
export interface SampleOptions {
  /** Names to generate. */
  count: number;
  /** Softmax temperature (> 0; 1 samples the model's distribution). */
  temperature: number;
  /** The generator of the draws. */
  rng: Rng;
  /** Longest name (default: the GPT's block size − 1, or 30 for the MLP). */
  maxLength?: number;
}

/**
 * Generates names: from the boundary token, draws each next character from
 * softmax(logits / temperature) until the boundary comes again (or `maxLength`).
 */
export function sampleNames(loaded: LoadedNamesModel, options: SampleOptions): string[] {
  const { count, temperature, rng } = options;
  const { model, vocab, context } = loaded;
  const isGPT = loaded.modelName === "names-gpt";
  const maxLength = options.maxLength ?? (isGPT ? context - 1 : 30);
  const V = vocab.size;
  const out: number[][] = Array.from({ length: count }, () => []);
  const done = new Uint8Array(count);
  const draw = (logits: Float32Array, base: number): number => {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[base + v] / temperature);
    let total = 0;
    const p = new Float64Array(V);
    for (let v = 0; v < V; v++) total += p[v] = Math.exp(logits[base + v] / temperature - max);
    let u = rng.uniform() * total;
    for (let v = 0; v < V; v++) if ((u -= p[v]) < 0) return v;
    return V - 1;
  };
  noGrad(() => {
    for (let t = 0; t < maxLength && done.some((d) => d === 0); t++) {
      // Inputs: the GPT reads the boundary and everything so far; the MLP the last `context`.
      const width = isGPT ? t + 1 : context;
      const x = new Int32Array(count * width);
      for (let i = 0; i < count; i++) {
        // A finished row is shorter; its zeros are never read.
        const row = isGPT
          ? [0, ...out[i]]
          : [...new Array(context).fill(0), ...out[i]].slice(-context);
        x.set(row.slice(0, width), i * width);
      }
      const logits = model.call(new Tensor(x, [count, width])).contiguous().data as Float32Array;
      const stride = isGPT ? width * V : V;
      const offset = isGPT ? t * V : 0;
      for (let i = 0; i < count; i++) {
        if (done[i]) continue;
        const token = draw(logits, i * stride + offset);
        if (token === 0) done[i] = 1;
        else out[i].push(token);
      }
    }
  });
  return out.map((tokens) => vocab.decodeName(tokens));
}
