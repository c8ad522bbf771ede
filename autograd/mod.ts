/**
 * tapegrad's autograd core: the strided {@linkcode Tensor} (float32, int32 and bool), the tape
 * that records ops and replays them in reverse for `backward()`, the differentiable ops
 * (functional forms and the primitive table), higher-order gradients (`grad`, `valueAndGrad`,
 * `gradients`), the kernel table behind them, a seeded generator and {@linkcode gradcheck}.
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

export { type AnyTensor, type NestedArray, Tensor, type TensorLike } from "./tensor.ts";
export { type AnyStorage, type DType, DTYPES, type StorageOf } from "./dtype.ts";
export { type Device, DEVICES, type DeviceStorage } from "./device.ts";
export { DEVICE_REQUESTS, type DeviceInfo, type DeviceRequest, useDevice } from "./use_device.ts";
export { grad, type ScalarFunction, valueAndGrad } from "./functional.ts";
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
  gradients,
  type GradientsOptions,
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
export {
  broadcastShapes,
  contiguousStrides,
  formatShape,
  type Shape,
  type ShapeArgs,
  sizeOf,
} from "./shape.ts";
export * from "./ops/mod.ts";
export {
  BACKEND_REQUESTS,
  type BackendChoice,
  backendFromEnv,
  type BackendName,
  type BackendRequest,
  BackendUnavailableError,
  type BinaryKind,
  type ConvGeometry,
  currentBackend,
  type Gemm,
  getThreads,
  type Kernels,
  kernels,
  referenceKernels,
  setThreads,
  type UnaryKind,
  useBackend,
  useKernels,
  wasmKernels,
} from "./kernels/mod.ts";
export type * from "./kernels/types.ts";
export type { GatherKernel, ScatterAddKernel } from "./kernels/gather.ts";
