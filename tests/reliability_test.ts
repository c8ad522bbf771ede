/**
 * Reliability, round two, at the library level: gzip bombs inflate no further than the IDX header
 * allows, an IDX file's magic is checked before its size, checkpoint metadata is validated before
 * a model is built from it, key lists in errors are capped, CMYK JPEGs are refused by name, a
 * symlink loop is reported as one, the run-folder lock, and the wasm memory's limit message.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveDataset } from "../data/datasets.ts";
import { DataError } from "../data/errors.ts";
import { decodeImage } from "../data/image.ts";
import { IDX_IMAGES_MAGIC, parseIdx, readImages, readLabels } from "../data/idx.ts";
import { allocBytes } from "../autograd/kernels/wasm/memory.ts";
import { checkModelSpec, CheckpointError, loadModel } from "../nn/checkpoint.ts";
import { StateDictError } from "../nn/module.ts";
import { saveSafetensors, type StoredTensor } from "../nn/serialize.ts";
import { describeStateDictError } from "../cli/common.ts";
import { LOCK_FILE, RunFiles, RunFolderError } from "../cli/run_files.ts";
import { ROOT } from "./helpers/cli.ts";
import { withTempDir } from "./helpers/temp.ts";

/** An IDX header for `count` images of `rows`×`cols`. */
function imageHeader(count: number, rows = 28, cols = 28, magic = IDX_IMAGES_MAGIC): Uint8Array {
  const view = new DataView(new ArrayBuffer(16));
  view.setUint32(0, magic);
  view.setUint32(4, count);
  view.setUint32(8, rows);
  view.setUint32(12, cols);
  return new Uint8Array(view.buffer);
}

/** Gzips `header` followed by `zeros` zero bytes, streaming (the output is ~1/1000 of the input). */
async function gzipBomb(header: Uint8Array, zeros: number): Promise<Uint8Array> {
  const cs = new CompressionStream("gzip");
  const writer = cs.writable.getWriter();
  const chunks: Uint8Array[] = [];
  const reading = (async () => {
    for await (const c of cs.readable) chunks.push(c);
  })();
  await writer.write(header as Uint8Array<ArrayBuffer>);
  const block = new Uint8Array(1 << 20);
  for (let left = zeros; left > 0; left -= block.length) {
    await writer.write(left >= block.length ? block : block.subarray(0, left));
  }
  await writer.close();
  await reading;
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

Deno.test("gzip bomb: inflation stops at the size the IDX header declares; peak memory stays small", async () => {
  await withTempDir(async (dir) => {
    // 10 images declared (7,856 bytes), 768 MiB of zeros behind them: about 0.8 MB of gzip.
    const path = join(dir, "train-images-idx3-ubyte.gz");
    await Deno.writeFile(path, await gzipBomb(imageHeader(10), 768 << 20));
    const script = join(dir, "read.ts");
    await Deno.writeTextFile(
      script,
      `import { readImages } from ${JSON.stringify(join(ROOT, "data/idx.ts"))};\n` +
        `let message = "";\n` +
        `try { await readImages(${JSON.stringify(path)}); } catch (e) { message = String(e); }\n` +
        `let hwm; try { hwm = /VmHWM:\\s+(\\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1]; } catch { hwm = undefined; }\n` +
        `console.log(JSON.stringify({ message, peakMiB: Number(hwm ?? 0) / 1024 }));\n`,
    );
    const start = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = (performance.now() - start) / 1000;
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const { message, peakMiB } = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.match(message, /too long: expected 7856 bytes/);
    assert.match(message, /decompression stopped/);
    if (Deno.build.os === "linux") {
      assert.ok(peakMiB < 300, `peak resident memory ${peakMiB.toFixed(0)} MiB for a 768 MiB bomb`);
    }
    assert.ok(seconds < 20, `took ${seconds.toFixed(1)} s`);
  });
});

Deno.test("gzip: a valid gzipped IDX file still reads whole, through the stream from disk", async () => {
  await withTempDir(async (dir) => {
    const raw = new Uint8Array(16 + 3 * 784);
    raw.set(imageHeader(3));
    for (let i = 16; i < raw.length; i++) raw[i] = i % 251;
    const gz = await gzipBomb(raw, 0);
    const path = join(dir, "x.gz");
    await Deno.writeFile(path, gz);
    const images = await readImages(path);
    assert.equal(images.count, 3);
    assert.deepEqual(images.pixels, raw.subarray(16));
    const parsed = await parseIdx(gz, "mem");
    assert.deepEqual(parsed.dims, [3, 28, 28]);
  });
});

Deno.test("IDX: magic 0x0804 for an image file is a wrong magic, not a size problem", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "train-images-idx3-ubyte");
    const bytes = new Uint8Array(16 + 4 + 784 * 2);
    bytes.set(imageHeader(2, 28, 28, 0x0804));
    await Deno.writeFile(path, bytes);
    await assert.rejects(readImages(path), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.match(
        e.message,
        /wrong magic for an image file: expected 0x00000803 .* got 0x00000804/,
      );
      assert.doesNotMatch(e.message, /too long/);
      return true;
    });
    // The same bytes gzipped, and a labels file with an image magic.
    await Deno.writeFile(path + ".gz", await gzipBomb(bytes, 0));
    await assert.rejects(readImages(path + ".gz"), /wrong magic for an image file/);
    await assert.rejects(readLabels(path + ".gz"), /wrong magic for a label file/);
  });
});

