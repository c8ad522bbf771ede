/**
 * `deno task samples`: the PNGs it writes are exactly the test images their names state, a second
 * run rewrites nothing, and the committed data/samples/ files are such PNGs.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { DEBIAN_FASHION_MNIST_DIR, loadSplit } from "../data/datasets.ts";
import { decodeImage } from "../data/image.ts";
import { firstOfEachClass, sampleLabel, sampleName } from "../cli/samples.ts";
import { ROOT, runTask, type TaskRun } from "./helpers/cli.ts";

async function runSamples(args: string[]): Promise<TaskRun> {
  const run = await runTask("samples", args);
  assert.equal(run.code, 0, run.stderr);
  return run;
}

/** Checks every `*-test-N.png` in `dir` against test image N; returns the count per label. */
async function checkAgainstTestSet(dir: string, dataset: "mnist" | "fashion-mnist") {
  const test = await loadSplit(dataset, "test", { download: false });
  const plane = test.images.rows * test.images.cols;
  const perLabel = new Map<number, number>();
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile) continue;
    const index = Number(/-test-(\d+)\.png$/.exec(entry.name)?.[1]);
    const label = sampleLabel(entry.name, dataset);
    assert.ok(label !== undefined && Number.isInteger(index), `unexpected file ${entry.name}`);
    assert.equal(entry.name, sampleName(dataset, label, index));
    assert.equal(
      test.labels[index],
      label,
      `${entry.name}: the test label is ${test.labels[index]}`,
    );
    const image = await decodeImage(await Deno.readFile(join(dir, entry.name)), entry.name);
    assert.deepEqual([image.width, image.height], [28, 28], entry.name);
    assert.deepEqual(
      image.data,
      test.images.pixels.slice(index * plane, (index + 1) * plane),
      `${entry.name} differs from test image ${index}`,
    );
    perLabel.set(label, (perLabel.get(label) ?? 0) + 1);
  }
  return perLabel;
}

Deno.test("samples: 20 MNIST PNGs equal to the test images they name; a rerun changes nothing", async () => {
  const out = await Deno.makeTempDir();
  try {
    const first = await runSamples(["--out", out]);
    assert.match(first.stdout, /20 written, 0 unchanged/);
    const perLabel = await checkAgainstTestSet(out, "mnist");
    assert.deepEqual([...perLabel.keys()].sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok([...perLabel.values()].every((n) => n === 2));
    // The first two 7s of the test set are images 0 and 17.
    assert.ok((await Deno.stat(join(out, "digit-7-test-0.png"))).isFile);
    assert.ok((await Deno.stat(join(out, "digit-7-test-17.png"))).isFile);

    const second = await runSamples(["--out", out]);
    assert.match(second.stdout, /0 written, 20 unchanged/);
    const third = await runSamples(["--out", out, "--per-class", "3"]);
    assert.match(third.stdout, /10 written, 20 unchanged/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

const hasFashion = (() => {
  try {
    return Deno.statSync(DEBIAN_FASHION_MNIST_DIR).isDirectory;
  } catch {
    return false;
  }
})();

Deno.test("samples: the committed data/samples/*.png are MNIST test images", async () => {
  const digits = await checkAgainstTestSet(join(ROOT, "data", "samples"), "mnist");
  assert.equal([...digits.values()].reduce((a, b) => a + b, 0), 20);
});

Deno.test({
  name: "samples: the committed data/samples/fashion/*.png are Fashion-MNIST test images",
  ignore: !hasFashion,
  fn: async () => {
    const dir = join(ROOT, "data", "samples", "fashion");
    const clothes = await checkAgainstTestSet(dir, "fashion-mnist");
    assert.equal([...clothes.values()].reduce((a, b) => a + b, 0), 20);
  },
});

Deno.test("samples: names carry class and index; labels are read back only for their dataset", () => {
  assert.equal(sampleName("mnist", 7, 0), "digit-7-test-0.png");
  assert.equal(sampleName("fashion-mnist", 0, 19), "t-shirt-top-0-test-19.png");
  assert.equal(sampleName("fashion-mnist", 9, 0), "ankle-boot-9-test-0.png");
  assert.equal(sampleLabel("data/samples/digit-7-test-0.png", "mnist"), 7);
  assert.equal(sampleLabel("ankle-boot-9-test-0.png", "fashion-mnist"), 9);
  assert.equal(sampleLabel("ankle-boot-9-test-0.png", "mnist"), undefined);
  assert.equal(sampleLabel("digit-7-test-0.png", "fashion-mnist"), undefined);
  assert.equal(sampleLabel("photo.png", "mnist"), undefined);
  assert.deepEqual(
    firstOfEachClass(Uint8Array.from([1, 0, 1, 1, 2, 0]), 3, 2),
    [[1, 5], [0, 2], [4]],
  );
});
