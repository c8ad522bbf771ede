/**
 * Reliability, round two, through the tasks as a user runs them (child processes): a busy run
 * folder is refused, SIGTERM saves like Ctrl-C, the environment's and the input's faults exit 1
 * (flags 2) with a message naming the file or flag, never 70, bad input that used to train is
 * refused, a disk that fills up leaves the previous checkpoint whole, model files are reproducible
 * bit for bit, and demo follows symlinks and survives an empty folder.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { loadCheckpoint } from "../nn/checkpoint.ts";
import { loadSafetensors, saveSafetensors, type StoredTensor } from "../nn/serialize.ts";
import { hasStackTrace, ROOT, runTask, startTask, type TaskRun } from "./helpers/cli.ts";
import { withTempDir } from "./helpers/temp.ts";

function assertUserError(run: TaskRun, code: number, pattern: RegExp, what = ""): void {
  assert.equal(run.code, code, `${what}\n${run.stdout}${run.stderr}`);
  assert.match(run.stderr, pattern, what);
  assert.ok(!hasStackTrace(run), `a stack trace for a user mistake (${what}):\n${run.stderr}`);
}

/** The arguments of a short MLP run on the first images of the built-in MNIST. */
const QUICK = ["--limit-train", "64", "--limit-test", "32", "--batch-size", "32", "--epochs", "1"];

/** Writes a dataset folder of `train` and `test` random images of `size`×`size`. */
function writeDataset(dir: string, train: number, test: number, size = 28): string {
  Deno.mkdirSync(dir, { recursive: true });
  const write = (name: string, dims: number[]) => {
    const header = new DataView(new ArrayBuffer(4 + 4 * dims.length));
    header.setUint32(0, dims.length === 1 ? 2049 : 2051);
    dims.forEach((d, i) => header.setUint32(4 + 4 * i, d));
    const count = dims.reduce((a, b) => a * b, 1);
    const bytes = new Uint8Array(header.byteLength + count);
    bytes.set(new Uint8Array(header.buffer));
    for (let i = 0; i < count; i++) {
      bytes[header.byteLength + i] = (i * 37) % (dims.length === 1 ? 10 : 256);
    }
    Deno.writeFileSync(join(dir, name), bytes);
  };
  write("train-images-idx3-ubyte", [train, size, size]);
  write("train-labels-idx1-ubyte", [train]);
  write("t10k-images-idx3-ubyte", [test, size, size]);
  write("t10k-labels-idx1-ubyte", [test]);
  return dir;
}

Deno.test("train: a second run on a busy --out is refused; SIGTERM then saves and exits 143 with the resume command", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "run");
    const first = startTask("train", [
      "--limit-train",
      "60000",
      "--limit-test",
      "100",
      "--batch-size",
      "50",
      "--epochs",
      "1",
      "--seed",
      "3",
      "--out",
      out,
    ]);
    await first.waitFor(/^run /m);
    const second = await runTask("train", [...QUICK, "--seed", "4", "--out", out]);
    assertUserError(second, 1, /is in use by another run \(process \d+, lock file .*\.lock\)/);
    assert.match(second.stderr, /choose another --out/);

    first.child.kill("SIGTERM");
    const stopped = await first.finished();
    assert.equal(stopped.code, 143, stopped.stdout + stopped.stderr);
    assert.match(stopped.stdout, /interrupted: finishing the current step .*SIGTERM/);
    const checkpoint = join(out, "last.safetensors");
    assert.ok(stopped.stdout.includes(`resume   deno task train --resume ${checkpoint}`));
    const saved = await loadCheckpoint(checkpoint);
    const run = JSON.parse(saved.metadata.run);
    assert.equal(JSON.parse(saved.metadata.config).seed, 3, "the second run wrote nothing");
    assert.ok(run.position.batch > 0 && run.position.batch < 1200, `batch ${run.position.batch}`);
    assert.ok(!Deno.readTextFileSync(join(out, "train.log")).includes("seed 4"));
    // The lock went with the process: the folder can be resumed at once.
    const entries = [...Deno.readDirSync(out)].map((e) => e.name);
    assert.ok(!entries.includes(".lock"), entries.join(", "));
    assert.ok(!entries.some((e) => e.endsWith(".tmp")), entries.join(", "));
  });
});

