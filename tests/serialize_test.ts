import assert from "node:assert/strict";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  MAX_HEADER_BYTES,
  SafetensorsError,
  saveSafetensors,
  type StoredTensor,
} from "../nn/serialize.ts";

const ascii = (text: string): number[] => [...text].map((c) => c.charCodeAt(0));

/** Byte-level equality that also distinguishes NaN payloads and -0 from 0. */
function assertSameFloats(
  actual: Float32Array | Int32Array | Uint8Array,
  expected: ArrayLike<number>,
  label: string,
): void {
  assert.ok(actual instanceof Float32Array, `${label}: expected float32 data`);
  assert.deepEqual(
    new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength),
    new Uint8Array(Float32Array.from(expected).buffer),
    label,
  );
}

// -------------------------------------------------------------------------------------------
// Fixture A, written by hand from the specification (not by encodeSafetensors).
//
// Content: metadata {"format": "pt"}; tensor "a" F32 shape [2] = [1.0, -2.0]; tensor "b" F32
// shape [] (a scalar) = 0.5. Keys sorted, "__metadata__" first, compact JSON.
//
// Header JSON, counted piece by piece:
//   {                                                   1
//   "__metadata__":                                    15  (12 letters + 2 quotes + colon)
//   {"format":"pt"}                                    15
//   ,                                                   1
//   "a":                                                4
//   {"dtype":"F32","shape":[2],"data_offsets":[0,8]}   48  (1+8+5+1+8+3+1+15+5+1)
//   ,                                                   1
//   "b":                                                4
//   {"dtype":"F32","shape":[],"data_offsets":[8,12]}   48  (1+8+5+1+8+2+1+15+6+1)
//   }                                                   1
//                                                    ----
//                                                     138
// 8 + 138 = 146 is not a multiple of 8; the next one is 152, so N = 144 = 0x90 and the JSON is
// followed by 144 - 138 = 6 spaces (0x20). Length prefix: u64 little-endian 144 =
// 90 00 00 00 00 00 00 00.
// Data (little-endian IEEE 754 binary32): 1.0 = 0x3f800000 -> 00 00 80 3f;
// -2.0 = 0xc0000000 -> 00 00 00 c0; 0.5 = 0x3f000000 -> 00 00 00 3f.
// Total: 8 + 144 + 12 = 164 bytes.
const FIXTURE_A_JSON = '{"__metadata__":{"format":"pt"},' +
  '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
  '"b":{"dtype":"F32","shape":[],"data_offsets":[8,12]}}';
// deno-fmt-ignore
const FIXTURE_A = new Uint8Array([
  0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // N = 144, u64 little-endian
  ...ascii(FIXTURE_A_JSON), //                        138 bytes of JSON
  0x20, 0x20, 0x20, 0x20, 0x20, 0x20, //             6 padding spaces
  0x00, 0x00, 0x80, 0x3f, //                         a[0] = 1.0
  0x00, 0x00, 0x00, 0xc0, //                         a[1] = -2.0
  0x00, 0x00, 0x00, 0x3f, //                         b = 0.5
]);

// Fixture B, also by hand: the other dtypes, as another writer might lay them out: no padding
// (so the data section starts at an offset that is not a multiple of 4 or 8) and data stored in
// a different order than the keys ("w" first, then "h", then "d").
//
// Header JSON:
//   {                                                       1
//   "h":                                                    4
//   {"dtype":"F16","shape":[8],"data_offsets":[4,20]}      49  (1+8+5+1+8+3+1+15+6+1)
//   ,                                                       1
//   "d":                                                    4
//   {"dtype":"F64","shape":[2],"data_offsets":[20,36]}     50  (1+8+5+1+8+3+1+15+7+1)
//   ,                                                       1
//   "w":                                                    4
//   {"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}    51  (1+8+6+1+8+5+1+15+5+1)
//   }                                                       1
//                                                        ----
//                                                         166 = 0xa6
// Data starts at file offset 8 + 166 = 174 (174 mod 4 = 2, so every tensor is misaligned).
// "w" BF16 (the top 16 bits of a binary32): 1.0 = 0x3f80 -> 80 3f; -2.5 = 0xc020 -> 20 c0
//   (-2.5 = -1.25 * 2^1: sign 1, exponent 128, fraction .01 -> 0xc0200000).
// "h" F16 (1 sign, 5 exponent bits biased by 15, 10 fraction bits):
//   1.0 = 0x3c00; -2.0 = 0xc000; 65504 (largest) = 0x7bff; 2^-24 (smallest subnormal) = 0x0001;
//   1023 * 2^-24 (largest subnormal) = 0x03ff; -0 = 0x8000; +Infinity = 0x7c00; NaN = 0x7e00.
// "d" F64: 1.0 = 0x3ff0000000000000; 0.1 = 0x3fb999999999999a (read as Math.fround(0.1)).
const FIXTURE_B_JSON = '{"h":{"dtype":"F16","shape":[8],"data_offsets":[4,20]},' +
  '"d":{"dtype":"F64","shape":[2],"data_offsets":[20,36]},' +
  '"w":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}}';
