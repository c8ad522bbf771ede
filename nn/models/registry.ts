/**
 * The model registry the CLI tasks use: {@linkcode createModel} builds a model by name.
 *
 * @module
 */

import type { Tensor } from "../../autograd/mod.ts";
import type { Module } from "../module.ts";
import { AlexNet, type AlexNetOptions } from "./alexnet.ts";
import { MLP, type MLPOptions } from "./mlp.ts";
import { NamesGPT, type NamesGPTOptions, NamesMLP, type NamesMLPOptions } from "./names.ts";

/** Names of the registered models. */
export type ModelName = "mlp" | "alexnet" | "names-gpt" | "names-mlp";

/** Every registered model name. */
export const modelNames: readonly ModelName[] = Object.freeze([
  "mlp",
  "alexnet",
  "names-gpt",
  "names-mlp",
]);

/** Options of any registered model (each model accepts only its own keys). */
export type ModelOptions = MLPOptions | AlexNetOptions | NamesGPTOptions | NamesMLPOptions;

const allowedOptions: Readonly<Record<ModelName, readonly string[]>> = {
  mlp: ["inFeatures", "hidden", "numClasses", "leakyRelu", "seed", "rng"],
  alexnet: ["numClasses", "dropout", "leakyRelu", "seed", "rng"],
  "names-gpt": ["vocabSize", "blockSize", "width", "layers", "heads", "mlpWidth", "seed", "rng"],
  "names-mlp": ["vocabSize", "contextSize", "embeddingDim", "hidden", "seed", "rng"],
};

/** Whether `name` is a registered model name. */
export function isModelName(name: string): name is ModelName {
  return (modelNames as readonly string[]).includes(name);
}

/**
 * Builds the model registered as `name` ("mlp", "alexnet", or the names models "names-gpt" and
 * "names-mlp", which take int32 token tensors).
 *
 * @throws {RangeError} For an unknown name (listing the valid ones) or an option the model lacks.
 */
export function createModel(name: string, options: ModelOptions = {}): Module<[Tensor], Tensor> {
  if (!isModelName(name)) {
    throw new RangeError(
      `createModel: unknown model ${JSON.stringify(name)}; valid names: ${modelNames.join(", ")}`,
    );
  }
  const allowed = allowedOptions[name];
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new RangeError(
        `createModel: model "${name}" has no option ${JSON.stringify(key)} (options: ${
          allowed.join(", ")
        })`,
      );
    }
  }
  switch (name) {
    case "mlp":
      return new MLP(options as MLPOptions);
    case "alexnet":
      return new AlexNet(options as AlexNetOptions);
    // The names models take int32 tokens; callers pass them where the type says Tensor.
    case "names-gpt":
      return new NamesGPT(options as NamesGPTOptions) as unknown as Module<[Tensor], Tensor>;
    case "names-mlp":
      return new NamesMLP(options as NamesMLPOptions) as unknown as Module<[Tensor], Tensor>;
  }
}
