/**
 * tapegrad's neural-network layer: the {@linkcode Module} base class with PyTorch-style names and
 * state dicts, the standard layers, initialisers, losses, optimizers, learning-rate schedulers, the
 * reference models and safetensors checkpoints.
 *
 * ```ts
 * import { crossEntropy, noGrad, tensor } from "@tapegrad/tapegrad/autograd";
 * import { Linear, ReLU, Sequential, SGD } from "@tapegrad/tapegrad/nn";
 *
 * const model = new Sequential(new Linear(2, 8), new ReLU(), new Linear(8, 2));
 * const optimizer = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
 * const x = tensor([[0, 1], [1, 0]]);
 * const y = new Int32Array([1, 0]);
 * for (let i = 0; i < 100; i++) {
 *   optimizer.zeroGrad();
 *   crossEntropy(model.call(x), y).backward();
 *   optimizer.step();
 * }
 * ```
 *
 * @module
 */

export { Parameter } from "./parameter.ts";
export {
  type LoadStateDictOptions,
  type LoadStateDictResult,
  Module,
  ModuleDict,
  ModuleList,
  type ShapeMismatch,
  type StateDict,
  StateDictError,
  type StateDictSource,
  type ZeroGradOptions,
} from "./module.ts";
export {
  Conv1d,
  type Conv1dLayerOptions,
  Conv2d,
  type Conv2dLayerOptions,
  Dropout,
  type DropoutLayerOptions,
  Flatten,
  type Layer,
  LeakyReLU,
  Linear,
  type LinearOptions,
  MaxPool2d,
  type MaxPool2dLayerOptions,
  ReLU,
  Sequential,
} from "./layers.ts";
export { QuantizedLinear, quantizeDynamic } from "./quantized.ts";
export {
  calculateGain,
  computeFans,
  constantInit,
  defaultLayerInit,
  type FanMode,
  type Fans,
  kaimingNormal,
  type KaimingOptions,
  kaimingUniform,
  type Nonlinearity,
  normalInit,
  uniformInit,
  xavierNormal,
  type XavierOptions,
  xavierUniform,
} from "./init.ts";
export {
  crossEntropy,
  CrossEntropyLoss,
  MSELoss,
  mseLoss,
  type MseLossOptions,
  nllLoss,
} from "./loss.ts";
export * from "./norm.ts";
export * from "./embedding.ts";
export * from "./activations.ts";
export * from "./attention.ts";
export * from "./pool.ts";
export * from "./optim/mod.ts";
export { clipGradNorm, clipGradValue, gradNorm } from "./clip.ts";
export {
  CosineAnnealingLR,
  LinearWarmup,
  LRScheduler,
  MultiStepLR,
  OneCycleLR,
  type OneCycleLROptions,
  ReduceLROnPlateau,
  type ReduceLROnPlateauOptions,
  type SchedulerStateDict,
  StepLR,
} from "./schedule.ts";
export * from "./models/mod.ts";
export {
  type Checkpoint,
  CHECKPOINT_VERSION,
  CheckpointError,
  type CheckpointFloatDType,
  loadCheckpoint,
  type LoadedModel,
  loadModel,
  type LoadModelOptions,
  type NamedOptimizerState,
  OPTIMIZER_KEY_PREFIX,
  restoreCheckpoint,
  type RestoreTargets,
  saveCheckpoint,
  type SaveCheckpointOptions,
  saveModel,
  type SaveModelOptions,
} from "./checkpoint.ts";
export {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  MAX_HEADER_BYTES,
  type SafetensorsContents,
  type SafetensorsDType,
  SafetensorsError,
  saveSafetensors,
  type StoredData,
  type StoredTensor,
} from "./serialize.ts";
export { isJsonObject, type JsonObject, type JsonValue } from "./json.ts";
// The core types the nn API mentions, so this entry point documents on its own.
export type {
  AnyTensor,
  AvgPool2dOptions,
  BackwardOptions,
  ClassificationLossOptions,
  DType,
  GradSinks,
  Indices,
  Labels,
  NestedArray,
  Pair,
  Reduction,
  Rng,
  RngState,
  Shape,
  ShapeArgs,
  StorageOf,
  TapeEntry,
  Tensor,
  TensorLike,
  TopK,
  VarOptions,
} from "../autograd/mod.ts";
