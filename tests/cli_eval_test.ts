/**
 * `deno task eval`, run as a child process on checkpoints made here: the report, the JSON output
 * (checked against an in-process evaluation), and the user errors (exit codes, no stack traces).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { crossEntropy, noGrad } from "../autograd/mod.ts";
import { loadSplit } from "../data/datasets.ts";
import { DataLoader, MNIST_NORMALIZATION } from "../data/loader.ts";
import { MLP, saveModel } from "../nn/mod.ts";
import { hasStackTrace, runTask, type TaskRun } from "./helpers/cli.ts";

function runEval(args: string[]): Promise<TaskRun> {
  return runTask("eval", args);
}

function assertNoStack(run: TaskRun): void {
  assert.ok(!hasStackTrace(run), "a user error printed a stack trace");
}

/** A small random MLP saved with its spec and the metadata train writes. */
async function withCheckpoint(fn: (dir: string, path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "small.safetensors");
    await saveModel(path, new MLP({ hidden: [32, 16], seed: 3 }), {
      epoch: 1,
      metadata: { dataset: "mnist", config: '{"name":"small"}', command: "test" },
    });
    await fn(dir, path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("eval: text report with error, per-class table and confusion matrix", async () => {
  await withCheckpoint(async (_dir, path) => {
    const run = await runEval(["--ckpt", path, "--limit", "500"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^data: .*test split, 500 images$/m);
    assert.match(run.stdout, /^test error: \d+\.\d\d% \(accuracy \d+\.\d\d%, \d+ wrong of 500\)$/m);
    assert.match(run.stdout, /^loss: \d+\.\d{4}/m);
    assert.match(run.stdout, /per-class accuracy:\n {2}class +accuracy +correct +count\n/);
    for (let digit = 0; digit < 10; digit++) {
      assert.match(run.stdout, new RegExp(`^  ${digit} +\\d+\\.\\d\\d% +\\d+ +\\d+$`, "m"));
    }
    // Ten aligned rows of ten counts under a header of the predicted classes.
    const matrix = run.stdout.split("confusion matrix")[1].split("\n").slice(1, 12);
    assert.match(matrix[0], /^ {2}true \\ predicted( +\d){10}$/);
    const rows = matrix.slice(1).map((line) => line.trim().split(/ +/).map(Number));
    assert.deepEqual(rows.map((r) => r[0]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(rows.flatMap((r) => r.slice(1)).reduce((a, b) => a + b, 0), 500);
    assert.equal(new Set(matrix.map((line) => line.length)).size, 1, "rows are aligned");
    assert.match(run.stdout, /^evaluated 500 images in [\d.]+ s \(\d+ images\/s, batch 500\)$/m);
  });
});

Deno.test("eval: --json agrees with an in-process evaluation of the same weights", async () => {
  await withCheckpoint(async (_dir, path) => {
    const run = await runEval(["--ckpt", path, "--limit", "500", "--batch-size", "64", "--json"]);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.count, 500);
    assert.equal(result.model, "mlp");
    assert.equal(result.dataset, "mnist");
    assert.equal(result.checkpoint, path);
    assert.equal(result.confusion.flat().reduce((a: number, b: number) => a + b, 0), 500);
    assert.equal(result.perClass.length, 10);
    assert.ok(Math.abs(result.error + result.accuracy - 1) < 1e-12);
    assert.ok(result.seconds > 0);

    const model = new MLP({ hidden: [32, 16], seed: 3 });
    const test = await loadSplit("mnist", "test", { download: false });
    const loader = new DataLoader(test.images, test.labels, {
      batchSize: 500,
      shuffle: false,
      limit: 500,
      normalization: MNIST_NORMALIZATION,
    });
    const [{ x, y }] = [...loader.epoch(0)];
    const { predicted, loss } = noGrad(() => {
      const logits = model.eval().call(x);
      return { predicted: logits.argmax(1).toFloat32Array(), loss: crossEntropy(logits, y).item() };
    });
    const correct = y.filter((label, i) => predicted[i] === label).length;
    assert.equal(result.accuracy, correct / 500);
    assert.ok(Math.abs(result.loss - loss) < 1e-4, `${result.loss} vs ${loss}`);
    for (let c = 0; c < 10; c++) {
      const count = y.filter((label) => label === c).length;
      assert.equal(result.perClass[c].count, count);
      assert.equal(result.confusion[c].reduce((a: number, b: number) => a + b, 0), count);
    }
  });
});

/** Writes the four IDX files of a tiny dataset: `count` images whose pixels are all `label * 20`. */
async function writeTinyDataset(dir: string, count: number): Promise<void> {
  const header = (magic: number, dims: number[]) => {
    const view = new DataView(new ArrayBuffer(4 + 4 * dims.length));
    view.setUint32(0, magic);
    dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
    return new Uint8Array(view.buffer);
  };
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
  const pixels = new Uint8Array(count * 784);
  labels.forEach((label, i) => pixels.fill(label * 20, i * 784, (i + 1) * 784));
  const images = new Uint8Array([...header(0x803, [count, 28, 28]), ...pixels]);
  const labelFile = new Uint8Array([...header(0x801, [count]), ...labels]);
  for (const prefix of ["train", "t10k"]) {
    await Deno.writeFile(join(dir, `${prefix}-images-idx3-ubyte`), images);
    await Deno.writeFile(join(dir, `${prefix}-labels-idx1-ubyte`), labelFile);
  }
}

Deno.test("eval: Fashion-MNIST class names, from the metadata or --dataset, with --data-dir", async () => {
  await withCheckpoint(async (dir, path) => {
    const data = join(dir, "tiny");
    await Deno.mkdir(data);
    await writeTinyDataset(data, 30);
    const fashion = join(dir, "fashion.safetensors");
    await saveModel(fashion, new MLP({ hidden: [8, 8], seed: 1 }), {
      metadata: { dataset: "fashion-mnist" },
    });
    for (const args of [["--ckpt", fashion], ["--ckpt", path, "--dataset", "fashion-mnist"]]) {
      const run = await runEval([...args, "--data-dir", data, "--split", "train"]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /train split, 30 images/);
      assert.match(run.stdout, /^ {2}0 T-shirt\/top +\d+\.\d\d% +\d+ +3$/m);
      assert.match(run.stdout, /^ {2}9 Ankle boot +\d/m);
    }
  });
});

Deno.test("eval: a checkpoint of another architecture fails with the key report", async () => {
  await withCheckpoint(async (dir) => {
    const wrong = join(dir, "wrong.safetensors");
    // Wider layers than the model the metadata names ("mlp" with default sizes).
    await saveModel(wrong, new MLP({ hidden: [64, 32], seed: 1 }), {
      spec: { name: "mlp", options: {} },
    });
    const run = await runEval(["--ckpt", wrong]);
    assert.equal(run.code, 1);
    assert.ok(run.stderr.startsWith(`eval: error: ${wrong}: `), run.stderr);
    assert.match(run.stderr, /Error\(s\) in loading state dict for MLP/);
    assert.match(run.stderr, /Shape mismatch for "fc1.weight": the module has \[512, 784\]/);
    assertNoStack(run);

    const renamed = join(dir, "renamed.safetensors");
    await saveModel(renamed, new MLP({ hidden: [8, 8], seed: 1 }), {
      spec: { name: "alexnet", options: {} },
    });
    const alex = await runEval(["--ckpt", renamed]);
    assert.equal(alex.code, 1);
    assert.match(alex.stderr, /Missing key\(s\): "conv1.weight"/);
    assert.match(alex.stderr, /Unexpected key\(s\): "fc3.bias", "fc3.weight"/);
    assertNoStack(alex);
  });
});

Deno.test("eval: missing, unreadable and corrupt checkpoints are clear errors", async () => {
  await withCheckpoint(async (dir) => {
    const missing = await runEval(["--ckpt", join(dir, "nope.safetensors")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.safetensors: no such file/);

    const corrupt = join(dir, "corrupt.safetensors");
    await Deno.writeTextFile(corrupt, "this is not a checkpoint at all");
    const bad = await runEval(["--ckpt", corrupt]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^eval: error: .*corrupt\.safetensors: /);

    const folder = await runEval(["--ckpt", dir]);
    assert.equal(folder.code, 1);
    assert.match(folder.stderr, /not a file/);
    for (const run of [missing, bad, folder]) assertNoStack(run);
  });
});

Deno.test("eval: usage errors exit 2; --help lists the flags", async () => {
  const none = await runEval([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--ckpt PATH is required/);

  const unknown = await runEval(["--ckpt", "x", "--bogus"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /bogus/);
  assert.match(unknown.stderr, /valid flags: --ckpt, --dataset, --data-dir, --split/);

  const split = await runEval(["--ckpt", "x", "--split", "validation"]);
  assert.equal(split.code, 2);
  assert.match(split.stderr, /--split must be one of test, train/);
  for (const run of [none, unknown, split]) assertNoStack(run);

  const help = await runEval(["--help"]);
  assert.equal(help.code, 0);
  for (const flag of ["--ckpt", "--dataset", "--data-dir", "--batch-size", "--split", "--limit"]) {
    assert.match(help.stdout, new RegExp(flag));
  }
});
