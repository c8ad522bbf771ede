/**
 * Seeded fuzzing of the three parsers that read bytes from strangers: safetensors, IDX (raw and
 * gzipped) and images (PNG, JPEG, GIF, BMP). Valid files are mutated (bit flips, truncations,
 * length and size fields set to extremes, repeated chunks, inserted bytes); every mutant must give
 * a correct result or the parser's own error (`SafetensorsError`, `DataError`, which the tasks
 * print as exit 1) — never another exception (exit 70), a hang, or memory far beyond what the
 * file declares. The seed is fixed, so a failure names a case that reproduces.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Rng } from "../autograd/rng.ts";
import { DataError } from "../data/errors.ts";
import { decodeImage, encodePng } from "../data/image.ts";
import { parseIdx } from "../data/idx.ts";
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from "../nn/serialize.ts";
import { ROOT } from "./helpers/cli.ts";

/** Mutants per parser family. */
const CASES = 3000;
/** Resident memory the process may reach while fuzzing (the inputs are kilobytes). */
const MEMORY_CEILING = 1.5 * 2 ** 30;

/** One seeded mutation of `bytes`; `what` says which, for the failure message. */
function mutate(rng: Rng, bytes: Uint8Array): { bytes: Uint8Array; what: string } {
  const out = new Uint8Array(bytes);
  const at = (n = out.length) => rng.int(Math.max(n, 1));
  switch (rng.int(6)) {
    case 0: {
      const flips = 1 + rng.int(8);
      for (let i = 0; i < flips && out.length > 0; i++) out[at()] ^= 1 << rng.int(8);
      return { bytes: out, what: `${flips} bit flips` };
    }
    case 1: {
      const length = at(bytes.length);
      return { bytes: out.subarray(0, length), what: `truncated to ${length}` };
    }
    case 2: {
      // A length or size field set to an extreme: most headers sit in the first 64 bytes.
      const extremes = [0, 1, 0x7f, 0xff, 0x7fffffff, 0xffffffff, 0x80000000, 0x10000];
      const value = extremes[rng.int(extremes.length)];
      const offset = at(Math.min(out.length, 64));
      const view = new DataView(out.buffer);
      const bigEndian = rng.int(2) === 0;
      if (offset + 4 <= out.length) view.setUint32(offset, value >>> 0, !bigEndian);
      return { bytes: out, what: `u32 ${value} at ${offset}` };
    }
    case 3: {
      if (out.length < 8) return { bytes: out, what: "unchanged" };
      // An 8-byte field (safetensors' header length) set to something huge or odd.
      const values = [0n, 1n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];
      const value = values[rng.int(values.length)];
      const offset = rng.int(2) === 0 ? 0 : at(out.length - 7);
      new DataView(out.buffer).setBigUint64(offset, value, true);
      return { bytes: out, what: `u64 ${value} at ${offset}` };
    }
    case 4: {
      const start = at();
      const end = Math.min(out.length, start + 1 + rng.int(256));
      const times = 1 + rng.int(20);
      const chunk = out.subarray(start, end);
      const grown = new Uint8Array(out.length + chunk.length * times);
      grown.set(out.subarray(0, end));
      for (let i = 0; i < times; i++) grown.set(chunk, end + i * chunk.length);
      grown.set(out.subarray(end), end + times * chunk.length);
      return { bytes: grown, what: `${start}..${end} repeated ${times}×` };
    }
    default: {
      const offset = at(out.length + 1);
      const noise = Uint8Array.from({ length: 1 + rng.int(32) }, () => rng.int(256));
      const grown = new Uint8Array(out.length + noise.length);
      grown.set(out.subarray(0, offset));
      grown.set(noise, offset);
      grown.set(out.subarray(offset), offset + noise.length);
      return { bytes: grown, what: `${noise.length} bytes inserted at ${offset}` };
    }
  }
}

/** Runs `cases` mutants of `seeds` through `parse`; `check` validates a successful result. */
async function fuzz<T>(
  name: string,
  seeds: Uint8Array[],
  parse: (bytes: Uint8Array) => T | Promise<T>,
  check: (result: T, bytes: Uint8Array) => void,
  isOwnError: (error: unknown) => boolean,
  seed: number,
): Promise<{ ok: number; refused: number }> {
  const rng = new Rng(seed);
  let ok = 0;
  let refused = 0;
  for (let i = 0; i < CASES; i++) {
    const original = seeds[rng.int(seeds.length)];
    // Up to three mutations stacked, so damage compounds as in a real corrupt file.
    let mutant = { bytes: original, what: "" };
    const rounds = 1 + rng.int(3);
    for (let r = 0; r < rounds; r++) {
      const next = mutate(rng, mutant.bytes);
      mutant = { bytes: next.bytes, what: `${mutant.what}${mutant.what ? ", " : ""}${next.what}` };
    }
    const label = `${name} case ${i} (seed ${seed}): ${mutant.what}`;
    const start = performance.now();
    try {
      check(await parse(mutant.bytes), mutant.bytes);
      ok++;
    } catch (error) {
      if (error instanceof assert.AssertionError) throw error;
      if (!isOwnError(error)) {
        throw new Error(
          `${label}: ${error instanceof Error ? error.name : "value"} thrown: ${error}`,
        );
      }
      refused++;
    }
    const ms = performance.now() - start;
    assert.ok(ms < 2000, `${label}: took ${ms.toFixed(0)} ms`);
    if (i % 100 === 0) {
      const rss = Deno.memoryUsage().rss;
      assert.ok(
        rss < MEMORY_CEILING,
        `${label}: resident memory ${(rss / 2 ** 20).toFixed(0)} MiB`,
      );
    }
  }
  return { ok, refused };
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function idx(magic: number, dims: number[], seed: number): Uint8Array {
  const header = 4 + 4 * dims.length;
  const count = dims.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(header + count);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, magic);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  for (let i = 0; i < count; i++) bytes[header + i] = (i * 31 + seed) % 256;
  return bytes;
}

