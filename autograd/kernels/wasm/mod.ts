/**
 * The WebAssembly SIMD backend for GEMM: the kernel (`wasmGemm`), its thread control, and the
 * shared wasm memory that operands may live in to skip copies. See `gemm.ts` for the design.
 *
 * @module
 */

export {
  createWasmGemm,
  DOT_MIN_K,
  type Gemm,
  getThreads,
  KC_MAX,
  kernelConfig,
  PARALLEL_MIN_MACS,
  relaxedSimd,
  setCallerComputes,
  setThreads,
  stopThreads,
  threadsReady,
  type ThreadStats,
  threadStats,
  wasmAvailable,
  wasmGemm,
} from "./gemm.ts";
export { type KernelConfig, PLAIN_CONFIG, RELAXED_CONFIG } from "./kernels.ts";
export { wasmConvBackward, wasmConvForward } from "./conv.ts";
export { wasmLinearBackward, wasmLinearForward } from "./linear.ts";
export { WASM_OPTIM_MIN, wasmAdamStep, wasmSgdStep } from "./optim.ts";
export { type Int8Product, wasmQuantizedLinear, wasmQuantizedLinearWith } from "./quantized.ts";
export {
  WASM_ELEMENTWISE_MIN,
  wasmAddInto,
  wasmUnary,
  wasmUnaryBackward,
  wasmZero,
} from "./elementwise.ts";
export {
  DEFAULT_PERSISTENT_BUDGET,
  freeWasmFloat32,
  heapStats,
  memory as wasmMemory,
  persistentFloat32,
  persistentStats,
  pointerOf,
  setPersistentBudget,
  wasmFloat32,
} from "./memory.ts";
