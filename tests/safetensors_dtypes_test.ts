/**
 * Every safetensors dtype tapegrad reads and writes: integer round trips at the edges of each
 * range, integers that do not fit int32 refused by tensor name, bools, F16/BF16 rounding to
 * nearest even at known bit patterns, the three 8-bit float formats decoded at known bit patterns
 * (files assembled by hand, since no writer makes them here), and a BatchNorm model whose I64
 * `num_batches_tracked` goes to a file and back, as PyTorch writes it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { randn, Rng } from "../autograd/mod.ts";
import {
  BatchNorm1d,
  decodeSafetensors,
  encodeSafetensors,
  Linear,
  loadModel,
  loadSafetensors,
  saveCheckpoint,
  saveModel,
  Sequential,
  SGD,
  type StoredTensor,
} from "../nn/mod.ts";

/** A file with one tensor "t" of `dtype`, `shape` and the given raw data bytes. */
function assemble(dtype: string, shape: number[], data: number[]): Uint8Array {
  let json = JSON.stringify({ t: { dtype, shape, data_offsets: [0, data.length] } });
  while ((8 + json.length) % 8 !== 0) json += " ";
  const header = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

/** The data section of an encoded file (everything after the header). */
function dataBytes(file: Uint8Array): number[] {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return [...file.subarray(8 + n)];
}

function roundTrip(tensor: StoredTensor): StoredTensor {
  return decodeSafetensors(encodeSafetensors({ t: tensor }), "roundTrip").tensors.t;
}

const INT_EDGES: Record<string, number[]> = {
  U8: [0, 1, 254, 255],
  I8: [-128, -1, 0, 127],
  I16: [-32768, -1, 0, 32767],
  U16: [0, 1, 65535],
  I32: [-2147483648, -1, 0, 2147483647],
  U32: [0, 1, 2147483647],
  I64: [-2147483648, -1, 0, 2147483647],
  U64: [0, 1, 2147483647],
};

for (const [dtype, values] of Object.entries(INT_EDGES)) {
  Deno.test(`${dtype}: int32 data round-trips at the edges of the range`, () => {
    const got = roundTrip({
      shape: [values.length],
      data: Int32Array.from(values),
      dtype: dtype as StoredTensor["dtype"],
    });
    assert.equal(got.dtype, dtype);
    assert.ok(got.data instanceof Int32Array);
    assert.deepEqual([...got.data], values);
  });
}

Deno.test("I64 and U64 are stored as 8-byte little-endian two's complement", () => {
  const file = encodeSafetensors({
    t: { shape: [2], data: Int32Array.from([-2, 3]), dtype: "I64" },
  });
  assert.deepEqual(dataBytes(file), [
    254,
    255,
    255,
    255,
    255,
    255,
    255,
    255,
    3,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ]);
});

Deno.test("integers that int32 cannot hold are refused, naming the tensor and the value", () => {
  const le64 = (v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
    return [...b];
  };
  const cases: [string, number[], RegExp][] = [
    ["I64", [...le64(0n), ...le64(2n ** 31n)], /I64 element 1 is 2147483648, outside int32/],
    ["I64", le64(-(2n ** 31n) - 1n), /I64 element 0 is -2147483649, outside int32/],
    ["I64", le64(2n ** 40n), /I64 element 0 is 1099511627776/],
    ["U64", le64(2n ** 63n), /U64 element 0 is 9223372036854775808/],
    ["U64", le64(2n ** 32n - 1n), /U64 element 0 is 4294967295/],
    ["U32", [0, 0, 0, 0x80], /U32 element 0 is 2147483648, outside int32/],
  ];
  for (const [dtype, bytes, message] of cases) {
    const n = bytes.length / (dtype === "U32" ? 4 : 8);
    assert.throws(
      () => decodeSafetensors(assemble(dtype, [n], bytes), "big.safetensors"),
      (e: Error) => /big\.safetensors: tensor "t": /.test(e.message) && message.test(e.message),
      dtype,
    );
  }
});

Deno.test("writing refuses integers outside the chosen dtype and data of the wrong kind", () => {
  const cases: [StoredTensor, RegExp][] = [
    [{ shape: [2], data: Int32Array.from([0, 256]), dtype: "U8" }, /element 1 is 256.*U8/],
    [{ shape: [1], data: Int32Array.from([128]), dtype: "I8" }, /element 0 is 128.*I8/],
    [{ shape: [1], data: Int32Array.from([-1]), dtype: "U32" }, /element 0 is -1.*U32/],
    [{ shape: [1], data: Int32Array.from([-1]), dtype: "U64" }, /element 0 is -1.*U64/],
    [
      { shape: [1], data: new Float32Array(1), dtype: "I64" },
      /Float32Array data cannot be written as "I64"/,
    ],
    [
      { shape: [1], data: new Int32Array(1), dtype: "F16" },
      /Int32Array data cannot be written as "F16"/,
    ],
  ];
  for (const [tensor, message] of cases) {
    assert.throws(
      () => encodeSafetensors({ bad: tensor }),
      (e: Error) => /tensor "bad"/.test(e.message) && message.test(e.message),
    );
  }
});

Deno.test("BOOL: 0/1 bytes round-trip into a bool Uint8Array; other bytes are refused", () => {
  const got = roundTrip({ shape: [2, 2], data: Uint8Array.from([0, 1, 1, 0]) });
  assert.equal(got.dtype, "BOOL");
  assert.ok(got.data instanceof Uint8Array);
  assert.deepEqual([...got.data], [0, 1, 1, 0]);
  assert.throws(
    () => decodeSafetensors(assemble("BOOL", [3], [1, 0, 2])),
    /tensor "t": BOOL element 2 is the byte 2/,
  );
});

Deno.test("F16 writes round to nearest even at known bit patterns, and read back", () => {
  const values = [
    1, // 0x3c00
    -0, // 0x8000
    65504, // 0x7bff, the largest half
    65520, // halfway to 2^16: rounds up to Infinity
    2 ** -24, // 0x0001, the smallest subnormal
    2 ** -25, // halfway between 0 and 2^-24: ties to even, 0
    1.5 * 2 ** -25, // above halfway: 0x0001
    1 + 2 ** -11, // halfway between 1 and 1 + 2^-10: ties to even, 0x3c00
    1 + 3 * 2 ** -11, // halfway between 0x3c01 and 0x3c02: ties to even, 0x3c02
    NaN, // 0x7e00
    -Infinity, // 0xfc00
  ];
  const file = encodeSafetensors({
    t: { shape: [values.length], data: Float32Array.from(values), dtype: "F16" },
  });
  const bytes = dataBytes(file);
  const halves = Array.from(
    { length: values.length },
    (_, i) => bytes[2 * i] | (bytes[2 * i + 1] << 8),
  );
  assert.deepEqual(
    halves,
    [0x3c00, 0x8000, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0001, 0x3c00, 0x3c02, 0x7e00, 0xfc00],
  );
  const back = decodeSafetensors(file).tensors.t;
  assert.equal(back.dtype, "F16");
  assert.deepEqual(
    [...back.data],
    [1, -0, 65504, Infinity, 2 ** -24, 0, 2 ** -24, 1, 1 + 2 ** -9, NaN, -Infinity],
  );
});

Deno.test("BF16 writes round to nearest even at known bit patterns, and read back", () => {
  const values = [1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2, NaN, 3.4e38];
  const file = encodeSafetensors({
    t: { shape: [values.length], data: Float32Array.from(values), dtype: "BF16" },
  });
  const bytes = dataBytes(file);
  const words = Array.from(
    { length: values.length },
    (_, i) => bytes[2 * i] | (bytes[2 * i + 1] << 8),
  );
  // 3.4e38 rounds up past the largest bfloat16 (0x7f7f) to Infinity.
  assert.deepEqual(words, [0x3f80, 0x3f80, 0x3f82, 0xc000, 0x7fc0, 0x7f80]);
  assert.deepEqual([...decodeSafetensors(file).tensors.t.data], [
    1,
    1,
    1 + 2 ** -6,
    -2,
    NaN,
    Infinity,
  ]);
});

Deno.test("F64 reads round to the nearest float32", () => {
  const got = roundTrip({ shape: [3], data: Float32Array.from([0.1, -3, 1e-40]), dtype: "F64" });
  assert.equal(got.dtype, "F64");
  assert.deepEqual([...got.data], [Math.fround(0.1), -3, Math.fround(1e-40)]);
  const big = new Uint8Array(8);
  new DataView(big.buffer).setFloat64(0, 1e300, true);
  assert.deepEqual([...decodeSafetensors(assemble("F64", [1], [...big])).tensors.t.data], [
    Infinity,
  ]);
});

/** Known 8-bit float encodings: [byte, value]. */
const FLOAT8_CASES: Record<string, [number, number][]> = {
  // E4M3 ("fn"): bias 7, no infinities, S.1111.111 is NaN, largest 448.
  F8_E4M3: [
    [0x00, 0],
    [0x80, -0],
    [0x01, 2 ** -9],
    [0x07, 7 * 2 ** -9],
    [0x08, 2 ** -6],
    [0x38, 1],
    [0x40, 2],
    [0x77, 240],
    [0x7e, 448],
    [0x7f, NaN],
    [0xc0, -2],
    [0xfe, -448],
    [0xff, NaN],
  ],
  // E5M2: bias 15, IEEE specials.
  F8_E5M2: [
    [0x00, 0],
    [0x01, 2 ** -16],
    [0x04, 2 ** -14],
    [0x3c, 1],
    [0x3d, 1.25],
    [0x7b, 57344],
    [0x7c, Infinity],
    [0x7d, NaN],
    [0x7f, NaN],
    [0xbc, -1],
    [0xfc, -Infinity],
  ],
  // E8M0: an unsigned power of two, 2^(byte − 127); 0xff is NaN.
  F8_E8M0: [
    [0x00, 2 ** -127],
    [0x7e, 0.5],
    [0x7f, 1],
    [0x80, 2],
    [0xfe, 2 ** 127],
    [0xff, NaN],
  ],
};

for (const [dtype, cases] of Object.entries(FLOAT8_CASES)) {
  Deno.test(`${dtype} decodes known bit patterns into float32`, () => {
    const file = assemble(dtype, [cases.length], cases.map(([byte]) => byte));
    const got = decodeSafetensors(file).tensors.t;
    assert.equal(got.dtype, dtype);
    assert.ok(got.data instanceof Float32Array);
    cases.forEach(([byte, value], i) => {
      assert.ok(
        Object.is(got.data[i], value),
        `0x${byte.toString(16)}: ${got.data[i]} != ${value}`,
      );
    });
  });
}

Deno.test("sub-byte and complex dtypes are refused with the reason", () => {
  assert.throws(
    () => decodeSafetensors(assemble("F4", [1], [0])),
    /tensor "t": dtype "F4" is not supported: 4-bit/,
  );
});

/** A model with a BatchNorm (PyTorch: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))). */
function batchNormNet(): Sequential {
  return new Sequential(new Linear(3, 4, { rng: new Rng(1) }), new BatchNorm1d(4));
}

Deno.test("a BatchNorm state dict goes to a file with num_batches_tracked as I64, and back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const net = batchNormNet();
    for (let i = 0; i < 3; i++) net.call(randn([5, 3], new Rng(i)));
    const bn = net.at(1) as BatchNorm1d;
    assert.equal(bn.num_batches_tracked!.item(), 3);
    const path = join(dir, "bn.safetensors");
    await saveModel(path, net);

    const { tensors } = await loadSafetensors(path);
    assert.equal(tensors["1.num_batches_tracked"].dtype, "I64");
    assert.ok(tensors["1.num_batches_tracked"].data instanceof Int32Array);
    assert.deepEqual([...tensors["1.num_batches_tracked"].data], [3]);
    assert.equal(tensors["1.running_mean"].dtype, "F32");

    const loaded = batchNormNet();
    await loadModel(path, loaded);
    const lbn = loaded.at(1) as BatchNorm1d;
    assert.equal(lbn.num_batches_tracked!.dtype, "int32");
    assert.equal(lbn.num_batches_tracked!.item(), 3);
    assert.deepEqual([...lbn.running_mean!.toFloat32Array()], [
      ...bn.running_mean!.toFloat32Array(),
    ]);
    assert.deepEqual([...lbn.running_var!.toFloat32Array()], [...bn.running_var!.toFloat32Array()]);

    // A file of the old layout (the counter as F32) still loads, converted exactly.
    const legacy = Object.fromEntries(
      Object.entries(tensors).map((
        [k, t],
      ) => [k, { shape: t.shape, data: Float32Array.from(t.data) }]),
    );
    const old = batchNormNet();
    old.loadStateDict(decodeSafetensors(encodeSafetensors(legacy)).tensors);
    assert.equal((old.at(1) as BatchNorm1d).num_batches_tracked!.item(), 3);
    // A fractional count is no count: refused by name.
    legacy["1.num_batches_tracked"] = { shape: [], data: Float32Array.from([2.5]) };
    assert.throws(
      () => batchNormNet().loadStateDict(legacy),
      /"1\.num_batches_tracked" is float32 in the state dict and int32 in the module/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveModel dtype f16 / bf16 halves the file; values round to the format", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const net = batchNormNet();
    const sizes: Record<string, number> = {};
    for (const dtype of ["f32", "f16", "bf16"] as const) {
      const path = join(dir, `${dtype}.safetensors`);
      await saveModel(path, net, { dtype });
      sizes[dtype] = (await Deno.stat(path)).size;
      const { tensors } = await loadSafetensors(path);
      assert.equal(tensors["0.weight"].dtype, dtype.toUpperCase());
      assert.equal(tensors["1.num_batches_tracked"].dtype, "I64");
      const loaded = batchNormNet();
      await loadModel(path, loaded);
      const tolerance = { f32: 0, f16: 2 ** -11, bf16: 2 ** -8 }[dtype];
      const want = (net.at(0) as Linear).weight.toFloat32Array();
      const got = (loaded.at(0) as Linear).weight.toFloat32Array();
      want.forEach((w, i) =>
        assert.ok(Math.abs(got[i] - w) <= tolerance * Math.abs(w), `${dtype} ${i}`)
      );
    }
    // The 32 float32 values take 64 bytes fewer; headers differ by the dtype names and padding.
    assert.ok(Math.abs(sizes.f32 - sizes.f16 - 64) <= 16, `${sizes.f32} vs ${sizes.f16}`);
    assert.ok(Math.abs(sizes.f32 - sizes.bf16 - 64) <= 16, `${sizes.f32} vs ${sizes.bf16}`);
    await assert.rejects(
      () =>
        saveCheckpoint(join(dir, "c.safetensors"), {
          model: net,
          optimizer: new SGD(net.parameters(), { lr: 0.1 }),
          dtype: "f16",
        }),
      /dtype "f16" rounds the weights/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
