/**
 * tapegrad's autograd core: the strided Float32 {@linkcode Tensor}, the tape that records ops and
 * replays them in reverse for `backward()`, the differentiable ops (functional forms and the op
 * table), the kernel table behind them, a seeded generator and {@linkcode gradcheck}.
 *
 * ```ts
 * import { tensor } from "@tapegrad/tapegrad/autograd";
 *
 * const x = tensor([[1, 2], [3, 4]], { requiresGrad: true });
 * const loss = x.mul(x).sum();
 * loss.backward();
 * console.log(x.grad?.toArray()); // [[2, 4], [6, 8]]
 * ```
 *
 * @module
 */

export { type NestedArray, Tensor, type TensorLike } from "./tensor.ts";
export {
  arange,
  full,
  ones,
  onesLike,
  rand,
  randn,
  tensor,
  type TensorOptions,
  zeros,
  zerosLike,
} from "./create.ts";
export {
  backward,
  type BackwardOptions,
  type GradSinks,
  isGradEnabled,
  noGrad,
  setGradEnabled,
  type TapeEntry,
} from "./tape.ts";
export { defaultRng, manualSeed, Rng, type RngState } from "./rng.ts";
export {
  gradcheck,
  type GradcheckMismatch,
  type GradcheckOptions,
  type GradcheckResult,
} from "./gradcheck.ts";
export { broadcastShapes, contiguousStrides, formatShape, type Shape, sizeOf } from "./shape.ts";
export * from "./ops/mod.ts";
export {
  type BinaryKind,
  type ConvGeometry,
  type Gemm,
  getThreads,
  type Kernels,
  kernels,
  referenceKernels,
  setThreads,
  type UnaryKind,
  useKernels,
} from "./kernels/mod.ts";
export type * from "./kernels/types.ts";