// deno-fmt-ignore
const FIXTURE_B = new Uint8Array([
  0xa6, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // N = 166, u64 little-endian
  ...ascii(FIXTURE_B_JSON), //                        166 bytes of JSON, no padding
  0x80, 0x3f, 0x20, 0xc0, //                         w (BF16) = [1.0, -2.5]
  0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, // h (F16) = [1, -2, 65504, 2^-24,
  0xff, 0x03, 0x00, 0x80, 0x00, 0x7c, 0x00, 0x7e, //   1023 * 2^-24, -0, Infinity, NaN]
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f, // d[0] (F64) = 1.0
  0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f, // d[1] (F64) = 0.1
]);

Deno.test("hand-made fixtures: the byte counts in the comments are right", () => {
  assert.equal(FIXTURE_A_JSON.length, 138);
  assert.equal(FIXTURE_A.length, 164);
  assert.equal(FIXTURE_B_JSON.length, 166);
  assert.equal(FIXTURE_B.length, 8 + 166 + 36);
});

Deno.test("hand-made fixture A decodes to the right names, shapes, values and metadata", () => {
  const { tensors, metadata } = decodeSafetensors(FIXTURE_A, "fixtureA");
  assert.deepEqual(Object.keys(tensors), ["a", "b"]);
  assert.deepEqual(metadata, { format: "pt" });
  assert.deepEqual(tensors.a.shape, [2]);
  assertSameFloats(tensors.a.data, [1, -2], "a");
  assert.deepEqual(tensors.b.shape, []);
  assertSameFloats(tensors.b.data, [0.5], "b");
});

Deno.test("encodeSafetensors reproduces hand-made fixture A byte for byte", () => {
  // Keys given out of order on purpose: the writer must sort them.
  const bytes = encodeSafetensors(
    {
      b: { shape: [], data: new Float32Array([0.5]) },
      a: { shape: [2], data: Float32Array.of(1, -2) },
    },
    { format: "pt" },
  );
  assert.deepEqual(bytes, FIXTURE_A);
});

Deno.test("encodeSafetensors of nothing is the hand-derived minimal file", () => {
  // "{}" is 2 bytes; 8 + 2 rounds up to 16, so N = 8: "{}" then 6 spaces, no data.
  const expected = new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, ...ascii("{}      ")]);
  assert.deepEqual(encodeSafetensors({}), expected);
  assert.deepEqual(encodeSafetensors({}, {}), expected);
  assert.deepEqual(decodeSafetensors(expected), { tensors: {}, metadata: {} });
});

Deno.test("hand-made fixture B: F16, BF16 and F64 convert to Float32, misaligned data", () => {
  const { tensors, metadata } = decodeSafetensors(FIXTURE_B, "fixtureB");
  assert.deepEqual(metadata, {});
  assert.deepEqual(Object.keys(tensors).sort(), ["d", "h", "w"]);
  assert.deepEqual(tensors.w.shape, [1, 2]);
  assertSameFloats(tensors.w.data, [1, -2.5], "w");
  assert.deepEqual(tensors.h.shape, [8]);
  const h = tensors.h.data;
  assert.deepEqual(
    [...h.subarray(0, 5)],
    [1, -2, 65504, 2 ** -24, 1023 * 2 ** -24],
  );
  assert.ok(Object.is(h[5], -0), "F16 0x8000 is -0");
  assert.equal(h[6], Infinity);
  assert.ok(Number.isNaN(h[7]));
  assert.deepEqual(tensors.d.shape, [2]);
  assertSameFloats(tensors.d.data, [1, Math.fround(0.1)], "d");
});

