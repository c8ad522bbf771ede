/**
 * Nothing lost: exact resume (after whole epochs and from the middle of one), Ctrl-C handling,
 * atomic checkpoints under SIGKILL, the divergence guard, and determinism across thread counts.
 * Every run is a real child process of `deno task train` on a small subset of MNIST.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { loadCheckpoint } from "../nn/checkpoint.ts";
import { loadSafetensors } from "../nn/serialize.ts";
import { runTask, startTask } from "./helpers/cli.ts";
import { withTempDir } from "./helpers/temp.ts";

const SMALL = ["--limit-train", "600", "--limit-test", "200", "--batch-size", "50"];

/** Asserts two checkpoint files hold bitwise-identical tensors (weights and optimizer buffers). */
async function assertSameTensors(a: string, b: string): Promise<void> {
  const [x, y] = [await loadSafetensors(a), await loadSafetensors(b)];
  assert.deepEqual(Object.keys(x.tensors).sort(), Object.keys(y.tensors).sort());
  for (const key of Object.keys(x.tensors)) {
    const [u, v] = [x.tensors[key].data, y.tensors[key].data];
    const differing = u.findIndex((value, i) => !Object.is(value, v[i]));
    assert.equal(
      differing,
      -1,
      `${key} differs at element ${differing}: ${u[differing]} vs ${v[differing]}`,
    );
  }
}

/** metrics.jsonl without the wall-clock fields. */
function metricsWithoutTimes(dir: string): unknown[] {
  return Deno.readTextFileSync(join(dir, "metrics.jsonl")).trim().split("\n").map((line) => {
    const { seconds: _s, imagesPerSecond: _r, peakRssMiB: _m, ...rest } = JSON.parse(line);
    return rest;
  });
}

Deno.test("resume: 3 epochs straight equal 2 epochs, stop, resume for 1 — bitwise", async () => {
  await withTempDir(async (dir) => {
    const args = [...SMALL, "--schedule", "multistep", "--milestones", "2", "--seed", "4"];
    const straight = await runTask("train", [...args, "--epochs", "3", "--out", join(dir, "a")]);
    assert.equal(straight.code, 0, straight.stderr);
    const first = await runTask("train", [...args, "--epochs", "2", "--out", join(dir, "b")]);
    assert.equal(first.code, 0, first.stderr);
    const resumed = await runTask("train", [
      "--resume",
      join(dir, "b", "last.safetensors"),
      "--epochs",
      "3",
    ]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /resuming at epoch 3, batch 1 of 12/);
    await assertSameTensors(join(dir, "a", "last.safetensors"), join(dir, "b", "last.safetensors"));
    assert.deepEqual(metricsWithoutTimes(join(dir, "b")), metricsWithoutTimes(join(dir, "a")));
  });
});

Deno.test("Ctrl-C mid-epoch saves, exits 130 with the resume command; the resumed run equals an uninterrupted one", async () => {
  await withTempDir(async (dir) => {
    // AlexNet with dropout: the checkpoint must also restore the generator behind the masks.
    const args = [
      "--config",
      "alexnet",
      "--limit-train",
      "1200",
      "--limit-test",
      "100",
      "--batch-size",
      "20",
      "--epochs",
      "1",
    ];
    const straight = await runTask("train", [...args, "--out", join(dir, "a")]);
    assert.equal(straight.code, 0, straight.stderr);

    const run = startTask("train", [...args, "--out", join(dir, "b")]);
    await run.waitFor(/^run /m);
    await new Promise((r) => setTimeout(r, 400));
    run.child.kill("SIGINT");
    const stopped = await run.finished();
    assert.equal(stopped.code, 130, stopped.stdout + stopped.stderr);
    assert.match(stopped.stdout, /interrupted: finishing the current step/);
    const checkpoint = join(dir, "b", "last.safetensors");
    assert.ok(
      stopped.stdout.includes(`resume   deno task train --resume ${checkpoint}`),
      stopped.stdout,
    );
    const saved = await loadCheckpoint(checkpoint);
    const position = JSON.parse(saved.metadata.run).position;
    assert.equal(position.epoch, 0);
    assert.ok(
      position.batch > 0 && position.batch < 60,
      `stopped mid-epoch (batch ${position.batch})`,
    );

    const resumed = await runTask("train", ["--resume", checkpoint]);
    assert.equal(resumed.code, 0, resumed.stderr);
    await assertSameTensors(join(dir, "a", "last.safetensors"), checkpoint);
    assert.deepEqual(metricsWithoutTimes(join(dir, "b")), metricsWithoutTimes(join(dir, "a")));
  });
});

