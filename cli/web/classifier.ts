/**
 * The page's classifiers: a model rebuilt from safetensors bytes (the shipped files, fetched;
 * optionally with its Linear layers quantized to int8) or from a state dict (the MLP trained in
 * the worker), and one timed batch-1 prediction of a prepared 28×28 digit. Runs in the browser:
 * no runtime APIs.
 *
 * @module
 */

import { noGrad } from "../../autograd/tape.ts";
import { Tensor } from "../../autograd/tensor.ts";
import { MNIST_NORMALIZATION } from "../../data/loader.ts";
import type { Module, StateDictSource } from "../../nn/module.ts";
import { createModel, type ModelOptions } from "../../nn/models/registry.ts";
import { quantizeDynamic } from "../../nn/quantized.ts";
import { decodeSafetensors } from "../../nn/serialize.ts";

/** A model the page can ask, in eval mode. */
export interface Classifier {
  /** Shown above its bars, e.g. "MLP (shipped)". */
  title: string;
  /** A short key for the page's state ("mlp", "alexnet", "trained"). */
  key: string;
  /** The model. */
  model: Module<[Tensor], Tensor>;
}

/** One prediction. */
export interface Prediction {
  /** Probability of each class. */
  probabilities: Float32Array;
  /** The most probable class. */
  top: number;
  /** Milliseconds of the forward pass and softmax at batch 1, read back included. */
  ms: number;
}

/** Options of {@linkcode classifierFromSafetensors}. */
export interface ClassifierOptions {
  /** Quantize the Linear layers to int8 (`quantizeDynamic`) after loading (default false). */
  int8?: boolean;
}

/**
 * Rebuilds a model from a checkpoint file's bytes: the architecture from its `model` and
 * `model_options` metadata, the weights from its tensors (optimizer state, if any, is ignored).
 *
 * @throws {Error} When the file is not safetensors, names no model, or its weights do not fit.
 */
export function classifierFromSafetensors(
  bytes: Uint8Array,
  source: string,
  title: string,
  key: string,
  load: ClassifierOptions = {},
): Classifier {
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  const name = metadata.model;
  if (name === undefined) throw new Error(`${source}: no "model" metadata`);
  const options = JSON.parse(metadata.model_options ?? "{}") as ModelOptions;
  const model = createModel(name, options);
  const weights = Object.fromEntries(
    Object.entries(tensors).filter(([k]) => !k.startsWith("optimizer.")),
  );
  model.loadStateDict(weights);
  model.eval();
  if (load.int8 === true) quantizeDynamic(model);
  return { title, key, model };
}

/** A classifier of the MLP architecture with the given weights (the worker's trained model). */
export function classifierFromState(
  state: StateDictSource,
  options: ModelOptions,
  title: string,
  key: string,
): Classifier {
  const model = createModel("mlp", options);
  model.loadStateDict(state);
  model.eval();
  return { title, key, model };
}

/** MNIST's normalisation of prepared bytes, as the training loader applies it. */
export function normalize(pixels: Uint8Array): Float32Array {
  const { mean, std } = MNIST_NORMALIZATION;
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = (pixels[i] / 255 - mean) / std;
  return out;
}

/** Classifies one normalised 28×28 input, timing the forward pass. */
export function predict(classifier: Classifier, input: Float32Array): Prediction {
  const x = new Tensor(input, [1, 1, 28, 28]);
  const start = performance.now();
  const probabilities = noGrad(() => classifier.model.call(x).softmax(1)).toFloat32Array();
  const ms = performance.now() - start;
  let top = 0;
  for (let i = 1; i < probabilities.length; i++) {
    if (probabilities[i] > probabilities[top]) top = i;
  }
  return { probabilities, top, ms };
}
