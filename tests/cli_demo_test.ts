/**
 * `deno task demo`, run as a child process with a model trained here in about a second: it must
 * classify most of the shipped samples correctly, prepare a photo-like image, keep going past
 * unreadable files (exit 1), refuse an empty folder, and print parseable JSON lines.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { crossEntropy, Rng } from "../autograd/mod.ts";
import { loadSplit } from "../data/datasets.ts";
import { encodePng } from "../data/image.ts";
import { DataLoader, MNIST_NORMALIZATION } from "../data/loader.ts";
import { MLP, saveModel, SGD } from "../nn/mod.ts";
import { ROOT, runTask, type TaskRun } from "./helpers/cli.ts";

const SAMPLES = join(ROOT, "data", "samples");

function runDemo(args: string[], initCwd = ""): Promise<TaskRun> {
  return runTask("demo", args, { INIT_CWD: initCwd });
}

/**
 * One seeded epoch of a small MLP over 10 000 training images (SGD with momentum): about 92%
 * test accuracy, enough to read the clear sample digits.
 */
async function trainSmallModel(path: string): Promise<void> {
  const train = await loadSplit("mnist", "train", { download: false });
  const model = new MLP({ hidden: [128, 64], seed: 1 });
  const optimizer = new SGD(model.parameters(), { lr: 0.02, momentum: 0.9 });
  const loader = new DataLoader(train.images, train.labels, {
    batchSize: 32,
    seed: 1,
    limit: 10_000,
    normalization: MNIST_NORMALIZATION,
  });
  for (const { x, y } of loader.epoch(0)) {
    optimizer.zeroGrad();
    crossEntropy(model.call(x), y).backward();
    optimizer.step();
  }
  await saveModel(path, model, { epoch: 1, metadata: { dataset: "mnist" } });
}

/**
 * A test digit as a phone photo of paper would show it: dark ink on light, slightly noisy paper,
 * scaled up 4× and off-centre in a 200×150 frame.
 */
async function photoOf(pixels: Uint8Array): Promise<Uint8Array> {
  const width = 200, height = 150, scale = 4, left = 20, top = 25;
  const rng = new Rng(7);
  const gray = Uint8Array.from({ length: width * height }, () => 215 + rng.int(20));
  for (let y = 0; y < 28 * scale; y++) {
    for (let x = 0; x < 28 * scale; x++) {
      const ink = pixels[Math.floor(y / scale) * 28 + Math.floor(x / scale)];
      const i = (top + y) * width + left + x;
      gray[i] = Math.round(gray[i] * (1 - ink / 255) + 30 * (ink / 255));
    }
  }
  return await encodePng(gray, width, height);
}