Deno.test("F16 conversion matches the textbook formula for all 65536 bit patterns", () => {
  const json = '{"x":{"dtype":"F16","shape":[65536],"data_offsets":[0,131072]}}';
  const bytes = new Uint8Array(8 + json.length + 131072);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(ascii(json), 8);
  const view = new DataView(bytes.buffer, 8 + json.length);
  for (let i = 0; i < 65536; i++) view.setUint16(i * 2, i, true);
  const x = decodeSafetensors(bytes).tensors.x.data;
  for (let i = 0; i < 65536; i++) {
    const sign = i & 0x8000 ? -1 : 1;
    const exponent = (i >> 10) & 0x1f;
    const fraction = i & 0x3ff;
    const expected = exponent === 0
      ? sign * fraction * 2 ** -24
      : exponent === 31
      ? (fraction === 0 ? sign * Infinity : NaN)
      : sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
    if (!Object.is(x[i], expected)) assert.fail(`F16 0x${i.toString(16)}: ${x[i]} != ${expected}`);
  }
});

Deno.test("decoding works from a subarray at an odd byte offset", () => {
  const buffer = new Uint8Array(FIXTURE_A.length + 3);
  buffer.set(FIXTURE_A, 3);
  const { tensors } = decodeSafetensors(buffer.subarray(3));
  assertSameFloats(tensors.a.data, [1, -2], "a");
  assertSameFloats(tensors.b.data, [0.5], "b");
});

Deno.test("decoded tensors own their data", () => {
  const bytes = FIXTURE_A.slice();
  const { tensors } = decodeSafetensors(bytes);
  assert.equal(tensors.a.data.buffer.byteLength, tensors.a.data.byteLength);
  tensors.a.data[0] = 42;
  assertSameFloats(decodeSafetensors(bytes).tensors.a.data, [1, -2], "source untouched");
});

function sampleTensors(): Record<string, StoredTensor> {
  return {
    "fc1.weight": { shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 0, -0, 1e-40) },
    "fc1.bias": { shape: [2], data: Float32Array.of(NaN, Infinity) },
    "scalar": { shape: [], data: Float32Array.of(-Infinity) },
    "empty": { shape: [0], data: new Float32Array(0) },
    "empty2d": { shape: [2, 0, 3], data: new Float32Array(0) },
    "λ.gewicht": { shape: [1], data: Float32Array.of(3) },
    "日本語": { shape: [1, 1], data: Float32Array.of(4) },
    "😀": { shape: [1], data: Float32Array.of(5) },
    "\uff01": { shape: [1], data: Float32Array.of(6) },
    "10": { shape: [1], data: Float32Array.of(7) },
    "2": { shape: [1], data: Float32Array.of(8) },
    'quote"back\\slash\n': { shape: [1], data: Float32Array.of(10) },
  };
}

/** Adds an own "__proto__" tensor: an object literal's "__proto__" key would set the prototype. */
function withOwnProto(tensors: Record<string, StoredTensor>): Record<string, StoredTensor> {
  Object.defineProperty(tensors, "__proto__", {
    value: { shape: [1], data: Float32Array.of(9) },
    enumerable: true,
  });
  return tensors;
}

