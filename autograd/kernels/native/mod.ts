/**
 * The native backend: the GEMMs of the Linear layer, of matmul and of the convolutions on a
 * system BLAS opened through Deno's FFI (`blas.ts`), with operands read and written in place.
 * The convolutions keep the wasm kernels' layout passes (padded NHWC, the im2col matrix written
 * out by `im2row`, bias and ReLU fused into the way back to NCHW) and run their three products
 * on BLAS (`convKernelsOver` in `../wasm/conv.ts`); im2col in TypeScript measured slower than
 * wasm's whole convolution. Where oneDNN loads (`dnnl.ts`), the kernel table runs the
 * convolutions there instead, with these as the fallback for small and refused shapes.
 * Selection lives with the kernel table (`useBackend` in `../mod.ts`);
 * this folder only builds the kernels once a library has loaded (through the platform layer's
 * guarded dlopen, so it imports anywhere).
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
import { convBackwardReference, convForwardReference } from "../conv.ts";
import { wasmAvailable } from "../wasm/gemm.ts";
import { convKernelsOver } from "../wasm/conv.ts";
import type { Blas } from "./blas.ts";
import type { Dnnl } from "./dnnl.ts";
import { createNativeGemm } from "./gemm.ts";
import { createNativeLinearBackward, createNativeLinearForward } from "./linear.ts";

export { type Blas, BLAS_CANDIDATES, type BlasLoad, envIfGranted, loadBlas } from "./blas.ts";
export { createNativeGemm } from "./gemm.ts";
export { type Dnnl, DNNL_CANDIDATES, type DnnlLoad, loadDnnl } from "./dnnl.ts";

/** The kernel-table entries the native backend replaces. */
export interface NativeKernels {
  /** C = op(A)·op(B) + beta·C on BLAS. */
  gemm: Gemm;
  /** The Linear layer's forward pass on BLAS. */
  linearForward: LinearForwardKernel;
  /** The Linear layer's gradients on BLAS. */
  linearBackward: LinearBackwardKernel;
  /** Batched convolution, its product on BLAS (the reference kernel without wasm SIMD). */
  convForward: ConvForwardKernel;
  /** Batched convolution gradients, their products on BLAS (the reference without wasm SIMD). */
  convBackward: ConvBackwardKernel;
}

/**
 * The native kernels over an opened BLAS; with `dnnl`, the Linear layer's ReLU and its mask run
 * on oneDNN, on the arrays where they are (the convolutions go to oneDNN in `useBackend`).
 */
export function nativeKernels(blas: Blas, dnnl: Dnnl | null = null): NativeKernels {
  const gemm = createNativeGemm(blas);
  const convs = wasmAvailable
    ? convKernelsOver(gemm)
    : { convForward: convForwardReference, convBackward: convBackwardReference };
  return {
    gemm,
    linearForward: createNativeLinearForward(gemm, dnnl),
    linearBackward: createNativeLinearBackward(gemm, dnnl),
    ...convs,
  };
}
