/**
 * The WebGPU optimizer updates against the CPU reference loops (`sgdStepReference`,
 * `adamStepReference`): several steps of SGD (plain, momentum with and without dampening,
 * Nesterov, weight decay, the first step setting the buffer) and Adam / AdamW (bias correction,
 * L2 and decoupled decay), parameter and state compared after every step to float32 rounding
 * (WGSL has no float64 for the intermediates). Also a parameter at an offset in its storage and
 * a strided gradient, and the SGD and AdamW optimizers themselves on the device.
 *
 * @module
 */

import assert from "node:assert/strict";
import { adamStepReference, sgdStepReference } from "../autograd/kernels/optim.ts";
import { optimizers } from "../autograd/kernels/webgpu/optim.ts";
import type { GpuStorage } from "../autograd/kernels/webgpu/runtime.ts";
import { AdamW, Rng, SGD, Tensor, useDevice } from "../mod.ts";
import { gpu, gpuTest } from "./helpers/webgpu.ts";

if (gpu !== null) await useDevice("webgpu");

const rng = new Rng(7);

function random(n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

/** Closeness in float32 terms: relative 1e-5 of the value, or 1e-6 absolute. */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const [a, e] = [actual[i], expected[i]];
    assert.ok(
      Math.abs(a - e) <= 1e-6 + 1e-5 * Math.abs(e),
      `${what}[${i}]: ${a}, expected ${e}`,
    );
  }
}

interface SgdCase {
  lr: number;
  weightDecay: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
}

const SGD_CASES: SgdCase[] = [
  { lr: 0.1, weightDecay: 0, momentum: 0, dampening: 0, nesterov: false },
  { lr: 0.05, weightDecay: 0.01, momentum: 0, dampening: 0, nesterov: false },
  { lr: 0.01, weightDecay: 0, momentum: 0.9, dampening: 0, nesterov: false },
  { lr: 0.01, weightDecay: 1e-3, momentum: 0.9, dampening: 0.5, nesterov: false },
  { lr: 0.02, weightDecay: 1e-4, momentum: 0.8, dampening: 0, nesterov: true },
];

Deno.test({
  name: "webgpu sgdStep: every variant over several steps, against sgdStepReference",
  ...gpuTest,
  async fn() {
    for (const c of SGD_CASES) {
      for (const n of [1, 7, 300]) {
        // The parameter sits at an offset of its storage; the gradient is a strided view.
        const lead = 3;
        const host = random(n + lead);
        const param = new Tensor(host.slice(), [n + lead]).to("webgpu").narrow(0, lead, n);
        const cpuParam = host.slice(lead);
        const buffer = c.momentum === 0 ? null : new Float32Array(n);
        const deviceBuffer = c.momentum === 0 ? null : gpu!.alloc("float32", n, true);
        for (let step = 0; step < 4; step++) {
          const g = random(2 * n);
          const grad = new Tensor(g, [n, 2]).to("webgpu").narrow(1, 1, 1).reshape(n);
          const cpuGrad = Float32Array.from({ length: n }, (_, i) => g[2 * i + 1]);
          const args = [c.lr, c.weightDecay, c.momentum, c.dampening, c.nesterov] as const;
          sgdStepReference(cpuParam, 0, cpuGrad, 0, n, ...args, buffer, step === 0);
          optimizers.sgdStep(param, grad, ...args, deviceBuffer, step === 0);
          const what = `sgd ${JSON.stringify(c)} n ${n} step ${step}`;
          assertClose(await param.read(), cpuParam, what);
          if (buffer !== null) {
            assertClose(await gpu!.read(deviceBuffer!), buffer, `${what} buffer`);
          }
        }
        // The elements before the parameter are untouched.
        const whole = await gpu!.read(param.storage as GpuStorage);
        assert.deepEqual(Array.from(whole.subarray(0, lead)), Array.from(host.subarray(0, lead)));
      }
    }
  },
});

Deno.test({
  name: "webgpu adamStep: Adam and AdamW over several steps, against adamStepReference",
  ...gpuTest,
  async fn() {
    const cases = [
      { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false },
      { lr: 1e-2, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1, decoupled: false },
      { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, decoupled: true },
    ];
    for (const c of cases) {
      for (const n of [1, 5, 257]) {
        const host = random(n);
        const param = new Tensor(host.slice(), [n]).to("webgpu");
        const cpuParam = host.slice();
        const m = new Float32Array(n);
        const v = new Float32Array(n);
        const dm = gpu!.alloc("float32", n, true);
        const dv = gpu!.alloc("float32", n, true);
        for (let step = 1; step <= 5; step++) {
          const g = random(n, 0.1);
          const args = [c.lr, c.beta1, c.beta2, c.eps, c.weightDecay, c.decoupled] as const;
          adamStepReference(cpuParam, 0, g, 0, n, m, v, step, ...args);
          optimizers.adamStep(param, new Tensor(g, [n]).to("webgpu"), dm, dv, step, ...args);
          const what = `adam ${JSON.stringify(c)} n ${n} step ${step}`;
          assertClose(await param.read(), cpuParam, what);
          assertClose(await gpu!.read(dm), m, `${what} m`);
          assertClose(await gpu!.read(dv), v, `${what} v`);
        }
      }
    }
  },
});

Deno.test({
  name: "webgpu optimizers: a non-contiguous parameter is refused, empty ones are a no-op",
  ...gpuTest,
  fn() {
    const p = new Tensor(random(6), [2, 3]).to("webgpu").transpose(0, 1);
    const g = new Tensor(random(6), [3, 2]).to("webgpu");
    assert.throws(
      () => optimizers.sgdStep(p, g, 0.1, 0, 0, 0, false, null, false),
      /contiguous/,
    );
    // (Made by alloc: uploading an empty array panics Deno 2.9.6's writeBuffer.)
    const empty = new Tensor(gpu!.alloc("float32", 0), [0]);
    optimizers.sgdStep(empty, empty, 0.1, 0, 0, 0, false, null, false);
  },
});

Deno.test({
  name: "webgpu SGD and AdamW optimizers follow their parameters onto the device",
  ...gpuTest,
  async fn() {
    for (
      const make of [
        (ps: Tensor[]) => new SGD(ps, { lr: 0.1, momentum: 0.9, weightDecay: 1e-3 }),
        (ps: Tensor[]) => new AdamW(ps, { lr: 1e-2, weightDecay: 0.05 }),
      ]
    ) {
      const init = random(12);
      const cpu = new Tensor(init.slice(), [3, 4]);
      const dev = new Tensor(init.slice(), [3, 4]).to("webgpu");
      cpu.requiresGrad = dev.requiresGrad = true;
      const [oc, od] = [make([cpu]), make([dev])];
      for (let step = 0; step < 3; step++) {
        const g = random(12);
        cpu.grad = new Tensor(g.slice(), [3, 4]);
        dev.grad = new Tensor(g.slice(), [3, 4]).to("webgpu");
        oc.step();
        od.step();
        assertClose(await dev.read(), cpu.values(), `${oc.constructor.name} step ${step}`);
      }
    }
  },
});
