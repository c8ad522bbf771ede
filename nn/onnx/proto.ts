/**
 * The few ONNX protobuf messages an exported model needs, written by hand: a model file is one
 * `ModelProto`, and a protobuf writer for it is a varint, a length prefix and a tag per field, far
 * less than a protobuf library would bring in. Field numbers are those of `onnx/onnx.proto3`.
 *
 * Repeated integers are written one tag per element (not packed): every protobuf parser must
 * accept that form for proto2 and proto3 alike.
 *
 * @module
 */

/** ONNX `TensorProto.DataType` codes of the element types tapegrad exports. */
export const OnnxDataType: Readonly<{
  FLOAT: 1;
  UINT8: 2;
  INT8: 3;
  INT32: 6;
  INT64: 7;
  BOOL: 9;
}> = Object.freeze({ FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9 });

/** A tensor stored in the file (an initializer or a Constant's value). */
export interface OnnxTensor {
  /** Name the graph refers to it by. */
  name: string;
  /** An {@linkcode OnnxDataType} code. */
  dataType: number;
  /** Dimensions. */
  dims: readonly number[];
  /** Little-endian element bytes, row-major. */
  raw: Uint8Array;
}

/** A node attribute; the kind decides which ONNX field holds the value. */
export type OnnxAttribute =
  | { name: string; kind: "int"; value: number }
  | { name: string; kind: "float"; value: number }
  | { name: string; kind: "ints"; value: readonly number[] }
  | { name: string; kind: "string"; value: string }
  | { name: string; kind: "tensor"; value: OnnxTensor };

/** One node of the graph. */
export interface OnnxNode {
  /** Operator name in the default domain (`Gemm`, `Conv`, …). */
  opType: string;
  /** Input value names ("" for an omitted optional input). */
  inputs: readonly string[];
  /** Output value names. */
  outputs: readonly string[];
  /** Unique node name (shows in runtime errors and viewers). */
  name: string;
  /** Attributes. */
  attributes: readonly OnnxAttribute[];
}

/** A dimension of a graph input or output: a size, a symbol such as "batch", or unknown (null). */
export type OnnxDim = number | string | null;

/** A typed graph input or output. */
export interface OnnxValueInfo {
  /** Value name. */
  name: string;
  /** An {@linkcode OnnxDataType} code. */
  dataType: number;
  /** Dimensions. */
  dims: readonly OnnxDim[];
}

/** A whole model. */
export interface OnnxModel {
  /** Graph name. */
  graphName: string;
  /** Opset version of the default domain. */
  opset: number;
  /** IR version the opset requires. */
  irVersion: number;
  /** Tool that wrote the file. */
  producerName: string;
  /** Its version. */
  producerVersion: string;
  /** Nodes in a topological order. */
  nodes: readonly OnnxNode[];
  /** Parameters and constants. */
  initializers: readonly OnnxTensor[];
  /** Graph inputs. */
  inputs: readonly OnnxValueInfo[];
  /** Graph outputs. */
  outputs: readonly OnnxValueInfo[];
  /** Free text shown by viewers. */
  docString?: string;
  /** `metadata_props`: string pairs a runtime hands back (the model's name, a vocabulary). */
  metadata?: Readonly<Record<string, string>>;
}

const utf8 = new TextEncoder();

/** An append-only byte buffer with the protobuf primitives. */
class Writer {
  #bytes = new Uint8Array(256);
  #length = 0;

  #reserve(n: number): void {
    if (this.#length + n <= this.#bytes.length) return;
    let size = this.#bytes.length * 2;
    while (size < this.#length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = next;
  }

  byte(b: number): void {
    this.#reserve(1);
    this.#bytes[this.#length++] = b;
  }

  bytes(b: Uint8Array): void {
    this.#reserve(b.length);
    this.#bytes.set(b, this.#length);
    this.#length += b.length;
  }

  /** A varint of a signed 64-bit value: negative numbers take ten bytes (two's complement). */
  varint(value: number): void {
    if (!Number.isSafeInteger(value)) throw new RangeError(`protobuf: ${value} is not an integer`);
    if (value >= 0 && value < 2 ** 31) {
      let v = value;
      while (v >= 0x80) {
        this.byte((v & 0x7f) | 0x80);
        v >>>= 7;
      }
      this.byte(v);
      return;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  int(field: number, value: number): void {
    this.tag(field, 0);
    this.varint(value);
  }

  float(field: number, value: number): void {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.bytes(b);
  }

  blob(field: number, value: Uint8Array): void {
    this.tag(field, 2);
    this.varint(value.length);
    this.bytes(value);
  }

  string(field: number, value: string): void {
    this.blob(field, utf8.encode(value));
  }

  message(field: number, fill: (w: Writer) => void): void {
    const inner = new Writer();
    fill(inner);
    this.blob(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.#bytes.slice(0, this.#length);
  }
}

function writeTensor(w: Writer, t: OnnxTensor): void {
  for (const d of t.dims) w.int(1, d); // dims
  w.int(2, t.dataType); // data_type
  w.string(8, t.name); // name
  w.blob(9, t.raw); // raw_data
}

function writeAttribute(w: Writer, a: OnnxAttribute): void {
  w.string(1, a.name);
  // AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, INTS 7.
  switch (a.kind) {
    case "float":
      w.float(2, a.value);
      w.int(20, 1);
      break;
    case "int":
      w.int(3, a.value);
      w.int(20, 2);
      break;
    case "string":
      w.string(4, a.value);
      w.int(20, 3);
      break;
    case "tensor":
      w.message(5, (t) => writeTensor(t, a.value));
      w.int(20, 4);
      break;
    case "ints":
      for (const v of a.value) w.int(8, v);
      w.int(20, 7);
      break;
  }
}

function writeNode(w: Writer, n: OnnxNode): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes) w.message(5, (m) => writeAttribute(m, a));
}

function writeValueInfo(w: Writer, v: OnnxValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    // TypeProto
    type.message(1, (tensor) => { // TypeProto.Tensor
      tensor.int(1, v.dataType);
      tensor.message(2, (shape) => { // TensorShapeProto
        for (const d of v.dims) {
          shape.message(1, (dim) => {
            if (typeof d === "number") dim.int(1, d);
            else if (typeof d === "string") dim.string(2, d);
          });
        }
      });
    }));
}

/**
 * Serialises a model to the bytes of an `.onnx` file.
 *
 * @param model The graph, its initializers and the opset it uses.
 * @returns The `ModelProto` bytes.
 */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const w = new Writer();
  w.int(1, model.irVersion);
  w.string(2, model.producerName);
  w.string(3, model.producerVersion);
  w.message(7, (g) => {
    for (const n of model.nodes) g.message(1, (m) => writeNode(m, n));
    g.string(2, model.graphName);
    for (const t of model.initializers) g.message(5, (m) => writeTensor(m, t));
    if (model.docString !== undefined) g.string(10, model.docString);
    for (const v of model.inputs) g.message(11, (m) => writeValueInfo(m, v));
    for (const v of model.outputs) g.message(12, (m) => writeValueInfo(m, v));
  });
  w.message(8, (o) => {
    o.string(1, "");
    o.int(2, model.opset);
  });
  for (const [key, value] of Object.entries(model.metadata ?? {})) {
    w.message(14, (entry) => { // StringStringEntryProto
      entry.string(1, key);
      entry.string(2, value);
    });
  }
  return w.finish();
}
