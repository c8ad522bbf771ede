/**
 * Opening a device: {@linkcode useDevice} finds the WebGPU adapter, opens it and registers its
 * backend, so tensors and modules can move there with `.to("webgpu")`. With `"auto"` it opens
 * WebGPU where an adapter exists and otherwise stays on the CPU, saying why.
 *
 * @module
 */

import { type Device, registerDevice } from "./device.ts";
import { openWebGpuBackend } from "./kernels/webgpu/mod.ts";

/** What {@linkcode useDevice} opened. */
export interface DeviceInfo {
  /** The device tensors should move to. */
  device: Device;
  /** What runs it, e.g. "webgpu: llvmpipe (software adapter)" or "cpu". */
  description: string;
  /** With `"auto"` on the CPU: why WebGPU was not used. */
  reason?: string;
}

/** A device to open, or `"auto"`: WebGPU where an adapter exists, else the CPU. */
export type DeviceRequest = Device | "auto";

/** The names {@linkcode useDevice} accepts. */
export const DEVICE_REQUESTS: readonly DeviceRequest[] = Object.freeze(["auto", "cpu", "webgpu"]);

/**
 * Opens `device` (once; later calls return the same one) and makes it available to `.to(device)`,
 * `tensor(…, { device })` and `Module.to`. `"webgpu"` throws with the reason when the runtime has
 * no WebGPU or no adapter; `"auto"` falls back to the CPU instead.
 *
 * @example Move a computation to the GPU when there is one
 * ```ts ignore
 * import { tensor, useDevice } from "@tapegrad/tapegrad";
 *
 * const { device, description } = await useDevice("auto");
 * console.log(description);
 * const x = tensor([[1, 2], [3, 4]], { device });
 * console.log(await x.matmul(x).array()); // [[7, 10], [15, 22]]
 * ```
 */
export async function useDevice(device: DeviceRequest): Promise<DeviceInfo> {
  if (device === "cpu") return { device: "cpu", description: "cpu" };
  if (device !== "webgpu" && device !== "auto") {
    throw new RangeError(
      `useDevice: unknown device ${JSON.stringify(device)}: expected one of ${
        DEVICE_REQUESTS.join(", ")
      }`,
    );
  }
  try {
    const backend = await openWebGpuBackend();
    registerDevice(backend);
    return { device: "webgpu", description: backend.description };
  } catch (error) {
    if (device === "webgpu") throw error;
    return { device: "cpu", description: "cpu", reason: (error as Error).message };
  }
}
