/**
 * `deno task train --device` and `deno task eval --device` end to end: a few MLP steps on the
 * WebGPU device write the files a CPU run writes (same keys, shapes and dtypes; weights equal to
 * float32 rounding, gradient clipping included), which the CPU evaluates and resumes, and a CPU
 * checkpoint resumes on the device; a device run stopped and resumed ends with the same bytes as
 * one that ran through. The device cases skip without a WebGPU adapter (the software one is slow:
 * a few steps of batch 8). Without a device too: an adapterless `--device webgpu` (simulated on
 * Linux by asking Deno for a WebGPU backend Linux does not have) is one clear line and exit 1,
 * `--device auto` falls back to the CPU saying why, and an unknown device is a usage error.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Checkpoint, loadCheckpoint } from "../nn/checkpoint.ts";
import { hasStackTrace, runTask, type TaskRun } from "./helpers/cli.ts";
import { gpuTest } from "./helpers/webgpu.ts";

/** A tiny MLP run: 24 training images in batches of 8 (3 steps an epoch), 8 test images. */
const TINY = [
  "--limit-train",
  "24",
  "--limit-test",
  "8",
  "--batch-size",
  "8",
  "--warmup-epochs",
  "0",
];

/** Deno's WebGPU backend names one Linux has none of: no adapter, whatever the machine holds. */
const NO_ADAPTER = { DENO_WEBGPU_BACKEND: "dx12" };

function ok(run: TaskRun, what: string): void {
  assert.equal(run.code, 0, `${what}: exit ${run.code}\n${run.stdout}\n${run.stderr}`);
}

/** Largest absolute difference between two arrays of one length. */
function worst(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let out = 0;
  for (let i = 0; i < a.length; i++) out = Math.max(out, Math.abs(a[i] - b[i]));
  return out;
}

/** Tensor names, shapes and dtypes of a checkpoint, and its optimizer state's layout. */
function layout(c: Checkpoint): unknown {
  return {
    model: Object.entries(c.modelState).map(([k, t]) => [k, t.shape, t.dtype]).sort(),
    optimizer: c.optimizer?.state.map((s) => [s.param, s.step, Object.keys(s.buffers).sort()]),
    groups: c.optimizer?.paramGroups,
    scheduler: c.scheduler,
    metadata: Object.keys(c.metadata).sort(),
    epoch: c.epoch,
  };
}

