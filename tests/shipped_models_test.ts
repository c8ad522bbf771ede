/**
 * The models shipped in models/ reach the test error they state (evaluation only, no training):
 * the full MNIST test set through the same code path `deno task eval` uses.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { loadDataset } from "../data/datasets.ts";
import { DataLoader, normalizationFor } from "../data/loader.ts";
import { loadModel } from "../nn/checkpoint.ts";
import { evaluate } from "../cli/trainer.ts";
import { imageBatches } from "../cli/tasks.ts";
import { ROOT, runTask } from "./helpers/cli.ts";

/** Each shipped model and the target for it. */
const shipped = [
  { file: "mnist-mlp.safetensors", model: "mlp", target: 0.015 },
  { file: "mnist-alexnet.safetensors", model: "alexnet", target: 0.008 },
];

for (const { file, model: name, target } of shipped) {
  Deno.test(`models/${file} reaches its recorded test error (target ≤ ${target * 100}%)`, async () => {
    const { model, checkpoint } = await loadModel(join(ROOT, "models", file));
    assert.equal(checkpoint.spec?.name, name);
    assert.equal(checkpoint.metadata.dataset, "mnist");
    assert.match(checkpoint.metadata.command, new RegExp(`^deno task train --config ${name}\\b`));
    const recorded = Number((checkpoint.metrics as { testError: number }).testError);
    const mnist = await loadDataset("mnist");
    const test = new DataLoader(mnist.test.images, mnist.test.labels, {
      batchSize: 1000,
      shuffle: false,
      normalization: normalizationFor("mnist"),
    });
    const { error } = evaluate(model, imageBatches(test));
    // Another CPU may round the last bit of a fused multiply-add differently: allow 3 images.
    assert.ok(Math.abs(error - recorded) <= 3 / 10_000, `error ${error} vs recorded ${recorded}`);
    assert.ok(error <= target, `test error ${(error * 100).toFixed(2)}% above the target`);
  });
}

Deno.test("deno task demo with no arguments classifies the shipped samples with the shipped MLP", async () => {
  const run = await runTask("demo", []);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /20 of 20 images classified by mlp \(mnist\)/);
  assert.match(run.stdout, /classes stated by file names: 20 of 20 correct/);
});
