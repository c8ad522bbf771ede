/**
 * The WebGPU device for tests: opened once, or the reason it cannot be, so each WebGPU test skips
 * with a message where no adapter exists (CI installs Debian's mesa-vulkan-drivers, whose
 * lavapipe adapter runs every kernel in software).
 *
 * @module
 */

import { openWebGpu, type WebGpu } from "../../autograd/kernels/webgpu/runtime.ts";

/** The device, or null where none can be had. */
export let gpu: WebGpu | null = null;
/** Why there is no device (empty when there is one). */
export let noGpuReason = "";
try {
  gpu = await openWebGpu();
} catch (error) {
  noGpuReason = (error as Error).message;
  console.log(`webgpu tests skipped: ${noGpuReason}`);
}

/** Test options shared by the WebGPU tests: skipped without a device; device objects outlive a test. */
export const gpuTest = {
  ignore: gpu === null,
  sanitizeResources: false,
  sanitizeOps: false,
} as const;
