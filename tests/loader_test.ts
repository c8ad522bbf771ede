/** The data loader: normalisation, batching, per-seed determinism, epochs, augmentation, resume. */

import assert from "node:assert/strict";
import { DataLoader, MNIST_NORMALIZATION } from "../data/loader.ts";
import type { IdxImages } from "../data/idx.ts";

/** n 4×4 images whose pixels encode the image index, labels = index mod 10. */
function tinySet(n: number): { images: IdxImages; labels: Uint8Array } {
  const pixels = new Uint8Array(n * 16);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < 16; p++) pixels[i * 16 + p] = (i * 7 + p * 13) % 256;
  }
  return {
    images: { count: n, rows: 4, cols: 4, pixels },
    labels: Uint8Array.from({ length: n }, (_, i) => i % 10),
  };
}

const norm = (v: number) =>
  Math.fround((v / 255 - MNIST_NORMALIZATION.mean) / MNIST_NORMALIZATION.std);

Deno.test("batches are [N, 1, rows, cols], normalised on the fly, with matching labels", () => {
  const { images, labels } = tinySet(10);
  const loader = new DataLoader(images, labels, { batchSize: 4, shuffle: false });
  const batches = [...loader.epoch(0)];
  assert.deepEqual(batches.map((b) => b.x.shape), [[4, 1, 4, 4], [4, 1, 4, 4], [2, 1, 4, 4]]);
  const b = batches[1];
  assert.deepEqual(Array.from(b.indices), [4, 5, 6, 7]);
  assert.deepEqual(Array.from(b.y), [4, 5, 6, 7]);
  const x = b.x.toFloat32Array();
  for (let p = 0; p < 16; p++) assert.ok(Math.abs(x[p] - norm((4 * 7 + p * 13) % 256)) < 1e-6);
});

Deno.test("dropLast drops the short batch; limit uses a prefix", () => {
  const { images, labels } = tinySet(10);
  assert.equal(new DataLoader(images, labels, { batchSize: 4, dropLast: true }).batchesPerEpoch, 2);
  assert.equal(
    [...new DataLoader(images, labels, { batchSize: 4, dropLast: true }).epoch(0)].length,
    2,
  );
  const limited = new DataLoader(images, labels, { batchSize: 3, limit: 5 });
  const seen = [...limited.epoch(0)].flatMap((b) => Array.from(b.indices)).sort((a, b) => a - b);
  assert.deepEqual(seen, [0, 1, 2, 3, 4]);
});

Deno.test("shuffling: every example once per epoch, a new order each epoch, the same for the same seed", () => {
  const { images, labels } = tinySet(50);
  const a = new DataLoader(images, labels, { batchSize: 8, seed: 1 });
  const b = new DataLoader(images, labels, { batchSize: 8, seed: 1 });
  const c = new DataLoader(images, labels, { batchSize: 8, seed: 2 });
  const order = (l: DataLoader, e: number) => [...l.epoch(e)].flatMap((x) => Array.from(x.indices));
  assert.deepEqual([...order(a, 0)].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(order(a, 0), order(b, 0));
  assert.notDeepEqual(order(a, 0), order(a, 1));
  assert.notDeepEqual(order(a, 0), order(c, 0));
  assert.notDeepEqual(order(a, 0), Array.from({ length: 50 }, (_, i) => i));
});

Deno.test("resuming mid-epoch yields exactly the remaining batches, augmentation included", () => {
  const { images, labels } = tinySet(30);
  const loader = new DataLoader(images, labels, { batchSize: 7, seed: 5, maxShift: 2 });
  const full = [...loader.epoch(3)];
  const resumed = [...loader.epoch(3, 2)];
  assert.equal(resumed.length, full.length - 2);
  resumed.forEach((b, i) => {
    assert.deepEqual(b.indices, full[i + 2].indices);
    assert.deepEqual(b.x.toFloat32Array(), full[i + 2].x.toFloat32Array());
  });
});

Deno.test("augmentation shifts each image by at most maxShift pixels, filling with background", () => {
  const { images, labels } = tinySet(40);
  const plain = new DataLoader(images, labels, { batchSize: 40, shuffle: false });
  const shifted = new DataLoader(images, labels, {
    batchSize: 40,
    shuffle: false,
    maxShift: 1,
    seed: 3,
  });
  const x0 = [...plain.epoch(0)][0].x.toFloat32Array();
  const x1 = [...shifted.epoch(0)][0].x.toFloat32Array();
  let moved = 0;
  for (let n = 0; n < 40; n++) {
    const img = (
      data: Float32Array,
      r: number,
      c: number,
    ) => (r < 0 || r > 3 || c < 0 || c > 3 ? norm(0) : data[n * 16 + r * 4 + c]);
    const matches = [-1, 0, 1].flatMap((dy) => [-1, 0, 1].map((dx) => ({ dy, dx }))).filter(
      ({ dy, dx }) => {
        for (let r = 0; r < 4; r++) {
          for (let c = 0; c < 4; c++) if (img(x1, r, c) !== img(x0, r - dy, c - dx)) return false;
        }
        return true;
      },
    );
    assert.ok(matches.length > 0, `image ${n} is not a shift of the original by at most 1 px`);
    if (!matches.some(({ dy, dx }) => dy === 0 && dx === 0)) moved++;
  }
  assert.ok(moved > 20, `only ${moved} of 40 images moved`);
});

Deno.test("loader errors name the problem", () => {
  const { images } = tinySet(3);
  assert.throws(() => new DataLoader(images, new Uint8Array(2)), /3 images but 2 labels/);
  assert.throws(
    () => new DataLoader(images, new Uint8Array(3), { batchSize: 0 }),
    /batchSize must be a positive integer/,
  );
});
