/**
 * The reference models (MLP, AlexNet) and the registry that builds them by name.
 *
 * @module
 */

export { MLP, type MLPOptions } from "./mlp.ts";
export { AlexNet, type AlexNetOptions } from "./alexnet.ts";
export {
  MAX_NAMES_MODEL_SIZE,
  NamesBlock,
  NamesGPT,
  type NamesGPTOptions,
  NamesMLP,
  type NamesMLPOptions,
  namesParameterShapes,
} from "./names.ts";
export {
  createModel,
  isModelName,
  type ModelName,
  modelNames,
  type ModelOptions,
} from "./registry.ts";
export { type DescribedModel, hasSpec, type ModelSpec } from "./spec.ts";
