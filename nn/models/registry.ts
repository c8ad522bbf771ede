/**
 * The model registry the CLI tasks use: {@linkcode createModel} builds a model by name.
 *
 * @module
 */

import type { Tensor } from "../../autograd/mod.ts";
import type { Module } from "../module.ts";
import { AlexNet, type AlexNetOptions } from "./alexnet.ts";
import { MLP, type MLPOptions } from "./mlp.ts";

/** Names of the registered models. */
export type ModelName = "mlp" | "alexnet";

/** Every registered model name. */
export const modelNames: readonly ModelName[] = Object.freeze(["mlp", "alexnet"]);

/** Options of any registered model (each model accepts only its own keys). */
export type ModelOptions = MLPOptions | AlexNetOptions;

const allowedOptions: Readonly<Record<ModelName, readonly string[]>> = {
  mlp: ["inFeatures", "hidden", "numClasses", "leakyRelu", "seed", "rng"],
  alexnet: ["numClasses", "dropout", "leakyRelu", "seed", "rng"],
};

/** Whether `name` is a registered model name. */
export function isModelName(name: string): name is ModelName {
  return (modelNames as readonly string[]).includes(name);
}

/**
 * Builds the model registered as `name` ("mlp" or "alexnet").
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
  }
}
