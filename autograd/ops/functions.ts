/**
 * The functional API: every op as a plain function (`add(a, b)`, `conv2d(x, w, b, …)`), the forms
 * the `Tensor` methods call.
 *
 * @module
 */

export { abs, exp, leakyRelu, log, neg, pow, relu, sigmoid, sqrt, tanh } from "./unary.ts";
export { add, div, mul, sub } from "./arith.ts";
export { argmax, max, mean, sum } from "./reduce.ts";
export { linear, type LinearOpOptions, matmul } from "./matmul.ts";
export {
  type ClassificationLossOptions,
  crossEntropy,
  logSoftmax,
  nllLoss,
  type Reduction,
  softmax,
} from "./softmax.ts";
export { conv2d, type Conv2dOptions, maxPool2d, type MaxPool2dOptions, type Pair } from "./conv.ts";
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
  squeeze,
  transpose,
  unsqueeze,
  view,
} from "./view.ts";