Deno.test({
  name: "train --device webgpu writes the CPU's checkpoint (clipping too); eval and resume on both",
  ...gpuTest,
  async fn() {
    const root = await Deno.makeTempDir();
    try {
      const args = [...TINY, "--epochs", "1", "--clip-grad-norm", "0.05"];
      const gpuDir = join(root, "gpu");
      const cpuDir = join(root, "cpu");
      const onGpu = await runTask("train", [...args, "--device", "webgpu", "--out", gpuDir]);
      ok(onGpu, "train --device webgpu");
      assert.match(onGpu.stdout, /^device {3}webgpu: .+$/m);
      assert.match(onGpu.stdout, /^epoch {3}1\/1 {2}loss \d\.\d{4} {2}train err [\d.]+%/m);
      const onCpu = await runTask("train", [...args, "--out", cpuDir]);
      ok(onCpu, "train on the CPU");
      assert.match(onCpu.stdout, /^device {3}cpu$/m);

      const gpuLast = await loadCheckpoint(join(gpuDir, "last.safetensors"));
      const cpuLast = await loadCheckpoint(join(cpuDir, "last.safetensors"));
      assert.deepEqual(layout(gpuLast), layout(cpuLast));
      for (const [name, t] of Object.entries(cpuLast.modelState)) {
        const d = worst(t.data, gpuLast.modelState[name].data);
        assert.ok(d < 1e-4, `${name}: the device's weights differ by up to ${d}`);
      }
      for (const [i, s] of cpuLast.optimizer!.state.entries()) {
        const g = gpuLast.optimizer!.state[i];
        for (const [key, buffer] of Object.entries(s.buffers)) {
          const d = worst(buffer, g.buffers[key]);
          assert.ok(d < 1e-4, `${s.param} ${key}: the device's state differs by up to ${d}`);
        }
      }
      const gpuRecord = gpuLast.metrics as Record<string, number>;
      const cpuRecord = cpuLast.metrics as Record<string, number>;
      assert.ok(Math.abs(gpuRecord.trainLoss - cpuRecord.trainLoss) < 1e-4, "train loss");
      assert.ok(Math.abs(gpuRecord.testLoss - cpuRecord.testLoss) < 1e-4, "test loss");
      assert.equal(gpuRecord.trainError, cpuRecord.trainError);
      assert.equal(gpuRecord.testError, cpuRecord.testError);

      // The device's checkpoint evaluates on the CPU and on the device alike.
      const evalArgs = ["--ckpt", join(gpuDir, "last.safetensors"), "--limit", "8", "--json"];
      const evalCpu = await runTask("eval", evalArgs);
      ok(evalCpu, "eval on the CPU");
      const evalGpu = await runTask("eval", [...evalArgs, "--device", "webgpu"]);
      ok(evalGpu, "eval --device webgpu");
      const [a, b] = [JSON.parse(evalCpu.stdout), JSON.parse(evalGpu.stdout)];
      assert.equal(b.device, "webgpu");
      assert.equal(a.error, gpuRecord.testError);
      assert.equal(b.error, a.error);
      assert.deepEqual(b.confusion, a.confusion);
      assert.ok(Math.abs(b.loss - a.loss) < 1e-4, `eval loss ${b.loss} vs ${a.loss}`);

      // Either device resumes the other's run.
      const onward = ["--epochs", "2"];
      const cpuResumes = await runTask("train", [
        "--resume",
        join(gpuDir, "last.safetensors"),
        ...onward,
      ]);
      ok(cpuResumes, "the CPU resumes the device's run");
      assert.match(cpuResumes.stdout, /^resuming at epoch 2, batch 1 of 3$/m);
      assert.match(cpuResumes.stdout, /^epoch {3}2\/2 /m);
      const gpuResumes = await runTask("train", [
        "--resume",
        join(cpuDir, "last.safetensors"),
        ...onward,
        "--device",
        "webgpu",
      ]);
      ok(gpuResumes, "the device resumes the CPU's run");
      assert.match(gpuResumes.stdout, /^epoch {3}2\/2 /m);
      const resumed = await loadCheckpoint(join(cpuDir, "model.safetensors"));
      assert.equal(resumed.epoch, 2);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "train --device webgpu stopped at step 2 and resumed to step 4 writes the same bytes",
  ...gpuTest,
  async fn() {
    const root = await Deno.makeTempDir();
    try {
      // TAPEGRAD_DEVICE names the device as the flag does.
      const env = { TAPEGRAD_DEVICE: "webgpu" };
      const through = join(root, "through");
      const split = join(root, "split");
      // A constant rate: a cosine schedule would span the 2 steps of the first run, not the 4.
      const args = [...TINY, "--schedule", "constant"];
      ok(await runTask("train", [...args, "--steps", "4", "--out", through], env), "4 steps");
      const first = await runTask("train", [...args, "--steps", "2", "--out", split], env);
      ok(first, "2 steps");
      assert.match(first.stdout, /^device {3}webgpu: /m);
      ok(
        await runTask(
          "train",
          ["--resume", join(split, "last.safetensors"), "--steps", "4"],
          env,
        ),
        "resumed to 4 steps",
      );
      assert.deepEqual(
        await Deno.readFile(join(split, "model.safetensors")),
        await Deno.readFile(join(through, "model.safetensors")),
        "a resumed device run ends where an uninterrupted one does, bit for bit",
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "train --device webgpu without an adapter: one line, exit 1; --device auto falls back",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const root = await Deno.makeTempDir();
    try {
      const refused = await runTask("train", [...TINY, "--device", "webgpu", "--out", root], {
        ...NO_ADAPTER,
      });
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /^train: error: --device webgpu: webgpu: no adapter.*$/m);
      assert.ok(!hasStackTrace(refused), refused.stderr);
      assert.equal(refused.stdout, "", "nothing ran");

      const evalRefused = await runTask("eval", [
        "--ckpt",
        "models/mnist-mlp.safetensors",
        "--device",
        "webgpu",
      ], { ...NO_ADAPTER });
      assert.equal(evalRefused.code, 1, evalRefused.stdout + evalRefused.stderr);
      assert.match(evalRefused.stderr, /^eval: error: --device webgpu: webgpu: no adapter/m);

      const fallback = await runTask("train", [...TINY, "--epochs", "1", "--out", root], {
        ...NO_ADAPTER,
        TAPEGRAD_DEVICE: "auto",
      });
      ok(fallback, "--device auto without an adapter");
      assert.match(fallback.stdout, /^device {3}cpu \(auto: webgpu: no adapter.*\)$/m);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("train/eval --device bogus and TAPEGRAD_DEVICE=bogus are usage errors (exit 2)", async () => {
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ["train", ["--device", "bogus"], {}, /--device must be one of auto, cpu, webgpu; got "bogus"/],
    ["train", [], { TAPEGRAD_DEVICE: "bogus" }, /TAPEGRAD_DEVICE must be one of auto, cpu, webgpu/],
    [
      "eval",
      ["--ckpt", "models/mnist-mlp.safetensors", "--device", "gpu"],
      {},
      /--device must be one of auto, cpu, webgpu; got "gpu"/,
    ],
  ];
  for (const [task, args, env, pattern] of cases) {
    const run = await runTask(task, args, env);
    assert.equal(run.code, 2, `${task} ${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, pattern);
    assert.ok(!hasStackTrace(run), run.stderr);
  }
  const help = await runTask("train", ["--help"]);
  assert.match(help.stdout, /--device NAME +where tensors live: auto \| cpu \| webgpu/);
});