Deno.test("train and samples: the environment's and the input's faults exit 1 (flags 2), never 70", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "a-file");
    Deno.writeTextFileSync(file, "not a folder");
    const runs = await Promise.all([
      runTask("train", [...QUICK, "--out", file]),
      runTask("train", [...QUICK, "--out", "/dev/null"]),
      runTask("samples", ["--out", "/dev/null"]),
      runTask("train", [...QUICK, "--seed", "1e300", "--out", join(dir, "x")]),
      runTask("train", [
        ...QUICK,
        "--data-dir",
        writeDataset(join(dir, "small"), 8, 4, 10),
        "--out",
        join(dir, "r1"),
      ]),
      runTask("train", [
        ...QUICK,
        "--data-dir",
        writeDataset(join(dir, "notest"), 8, 0),
        "--out",
        join(dir, "r2"),
      ]),
      runTask("train", [
        ...QUICK,
        "--data-dir",
        writeDataset(join(dir, "notrain"), 0, 4),
        "--out",
        join(dir, "r3"),
      ]),
    ]);
    assertUserError(runs[0], 1, /--out .*a-file: not a folder/, "--out a regular file");
    assertUserError(runs[1], 1, /--out \/dev\/null: not a folder/, "--out /dev/null");
    assertUserError(runs[2], 1, /\/dev\/null is a file, not a folder/, "samples --out /dev/null");
    assertUserError(runs[3], 2, /--seed must be an integer/, "--seed 1e300");
    assertUserError(runs[4], 1, /small .*images are 10×10; the mlp model needs 28×28/, "10×10");
    assertUserError(runs[5], 1, /notest \(test split\): holds no images/, "empty test set");
    assertUserError(runs[6], 1, /notrain \(train split\): holds no images/, "empty train set");
    assert.equal(Deno.readTextFileSync(file), "not a folder");
  });
});

Deno.test("train --resume: malformed config or run metadata is refused naming the file and the field", async () => {
  await withTempDir(async (dir) => {
    const good = await runTask("train", [...QUICK, "--out", join(dir, "good")]);
    assert.equal(good.code, 0, good.stderr);
    const { tensors, metadata } = await loadSafetensors(join(dir, "good", "last.safetensors"));
    const config = JSON.parse(metadata.config);
    const run = JSON.parse(metadata.run);
    const variants: [string, Record<string, string>, RegExp][] = [
      ["bad-json", { config: "{not json" }, /"config": not valid JSON/],
      ["array", { config: "[1, 2]" }, /"config": expected a JSON object/],
      [
        "batch0",
        { config: JSON.stringify({ ...config, batchSize: 0 }) },
        /field "batchSize" must be an integer in 1\.\.1048576, got 0/,
      ],
      [
        "optimizer",
        { config: JSON.stringify({ ...config, optimizer: "rmsprop" }) },
        /field "optimizer" must be one of sgd, adam, adamw, got "rmsprop"/,
      ],
      [
        "no-epochs",
        { config: JSON.stringify({ ...config, epochs: undefined }) },
        /field "epochs" is missing/,
      ],
      ["empty", { config: "{}" }, /field "name" is missing/],
      [
        "rng",
        { run: JSON.stringify({ ...run, rng: { s: [0, 0, 0, 0], spareNormal: null } }) },
        /"run": rng must be a generator state/,
      ],
      [
        "past-end",
        { run: JSON.stringify({ ...run, position: { ...run.position, batch: 99 } }) },
        /position batch 99 is past the end of the epoch \(2 batches\)/,
      ],
    ];
    const paths = await Promise.all(variants.map(async ([name, changes]) => {
      const path = join(dir, `${name}.safetensors`);
      await saveSafetensors(path, tensors as Record<string, StoredTensor>, {
        ...metadata,
        ...changes,
      });
      return path;
    }));
    const runs = await Promise.all(
      paths.map((path, i) =>
        runTask("train", ["--resume", path, "--out", join(dir, `out-${variants[i][0]}`)])
      ),
    );
    runs.forEach((r, i) => {
      assertUserError(r, 1, variants[i][2], variants[i][0]);
      assert.ok(r.stderr.includes(paths[i]), `${variants[i][0]} names the file: ${r.stderr}`);
    });
  });
});

Deno.test("eval and demo: model options of the wrong type or naming a huge model are refused at once", async () => {
  await withTempDir(async (dir) => {
    const { tensors, metadata } = await loadSafetensors(join(ROOT, "models/mnist-mlp.safetensors"));
    const wrongType = join(dir, "leaky.safetensors");
    await saveSafetensors(wrongType, tensors, {
      ...metadata,
      model_options: JSON.stringify({ leakyRelu: "x" }),
    });
    const small: Record<string, StoredTensor> = {};
    for (const [name, t] of Object.entries(tensors)) {
      small[name] = { shape: t.shape.map((d) => Math.min(d, 4)), data: t.data.subarray(0, 0) };
      small[name].data = new Float32Array(small[name].shape.reduce((a, b) => a * b, 1));
    }
    const huge = join(dir, "huge.safetensors");
    await saveSafetensors(huge, small, {
      ...metadata,
      model_options: JSON.stringify({ hidden: [40000, 40000] }),
    });
    // A million stray tensors (here 100,000): the key list in the error is capped.
    const stray: Record<string, StoredTensor> = { ...tensors };
    for (let i = 0; i < 100_000; i++) {
      stray[`extra.${i}`] = { shape: [1], data: new Float32Array(1) };
    }
    const many = join(dir, "many.safetensors");
    await saveSafetensors(many, stray, metadata);

    const start = performance.now();
    const [evalRun, demoRun, manyRun] = await Promise.all([
      runTask("eval", ["--ckpt", wrongType, "--limit", "10"]),
      runTask("demo", ["--model", huge]),
      runTask("eval", ["--ckpt", many, "--limit", "10"]),
    ]);
    const seconds = (performance.now() - start) / 1000;
    assertUserError(
      evalRun,
      1,
      /leaky\.safetensors: metadata "model_options": "leakyRelu" must be a finite number, got "x"/,
    );
    assertUserError(demoRun, 1, /huge\.safetensors: the weights do not fit/);
    assert.match(demoRun.stderr, /the module has \[40000, 784\], the state dict has \[4, 4\]/);
    assertUserError(
      manyRun,
      1,
      /Unexpected key\(s\): "extra\.0", .* and 99980 more \(100000 in all\)/,
    );
    assert.ok(manyRun.stderr.length < 5000, `${manyRun.stderr.length} characters of error`);
    assert.ok(seconds < 30, `took ${seconds.toFixed(1)} s (a 6.4 GB model would take longer)`);
  });
});

