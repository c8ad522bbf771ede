/**
 * The optimizer updates on the WebGPU device: SGD (momentum, dampening, Nesterov, weight decay,
 * the first step setting the buffer to the gradient) and Adam / AdamW (bias correction, L2 or
 * decoupled weight decay), one thread per element, updating the parameter and its state buffers
 * in place — the arithmetic of `sgdStepReference` and `adamStepReference` in
 * `autograd/kernels/optim.ts`, step for step.
 *
 * The CPU evaluates each expression in float64 and rounds where it stores (or `Math.fround`s);
 * WGSL has no float64, so every operation here rounds to float32 and results agree to float32
 * rounding of the intermediates, not bitwise. The step's scalars that depend only on the step
 * count (bias corrections, step size) are computed on the host in float64, as on the CPU.
 *
 * @module
 */

import type { DeviceOptimizers, DeviceStorage } from "../../device.ts";
import type { AnyTensor } from "../../tensor.ts";
import { f32Bits, type GpuStorage, LINEAR_ID_WGSL, webgpu, WORKGROUP_1D } from "./runtime.ts";
import { gpuDense, gpuStorage } from "./tensor.ts";

/** The parameter's storage, which must be contiguous to be updated in place. */
function paramStorage(param: AnyTensor, op: string): GpuStorage {
  if (!param.isContiguous()) {
    throw new Error(`${op}: the parameter must be contiguous to be updated in place`);
  }
  return gpuStorage(param, op);
}

/** The gradient as a dense device tensor (a copy only when it is a strided view). */
function denseGrad(grad: AnyTensor, param: AnyTensor, op: string): AnyTensor {
  if (grad.size !== param.size) {
    throw new RangeError(`${op}: gradient of ${grad.size} elements for ${param.size}`);
  }
  return gpuDense(grad);
}

function sgdKernel(withBuffer: boolean) {
  const update = withBuffer
    ? `var b: f32;
  if (pu(8u) != 0u) { b = g; } else { b = pf(5u) * buffer[i] + pf(6u) * g; }
  buffer[i] = b;
  let direction = select(b, g + pf(5u) * b, pu(7u) != 0u);
  param[pu(1u) + i] = p - pf(3u) * direction;`
    : `param[pu(1u) + i] = p - pf(3u) * g;`;
  return webgpu().kernel(
    withBuffer ? "sgdStep_momentum" : "sgdStep",
    `${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
${withBuffer ? "@group(0) @binding(3) var<storage, read_write> buffer: array<f32>;" : ""}
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = linearId(gid, groups);
  if (i >= pu(0u)) { return; }
  let p = param[pu(1u) + i];
  var g = grad[pu(2u) + i];
  if (pf(4u) != 0.0) { g = g + pf(4u) * p; }
  ${update}
}`,
    1,
    withBuffer ? 2 : 1,
  );
}

function adamKernel() {
  return webgpu().kernel(
    "adamStep",
    `${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = linearId(gid, groups);
  if (i >= pu(0u)) { return; }
  var p = param[pu(1u) + i];
  if (pf(6u) != 1.0) { p = p * pf(6u); }
  var g = grad[pu(2u) + i];
  if (pf(7u) != 0.0) { g = g + pf(7u) * p; }
  let mi = pf(8u) * m[i] + pf(10u) * g;
  let vi = pf(9u) * v[i] + pf(11u) * g * g;
  m[i] = mi;
  v[i] = vi;
  let denominator = sqrt(vi) / pf(4u) + pf(5u);
  param[pu(1u) + i] = p - pf(3u) * (mi / denominator);
}`,
    1,
    3,
  );
}

/** SGD and Adam/AdamW on the device (the interface `nn/optim` calls for device parameters). */
export const optimizers: DeviceOptimizers = {
  sgdStep(param, grad, lr, weightDecay, momentum, dampening, nesterov, buffer, firstStep) {
    const n = param.size;
    if (n === 0) return;
    const p = paramStorage(param, "sgdStep");
    const g = denseGrad(grad, param, "sgdStep");
    const withBuffer = momentum !== 0 && buffer !== null;
    const params = [
      n,
      param.offset,
      g.offset,
      f32Bits(lr),
      f32Bits(weightDecay),
      f32Bits(momentum),
      f32Bits(1 - dampening),
      nesterov ? 1 : 0,
      firstStep ? 1 : 0,
    ];
    const storages = [gpuStorage(g, "sgdStep"), p];
    if (withBuffer) storages.push(buffer as DeviceStorage as GpuStorage);
    webgpu().dispatch1d(sgdKernel(withBuffer), storages, params, n);
  },
  adamStep(param, grad, m, v, step, lr, beta1, beta2, eps, weightDecay, decoupled) {
    const n = param.size;
    if (n === 0) return;
    const p = paramStorage(param, "adamStep");
    const g = denseGrad(grad, param, "adamStep");
    const biasCorrection1 = 1 - beta1 ** step;
    const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** step);
    const params = [
      n,
      param.offset,
      g.offset,
      f32Bits(lr / biasCorrection1),
      f32Bits(biasCorrection2Sqrt),
      f32Bits(eps),
      f32Bits(decoupled ? 1 - lr * weightDecay : 1),
      f32Bits(decoupled ? 0 : weightDecay),
      f32Bits(beta1),
      f32Bits(beta2),
      f32Bits(1 - beta1),
      f32Bits(1 - beta2),
    ];
    webgpu().dispatch1d(
      adamKernel(),
      [gpuStorage(g, "adamStep"), p, m as GpuStorage, v as GpuStorage],
      params,
      n,
    );
  },
};