Deno.test("datasets: a symlink loop is reported as a loop, not as missing files", async () => {
  await withTempDir(async (dir) => {
    Deno.symlinkSync(
      join(dir, "train-images-idx3-ubyte"),
      join(dir, "train-images-idx3-ubyte"),
    );
    await assert.rejects(
      resolveDataset("mnist", { dataDir: dir, builtin: false, download: false }),
      /train-images-idx3-ubyte: symbolic link loop/,
    );
  });
});

function mlpTensors(h1: number, h2: number): Record<string, StoredTensor> {
  const t = (shape: number[]) => ({
    shape,
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
  });
  return {
    "fc1.weight": t([h1, 784]),
    "fc1.bias": t([h1]),
    "fc2.weight": t([h2, h1]),
    "fc2.bias": t([h2]),
    "fc3.weight": t([10, h2]),
    "fc3.bias": t([10]),
  };
}

Deno.test("checkpoint metadata: options naming a huge model are refused before it is built", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "bomb.safetensors");
    await saveSafetensors(path, mlpTensors(8, 8), {
      format: "pt",
      model: "mlp",
      model_options: JSON.stringify({ hidden: [40000, 40000] }),
    });
    const start = performance.now();
    await assert.rejects(loadModel(path), (e: unknown) => {
      assert.ok(e instanceof StateDictError, String(e));
      assert.match(e.message, /Shape mismatch for "fc1\.weight": the module has \[40000, 784\]/);
      return true;
    });
    assert.ok(performance.now() - start < 2000, "refused without building 6.4 GB of weights");
  });
});

Deno.test("checkpoint metadata: options of the wrong type or range are refused by name", async () => {
  await withTempDir(async (dir) => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ leakyRelu: "x" }, /"leakyRelu" must be a finite number, got "x"/],
      [{ hidden: [512] }, /"hidden" must be a list of two widths/],
      [{ hidden: [0, 10] }, /"hidden" must be an integer in 1\.\.1048576/],
      [{ numClasses: 2.5 }, /"numClasses" must be an integer/],
      [{ rng: {} }, /has no option "rng"/],
      [{ seed: 1e300 }, /"seed" must be a safe integer/],
    ];
    for (const [options, pattern] of cases) {
      const path = join(dir, "bad.safetensors");
      await saveSafetensors(path, mlpTensors(512, 1024), {
        model: "mlp",
        model_options: JSON.stringify(options),
      });
      await assert.rejects(loadModel(path), (e: unknown) => {
        assert.ok(e instanceof CheckpointError, `${JSON.stringify(options)}: ${e}`);
        assert.match(e.message, pattern);
        return true;
      });
    }
    assert.throws(
      () => checkModelSpec("x", { name: "alexnet", options: { dropout: 1.5 } }, {}),
      /"dropout" must be a number in \[0, 1\)/,
    );
  });
});

