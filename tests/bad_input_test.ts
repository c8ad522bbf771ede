/**
 * Bad input at the command line gets a clear message naming the file and the problem, a non-zero
 * exit code, and no stack trace: corrupt dataset files, malicious or truncated checkpoints, and
 * degenerate images next to good ones.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { encodePng } from "../data/image.ts";
import { loadSafetensors, MLP, saveModel, saveSafetensors } from "../nn/mod.ts";
import { hasStackTrace, runTask, type TaskRun } from "./helpers/cli.ts";
import { withTempDir } from "./helpers/temp.ts";

function assertUserError(run: TaskRun, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, run.stdout + run.stderr);
  assert.match(run.stderr, pattern);
  assert.ok(!hasStackTrace(run), `a stack trace for a user mistake:\n${run.stderr}`);
}

/** An IDX header for `count` 28×28 images (or labels when `labels`). */
function idxHeader(count: number, labels: boolean): Uint8Array {
  const header = new DataView(new ArrayBuffer(labels ? 8 : 16));
  header.setUint32(0, labels ? 2049 : 2051);
  header.setUint32(4, count);
  if (!labels) {
    header.setUint32(8, 28);
    header.setUint32(12, 28);
  }
  return new Uint8Array(header.buffer);
}

Deno.test("train: a truncated dataset file is named with its expected and actual sizes", async () => {
  await withTempDir(async (dir) => {
    const write = (name: string, header: Uint8Array, bodyBytes: number) => {
      const bytes = new Uint8Array(header.length + bodyBytes);
      bytes.set(header);
      Deno.writeFileSync(join(dir, name), bytes);
    };
    write("train-images-idx3-ubyte", idxHeader(10, false), 784 * 10 - 100); // 100 bytes short
    write("train-labels-idx1-ubyte", idxHeader(10, true), 10);
    write("t10k-images-idx3-ubyte", idxHeader(2, false), 784 * 2);
    write("t10k-labels-idx1-ubyte", idxHeader(2, true), 2);
    const run = await runTask("train", [
      "--data-dir",
      dir,
      "--epochs",
      "1",
      "--out",
      join(dir, "run"),
    ]);
    assertUserError(run, 1, /train-images-idx3-ubyte/);
    assert.match(run.stderr, /7856/, "the expected size");
    assert.match(run.stderr, /7756/, "the actual size");
  });
});

Deno.test("eval and train --resume refuse a safetensors header claiming gigabytes, before allocating", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "huge.safetensors");
    const bytes = new Uint8Array(64);
    new DataView(bytes.buffer).setBigUint64(0, 5n * 1024n ** 3n, true); // "the header is 5 GiB"
    Deno.writeFileSync(path, bytes);
    assertUserError(await runTask("eval", ["--ckpt", path]), 1, /huge\.safetensors.*header length/);
    assertUserError(
      await runTask("train", ["--resume", path]),
      1,
      /huge\.safetensors.*header length/,
    );
  });
});

Deno.test("eval: a truncated checkpoint is a clear error naming the file", async () => {
  await withTempDir(async (dir) => {
    const good = join(dir, "model.safetensors");
    await saveModel(good, new MLP({ hidden: [16, 8], seed: 1 }), {
      metadata: { dataset: "mnist" },
    });
    const bytes = Deno.readFileSync(good);
    const cut = join(dir, "cut.safetensors");
    Deno.writeFileSync(cut, bytes.subarray(0, bytes.length - 1000));
    assertUserError(await runTask("eval", ["--ckpt", cut]), 1, /cut\.safetensors/);
  });
});

Deno.test("train --resume: a plain model file is not a training checkpoint; another architecture names its keys", async () => {
  await withTempDir(async (dir) => {
    const plain = join(dir, "weights.safetensors");
    await saveModel(plain, new MLP({ seed: 1 }), { metadata: { dataset: "mnist" } });
    assertUserError(await runTask("train", ["--resume", plain]), 1, /not a training checkpoint/);
    const args = [
      "--limit-train",
      "64",
      "--limit-test",
      "64",
      "--epochs",
      "1",
      "--out",
      join(dir, "run"),
    ];
    const run = await runTask("train", args);
    assert.equal(run.code, 0, run.stderr);
    // The MLP's training checkpoint relabelled as AlexNet's: resuming must list the keys that do not fit.
    const checkpoint = await loadSafetensors(join(dir, "run", "last.safetensors"));
    const config = {
      ...JSON.parse(checkpoint.metadata.config),
      model: "alexnet",
      modelOptions: {},
    };
    const relabelled = join(dir, "relabelled.safetensors");
    const metadata = { ...checkpoint.metadata, config: JSON.stringify(config), model: "alexnet" };
    await saveSafetensors(relabelled, checkpoint.tensors, metadata);
    const resumed = await runTask("train", ["--resume", relabelled]);
    assertUserError(resumed, 1, /relabelled\.safetensors/);
    assert.match(resumed.stderr, /Missing key\(s\): .*"conv1\.weight"/);
    assert.match(resumed.stderr, /Unexpected key\(s\): .*"fc3\.weight"/);
    assert.match(
      resumed.stderr,
      /Shape mismatch for "fc1\.weight": the module has \[1024, 2048\], the state dict has \[512, 784\]/,
    );
  });
});

Deno.test("demo: 1×1, 4000×3000 and non-image files each get their own line; the good ones are classified", async () => {
  await withTempDir(async (dir) => {
    const model = join(dir, "model.safetensors");
    await saveModel(model, new MLP({ hidden: [16, 8], seed: 1 }), {
      metadata: { dataset: "mnist" },
    });
    await Deno.writeFile(join(dir, "tiny.png"), await encodePng(new Uint8Array([255]), 1, 1));
    const width = 4000;
    const height = 3000;
    const big = new Uint8Array(width * height).fill(235);
    for (let y = 1200; y < 1800; y++) for (let x = 1900; x < 2000; x++) big[y * width + x] = 20; // a dark "1"
    await Deno.writeFile(join(dir, "photo.png"), await encodePng(big, width, height));
    await Deno.writeFile(join(dir, "notes.png"), new TextEncoder().encode("not an image at all"));
    const run = await runTask("demo", [
      "--model",
      model,
      join(dir, "tiny.png"),
      join(dir, "photo.png"),
      join(dir, "notes.png"),
    ]);
    assert.equal(run.code, 1, "a failed file makes the exit code 1");
    assert.match(run.stdout, /photo\.png/);
    assert.match(run.stderr, /tiny\.png/);
    assert.match(run.stderr, /notes\.png/);
    assert.ok(!hasStackTrace(run), run.stderr);
  });
});
