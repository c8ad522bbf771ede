/**
 * `deno task train` end to end on a small subset: every artefact of a run, the epoch lines, eval
 * on the checkpoint it wrote, and usage errors.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { loadCheckpoint } from "../nn/checkpoint.ts";
import { hasStackTrace, runTask } from "./helpers/cli.ts";

Deno.test("train --limit-train 2000 --epochs 1 writes every artefact; eval reads the checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const args = [
      "--limit-train",
      "2000",
      "--limit-test",
      "1000",
      "--epochs",
      "1",
      "--warmup-epochs",
      "0",
      "--batch-size",
      "32",
    ];
    const run = await runTask("train", [...args, "--out", dir]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^config {3}mlp: mlp on mnist, 1 epochs, batch 32/m);
    assert.match(
      run.stdout,
      /^epoch {3}1\/1 {2}loss \d\.\d{4} {2}train err [\d.]+% {2}test err [\d.]+%\* .* \d+ img\/s$/m,
    );
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, [
      "best.safetensors",
      "config.json",
      "curves.png",
      "curves.svg",
      "last.safetensors",
      "metrics.jsonl",
      "model.safetensors",
      "train.log",
    ]);
    const metrics = Deno.readTextFileSync(join(dir, "metrics.jsonl")).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.equal(metrics.length, 1);
    assert.deepEqual(Object.keys(metrics[0]).sort(), [
      "epoch",
      "imagesPerSecond",
      "lr",
      "peakRssMiB",
      "seconds",
      "testError",
      "testLoss",
      "trainError",
      "trainLoss",
    ]);
    // One epoch on 2,000 shifted images (63 steps) already learns: chance is 90% error.
    assert.ok(metrics[0].testError < 0.35, `test error ${metrics[0].testError}`);
    const config = JSON.parse(Deno.readTextFileSync(join(dir, "config.json")));
    assert.equal(config.limitTrain, 2000);
    assert.match(config.command, /deno task train --limit-train 2000/);
    assert.match(Deno.readTextFileSync(join(dir, "train.log")), /epoch {3}1\/1/);
    assert.match(Deno.readTextFileSync(join(dir, "curves.svg")), /<svg xmlns/);
    const ckpt = await loadCheckpoint(join(dir, "best.safetensors"));
    assert.equal(ckpt.spec?.name, "mlp");
    assert.equal(ckpt.metadata.dataset, "mnist");
    assert.equal(ckpt.epoch, 1);
    assert.deepEqual(Object.keys(ckpt.modelState).sort(), [
      "fc1.bias",
      "fc1.weight",
      "fc2.bias",
      "fc2.weight",
      "fc3.bias",
      "fc3.weight",
    ]);

    const evaluated = await runTask("eval", [
      "--ckpt",
      join(dir, "best.safetensors"),
      "--limit",
      "1000",
      "--json",
    ]);
    assert.equal(evaluated.code, 0, evaluated.stderr);
    const report = JSON.parse(evaluated.stdout);
    assert.ok(
      Math.abs(report.error - metrics[0].testError) < 1e-9,
      "eval agrees with the run's own test error",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train --help lists the flags and configs; usage errors exit 2 without a stack trace", async () => {
  const help = await runTask("train", ["--help"]);
  assert.equal(help.code, 0);
  for (
    const flag of [
      "--epochs",
      "--batch-size",
      "--lr",
      "--optimizer",
      "--momentum",
      "--weight-decay",
      "--schedule",
      "--seed",
      "--data-dir",
      "--out",
      "--limit-train",
      "--resume",
    ]
  ) {
    assert.ok(help.stdout.includes(flag), `--help mentions ${flag}`);
  }
  assert.match(help.stdout, /mlp, alexnet, mlp-fashion, alexnet-fashion/);
  const cases: [string[], RegExp][] = [
    [["--epoch", "3"], /Unknown option '--epoch'[\s\S]*valid flags: .*--epochs/],
    [
      ["--config", "resnet"],
      /unknown config "resnet"; valid configs: mlp, alexnet, mlp-fashion, alexnet-fashion/,
    ],
    [["--epochs", "zero"], /--epochs must be an integer >= 1, got "zero"/],
    [["--optimizer", "lbfgs"], /--optimizer must be one of sgd, adam, adamw; got "lbfgs"/],
    [["--schedule", "multistep"], /--schedule multistep needs --milestones/],
  ];
  for (const [args, pattern] of cases) {
    const run = await runTask("train", args);
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, pattern);
    assert.ok(!hasStackTrace(run), run.stderr);
  }
});

Deno.test("train: a missing data folder is a clear error naming the files, no stack trace", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = await runTask("train", [
      "--data-dir",
      dir,
      "--epochs",
      "1",
      "--out",
      join(dir, "run"),
    ]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /train-images-idx3-ubyte/);
    assert.ok(!hasStackTrace(run), run.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
