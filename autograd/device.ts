/**
 * Devices and the seam between the core and a device backend. A CPU tensor's storage is a host
 * typed array that the kernel table reads in place; a tensor on another device holds a
 * {@linkcode DeviceStorage} that only its backend can read, asynchronously. The core knows a
 * device backend through this interface alone: how to move values on and off the device, and a
 * forward (and where needed backward) implementation of each primitive. `applyOp` sends an op
 * whose inputs live on a device to that device's implementation; views share storage on any
 * device, and composites are built from primitives, so they follow for free.
 *
 * @module
 */

import type { AnyStorage, DType } from "./dtype.ts";
import type { BinaryKind } from "./kernels/elementwise.ts";
import type { Primitive } from "./ops/mod.ts";
import type { ForwardResult, InputGrads } from "./ops/op.ts";
import type { GradSinks } from "./tape.ts";
import type { AnyTensor, Tensor } from "./tensor.ts";

/** Where a tensor's storage lives: host memory, or a WebGPU device. */
export type Device = "cpu" | "webgpu";

/** Every device, in the order errors list them. */
export const DEVICES: readonly Device[] = Object.freeze(["cpu", "webgpu"]);

/** Whether `name` names a device (rather than a dtype, say). */
export function isDevice(name: unknown): name is Device {
  return DEVICES.includes(name as Device);
}

/** Storage owned by a device backend: opaque to the core, which keeps it and passes it back. */
export interface DeviceStorage {
  /** The device that owns it. */
  readonly device: Exclude<Device, "cpu">;
  /** Element type. */
  readonly dtype: DType;
  /** Elements it holds. */
  readonly length: number;
}

/** A device's implementation of one primitive (what it replaces of the op's own definition). */
export interface DeviceOp {
  /** The forward pass on device tensors; same contract as the op's own `forward`. */
  forward(
    inputs: readonly AnyTensor[],
    // deno-lint-ignore no-explicit-any
    attrs: any,
    recording: boolean,
  ): ForwardResult<unknown, AnyTensor>;
  /**
   * The backward rule, when the op's own rule reads host memory; omitted where the op's rule is
   * written in differentiable ops (which run on the device by themselves).
   */
  backward?(
    gradOutput: Tensor,
    saved: unknown,
    inputs: readonly AnyTensor[],
    // deno-lint-ignore no-explicit-any
    attrs: any,
    out: Tensor,
    into: GradSinks,
  ): InputGrads<readonly AnyTensor[]>;
}

/** Optimizer updates a device runs on its own storage (see `nn/optim`). */
export interface DeviceOptimizers {
  /** SGD (momentum, dampening, Nesterov, weight decay), as `kernels.sgdStep`. */
  sgdStep(
    param: AnyTensor,
    grad: AnyTensor,
    lr: number,
    weightDecay: number,
    momentum: number,
    dampening: number,
    nesterov: boolean,
    buffer: DeviceStorage | null,
    firstStep: boolean,
  ): void;
  /** Adam / AdamW, as `kernels.adamStep`. */
  adamStep(
    param: AnyTensor,
    grad: AnyTensor,
    m: DeviceStorage,
    v: DeviceStorage,
    step: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    decoupled: boolean,
  ): void;
}

/** What a device gives the core. */
export interface DeviceBackend {
  /** The device it serves. */
  readonly device: Exclude<Device, "cpu">;
  /** What runs it, for the line a task prints ("webgpu: NVIDIA H200"). */
  readonly description: string;
  /** A copy of host values on the device. */
  upload(data: AnyStorage): DeviceStorage;
  /** Zeroed storage for `n` elements. */
  zeros(dtype: DType, n: number): DeviceStorage;
  /** The values of `t` (any layout) in row-major order, once the device has computed them. */
  read(t: AnyTensor): Promise<AnyStorage>;
  /** Starts the work recorded so far without waiting for it (a step boundary). */
  flush(): void;
  /** The primitives it implements. A primitive missing here runs the op's own definition. */
  readonly ops: { readonly [P in Primitive]?: DeviceOp };
  /** Optimizer updates on the device. */
  readonly optimizers: DeviceOptimizers;
  /** The non-differentiable helpers the core calls outside the primitive table. */
  readonly helpers: DeviceHelpers;
}

/** Non-differentiable work the core does on a device outside the primitive table. */
export interface DeviceHelpers {
  /**
   * out = a ∘ b with broadcasting into the contiguous device tensor `out` (arithmetic or a
   * comparison, whose `out` is bool); `a` and `b` are device tensors of any layout.
   */
  binaryInto(kind: BinaryKind, a: AnyTensor, b: AnyTensor, out: AnyTensor): void;
  /** The values of `x` as `dtype` (float → int32 truncates; anything → bool is ≠ 0). */
  cast(x: AnyTensor, dtype: DType): AnyTensor;
  /** Index of the first maximum (or minimum) along `dim`, int32, the dim kept or removed. */
  argReduce(kind: "argmax" | "argmin", x: Tensor, dim: number, keepDim: boolean): Tensor<"int32">;
  /** `value` written into every element of the contiguous device tensor `out`. */
  fill(out: AnyTensor, value: number): void;
}

const backends = new Map<Device, DeviceBackend>();

/** Makes `backend` the implementation of its device (done by `useDevice`). */
export function registerDevice(backend: DeviceBackend): void {
  backends.set(backend.device, backend);
}

/** The backend of `device`, or an error saying how to open it. */
export function deviceBackend(device: Exclude<Device, "cpu">): DeviceBackend {
  const backend = backends.get(device);
  if (backend === undefined) {
    throw new Error(
      `${device}: the device is not open; call \`await useDevice("${device}")\` first`,
    );
  }
  return backend;
}
