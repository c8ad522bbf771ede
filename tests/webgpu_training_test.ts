/**
 * A few training steps on the WebGPU device against the same steps on the CPU: the MLP and
 * AlexNet with SGD (momentum), the names transformer with AdamW, from the same initial weights
 * and batches. The losses of every step and the final weights agree to float32 rounding (the
 * device sums in another order, so not bitwise). Small models: the CI adapter is software.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  AdamW,
  AlexNet,
  crossEntropy,
  MLP,
  type Module,
  NamesGPT,
  type Optimizer,
  Rng,
  SGD,
  type Tensor,
  tensor,
  useDevice,
} from "../mod.ts";
import { gpu, gpuTest } from "./helpers/webgpu.ts";

if (gpu !== null) await useDevice("webgpu");

interface Run {
  model: Module<[Tensor], Tensor> | Module<[Tensor<"int32">], Tensor>;
  optimizer: Optimizer;
}

/** Losses of `steps` steps on `device`, and the final weights by name. */
async function train(
  make: () => Run,
  batches: readonly { x: Tensor | Tensor<"int32">; y: Tensor<"int32"> }[],
  device: "cpu" | "webgpu",
): Promise<{ losses: number[]; weights: Map<string, Float32Array> }> {
  const { model, optimizer } = make();
  await model.to(device);
  const losses: number[] = [];
  for (const batch of batches) {
    optimizer.zeroGrad();
    const logits = (model as Module<[Tensor], Tensor>).call(batch.x.to(device) as Tensor);
    const flat = logits.ndim === 3 ? logits.reshape(-1, logits.shape[2]) : logits;
    const loss = crossEntropy(flat, batch.y.to(device).reshape(-1));
    loss.backward();
    optimizer.step();
    losses.push((await loss.read())[0]);
  }
  const weights = new Map<string, Float32Array>();
  for (const [name, p] of model.namedParameters()) weights.set(name, await p.read());
  return { losses, weights };
}

/** One random batch of `shape` with labels, `n` times (the same batch, so the loss falls). */
function images(rng: Rng, n: number, shape: number[]) {
  const x = new Float32Array(shape.reduce((a, d) => a * d, 1));
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const y = new Int32Array(shape[0]);
  for (let i = 0; i < y.length; i++) y[i] = Math.floor(rng.uniform() * 10);
  const batch = { x: tensor(x, { shape }), y: tensor<"int32">(y) };
  return Array.from({ length: n }, () => batch);
}

async function compare(
  make: () => Run,
  batches: readonly { x: Tensor | Tensor<"int32">; y: Tensor<"int32"> }[],
  rtol: number,
  weightTolerance = 1e-4,
) {
  const cpu = await train(make, batches, "cpu");
  const dev = await train(make, batches, "webgpu");
  cpu.losses.forEach((l, i) => {
    assert.ok(
      Math.abs(l - dev.losses[i]) <= rtol * Math.abs(l),
      `step ${i}: loss ${dev.losses[i]} on webgpu, ${l} on the CPU`,
    );
  });
  assert.ok(cpu.losses.at(-1)! < cpu.losses[0], `the loss falls: ${cpu.losses}`);
  for (const [name, w] of cpu.weights) {
    const d = dev.weights.get(name)!;
    let worst = 0;
    for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i] - d[i]));
    assert.ok(worst < weightTolerance, `${name}: weights differ by up to ${worst}`);
  }
}

Deno.test({
  name: "webgpu: MLP training steps (SGD, momentum) match the CPU's losses and weights",
  ...gpuTest,
  async fn() {
    const make = () => {
      const model = new MLP({ hidden: [32, 48], seed: 5 });
      return { model, optimizer: new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }) };
    };
    await compare(make, images(new Rng(1), 4, [8, 1, 28, 28]), 1e-4);
  },
});

Deno.test({
  name: "webgpu: AlexNet training steps (SGD, momentum) match the CPU's",
  ...gpuTest,
  async fn() {
    const make = () => {
      const model = new AlexNet({ seed: 6 });
      return { model, optimizer: new SGD(model.parameters(), { lr: 0.02, momentum: 0.9 }) };
    };
    await compare(make, images(new Rng(2), 3, [4, 1, 28, 28]), 1e-4);
  },
});

Deno.test({
  name: "webgpu: names transformer training steps (AdamW) match the CPU's",
  ...gpuTest,
  async fn() {
    const rng = new Rng(3);
    const batches = [];
    for (let b = 0; b < 1; b++) {
      const x = new Int32Array(4 * 8);
      const y = new Int32Array(4 * 8);
      for (let i = 0; i < x.length; i++) {
        x[i] = Math.floor(rng.uniform() * 28);
        y[i] = Math.floor(rng.uniform() * 28);
      }
      batches.push({
        x: tensor<"int32">(x, { shape: [4, 8] }),
        y: tensor<"int32">(y, { shape: [4, 8] }),
      });
    }
    const make = () => {
      const model = new NamesGPT({ width: 32, layers: 1, heads: 2, blockSize: 8, seed: 7 });
      return { model, optimizer: new AdamW(model.parameters(), { lr: 3e-3 }) };
    };
    // Adam divides by √v, so a gradient that is zero up to rounding (the key projection's bias:
    // softmax ignores a constant shift) moves its weight by ±lr on either device, whichever
    // way the rounding fell. Weights are held to 3 steps of lr there; the losses, to 1e-4.
    await compare(make, [batches[0], batches[0], batches[0]], 1e-4, 3 * 3e-3);
  },
});

Deno.test({
  name: "webgpu: the same steps twice give bitwise the same losses and weights (fixed sum orders)",
  ...gpuTest,
  async fn() {
    const make = () => {
      const model = new MLP({ hidden: [32, 48], seed: 5 });
      return { model, optimizer: new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }) };
    };
    const batches = images(new Rng(4), 3, [8, 1, 28, 28]);
    const first = await train(make, batches, "webgpu");
    const second = await train(make, batches, "webgpu");
    assert.deepEqual(second.losses, first.losses);
    for (const [name, w] of first.weights) assert.deepEqual(second.weights.get(name), w, name);
  },
});
