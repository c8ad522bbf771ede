/**
 * Drivers of the WebAssembly optimizer updates (`optim_kernels.ts`), with the contracts of
 * `sgdStepReference` / `adamStepReference` and bitwise their results. They pay off when the
 * parameter lives in the wasm memory (`kernels.allocPersistent`): an update streams every array
 * once, so copying a JavaScript-heap parameter in and out would cost as much as the TypeScript
 * loop saves; such parameters, and small ones, are updated by the reference loop. Other operands
 * (gradient, state buffers) are copied in and out when they live on the JavaScript heap.
 *
 * @module
 */

import { adamStepReference, sgdHyperparameters, sgdStepReference } from "../optim.ts";
import type { AdamStepKernel, SgdStepKernel } from "../types.ts";
import { defaultEngine } from "./gemm.ts";
import type { JobName } from "./kernels.ts";
import { heapF32, pointerOf } from "./memory.ts";
import { copyOut, placeIn, placeOut, region } from "./scratch.ts";

/** Tensors with fewer elements than this are updated in TypeScript. */
export const WASM_OPTIM_MIN = 1024;

/** The hyperparameters as float64 (Adam) or float32 (SGD) values in scratch. */
function hyperBlock(values: number[], float32 = false): number {
  const ptr = region("opt.hyper", 8 * values.length);
  const buffer = heapF32().buffer;
  if (float32) new Float32Array(buffer, ptr, values.length).set(values);
  else new Float64Array(buffer, ptr, values.length).set(values);
  return ptr;
}

function run(name: JobName, n: number, args: (chunk: number, counter: number) => number[]): void {
  // Chunks of whole quads: Adam's f64x2 pairs never straddle two threads, and SGD's chunks run
  // whole f32x4 iterations with no tail but the tensor's own.
  defaultEngine().job(name, 8 * n, n, (chunk, counter) => {
    return args(Math.max(16384, chunk + (-chunk & 3)), counter);
  });
}

/** SGD step in wasm (see `sgdStepReference` for the arguments). */
export const wasmSgdStep: SgdStepKernel = (...args) => {
  const [
    param,
    paramOffset,
    grad,
    gradOffset,
    n,
    lr,
    weightDecay,
    momentum,
    dampening,
    nesterov,
    buffer,
    firstStep,
  ] = args;
  // Small tensors, or parameters outside the wasm memory: copying in and out would cost more.
  if (n < WASM_OPTIM_MIN || pointerOf(param) < 0) return sgdStepReference(...args);
  const hasMomentum = momentum !== 0 && buffer !== null;
  const hyper = hyperBlock(sgdHyperparameters(lr, weightDecay, momentum, dampening), true);
  const pp = placeIn("opt.p", param, paramOffset, n);
  const gp = placeIn("opt.g", grad, gradOffset, n);
  // Without momentum the buffer is not read: any valid address will do. On the first step it is
  // only written: in place when it lives in the wasm memory (copyOut skips such a buffer, so
  // writing it into scratch would lose the first step's momentum), else into scratch.
  const bp = hasMomentum && !firstStep
    ? placeIn("opt.b", buffer!, 0, n)
    : hasMomentum
    ? placeOut("opt.b", buffer!, 0, n)
    : pp;
  const flags = (hasMomentum ? 1 : 0) | (nesterov ? 2 : 0) | (firstStep ? 4 : 0) |
    (weightDecay !== 0 ? 8 : 0);
  run("sgd", n, (chunk, ctr) => [pp, gp, bp, n, hyper, flags, chunk, ctr]);
  copyOut(pp, param, paramOffset, n);
  if (hasMomentum) copyOut(bp, buffer!, 0, n);
};

/** Adam / AdamW step in wasm (see `adamStepReference` for the arguments). */
export const wasmAdamStep: AdamStepKernel = (...args) => {
  const [
    param,
    paramOffset,
    grad,
    gradOffset,
    n,
    expAvg,
    expAvgSq,
    step,
    lr,
    beta1,
    beta2,
    eps,
    weightDecay,
    decoupled,
  ] = args;
  if (n < WASM_OPTIM_MIN || pointerOf(param) < 0) return adamStepReference(...args);
  // The same scalar expressions as the reference, evaluated once here.
  const biasCorrection1 = 1 - beta1 ** step;
  const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** step);
  const stepSize = lr / biasCorrection1;
  const decay = decoupled ? 1 - lr * weightDecay : 1;
  const l2 = decoupled ? 0 : weightDecay;
  const hyper = hyperBlock([
    decay,
    l2,
    beta1,
    1 - beta1,
    beta2,
    1 - beta2,
    biasCorrection2Sqrt,
    eps,
    stepSize,
  ]);
  const pp = placeIn("opt.p", param, paramOffset, n);
  const gp = placeIn("opt.g", grad, gradOffset, n);
  const mp = placeIn("opt.b", expAvg, 0, n);
  const vp = placeIn("opt.v", expAvgSq, 0, n);
  const flags = (decay !== 1 ? 1 : 0) | (l2 !== 0 ? 2 : 0);
  run("adam", n, (chunk, ctr) => [pp, gp, mp, vp, n, hyper, flags, chunk, ctr]);
  copyOut(pp, param, paramOffset, n);
  copyOut(mp, expAvg, 0, n);
  copyOut(vp, expAvgSq, 0, n);
};
