/**
 * The ONNX file itself, read back by a minimal protobuf reader written here from the field
 * numbers of onnx.proto3 (independent of the writer): initializers under their PyTorch names,
 * the symbolic "batch" dimension on input and output, opset 18, metadata_props, and integer
 * varints including negative ones (ten bytes, two's complement).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { zeros } from "../autograd/mod.ts";
import { loadModel } from "../nn/checkpoint.ts";
import { encodeOnnxModel, exportOnnx, OnnxDataType } from "../nn/onnx/mod.ts";
import { ROOT } from "./helpers/cli.ts";

type Field = { field: number; value: bigint | Uint8Array };

/** Splits a message into its fields (varint and length-delimited; fixed32 as 4 raw bytes). */
function fields(bytes: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = bytes[at++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (at < bytes.length) {
    const key = Number(varint());
    const [field, wire] = [key >> 3, key & 7];
    if (wire === 0) out.push({ field, value: varint() });
    else if (wire === 2) {
      const n = Number(varint());
      out.push({ field, value: bytes.subarray(at, at + n) });
      at += n;
    } else if (wire === 5) {
      out.push({ field, value: bytes.subarray(at, at + 4) });
      at += 4;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return out;
}

const text = (v: Field["value"]) => new TextDecoder().decode(v as Uint8Array);
const sub = (bytes: Uint8Array, field: number) =>
  fields(bytes).filter((f) => f.field === field).map((f) => f.value as Uint8Array);
const ints = (bytes: Uint8Array, field: number) =>
  fields(bytes).filter((f) => f.field === field).map((f) => BigInt.asIntN(64, f.value as bigint));

/** A ValueInfoProto's name and dims (a number, a symbol, or null). */
function valueInfo(bytes: Uint8Array): { name: string; dims: (number | string | null)[] } {
  const tensorType = sub(sub(bytes, 2)[0], 1)[0];
  const shape = sub(tensorType, 2)[0];
  const dims = sub(shape, 1).map((dim) => {
    const value = ints(dim, 1);
    if (value.length > 0) return Number(value[0]);
    const param = sub(dim, 2);
    return param.length > 0 ? text(param[0]) : null;
  });
  return { name: text(sub(bytes, 1)[0]), dims };
}

Deno.test("an exported MLP stores PyTorch-named initializers and a symbolic batch", async () => {
  const { model } = await loadModel(join(ROOT, "models", "mnist-mlp.safetensors"));
  const bytes = exportOnnx(model, zeros([2, 1, 28, 28]), { metadata: { model: "mlp" } });
  const top = fields(bytes);
  assert.equal(top.find((f) => f.field === 1)?.value, 8n); // ir_version
  const opset = sub(bytes, 8)[0];
  assert.deepEqual(ints(opset, 2), [18n]);
  const graph = sub(bytes, 7)[0];
  const initializers = sub(graph, 5).map((t) => ({
    name: text(sub(t, 8)[0]),
    dims: ints(t, 1).map(Number),
    type: Number(ints(t, 2)[0]),
  }));
  const weights = initializers.filter((t) => !t.name.startsWith("const_"));
  assert.deepEqual(weights, [
    { name: "fc1.weight", dims: [512, 784], type: OnnxDataType.FLOAT },
    { name: "fc1.bias", dims: [512], type: OnnxDataType.FLOAT },
    { name: "fc2.weight", dims: [1024, 512], type: OnnxDataType.FLOAT },
    { name: "fc2.bias", dims: [1024], type: OnnxDataType.FLOAT },
    { name: "fc3.weight", dims: [10, 1024], type: OnnxDataType.FLOAT },
    { name: "fc3.bias", dims: [10], type: OnnxDataType.FLOAT },
  ]);
  assert.deepEqual(valueInfo(sub(graph, 11)[0]), { name: "input", dims: ["batch", 1, 28, 28] });
  assert.deepEqual(valueInfo(sub(graph, 12)[0]), { name: "output", dims: ["batch", 10] });
  const ops = sub(graph, 1).map((n) => text(sub(n, 4)[0]));
  assert.deepEqual(ops, ["Reshape", "Gemm", "Relu", "Gemm", "Relu", "Gemm"]);
  const props = sub(bytes, 14).map((p) => [text(sub(p, 1)[0]), text(sub(p, 2)[0])]);
  assert.deepEqual(props, [["model", "mlp"]]);
  // The Reshape's target infers the batch: [-1, 784] as int64.
  const reshapeShape = text(sub(sub(graph, 1)[0], 1)[1]);
  const target = initializers.find((t) => t.name === reshapeShape)!;
  assert.deepEqual(target.dims, [2]);
  const raw = sub(sub(graph, 5).find((t) => text(sub(t, 8)[0]) === reshapeShape)!, 9)[0];
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  assert.deepEqual([view.getBigInt64(0, true), view.getBigInt64(8, true)], [-1n, 784n]);
});

Deno.test("negative integers are written as ten-byte varints", () => {
  const bytes = encodeOnnxModel({
    graphName: "g",
    opset: 18,
    irVersion: 8,
    producerName: "p",
    producerVersion: "v",
    nodes: [{
      opType: "Flatten",
      inputs: ["x"],
      outputs: ["y"],
      name: "n",
      attributes: [{ name: "axis", kind: "int", value: -1 }, {
        name: "perm",
        kind: "ints",
        value: [-2, 3, -(2 ** 40)],
      }],
    }],
    initializers: [],
    inputs: [],
    outputs: [],
  });
  const node = sub(sub(bytes, 7)[0], 1)[0];
  const [axis, perm] = sub(node, 5);
  assert.deepEqual(ints(axis, 3), [-1n]);
  assert.deepEqual(ints(axis, 20), [2n]); // AttributeType INT
  assert.deepEqual(ints(perm, 8), [-2n, 3n, -(2n ** 40n)]);
  assert.deepEqual(ints(perm, 20), [7n]); // AttributeType INTS
  // -1 as a varint: nine bytes of 0xff and a final 0x01.
  const at = bytes.findIndex((_, i) =>
    bytes.subarray(i, i + 11).every((b, k) => b === [0x18, ...Array(9).fill(0xff), 0x01][k])
  );
  assert.ok(at >= 0, "field 3 = -1 encoded as 0x18 ff×9 01");
});
