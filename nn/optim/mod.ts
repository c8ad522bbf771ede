/**
 * Optimizers: {@linkcode SGD}, {@linkcode Adam}, {@linkcode AdamW}, {@linkcode RMSprop} and
 * {@linkcode Adagrad} on the {@linkcode Optimizer} base class.
 *
 * @module
 */

export {
  type HyperParams,
  type HyperValue,
  Optimizer,
  type OptimizerStateDict,
  type OptimizerZeroGradOptions,
  type ParamGroup,
  type ParamGroupSpec,
  type ParamGroupState,
  type ParamsInput,
  type ParamState,
  type ParamStateEntry,
} from "./optimizer.ts";
export { SGD, type SGDHyper, type SGDOptions } from "./sgd.ts";
export { Adam, type AdamHyper, type AdamOptions, AdamW, type AdamWOptions } from "./adam.ts";
export { RMSprop, type RMSpropHyper, type RMSpropOptions } from "./rmsprop.ts";
export { Adagrad, type AdagradHyper, type AdagradOptions } from "./adagrad.ts";