Deno.test("demo: classifies files with a freshly trained model", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const modelPath = join(dir, "small.safetensors");
    await trainSmallModel(modelPath);
    const test = await loadSplit("mnist", "test", { download: false });
    // Test image 0 is a 7.
    const photo = await photoOf(test.images.pixels.slice(0, 784));

    await t.step(
      "the shipped samples: a line each with class, top-3 and both times; most right",
      async () => {
        const run = await runDemo(["--model", modelPath]);
        assert.equal(run.code, 0, run.stderr);
        const lines = run.stdout.split("\n").filter((l) => l.includes("→"));
        assert.equal(lines.length, 20);
        for (const line of lines) {
          assert.match(
            line,
            /^data\/samples\/digit-\d-test-\d+\.png +→ \d +\((\d \d+\.\d%(, )?){3}\) +\d+\.\d\d ms first, \d+\.\d{3} ms warm +(ok|WRONG)/,
          );
        }
        assert.match(run.stdout, /first pass per image: mean \d+\.\d\d ms, median \d+\.\d\d ms/);
        assert.match(run.stdout, /after 3 warm-up passes/);
        assert.match(
          run.stdout,
          /steady state: +mean \d+\.\d{3} ms, median \d+\.\d{3} ms \(median of 20 warm passes per image\)/,
        );

        const json = await runDemo([
          "--model",
          modelPath,
          "--json",
          "--warmup",
          "1",
          "--repeat",
          "5",
          SAMPLES,
        ]);
        assert.equal(json.code, 0, json.stderr);
        const records = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
        const files = records.filter((r) => !r.summary);
        assert.equal(files.length, 20);
        let correct = 0;
        for (const r of files) {
          const stated = Number(/digit-(\d)-test-\d+\.png$/.exec(r.file)![1]);
          assert.equal(r.top3.length, 3);
          assert.ok(r.top3[0].probability >= r.top3[1].probability);
          assert.equal(r.label, r.top3[0].label);
          assert.ok(r.firstMs >= 0 && r.steadyMs >= 0);
          if (r.label === stated) correct++;
        }
        assert.ok(correct >= 16, `only ${correct} of 20 samples classified correctly`);
        const summary = records.at(-1);
        assert.deepEqual(
          [
            summary.summary,
            summary.files,
            summary.failed,
            summary.warmup,
            summary.repeat,
            summary.correct,
          ],
          [true, 20, 0, 1, 5, correct],
        );
        assert.ok(summary.firstMedianMs >= 0 && summary.steadyMedianMs >= 0);

        // --repeat 0 leaves the steady-state time out rather than printing a made-up one.
        const once = await runDemo(["--model", modelPath, "--repeat", "0", SAMPLES]);
        assert.equal(once.code, 0, once.stderr);
        assert.match(once.stdout, /\d ms first +ok/);
        assert.doesNotMatch(once.stdout, /ms warm|steady state/);
      },
    );

    await t.step(
      "a photo-like image is prepared and classified; bad files fail alone",
      async () => {
        const folder = join(dir, "mixed");
        await Deno.mkdir(folder);
        await Deno.writeFile(join(folder, "photo.png"), photo);
        await Deno.copyFile(join(SAMPLES, "digit-2-test-1.png"), join(folder, "two.png"));
        const noise = new Rng(3);
        await Deno.writeFile(
          join(folder, "x.png"),
          Uint8Array.from({ length: 500 }, () => noise.int(256)),
        );
        await Deno.writeTextFile(join(folder, "notes.txt"), "skipped quietly");

        const run = await runDemo(["--model", modelPath, folder]);
        assert.equal(run.code, 1, "a failed file makes the exit code 1");
        assert.match(run.stdout, /photo\.png +→ 7 /, "the photo of a 7 is read as a 7");
        assert.match(run.stdout, /two\.png +→ \d /);
        assert.match(run.stderr, /x\.png +error: not a PNG, JPEG, GIF or BMP image/);
        assert.doesNotMatch(run.stdout + run.stderr, /notes\.txt/);
        assert.match(run.stderr, /1 of 3 files failed/);

        // A file named explicitly is tried whatever its name; INIT_CWD is where relative paths start.
        const named = await runDemo(["--model", modelPath, "notes.txt", "photo.png"], folder);
        assert.equal(named.code, 1);
        assert.match(named.stderr, /^notes\.txt +error: /m);
        assert.match(named.stdout, /^photo\.png +→ 7 /m);
      },
    );

    await t.step("an empty folder, a missing model and bad flags are clear errors", async () => {
      const empty = join(dir, "empty");
      await Deno.mkdir(empty);
      const run = await runDemo(["--model", modelPath, empty]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /empty: no images found/);

      const missing = await runDemo(["--model", join(dir, "nope.safetensors")]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /nope\.safetensors: no such file/);

      const flag = await runDemo(["--warmup", "-1"]);
      assert.equal(flag.code, 2);
      for (const r of [run, missing, flag]) assert.doesNotMatch(r.stderr, /^\s+at /m);

      const help = await runDemo(["--help"]);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /--warmup N +untimed forward passes/);
      assert.match(help.stdout, /--repeat N +warm passes per image/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
