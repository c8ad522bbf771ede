/**
 * What one training step costs the WebGPU device, for `deno task bench:profile --device webgpu`:
 * dispatches, compute passes, submits, host reads and new buffers per step (from the runtime's
 * counters), and the time per step with the GPU's work included (steps recorded back to back,
 * then one read). A step should show zero host reads: the loss is read only when asked for.
 *
 * @module
 */

import { useDevice } from "../autograd/mod.ts";
import { type GpuStats, webgpu } from "../autograd/kernels/webgpu/mod.ts";
import { deviceStep, type ModelName } from "./webgpu_step.ts";

/** Counters per step and the time per step of `model` at `batch` on the WebGPU device. */
export interface DeviceProfile {
  /** The model. */
  model: ModelName;
  /** Batch size. */
  batch: number;
  /** Adapter description. */
  adapter: string;
  /** Each counter of {@linkcode GpuStats} divided by the steps measured. */
  perStep: Record<keyof GpuStats, number>;
  /** Median milliseconds per step over the rounds (GPU work included). */
  msPerStep: number;
  /** Kernels compiled in all. */
  pipelines: number;
}

/** Profiles `steps` steps per round, `rounds` rounds, after one warm-up step. */
export async function profileWebGpu(
  model: ModelName,
  batch: number,
  steps: number,
  rounds: number,
): Promise<DeviceProfile> {
  const { description } = await useDevice("webgpu");
  const run = await deviceStep(model, batch, "webgpu");
  await run.step().read();
  const gpu = webgpu();
  const before = { ...gpu.stats };
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    let loss = run.step();
    for (let i = 1; i < steps; i++) loss = run.step();
    // The one read of the round; it is not counted as part of a step below.
    await loss.read();
    times.push((performance.now() - start) / steps);
  }
  const measured = steps * rounds;
  const perStep = {} as Record<keyof GpuStats, number>;
  for (const key of Object.keys(before) as (keyof GpuStats)[]) {
    let delta = gpu.stats[key] - before[key];
    if (key === "reads") delta -= rounds;
    // Each round's read submits what was recorded: one submit per round is the read's.
    if (key === "submits") delta -= rounds;
    perStep[key] = delta / measured;
  }
  times.sort((a, b) => a - b);
  return {
    model,
    batch,
    adapter: description,
    perStep,
    msPerStep: times[Math.floor(times.length / 2)],
    pipelines: gpu.kernelCount,
  };
}

/** The profile as the lines `bench:profile` prints. */
export function formatDeviceProfile(p: DeviceProfile): string {
  const s = p.perStep;
  return [
    `${p.model}, batch ${p.batch}, ${p.adapter}`,
    `  per step: ${s.dispatches.toFixed(0)} dispatches in ${s.passes.toFixed(1)} compute passes, ` +
    `${s.submits.toFixed(2)} submits, ${s.reads.toFixed(0)} host reads, ` +
    `${s.buffersCreated.toFixed(1)} new buffers, ${s.bindGroupsCreated.toFixed(1)} new bind groups`,
    `  ${p.msPerStep.toFixed(2)} ms per step (${
      (p.batch / p.msPerStep * 1000).toFixed(0)
    } images/s), ` +
    `${p.pipelines} pipelines compiled`,
  ].join("\n");
}
