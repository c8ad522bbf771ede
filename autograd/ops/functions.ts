/**
 * The functional API: every op as a plain function (`add(a, b)`, `conv2d(x, w, b, …)`), the forms
 * the `Tensor` methods call.
 *
 * @module
 */

export { abs, exp, leakyRelu, log, neg, pow, relu, sigmoid, sqrt, tanh } from "./unary.ts";
export * from "./activations.ts";
export * from "./math.ts";
export * from "./stats.ts";
export * from "./index.ts";
export * from "./join.ts";
export { add, div, maximum, minimum, mul, sub } from "./arith.ts";
export { cast, eq, ge, gt, le, lt, maskedFill, ne, where } from "./compare.ts";
export { argmax, argmin, max, mean, sum } from "./reduce.ts";
export { linear, type LinearOpOptions, matmul } from "./matmul.ts";
export { batchNorm, type BatchNormOptions, groupNorm, layerNorm } from "./norm.ts";
export { type AttentionOptions, attentionWeights, scaledDotProductAttention } from "./attention.ts";
export {
  type ClassificationLossOptions,
  crossEntropy,
  type Labels,
  logSoftmax,
  nllLoss,
  type Reduction,
  softmax,
} from "./softmax.ts";
export {
  conv1d,
  type Conv1dOptions,
  conv2d,
  type Conv2dOptions,
  maxPool2d,
  type MaxPool2dOptions,
  type Pair,
} from "./conv.ts";
export { adaptiveAvgPool2d, avgPool2d, type AvgPool2dOptions } from "./pool.ts";
export { dropout, type DropoutOptions } from "./dropout.ts";
export {
  clone,
  contiguous,
  expand,
  flatten,
  narrow,
  permute,
  reshape,
  slice,
  sliceScatter,
  squeeze,
  transpose,
  unsqueeze,
  view,
} from "./view.ts";
