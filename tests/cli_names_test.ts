/**
 * The names tasks end to end, small: `train --config names-mlp` for a few steps, a resume that
 * continues to more steps, `eval` (nats per character) and `sample` on the checkpoints, and their
 * usage errors.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { loadCheckpoint } from "../nn/checkpoint.ts";
import { loadSafetensors, saveSafetensors } from "../nn/serialize.ts";
import { hasStackTrace, runTask } from "./helpers/cli.ts";

Deno.test("names-mlp: train 3 steps, resume to 6, eval in nats per character, sample", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const args = ["--config", "names-mlp", "--steps", "3", "--out", dir];
    const run = await runTask("train", args);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^config {3}names-mlp: names-mlp on names, 3 steps, batch 64, adamw/m);
    assert.match(run.stdout, /^data {5}first names \(8422 names, 28 tokens\)/m);
    assert.match(run.stdout, /^model {4}names-mlp: 20,188 parameters/m);
    assert.match(run.stdout, /^epoch {3}1\/1 .* \d+ char\/s {2}test loss \d\.\d{4}$/m);
    const last = await loadCheckpoint(join(dir, "last.safetensors"));
    assert.equal(last.metadata.vocab, "-abcdefghijklmnopqrstuvwxyz");
    assert.equal(last.scheduler?.lastStep, 3);

    const resumed = await runTask("train", [
      "--resume",
      join(dir, "last.safetensors"),
      "--steps",
      "6",
    ]);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    const after = await loadCheckpoint(join(dir, "last.safetensors"));
    assert.equal(after.scheduler?.lastStep, 6);
    // best.safetensors follows the validation loss (lower after 6 steps than after 3).
    assert.match(resumed.stdout, /best test loss \d\.\d{4}/);
    const best = await loadCheckpoint(join(dir, "best.safetensors"));
    assert.equal(best.scheduler?.lastStep, 6);

    const evaluated = await runTask("eval", ["--ckpt", join(dir, "model.safetensors"), "--json"]);
    assert.equal(evaluated.code, 0, evaluated.stdout + evaluated.stderr);
    const report = JSON.parse(evaluated.stdout);
    assert.equal(report.model, "names-mlp");
    assert.equal(report.split, "validation");
    assert.equal(report.characters, 5968);
    assert.equal(report.names, 842);
    // Six steps from uniform-ish logits: below log(28) = 3.33 already, and finite.
    assert.ok(report.loss > 1 && report.loss < 3.4, `loss ${report.loss}`);
    const text = await runTask("eval", ["--ckpt", join(dir, "best.safetensors")]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /validation loss: \d\.\d{4} nats per character/);

    const sampled = await runTask("sample", [
      "--ckpt",
      join(dir, "model.safetensors"),
      "--count",
      "5",
      "--seed",
      "3",
    ]);
    assert.equal(sampled.code, 0, sampled.stdout + sampled.stderr);
    const names = sampled.stdout.trim().split("\n");
    assert.equal(names.length, 5);
    for (const name of names) assert.match(name, /^([a-z-]+|\(empty\))$/);
    const again = await runTask("sample", [
      "--ckpt",
      join(dir, "model.safetensors"),
      "--count",
      "5",
      "--seed",
      "3",
    ]);
    assert.equal(again.stdout, sampled.stdout, "the same seed gives the same names");

    // Recorded options far bigger than the weights are refused before anything is built.
    const { tensors, metadata } = await loadSafetensors(join(dir, "model.safetensors"));
    const hostile = join(dir, "hostile.safetensors");
    await saveSafetensors(hostile, tensors, {
      ...metadata,
      model_options: JSON.stringify({ hidden: 60000 }),
    });
    const refused = await runTask("sample", ["--ckpt", hostile]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /Shape mismatch for "hidden.weight".*\[60000, 48\]/);
    assert.ok(!hasStackTrace(refused));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sample: --help, a missing --ckpt, a bad --temperature and a non-names file", async () => {
  const help = await runTask("sample", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: deno task sample --ckpt PATH/);
  const missing = await runTask("sample", []);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--ckpt PATH is required/);
  const bad = await runTask("sample", ["--ckpt", "x", "--temperature", "0"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--temperature must be a number >= 0.001/);
  const absent = await runTask("sample", ["--ckpt", "/nonexistent/model.safetensors"]);
  assert.equal(absent.code, 1);
  assert.match(absent.stderr, /no such file/);
  assert.ok(!hasStackTrace(absent));
  const mnist = await runTask("sample", ["--ckpt", "models/mnist-mlp.safetensors"]);
  assert.equal(mnist.code, 1, mnist.stderr);
  assert.match(mnist.stderr, /not a names model \(the file records model "mlp"/);
});
