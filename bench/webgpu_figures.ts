// The figures issue 15 asks of a GPU, in one run that prints everything: training images/s of the
// MLP and AlexNet at batch 128 and 1024 on the WebGPU device (and at 128 on the CPU kernels, for
// the ratio), dispatches/submits/host reads per step, and GEMM TFLOPS at 1024³, 4096³ and the
// models' shapes. On a real GPU run it through bench/webgpu_h200.sh; here (the software adapter)
// `--quick` shrinks it to show the path works:
//
//   deno run --allow-read --allow-env --allow-ffi bench/webgpu_figures.ts [--quick] [--json PATH]

import { parseArgs } from "node:util";
import { noGrad, tensor, useDevice } from "../autograd/mod.ts";
import { threadsReady } from "../autograd/kernels/wasm/gemm.ts";
import { webgpu } from "../autograd/kernels/webgpu/mod.ts";
import { writeFileAtomicSync } from "../util/atomic.ts";
import { formatDeviceProfile, profileWebGpu } from "./webgpu_profile.ts";
import { deviceStep, type ModelName } from "./webgpu_step.ts";

const { values } = parseArgs({
  options: { quick: { type: "boolean", default: false }, json: { type: "string" } },
});
const quick = values.quick;
const { description } = await useDevice("webgpu");
await threadsReady();
console.log(`device: ${description}`);
const figures: Record<string, unknown> = { device: description };

/** Median ms per step of `steps` steps recorded back to back and one read, over `rounds`. */
async function msPerStep(step: () => { read(): Promise<unknown> }, steps: number, rounds: number) {
  await step().read();
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    let last = step();
    for (let i = 1; i < steps; i++) last = step();
    await last.read();
    times.push((performance.now() - start) / steps);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const batches = quick ? [8] : [128, 1024];
for (const model of ["mlp", "alexnet"] as ModelName[]) {
  for (const batch of batches) {
    const run = await deviceStep(model, batch, "webgpu");
    const ms = await msPerStep(run.step, quick ? 2 : 20, quick ? 1 : 5);
    const rate = batch / ms * 1000;
    console.log(
      `${model} train, batch ${batch}, webgpu: ${ms.toFixed(3)} ms/step, ${
        rate.toFixed(0)
      } images/s`,
    );
    figures[`${model}_${batch}_webgpu_images_per_s`] = rate;
  }
  const cpuBatch = quick ? 8 : 128;
  const cpu = await deviceStep(model, cpuBatch, "cpu");
  const cpuMs = await msPerStep(cpu.step, quick ? 2 : 10, quick ? 1 : 3);
  const cpuRate = cpuBatch / cpuMs * 1000;
  console.log(
    `${model} train, batch ${cpuBatch}, cpu: ${cpuMs.toFixed(3)} ms/step, ${
      cpuRate.toFixed(0)
    } images/s`,
  );
  figures[`${model}_${cpuBatch}_cpu_images_per_s`] = cpuRate;
  const profile = await profileWebGpu(model, quick ? 8 : 128, quick ? 2 : 10, quick ? 1 : 3);
  console.log(formatDeviceProfile(profile));
  figures[`${model}_profile`] = profile;
}

// GEMM: square sizes and the models' products (batch 128: X·Wᵀ of the MLP's layers).
const shapes: [number, number, number][] = quick
  ? [[64, 64, 64], [128, 784, 512]]
  : [[1024, 1024, 1024], [4096, 4096, 4096], [128, 784, 512], [128, 512, 1024], [1024, 784, 512]];
for (const [m, k, n] of shapes) {
  const a = tensor(new Float32Array(m * k).fill(0.5), { shape: [m, k], device: "webgpu" });
  const b = tensor(new Float32Array(k * n).fill(0.25), { shape: [k, n], device: "webgpu" });
  const reps = quick ? 2 : m * k * n >= 4096 ** 3 ? 10 : 50;
  const ms = await msPerStep(() => noGrad(() => a.matmul(b)), reps, quick ? 1 : 3);
  const tflops = 2 * m * k * n / (ms / 1000) / 1e12;
  console.log(`gemm ${m}×${k}×${n}: ${ms.toFixed(3)} ms, ${tflops.toFixed(2)} TFLOPS`);
  figures[`gemm_${m}x${k}x${n}_tflops`] = tflops;
}
console.log(`runtime counters: ${JSON.stringify(webgpu().stats)}`);
if (values.json) writeFileAtomicSync(values.json, JSON.stringify(figures, null, 2) + "\n");