Deno.test("train: model.safetensors of two identical runs are identical bytes; --threads beyond the cores warns", async () => {
  await withTempDir(async (dir) => {
    const cores = navigator.hardwareConcurrency;
    const threads = cores < 64 ? ["--threads", "64"] : [];
    const [a, b] = await Promise.all([
      runTask("train", [...QUICK, "--seed", "5", ...threads, "--out", join(dir, "a")]),
      runTask("train", [...QUICK, "--seed", "5", "--out", join(dir, "b")]),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const bytesA = Deno.readFileSync(join(dir, "a", "model.safetensors"));
    const bytesB = Deno.readFileSync(join(dir, "b", "model.safetensors"));
    assert.ok(
      bytesA.length === bytesB.length && bytesA.every((v, i) => v === bytesB[i]),
      "model.safetensors differ",
    );
    const { metadata } = await loadSafetensors(join(dir, "a", "model.safetensors"));
    assert.equal(metadata.command, undefined);
    assert.equal(JSON.parse(metadata.metrics).seconds, undefined);
    if (threads.length > 0) {
      assert.match(a.stderr, new RegExp(`warning: --threads 64 exceeds the ${cores} cores`));
    }
    assert.doesNotMatch(b.stderr, /warning/);
  });
});

Deno.test("demo: symlinked images in a folder are followed; an empty folder is one error line and the rest go on", async () => {
  await withTempDir(async (dir) => {
    const linked = join(dir, "linked");
    const empty = join(dir, "empty");
    Deno.mkdirSync(linked);
    Deno.mkdirSync(empty);
    Deno.symlinkSync(join(ROOT, "data/samples/digit-7-test-0.png"), join(linked, "seven.png"));
    Deno.symlinkSync(join(linked, "loop.png"), join(linked, "loop.png"));
    const after = join(ROOT, "data/samples/digit-2-test-1.png");
    const run = await runTask("demo", ["--model", "mlp", "--warmup", "0", linked, empty, after]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /seven\.png\s+→ 7/);
    assert.match(run.stdout, /digit-2-test-1\.png\s+→ 2/);
    assert.match(run.stderr, /empty: no images found/);
    assert.match(run.stderr, /loop\.png\s+error: .*(symbolic links|loop)/i);
    assert.ok(!hasStackTrace(run), run.stderr);
  });
});

Deno.test({
  name:
    "train: a disk that fills up, then a read-only folder, exit 1 naming the file; the last checkpoint stays whole",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    if (Deno.uid?.() !== 0) {
      console.log("skipped: mounting a tmpfs needs root");
      return;
    }
    await withTempDir(async (dir) => {
      const mount = join(dir, "small");
      Deno.mkdirSync(mount);
      const sh = (args: string[]) => new Deno.Command(args[0], { args: args.slice(1) }).output();
      // The MLP's first checkpoint (weights only, 3.75 MB) fits; the one after epoch 1 (with
      // momentum buffers, 7.5 MB more while the first is kept) does not.
      const mounted = await sh(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mount]);
      if (!mounted.success) {
        console.log(`skipped: mount failed (${new TextDecoder().decode(mounted.stderr).trim()})`);
        return;
      }
      try {
        const out = join(mount, "run");
        const full = await runTask("train", [...QUICK, "--out", out]);
        assertUserError(full, 1, /cannot write .*last\.safetensors: No space left on device/);
        const saved = await loadCheckpoint(join(out, "last.safetensors"));
        assert.equal(JSON.parse(saved.metadata.run).position.epoch, 0, "the initial checkpoint");
        assert.ok(![...Deno.readDirSync(out)].some((e) => e.name.endsWith(".tmp")));

        const remount = await sh(["mount", "-o", "remount,ro", mount]);
        assert.ok(remount.success, new TextDecoder().decode(remount.stderr));
        const readOnly = await runTask("train", [...QUICK, "--out", join(mount, "other")]);
        assertUserError(readOnly, 1, /cannot write .*other.*Read-only file system/);
      } finally {
        await sh(["umount", mount]);
      }
    });
  },
});
