/**
 * The native backend: the GEMMs of the Linear layer, of matmul and of the convolutions on a
 * system BLAS opened through Deno's FFI (`blas.ts`), with operands read and written in place.
 * Selection lives with the kernel table (`useBackend` in `../mod.ts`, which installs the GEMM
 * and the Linear kernels and keeps wasm's convolutions, measured faster); this folder only
 * builds the kernels once a library has loaded (through the platform layer's guarded dlopen, so
 * it imports anywhere).
 *
 * @module
 */

import type { Gemm } from "../gemm.ts";
import type {
  ConvBackwardKernel,
  ConvForwardKernel,
  LinearBackwardKernel,
  LinearForwardKernel,
} from "../types.ts";
import type { Blas } from "./blas.ts";
import { createNativeConvBackward, createNativeConvForward } from "./conv.ts";
import { createNativeGemm } from "./gemm.ts";
import { createNativeLinearBackward, createNativeLinearForward } from "./linear.ts";

export { type Blas, BLAS_CANDIDATES, type BlasLoad, envIfGranted, loadBlas } from "./blas.ts";
export { createNativeGemm } from "./gemm.ts";
export { NATIVE_CONV_COL_MAX } from "./conv.ts";

/** The kernel-table entries the native backend replaces. */
export interface NativeKernels {
  /** C = op(A)·op(B) + beta·C on BLAS. */
  gemm: Gemm;
  /** The Linear layer's forward pass on BLAS. */
  linearForward: LinearForwardKernel;
  /** The Linear layer's gradients on BLAS. */
  linearBackward: LinearBackwardKernel;
  /** Batched convolution (im2col + one GEMM per group of images) on BLAS. */
  convForward: ConvForwardKernel;
  /** Batched convolution gradients (GEMMs + col2im) on BLAS. */
  convBackward: ConvBackwardKernel;
}

/** The native kernels over an opened library. */
export function nativeKernels(blas: Blas): NativeKernels {
  const gemm = createNativeGemm(blas);
  return {
    gemm,
    linearForward: createNativeLinearForward(gemm),
    linearBackward: createNativeLinearBackward(gemm),
    convForward: createNativeConvForward(gemm),
    convBackward: createNativeConvBackward(gemm),
  };
}