Deno.test("state dict errors: a million stray keys give a capped list with the count", () => {
  const unexpected = Array.from({ length: 1_000_000 }, (_, i) => `t${i}`);
  const error = new StateDictError("MLP", ["fc1.weight"], unexpected, []);
  const text = describeStateDictError(error);
  assert.ok(text.length < 2000, `${text.length} characters`);
  assert.match(text, /Unexpected key\(s\): "t0", .* and 999980 more \(1000000 in all\)/);
  assert.match(text, /Missing key\(s\): "fc1\.weight"$/m);
});

/** A baseline JPEG header whose frame declares `components` colour components. */
function jpegWithComponents(components: number): Uint8Array {
  const sof = [0xff, 0xc0, 0, 8 + 3 * components, 8, 0, 8, 0, 8, components];
  for (let i = 0; i < components; i++) sof.push(i + 1, 0x11, 0);
  return new Uint8Array([0xff, 0xd8, ...sof, 0xff, 0xd9]);
}

Deno.test("images: a CMYK JPEG is refused as such instead of decoding to black", async () => {
  await assert.rejects(decodeImage(jpegWithComponents(4), "photo.jpg"), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /photo\.jpg: CMYK JPEG is not supported/);
    return true;
  });
  // A greyscale JPEG from the fixtures still decodes.
  const seven = await Deno.readFile(join(ROOT, "tests/fixtures/data/seven.jpg"));
  const decoded = await decodeImage(seven, "seven.jpg");
  assert.equal(decoded.format, "jpeg");
});

Deno.test("run folder lock: a live holder is refused by name; a killed holder's lock is taken over", async () => {
  await withTempDir(async (dir) => {
    const run = join(dir, "run");
    const first = new RunFiles(run);
    try {
      assert.throws(() => new RunFiles(run), RunFolderError, "held by this process");
      assert.equal(JSON.parse(Deno.readTextFileSync(join(run, LOCK_FILE))).pid, Deno.pid);
    } finally {
      first.close();
    }
    assert.ok(!existsSync(join(run, LOCK_FILE)), "close() removes the lock");

    // Another process holds it.
    const script = join(dir, "hold.ts");
    await Deno.writeTextFile(
      script,
      `import { RunFiles } from ${JSON.stringify(join(ROOT, "cli/run_files.ts"))};\n` +
        `new RunFiles(${JSON.stringify(run)});\nconsole.log("locked");\n` +
        `setTimeout(() => {}, 60_000);\n`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", script],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /locked/);
    const tmp = join(run, `metrics.jsonl.${child.pid}.1.tmp`);
    Deno.writeTextFileSync(tmp, "being written");
    try {
      assert.throws(
        () => new RunFiles(run),
        new RegExp(`in use by another run \\(process ${child.pid}, lock file`),
      );
      assert.ok(existsSync(tmp), "a refused newcomer deletes nothing");
    } finally {
      child.kill("SIGKILL");
      await child.status;
      await reader.cancel();
    }
    // Killed: its lock file is still there, but the system released the lock.
    assert.ok(existsSync(join(run, LOCK_FILE)));
    const taken = new RunFiles(run);
    try {
      assert.equal(JSON.parse(Deno.readTextFileSync(join(run, LOCK_FILE))).pid, Deno.pid);
      assert.ok(!existsSync(tmp), "the dead run's temporary file is removed");
    } finally {
      taken.close();
    }
  });
});

Deno.test("wasm memory: an array past the 2 GiB cap fails naming its size and the limit", () => {
  assert.throws(() => allocBytes(3 * 2 ** 30), (e: unknown) => {
    assert.ok(e instanceof RangeError);
    assert.match(e.message, /array of 3221225472 bytes \(805306368 floats, 3072 MiB\)/);
    assert.match(e.message, /cap of 2147483648 bytes \(2048 MiB/);
    assert.match(e.message, /useKernels\(referenceKernels\)/);
    return true;
  });
});

Deno.test("backward on a leaf of 2^28 elements (1 GiB) works: elementwise passes that large skip the wasm scratch", async () => {
  // In a child process, so the test runner does not keep gigabytes of arrays alive.
  const script = `import { zeros } from ${JSON.stringify(join(ROOT, "mod.ts"))};
    const x = zeros([2 ** 28], { requiresGrad: true });
    x.mul(2).sum().backward();
    console.log(x.grad.data[12345], x.grad.size);`;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  assert.equal(code, 0, text.decode(stderr));
  assert.equal(text.decode(stdout).trim(), `2 ${2 ** 28}`);
});

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