/** A 24-bit bottom-up BMP of `w`×`h`. */
function bmp(w: number, h: number): Uint8Array {
  const row = Math.ceil((w * 3) / 4) * 4;
  const bytes = new Uint8Array(54 + row * h);
  const v = new DataView(bytes.buffer);
  bytes.set([0x42, 0x4d]);
  v.setUint32(2, bytes.length, true);
  v.setUint32(10, 54, true);
  v.setUint32(14, 40, true);
  v.setInt32(18, w, true);
  v.setInt32(22, h, true);
  v.setUint16(26, 1, true);
  v.setUint16(28, 24, true);
  v.setUint32(34, row * h, true);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      bytes.fill((x * 40 + y * 20) % 256, 54 + y * row + x * 3, 57 + y * row + x * 3);
    }
  }
  return bytes;
}

Deno.test("fuzz: safetensors mutants give a correct result or a SafetensorsError", async () => {
  const seeds = [
    encodeSafetensors(
      {
        "fc1.weight": { shape: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => i) },
        "fc1.bias": { shape: [4], data: new Float32Array(4).fill(0.5) },
        "scalar": { shape: [], data: new Float32Array([7]) },
      },
      { format: "pt", model: "mlp", model_options: "{}" },
    ),
    encodeSafetensors({ "a": { shape: [2, 2, 2], data: new Float32Array(8) } }),
  ];
  const { ok, refused } = await fuzz(
    "safetensors",
    seeds,
    (bytes) => decodeSafetensors(bytes, "fuzz"),
    ({ tensors, metadata }) => {
      for (const [name, t] of Object.entries(tensors)) {
        const n = t.shape.reduce((a, b) => a * b, 1);
        assert.equal(t.data.length, n, `tensor ${name}: ${t.data.length} values for [${t.shape}]`);
      }
      for (const value of Object.values(metadata)) assert.equal(typeof value, "string");
    },
    (e) => e instanceof SafetensorsError,
    1,
  );
  assert.ok(refused > CASES / 2 && ok + refused === CASES, `${ok} ok, ${refused} refused`);
});

Deno.test("fuzz: IDX mutants, raw and gzipped, give a correct result or a DataError", async () => {
  const raw = [
    idx(0x803, [5, 28, 28], 1),
    idx(0x801, [40], 2),
    idx(0x803, [3, 7, 9], 3),
  ];
  const seeds = [...raw, ...await Promise.all(raw.map(gzip))];
  const { ok, refused } = await fuzz(
    "idx",
    seeds,
    (bytes) => parseIdx(bytes, "fuzz"),
    (result) => {
      const n = result.dims.reduce((a, b) => a * b, 1);
      assert.equal(result.data.length, n, `${result.data.length} bytes for ${result.dims}`);
    },
    (e) => e instanceof DataError,
    2,
  );
  assert.ok(refused > CASES / 2 && ok + refused === CASES, `${ok} ok, ${refused} refused`);
});

Deno.test("fuzz: image mutants (PNG, JPEG, GIF, BMP) give a correct image or a DataError", async () => {
  const fixtures = join(ROOT, "tests/fixtures/data");
  const seeds = [
    await Deno.readFile(join(fixtures, "seven.jpg")),
    await Deno.readFile(join(fixtures, "seven.gif")),
    await Deno.readFile(join(fixtures, "seven_transparent.png")),
    await encodePng(new Uint8Array(28 * 28).map((_, i) => i % 256), 28, 28),
    bmp(9, 6),
  ];
  const { ok, refused } = await fuzz(
    "image",
    seeds,
    (bytes) => decodeImage(bytes, "fuzz"),
    (image) => {
      assert.ok(image.width > 0 && image.height > 0, `${image.width}×${image.height}`);
      assert.equal(image.data.length, image.width * image.height);
    },
    (e) => e instanceof DataError,
    3,
  );
  assert.ok(ok + refused === CASES, `${ok} ok, ${refused} refused`);
});