Deno.test("round trip: scalar, empty, unicode and awkward names, metadata", () => {
  const tensors = withOwnProto(sampleTensors());
  assert.ok(Object.hasOwn(tensors, "__proto__"));
  const metadata = {
    model: "mlp",
    config: JSON.stringify({ hidden: [512, 1024], lr: 0.1 }),
    "accuracy ✓": "0.98",
    "0": "integer-like key",
  };
  const bytes = encodeSafetensors(tensors, metadata);
  const headerBytes = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + headerBytes) % 8, 0, "data section is 8-byte aligned");
  assert.deepEqual(encodeSafetensors(tensors, metadata), bytes, "deterministic");

  const decoded = decodeSafetensors(bytes, "roundtrip");
  assert.deepEqual(decoded.metadata, metadata);
  assert.deepEqual(Object.keys(decoded.tensors).sort(), Object.keys(tensors).sort());
  for (const name of Object.keys(tensors)) {
    const got = decoded.tensors[name];
    assert.ok(Object.hasOwn(decoded.tensors, name), name);
    assert.deepEqual(got.shape, tensors[name].shape, name);
    assertSameFloats(got.data, tensors[name].data, name);
  }
  // Re-encoding the decoded contents gives the same bytes.
  assert.deepEqual(encodeSafetensors(decoded.tensors, decoded.metadata), bytes);
});

Deno.test("keys are written in code point order with data in the same order", () => {
  const bytes = encodeSafetensors(withOwnProto(sampleTensors()));
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  // Read key order from the raw text: JSON.parse would move integer-like keys first.
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  const order = Object.keys(header).sort((a, b) =>
    text.indexOf(JSON.stringify(a) + ":") - text.indexOf(JSON.stringify(b) + ":")
  );
  assert.deepEqual(order, [
    "10",
    "2",
    "__proto__",
    "empty",
    "empty2d",
    "fc1.bias",
    "fc1.weight",
    'quote"back\\slash\n',
    "scalar",
    "λ.gewicht",
    "日本語",
    "\uff01", // U+FF01 before U+1F600, although UTF-16 units would order them the other way
    "😀",
  ]);
  let previousEnd = 0;
  for (const name of order) {
    const [begin, end] = header[name].data_offsets;
    assert.equal(begin, previousEnd, name);
    previousEnd = end;
  }
  assert.equal(previousEnd, bytes.length - 8 - n);
});

Deno.test("encoding a Float32Array view writes only the viewed elements", () => {
  const backing = Float32Array.of(9, 1, -2, 9);
  const bytes = encodeSafetensors(
    {
      b: { shape: [], data: new Float32Array([0.5]) },
      a: { shape: [2], data: backing.subarray(1, 3) },
    },
    { format: "pt" },
  );
  assert.deepEqual(bytes, FIXTURE_A);
});

// -------------------------------------------------------------------------------------------
// Malformed input. `assemble` only concatenates: u64 length, header text (padded to N bytes
// with spaces when N is given), data bytes.

function assemble(json: string, data: number[] = [], claimedLength?: number): Uint8Array {
  const header = new TextEncoder().encode(json);
  const n = claimedLength ?? header.length;
  const bytes = new Uint8Array(8 + Math.max(n, header.length) + data.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(n), true);
  bytes.set(header, 8);
  bytes.fill(0x20, 8 + header.length, 8 + n);
  bytes.set(data, 8 + Math.max(n, header.length));
  return bytes;
}

function f32(name: string, shape: number[], begin: number, end: number): string {
  return `${JSON.stringify(name)}:{"dtype":"F32","shape":${JSON.stringify(shape)},` +
    `"data_offsets":[${begin},${end}]}`;
}

function assertRejects(bytes: Uint8Array, ...patterns: RegExp[]): void {
  assert.throws(
    () => decodeSafetensors(bytes, "bad.safetensors"),
    (error: unknown) => {
      assert.ok(error instanceof SafetensorsError, `not a SafetensorsError: ${error}`);
      assert.match(error.message, /^bad\.safetensors: /);
      for (const pattern of patterns) assert.match(error.message, pattern);
      return true;
    },
  );
}

const zeros = (n: number): number[] => new Array(n).fill(0);

Deno.test("rejects a file shorter than 8 bytes", () => {
  assertRejects(new Uint8Array(5), /at least 8 bytes/, /found 5/);
  assertRejects(new Uint8Array(0), /found 0/);
});

Deno.test("rejects a header length larger than the file", () => {
  assertRejects(assemble("{}", [], 100).subarray(0, 8 + 10), /header length is 100/, /only 10/);
});

Deno.test("rejects absurd header lengths before allocating", () => {
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
  assertRejects(huge, /1099511627776/, new RegExp(`limit of ${MAX_HEADER_BYTES}`));
  huge.fill(0xff, 0, 8);
  assertRejects(huge, /18446744073709551615/);
});

