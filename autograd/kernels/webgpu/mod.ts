/**
 * The WebGPU backend: the {@linkcode DeviceBackend} that `useDevice("webgpu")` registers, made of
 * the runtime (device, buffer pool, command stream), the WGSL implementations of the primitives
 * by area (products and convolutions, elementwise, reductions), the optimizer updates, and the
 * helpers the core calls outside the primitive table.
 *
 * @module
 */

import type { DeviceBackend, DeviceOp } from "../../device.ts";
import type { AnyStorage, DType } from "../../dtype.ts";
import type { Primitive } from "../../ops/mod.ts";
import type { AnyTensor } from "../../tensor.ts";
import { elementwiseHelpers, elementwiseOps } from "./elementwise_ops.ts";
import { productOps } from "./matmul_ops.ts";
import { optimizers } from "./optim.ts";
import { argReduce, reduceOps } from "./reduce_ops.ts";
import { type GpuStorage, openWebGpu, type WebGpu } from "./runtime.ts";
import { gpuDense, gpuStorage } from "./tensor.ts";

export { type GpuStats, GpuStorage, openWebGpu, type WebGpu, webgpu } from "./runtime.ts";

/** Every primitive the WebGPU backend implements, by name. */
export const webgpuOps: { readonly [P in Primitive]?: DeviceOp } = Object.freeze({
  ...elementwiseOps,
  ...reduceOps,
  ...productOps,
});

/** The backend over an open device. */
export function webgpuBackend(gpu: WebGpu): DeviceBackend {
  return {
    device: "webgpu",
    description: `webgpu: ${gpu.description}${gpu.isFallback ? " (software adapter)" : ""}`,
    upload: (data: AnyStorage) => gpu.upload(data),
    zeros: (dtype: DType, n: number) => gpu.alloc(dtype, n, true),
    read(t: AnyTensor): Promise<AnyStorage> {
      const dense = gpuDense(t);
      return gpu.read(gpuStorage(dense, "read") as GpuStorage, dense.offset, dense.size);
    },
    flush: () => gpu.flush(),
    ops: webgpuOps,
    optimizers,
    helpers: { ...elementwiseHelpers, argReduce },
  };
}

/** Opens the device and returns its backend (once; the same backend afterwards). */
export async function openWebGpuBackend(): Promise<DeviceBackend> {
  const gpu = await openWebGpu();
  backend ??= webgpuBackend(gpu);
  return backend;
}

let backend: DeviceBackend | null = null;
