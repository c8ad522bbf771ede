// A names-gpt and a names-mlp training step as the trainer runs it (forward, crossEntropy with the
// padding ignored, backward, AdamW, OneCycleLR) on real batches of 64 names from the corpus.
//
//   deno task bench          (all of bench/)
//   deno bench --allow-read --allow-env bench/names_bench.ts
//
// Characters/s = real target characters of the step (~449 for 64 names) / time per iteration;
// compare with bench/names_torch.py's figure (bench/names_reference.md) run in the same period,
// since the machines' 2 cores are shared.

import { crossEntropy, type Tensor } from "../autograd/mod.ts";
import { threadsReady } from "../autograd/kernels/wasm/gemm.ts";
import { loadNames } from "../data/names.ts";
import { NamesBatches, namesEncoding, type TaskBatch } from "../cli/tasks.ts";
import { createModel } from "../nn/models/registry.ts";
import { AdamW, OneCycleLR } from "../nn/mod.ts";

await threadsReady;
const corpus = await loadNames();

function setup(name: "names-gpt" | "names-mlp", lr: number) {
  const batches = new NamesBatches(corpus.train, corpus.vocab, namesEncoding(name), {
    batchSize: 64,
    seed: 1,
  });
  const all: TaskBatch[] = [...batches.epoch(0)].slice(0, 20);
  const model = createModel(name, { seed: 1 });
  const optimizer = new AdamW(model.parameters(), { lr, betas: [0.9, 0.99], weightDecay: 0.01 });
  const scheduler = new OneCycleLR(optimizer, {
    maxLr: lr,
    totalSteps: 1_000_000,
    cycleMomentum: false,
  });
  let i = 0;
  return () => {
    const { x, y } = all[i++ % all.length];
    optimizer.zeroGrad();
    const logits = model.call(x as Tensor);
    crossEntropy(logits.reshape(-1, 28), y, { ignoreIndex: -1 }).backward();
    optimizer.step();
    scheduler.step();
  };
}

const gpt = setup("names-gpt", 3e-3);
const mlp = setup("names-mlp", 1e-2);
for (let i = 0; i < 5; i++) gpt(), mlp(); // warm-up: wasm compilation, scratch growth

Deno.bench("names-gpt training step (64 names, ~449 characters)", { group: "names" }, gpt);
Deno.bench("names-mlp training step (64 names, ~449 characters)", { group: "names" }, mlp);