Deno.test("rejects headers that are not a JSON object starting with {", () => {
  assertRejects(assemble('{"a":'), /not valid JSON/);
  assertRejects(assemble(' {"a":1}'), /must start with "\{"/, /0x20/);
  assertRejects(assemble("[]"), /must start with "\{"/, /0x5b/);
  assertRejects(assemble(""), /empty header/);
  const badUtf8 = assemble('{"x":1}');
  badUtf8[10] = 0xff;
  assertRejects(badUtf8, /not valid UTF-8/);
});

Deno.test("rejects unknown or unsupported dtypes naming the key", () => {
  assertRejects(
    assemble('{"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,8]}}', zeros(8)),
    /tensor "w"/,
    /unsupported dtype "Q7"/,
    /BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64, F8_E4M3, F8_E5M2, F8_E8M0/,
  );
  assertRejects(
    assemble('{"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}', zeros(8)),
    /tensor "w"/,
    /dtype "C64" is not supported: complex numbers/,
  );
  assertRejects(
    assemble('{"w":{"shape":[1],"data_offsets":[0,4]}}', zeros(4)),
    /tensor "w"/,
    /unsupported dtype nothing/,
  );
});

Deno.test("rejects bad shapes and offsets", () => {
  assertRejects(assemble(`{${f32("s", [-1], 0, 4)}}`, zeros(4)), /tensor "s"/, /shape.*\[-1\]/);
  assertRejects(assemble(`{${f32("s", [1.5], 0, 4)}}`, zeros(4)), /tensor "s"/, /non-negative/);
  assertRejects(
    assemble('{"s":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', zeros(4)),
    /tensor "s"/,
    /data_offsets must be \[begin, end\]/,
  );
  assertRejects(
    assemble('{"s":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}', zeros(4)),
    /data_offsets must be/,
  );
  assertRejects(assemble(`{${f32("s", [0], 4, 0)}}`, zeros(4)), /tensor "s"/, /begin <= end/);
  assertRejects(assemble('{"s":[1,2]}'), /tensor "s"/, /expected an object/, /array \[1,2\]/);
});

Deno.test("rejects overlapping tensors", () => {
  assertRejects(
    assemble(`{${f32("a", [2], 0, 8)},${f32("b", [2], 4, 12)}}`, zeros(12)),
    /tensor "b"/,
    /overlap tensor "a" at \[0, 8\]/,
  );
});

Deno.test("rejects a gap between tensors, and one before the first", () => {
  assertRejects(
    assemble(`{${f32("a", [1], 0, 4)},${f32("b", [1], 8, 12)}}`, zeros(12)),
    /tensor "b"/,
    /gap/,
    /\[4, 8\)/,
  );
  assertRejects(assemble(`{${f32("a", [1], 4, 8)}}`, zeros(8)), /tensor "a"/, /gap/);
});

Deno.test("rejects truncated data and trailing bytes", () => {
  assertRejects(
    assemble(`{${f32("a", [2], 0, 8)}}`, zeros(4)),
    /tensor "a"/,
    /only 4 bytes/,
    /truncated/,
  );
  assertRejects(
    assemble(`{${f32("a", [1], 0, 4)}}`, zeros(8)),
    /trailing bytes/,
    /only the first 4/,
  );
});

Deno.test("rejects byte sizes that do not match shape x dtype size", () => {
  assertRejects(
    assemble(`{${f32("a", [3], 0, 8)}}`, zeros(8)),
    /tensor "a"/,
    /shape \[3\] of F32 needs 12 bytes/,
    /span 8/,
  );
});

Deno.test("rejects non-string metadata", () => {
  assertRejects(
    assemble('{"__metadata__":{"epoch":3}}'),
    /__metadata__/,
    /"epoch" must be a string, found number 3/,
  );
  assertRejects(assemble('{"__metadata__":["x"]}'), /__metadata__/, /must be an object/);
});