Deno.test("a second Ctrl-C quits at once, without the graceful save, leaving the last checkpoint readable", async () => {
  await withTempDir(async (dir) => {
    // Big batches: each step takes long enough for the second signal to arrive during one.
    const args = [
      "--config",
      "alexnet",
      "--limit-train",
      "6000",
      "--limit-test",
      "100",
      "--batch-size",
      "500",
    ];
    const run = startTask("train", [...args, "--epochs", "1", "--out", dir]);
    await run.waitFor(/^run /m);
    await new Promise((r) => setTimeout(r, 1000)); // past the initial checkpoint, into the steps
    run.child.kill("SIGINT");
    await run.waitFor(/^interrupted: /m);
    run.child.kill("SIGINT");
    const result = await run.finished();
    assert.equal(result.code, 130);
    assert.doesNotMatch(
      result.stdout,
      /^stopped /m,
      "the second signal cut the graceful stop short",
    );
    await loadCheckpoint(join(dir, "last.safetensors"));
  });
});

/** Whether `path` is an existing file (a kill may land before a checkpoint is first written). */
function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("SIGKILL during checkpoint saves never leaves a truncated file under the final name", async () => {
  await withTempDir(async (dir) => {
    // One step per epoch, two checkpoint saves per epoch: most of the time is spent saving.
    const args = [
      "--limit-train",
      "64",
      "--limit-test",
      "64",
      "--batch-size",
      "64",
      "--epochs",
      "1000",
      "--out",
      dir,
    ];
    const delays = [350, 600, 850, 1100];
    let epochsSeen = 0;
    for (const [round, delay] of delays.entries()) {
      const last = join(dir, "last.safetensors");
      // On a slow machine a kill can land before the first save: then start afresh.
      const run = startTask("train", round > 0 && isFile(last) ? ["--resume", last] : args);
      await run.waitFor(/^run /m);
      await new Promise((r) => setTimeout(r, delay));
      run.child.kill("SIGKILL");
      await run.finished();
      if (!isFile(last)) {
        assert.equal(epochsSeen, 0, "last.safetensors vanished after an epoch had been saved");
        continue;
      }
      const checkpoint = await loadCheckpoint(last);
      const epoch = checkpoint.epoch ?? 0;
      assert.ok(epoch >= epochsSeen, `checkpoint went back from epoch ${epochsSeen} to ${epoch}`);
      epochsSeen = epoch;
      // metrics.jsonl is written after the epoch's checkpoints: a kill between the first epoch's
      // last.safetensors and its metrics leaves none yet; from the second epoch on there is one.
      const names = ["last.safetensors", "config.json", ...(epoch > 1 ? ["metrics.jsonl"] : [])];
      for (const name of names) {
        const stat = Deno.statSync(join(dir, name));
        assert.ok(stat.size > 0, `${name} is empty`);
      }
      if (isFile(join(dir, "best.safetensors"))) {
        await loadCheckpoint(join(dir, "best.safetensors"));
      }
    }
    assert.ok(epochsSeen > 0, "some epochs completed between the kills");
  });
});

Deno.test("divergence: --lr 100 stops with exit 3, naming the epoch, the step and the last good checkpoint", async () => {
  await withTempDir(async (dir) => {
    const run = await runTask("train", [
      ...SMALL,
      "--lr",
      "100",
      "--warmup-epochs",
      "0",
      "--epochs",
      "2",
      "--out",
      dir,
    ]);
    assert.equal(run.code, 3, run.stdout + run.stderr);
    assert.match(
      run.stdout,
      /diverged at epoch 1, step \d+: the loss is (NaN|Infinity|-Infinity)\. Stopped without saving this state\./,
    );
    assert.ok(
      run.stdout.includes(
        `last good checkpoint: ${join(dir, "last.safetensors")} (the initial weights)`,
      ),
      run.stdout,
    );
    const checkpoint = await loadCheckpoint(join(dir, "last.safetensors"));
    for (const [name, t] of Object.entries(checkpoint.modelState)) {
      assert.ok(t.data.every(Number.isFinite), `${name} of the kept checkpoint is finite`);
    }
  });
});

Deno.test("determinism: the same seed gives bitwise-identical checkpoints and metrics with 1 and 2 threads", async () => {
  await withTempDir(async (dir) => {
    for (const config of ["mlp", "alexnet"]) {
      const args = [
        "--config",
        config,
        "--limit-train",
        "400",
        "--limit-test",
        "100",
        "--batch-size",
        "40",
        "--epochs",
        "1",
        "--seed",
        "9",
      ];
      const one = await runTask("train", [
        ...args,
        "--threads",
        "1",
        "--out",
        join(dir, `${config}-1`),
      ]);
      const two = await runTask("train", [
        ...args,
        "--threads",
        "2",
        "--out",
        join(dir, `${config}-2`),
      ]);
      assert.equal(one.code, 0, one.stderr);
      assert.equal(two.code, 0, two.stderr);
      assert.match(two.stdout, /2 thread\(s\)/);
      await assertSameTensors(
        join(dir, `${config}-1`, "last.safetensors"),
        join(dir, `${config}-2`, "last.safetensors"),
      );
      assert.deepEqual(
        metricsWithoutTimes(join(dir, `${config}-1`)),
        metricsWithoutTimes(join(dir, `${config}-2`)),
      );
    }
  });
});
