/**
 * Optimizers: {@linkcode SGD}, {@linkcode Adam} and {@linkcode AdamW} on the
 * {@linkcode Optimizer} base class.
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