Deno.test("encoding refuses inconsistent or unrepresentable input", () => {
  const one = { shape: [1], data: Float32Array.of(1) };
  assert.throws(
    () => encodeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } }),
    /tensor "w": shape \[2, 2\] needs 4 elements, but data has 3/,
  );
  assert.throws(() => encodeSafetensors({ __metadata__: one }), /reserved/);
  assert.throws(() => encodeSafetensors({ "\ud800": one }), /lone UTF-16 surrogate/);
  assert.throws(
    () => encodeSafetensors({ w: one }, { epoch: 3 as unknown as string }),
    /__metadata__: value of "epoch" must be a string/,
  );
  assert.throws(
    () => encodeSafetensors({ w: { shape: [1], data: [1] as unknown as Float32Array } }),
    SafetensorsError,
  );
});

// -------------------------------------------------------------------------------------------
// Files on disk.

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tapegrad_serialize_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

async function assertLoadRejects(path: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(loadSafetensors(path), (error: unknown) => {
    assert.ok(error instanceof SafetensorsError, `not a SafetensorsError: ${error}`);
    assert.ok(error.message.startsWith(`${path}: `), error.message);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

Deno.test("saveSafetensors is atomic and replaces an existing file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/model.safetensors`;
    await saveSafetensors(path, withOwnProto(sampleTensors()), { model: "first" });
    assert.deepEqual(await listDir(dir), ["model.safetensors"]);
    const first = await loadSafetensors(path);
    assert.equal(first.metadata.model, "first");
    assert.equal(Object.keys(first.tensors).length, Object.keys(sampleTensors()).length + 1);

    await saveSafetensors(path, {
      b: { shape: [], data: Float32Array.of(0.5) },
      a: { shape: [2], data: Float32Array.of(1, -2) },
    }, {
      format: "pt",
    });
    assert.deepEqual(await listDir(dir), ["model.safetensors"], "no temp file left");
    assert.deepEqual(await Deno.readFile(path), FIXTURE_A);
    const second = await loadSafetensors(path);
    assert.deepEqual(second.metadata, { format: "pt" });
    assert.deepEqual(Object.keys(second.tensors), ["a", "b"]);
  });
});

Deno.test("saveSafetensors leaves the old file and no temp file when encoding fails", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/model.safetensors`;
    await Deno.writeFile(path, FIXTURE_A);
    await assert.rejects(
      saveSafetensors(path, { w: { shape: [2], data: new Float32Array(3) } }),
      (error: unknown) =>
        error instanceof SafetensorsError && error.message.startsWith(`${path}: tensor "w"`),
    );
    assert.deepEqual(await listDir(dir), ["model.safetensors"]);
    assert.deepEqual(await Deno.readFile(path), FIXTURE_A);
  });
});

Deno.test("loadSafetensors reads the hand-made fixtures", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/b.safetensors`, FIXTURE_B);
    const { tensors } = await loadSafetensors(`${dir}/b.safetensors`);
    assertSameFloats(tensors.w.data, [1, -2.5], "w");
    assertSameFloats(tensors.d.data, [1, Math.fround(0.1)], "d");
    assert.equal(tensors.h.data[2], 65504);
  });
});

Deno.test("loadSafetensors refuses a 2^40-byte header claim without allocating it", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/huge.safetensors`;
    const bytes = new Uint8Array(64).fill(0x20);
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 40n, true);
    await Deno.writeFile(path, bytes);
    await assertLoadRejects(path, /header length is 1099511627776 bytes/, /over the limit/);
    // Below the limit but beyond the file: also refused from the 8-byte prefix alone.
    new DataView(bytes.buffer).setBigUint64(0, 50_000_000n, true);
    await Deno.writeFile(path, bytes);
    await assertLoadRejects(path, /header length is 50000000 bytes/, /only 56 bytes follow/);
  });
});

Deno.test("loadSafetensors rejects short, truncated and malformed files naming the file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/bad.safetensors`;
    await Deno.writeFile(path, new Uint8Array(3));
    await assertLoadRejects(path, /at least 8 bytes/, /found 3/);
    await Deno.writeFile(path, FIXTURE_A.subarray(0, FIXTURE_A.length - 2));
    await assertLoadRejects(path, /tensor "b"/, /truncated/);
    await Deno.writeFile(path, assemble('{"__metadata__":{"epoch":3}}'));
    await assertLoadRejects(path, /__metadata__/, /number 3/);
  });
});
