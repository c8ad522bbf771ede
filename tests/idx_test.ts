import assert from "node:assert/strict";
import { DataError } from "../data/errors.ts";
import {
  checkSplit,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  idxToImages,
  idxToLabels,
  isGzip,
  parseIdx,
  parseRawIdx,
  readImages,
  readLabels,
} from "../data/idx.ts";

/** An IDX file with the given magic and dims; data bytes are `i % 251`. */
function idx(magic: number, dims: number[]): Uint8Array {
  const header = 4 + 4 * dims.length;
  const n = dims.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(header + n);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < n; i++) bytes[header + i] = i % 251;
  return bytes;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("parseRawIdx reads images: big-endian dims, data as a view", () => {
  const bytes = idx(IDX_IMAGES_MAGIC, [3, 2, 5]);
  const parsed = parseRawIdx(bytes, "x");
  assert.equal(parsed.magic, 2051);
  assert.deepEqual(parsed.dims, [3, 2, 5]);
  assert.equal(parsed.data.length, 30);
  assert.equal(parsed.data.buffer, bytes.buffer, "no copy of the data");
  const images = idxToImages(parsed);
  assert.deepEqual([images.count, images.rows, images.cols], [3, 2, 5]);
  assert.equal(images.pixels[29], 29);
});

Deno.test("parseRawIdx reads labels", () => {
  const labels = idxToLabels(parseRawIdx(idx(IDX_LABELS_MAGIC, [7]), "y"));
  assert.deepEqual([...labels], [0, 1, 2, 3, 4, 5, 6]);
});

Deno.test("parseIdx decompresses gzip detected from the content", async () => {
  const raw = idx(IDX_IMAGES_MAGIC, [4, 28, 28]);
  const gz = await gzip(raw);
  assert.ok(isGzip(gz));
  assert.ok(!isGzip(raw));
  const parsed = await parseIdx(gz, "x.gz");
  assert.deepEqual(parsed.dims, [4, 28, 28]);
  assert.deepEqual(parsed.data, raw.subarray(16));
});

Deno.test("readImages/readLabels read raw and gzipped files from disk", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/imgs`, await gzip(idx(IDX_IMAGES_MAGIC, [2, 3, 3])));
    await Deno.writeFile(`${dir}/labels`, idx(IDX_LABELS_MAGIC, [2]));
    const images = await readImages(`${dir}/imgs`);
    const labels = await readLabels(`${dir}/labels`);
    assert.equal(images.count, 2);
    assert.deepEqual([...labels], [0, 1]);
    checkSplit(images, labels, 10, "split");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("truncated file: error names the file, the expected and the actual size", () => {
  const bytes = idx(IDX_IMAGES_MAGIC, [3, 2, 5]).subarray(0, 40);
  assert.throws(() => parseRawIdx(bytes, "train-images-idx3-ubyte"), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /train-images-idx3-ubyte/);
    assert.match(e.message, /truncated/);
    assert.match(e.message, /expected 46 bytes/);
    assert.match(e.message, /got 40/);
    return true;
  });
});

Deno.test("extra trailing bytes are an error too", () => {
  const bytes = new Uint8Array(13);
  bytes.set(idx(IDX_LABELS_MAGIC, [4]));
  assert.throws(() => parseRawIdx(bytes, "l"), /too long: expected 12 bytes .* got 13/);
});

Deno.test("truncated gzip is a DataError naming the file", async () => {
  const gz = await gzip(idx(IDX_IMAGES_MAGIC, [10, 28, 28]));
  await assert.rejects(parseIdx(gz.subarray(0, gz.length - 20), "cut.gz"), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /cut\.gz: not valid gzip data/);
    return true;
  });
});

Deno.test("wrong magic: error shows the expected and actual magic", () => {
  const bytes = idx(IDX_IMAGES_MAGIC, [2, 2, 2]);
  bytes[2] = 0x0d; // float32 type code: not an unsigned-byte file
  assert.throws(() => parseRawIdx(bytes, "f"), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /f: not an unsigned-byte IDX file: magic 0x00000d03/);
    assert.match(e.message, /0x00000803/);
    return true;
  });
  // A valid label file where images are expected.
  const labels = parseRawIdx(idx(IDX_LABELS_MAGIC, [3]), "labels-file");
  assert.throws(
    () => idxToImages(labels),
    /labels-file: wrong magic for an image file: expected 0x00000803 \(2051\), got 0x00000801 \(2049\)/,
  );
  const images = parseRawIdx(idx(IDX_IMAGES_MAGIC, [1, 1, 1]), "images-file");
  assert.throws(() => idxToLabels(images), /expected 0x00000801 \(2049\), got 0x00000803/);
  assert.throws(() => parseRawIdx(new Uint8Array(2), "tiny"), /tiny: 2 bytes is too short/);
});

Deno.test("checkSplit: mismatched counts and out-of-range labels", () => {
  const images = idxToImages(parseRawIdx(idx(IDX_IMAGES_MAGIC, [3, 2, 2]), "i"));
  const labels = idxToLabels(parseRawIdx(idx(IDX_LABELS_MAGIC, [4]), "l"));
  assert.throws(
    () => checkSplit(images, labels, 10, "i + l"),
    (e: unknown) => e instanceof DataError && /i \+ l: 3 images but 4 labels/.test(e.message),
  );
  const bad = new Uint8Array([1, 10, 2]);
  assert.throws(() => checkSplit(images, bad, 10, "s"), /label 10 at index 1 is out of range/);
  checkSplit(images, new Uint8Array([0, 9, 5]), 10, "s");
});

Deno.test("missing file is a DataError naming the path", async () => {
  await assert.rejects(readImages("/nonexistent/dir/x-idx3-ubyte"), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /\/nonexistent\/dir\/x-idx3-ubyte: cannot read/);
    return true;
  });
});
