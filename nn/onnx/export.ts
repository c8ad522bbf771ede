/**
 * ONNX export by tracing the tape: the model runs in evaluation mode, recording nothing for
 * gradients, while a tracer sees every op it applies outside another op's forward pass, and each traced op becomes one or a few ONNX
 * nodes. Parameters and buffers become initializers under their PyTorch state-dict names; any
 * other tensor an op reads (a causal mask, a scale, position indices) becomes a constant.
 *
 * The batch dimension is made symbolic by tracing twice, at the example's batch size and one
 * more: the two graphs must be the same op for op, a shape attribute (reshape, expand) that
 * differs between them follows the batch and is written so the runtime computes it, and a
 * constant that differs between them depended on the input without going through a traced op
 * (a comparison, a cast, argmax, a value read back and rebuilt), which an exported graph could
 * not reproduce, so it is refused by name. Such a value that happens to be the same in both
 * traces cannot be told from a constant: that is the limit of this check.
 *
 * @module
 */

import type { AnyTensor, Tensor } from "../../autograd/mod.ts";
import { Tensor as TensorClass } from "../../autograd/tensor.ts";
import { noGrad } from "../../autograd/tape.ts";
import { setOpTracer } from "../../autograd/ops/op.ts";
import type { Module } from "../module.ts";
import {
  encodeOnnxModel,
  OnnxDataType,
  type OnnxDim,
  type OnnxNode,
  type OnnxTensor,
} from "./proto.ts";

/** Opset of the default domain the exporter writes (LayerNormalization needs 17; 18 gives every
 * Reduce* its axes as an input). */
export const ONNX_OPSET = 18;
/** The IR version that goes with opset 18. */
const IR_VERSION = 8;

/** Options of {@linkcode exportOnnx}. */
export interface ExportOnnxOptions {
  /** Name of the graph input (default "input"). */
  inputName?: string;
  /** Name of the graph output (default "output"). */
  outputName?: string;
  /**
   * Give the first dimension of the input and output the symbolic size "batch" (default true),
   * so the file runs at any batch size; false fixes the example's.
   */
  dynamicBatch?: boolean;
  /** Graph name (default: the model's class name). */
  graphName?: string;
  /** String pairs stored as the model's `metadata_props` (the model's name, a vocabulary). */
  metadata?: Readonly<Record<string, string>>;
}

/** An op the exporter cannot write, or a model whose graph cannot be traced; names the op. */
export class OnnxExportError extends Error {
  /** The tapegrad op at fault, when there is one. */
  readonly op: string | undefined;

  /**
   * Builds the message `exportOnnx: op "name" (#index): problem`.
   *
   * @param op The op's name, or undefined for model-level problems.
   * @param index Position of the op in the trace.
   * @param problem What went wrong.
   */
  constructor(op: string | undefined, index: number | undefined, problem: string) {
    super(
      `exportOnnx: ${
        op === undefined ? "" : `op "${op}"${index === undefined ? "" : ` (#${index})`}: `
      }${problem}`,
    );
    this.name = "OnnxExportError";
    this.op = op;
  }
}

/** One op as the tracer saw it. */
interface TracedOp {
  op: string;
  inputs: readonly AnyTensor[];
  // deno-lint-ignore no-explicit-any
  attrs: any;
  out: AnyTensor;
}

interface Trace {
  ops: TracedOp[];
  output: Tensor;
}

/** Runs the model once in evaluation mode under the tracer; restores every module's mode. */
function trace(model: Module<[AnyTensor], Tensor>, input: AnyTensor): Trace {
  const modes = model.modules().map((m) => [m, m.training] as const);
  model.eval();
  const ops: TracedOp[] = [];
  const previous = setOpTracer((op, inputs, attrs, out) => ops.push({ op, inputs, attrs, out }));
  let output: unknown;
  try {
    output = noGrad(() => model.forward(input));
  } finally {
    setOpTracer(previous);
    for (const [m, mode] of modes) m.training = mode;
  }
  if (!(output instanceof TensorClass)) {
    throw new OnnxExportError(undefined, undefined, "the model's forward must return one tensor");
  }
  return { ops, output: output as Tensor };
}

/** The elements of `t` in row-major order, as a fresh typed array of its dtype. */
function denseValues(t: AnyTensor): Float32Array | Int32Array | Uint8Array {
  const out = t.dtype === "float32"
    ? new Float32Array(t.size)
    : t.dtype === "int32"
    ? new Int32Array(t.size)
    : new Uint8Array(t.size);
  const shape = t.shape;
  const index = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < t.size; i++) {
    let at = t.offset;
    for (let d = 0; d < shape.length; d++) at += index[d] * t.strides[d];
    out[i] = t.data[at];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

/** The example with its first row repeated once more: a batch one larger, for the second trace. */
function growBatch(x: AnyTensor): AnyTensor {
  if (x.ndim === 0 || x.shape[0] === 0) {
    throw new OnnxExportError(
      undefined,
      undefined,
      `the example input [${x.shape.join(", ")}] has no batch dimension to make symbolic ` +
        `(pass dynamicBatch: false)`,
    );
  }
  const values = denseValues(x);
  const row = x.size / x.shape[0];
  const grown = new (values.constructor as Float32ArrayConstructor)(values.length + row);
  grown.set(values);
  grown.set(values.subarray(0, row), values.length);
  return new TensorClass(grown as never, [x.shape[0] + 1, ...x.shape.slice(1)]);
}

const DATA_TYPE = {
  float32: OnnxDataType.FLOAT,
  int32: OnnxDataType.INT32,
  bool: OnnxDataType.BOOL,
};

function rawBytes(values: Float32Array | Int32Array | Uint8Array): Uint8Array {
  const out = new Uint8Array(values.length * values.BYTES_PER_ELEMENT);
  const view = new DataView(out.buffer);
  if (values instanceof Float32Array) values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  else if (values instanceof Int32Array) values.forEach((v, i) => view.setInt32(i * 4, v, true));
  else out.set(values);
  return out;
}

function int64Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return out;
}

/** ONNX Slice's "to the very start" end for a negative step (any value below −dim works). */
const BEFORE_START = -Number.MAX_SAFE_INTEGER;

/** ONNX operator of each elementwise binary primitive. */
const BINARY: Readonly<Record<string, string>> = {
  add: "Add",
  sub: "Sub",
  mul: "Mul",
  div: "Div",
  maximum: "Max",
  minimum: "Min",
};

/** ONNX operator of each unary primitive that has a one-node equivalent. */
const UNARY: Readonly<Record<string, string>> = {
  neg: "Neg",
  exp: "Exp",
  log: "Log",
  sqrt: "Sqrt",
  abs: "Abs",
  relu: "Relu",
  sigmoid: "Sigmoid",
  tanh: "Tanh",
  erf: "Erf",
  sin: "Sin",
  cos: "Cos",
  sign: "Sign",
  floor: "Floor",
  round: "Round", // both round half to even
};

/** ONNX reduction of each reducing primitive (attributes `{dims, keepDim}`). */
const REDUCE: Readonly<Record<string, string>> = {
  sum: "ReduceSum",
  mean: "ReduceMean",
  max: "ReduceMax",
  prod: "ReduceProd",
};

/**
 * The tapegrad ops the exporter maps, with the ONNX operators each becomes: the README's table is
 * made from this list, and a test checks that every one of them is handled.
 */
export const ONNX_OP_MAPPING: Readonly<Record<string, string>> = Object.freeze({
  ...BINARY,
  ...UNARY,
  ...REDUCE,
  leakyRelu: "LeakyRelu",
  pow: "Pow",
  gelu: "Erf, Mul, Add (exact) or Tanh, Pow, Mul, Add (tanh approximation)",
  log1p: "Add, Log",
  expm1: "Exp, Sub",
  where: "Where",
  matmul: "MatMul",
  linear: "Gemm (2-D input) or Transpose, MatMul, Add; Relu when fused",
  layerNorm: "LayerNormalization",
  softmax: "Softmax",
  logSoftmax: "LogSoftmax",
  conv2d: "Conv; Relu when fused",
  maxPool2d: "MaxPool",
  cumsum: "CumSum",
  reshape: "Reshape",
  transpose: "Transpose",
  permute: "Transpose",
  slice: "Slice",
  expand: "Expand",
  sliceScatter: "Pad (step 1) or Unsqueeze, Pad, Reshape, Slice, Pad",
  contiguous: "Identity",
  gather: "GatherElements",
  cat: "Concat",
});

/** The inputs of the two traces: the example, and the example one row longer. */
interface Batches {
  first: AnyTensor;
  second: AnyTensor | undefined;
}

/** Builds the graph from the traces. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  readonly #names = new Map<AnyTensor, string>();
  #constants = 0;
  #nodeCount = 0;

  constructor(parameters: readonly [string, AnyTensor][]) {
    for (const [name, t] of parameters) {
      if (this.#names.has(t)) continue; // a shared (tied) parameter keeps its first name
      this.#names.set(t, name);
      this.initializers.push(this.#tensor(name, t));
    }
  }

  #tensor(name: string, t: AnyTensor): OnnxTensor {
    return {
      name,
      dataType: DATA_TYPE[t.dtype],
      dims: [...t.shape],
      raw: rawBytes(denseValues(t)),
    };
  }

  has(t: AnyTensor): boolean {
    return this.#names.has(t);
  }

  nameOf(t: AnyTensor): string {
    const known = this.#names.get(t);
    if (known !== undefined) return known;
    const name = `const_${this.#constants++}`;
    this.#names.set(t, name);
    this.initializers.push(this.#tensor(name, t));
    return name;
  }

  bind(t: AnyTensor, name: string): void {
    this.#names.set(t, name);
  }

  #batchSize: string | undefined;
  /** Graph input name and the example's batch size, set before any node is emitted. */
  input = { name: "input", batch: 1 };

  /** The runtime batch size as a 1-element int64 tensor (one Shape node, made on first use). */
  batchSize(): string {
    this.#batchSize ??= this.node("Shape", [this.input.name], "batch_size", [
      { name: "start", kind: "int", value: 0 },
      { name: "end", kind: "int", value: 1 },
    ]);
    return this.#batchSize;
  }

  /**
   * A shape as an int64 tensor, given its values in both traces: a dimension equal in both is a
   * constant; one that differs is taken to be affine in the batch size (d = k·batch + c, k and c
   * from the two traces, whose batch sizes differ by one) and computed at run time.
   */
  shape(
    first: readonly number[],
    second: readonly number[] | undefined,
    fail: (p: string) => never,
  ): string {
    if (second === undefined || first.every((d, i) => d === second[i])) return this.int64s(first);
    const pieces: string[] = [];
    let run: number[] = [];
    const flush = () => {
      if (run.length > 0) pieces.push(this.int64s(run));
      run = [];
    };
    first.forEach((d, i) => {
      if (d === second[i]) {
        run.push(d);
        return;
      }
      const k = second[i] - d;
      const c = d - k * this.input.batch;
      if (k <= 0) fail(`dimension ${i} of [${first.join(", ")}] shrinks as the batch grows`);
      flush();
      let dim = this.batchSize();
      if (k !== 1) {
        dim = this.node("Mul", [dim, this.int64s([k])], `${dim}*${k}_${this.nodes.length}`);
      }
      if (c !== 0) {
        dim = this.node("Add", [dim, this.int64s([c])], `${dim}+${c}_${this.nodes.length}`);
      }
      pieces.push(dim);
    });
    flush();
    return pieces.length === 1
      ? pieces[0]
      : this.node("Concat", pieces, `shape_${this.nodes.length}`, [{
        name: "axis",
        kind: "int",
        value: 0,
      }]);
  }

  /** An int64 constant (shapes, axes, slice bounds). */
  int64s(values: readonly number[], scalar = false): string {
    const name = `const_${this.#constants++}`;
    this.initializers.push({
      name,
      dataType: OnnxDataType.INT64,
      dims: scalar ? [] : [values.length],
      raw: int64Bytes(values),
    });
    return name;
  }

  /** A float32 scalar constant. */
  scalar(value: number): string {
    const name = `const_${this.#constants++}`;
    this.initializers.push({
      name,
      dataType: OnnxDataType.FLOAT,
      dims: [],
      raw: rawBytes(new Float32Array([value])),
    });
    return name;
  }

  node(
    opType: string,
    inputs: readonly string[],
    output: string,
    attributes: OnnxNode["attributes"] = [],
  ): string {
    this.nodes.push({
      opType,
      inputs,
      outputs: [output],
      name: `${opType}_${this.#nodeCount++}`,
      attributes,
    });
    return output;
  }
}

/** The role a tensor plays in a trace, to check two traces have the same structure. */
function roleOf(
  t: AnyTensor,
  input: AnyTensor,
  parameters: Map<AnyTensor, string>,
  producers: Map<AnyTensor, number>,
): string {
  if (t === input) return "input";
  const p = parameters.get(t);
  if (p !== undefined) return `parameter ${p}`;
  const k = producers.get(t);
  if (k !== undefined) return `op #${k}`;
  return "constant";
}

function sameValues(a: AnyTensor, b: AnyTensor): boolean {
  if (a.dtype !== b.dtype || a.ndim !== b.ndim || a.shape.some((d, i) => d !== b.shape[i])) {
    return false;
  }
  const x = denseValues(a);
  const y = denseValues(b);
  for (let i = 0; i < x.length; i++) {
    if (!Object.is(x[i], y[i])) return false;
  }
  return true;
}

/**
 * Checks that the second trace is the first at another batch size, op for op, and that every
 * constant is the same in both (see the module comment).
 */
function compareTraces(
  a: Trace,
  b: Trace,
  inputs: Batches,
  parameters: Map<AnyTensor, string>,
): void {
  if (a.ops.length !== b.ops.length || a.ops.some((op, i) => op.op !== b.ops[i].op)) {
    const i = a.ops.findIndex((op, k) => op.op !== b.ops[k]?.op);
    throw new OnnxExportError(
      a.ops[i]?.op,
      i,
      "the model applies different ops at another batch size, so no one graph describes it",
    );
  }
  const producersA = new Map(a.ops.map((op, i) => [op.out, i]));
  const producersB = new Map(b.ops.map((op, i) => [op.out, i]));
  a.ops.forEach((opA, i) => {
    const opB = b.ops[i];
    opA.inputs.forEach((x, j) => {
      const roleA = roleOf(x, inputs.first, parameters, producersA);
      const roleB = roleOf(opB.inputs[j], inputs.second!, parameters, producersB);
      if (roleA !== roleB) {
        throw new OnnxExportError(
          opA.op,
          i,
          `its input ${j} is the ${roleA} at one batch size and the ${roleB} at another`,
        );
      }
      if (roleA === "constant" && !sameValues(x, opB.inputs[j])) {
        throw new OnnxExportError(
          opA.op,
          i,
          `its input ${j} [${x.shape.join(", ")}] ${UNTRACED}`,
        );
      }
    });
  });
}

/** Why a value made from the input without a traced op cannot be exported. */
const UNTRACED = "was made outside the traced ops (by a comparison such as gt or eq, a cast, " +
  "argmax, topk's indices, detach, or values read back) and changes with the input; an " +
  "exported graph cannot compute it";

/** Maps one traced op to nodes whose last output is `out`. */
function emit(
  g: GraphBuilder,
  index: number,
  opA: TracedOp,
  opB: TracedOp | undefined,
  out: string,
): void {
  const { op, attrs } = opA;
  const x = opA.inputs.map((t) => g.nameOf(t));
  const fail = (problem: string): never => {
    throw new OnnxExportError(op, index, problem);
  };
  const tmp = (k: number) => `${out}/${k}`;
  // Elementwise ONNX ops want one element type: convert inputs to the output's.
  const typed = (k: number): string => {
    const t = opA.inputs[k];
    if (t.dtype === opA.out.dtype) return x[k];
    return g.node("Cast", [x[k]], `${out}/cast${k}`, [
      { name: "to", kind: "int", value: DATA_TYPE[opA.out.dtype] },
    ]);
  };

  if (Object.hasOwn(BINARY, op)) {
    g.node(BINARY[op], [typed(0), typed(1)], out);
    return;
  }
  if (Object.hasOwn(UNARY, op)) {
    g.node(UNARY[op], [x[0]], out);
    return;
  }
  if (Object.hasOwn(REDUCE, op)) {
    g.node(REDUCE[op], [x[0], g.int64s(attrs.dims)], out, [
      { name: "keepdims", kind: "int", value: attrs.keepDim ? 1 : 0 },
    ]);
    return;
  }
  switch (op) {
    case "leakyRelu":
      g.node("LeakyRelu", [x[0]], out, [{ name: "alpha", kind: "float", value: attrs.param }]);
      return;
    case "pow":
      g.node("Pow", [x[0], g.scalar(attrs.param)], out);
      return;
    case "log1p":
      g.node("Log", [g.node("Add", [x[0], g.scalar(1)], tmp(0))], out);
      return;
    case "expm1":
      g.node("Sub", [g.node("Exp", [x[0]], tmp(0)), g.scalar(1)], out);
      return;
    case "gelu": {
      if (attrs.param === 0) {
        // x·Φ(x) = x · (1 + erf(x/√2)) / 2, the exact GELU.
        const erf = g.node("Erf", [g.node("Mul", [x[0], g.scalar(Math.SQRT1_2)], tmp(0))], tmp(1));
        const half = g.node("Mul", [x[0], g.scalar(0.5)], tmp(2));
        g.node("Mul", [half, g.node("Add", [erf, g.scalar(1)], tmp(3))], out);
      } else {
        // x/2 · (1 + tanh(√(2/π)(x + 0.044715x³))), PyTorch's approximate="tanh".
        const cube = g.node("Pow", [x[0], g.scalar(3)], tmp(0));
        const inner = g.node(
          "Add",
          [x[0], g.node("Mul", [cube, g.scalar(0.044715)], tmp(1))],
          tmp(2),
        );
        const tanh = g.node(
          "Tanh",
          [g.node("Mul", [inner, g.scalar(0.7978845608028654)], tmp(3))],
          tmp(4),
        );
        const half = g.node("Mul", [x[0], g.scalar(0.5)], tmp(5));
        g.node("Mul", [half, g.node("Add", [tanh, g.scalar(1)], tmp(6))], out);
      }
      return;
    }
    case "where": {
      const cond = opA.inputs[0].dtype === "bool"
        ? x[0]
        : g.node("Cast", [x[0]], tmp(0), [{ name: "to", kind: "int", value: OnnxDataType.BOOL }]);
      g.node("Where", [cond, typed(1), typed(2)], out);
      return;
    }
    case "matmul":
      g.node("MatMul", [x[0], x[1]], out);
      return;
    case "linear": {
      const relu = attrs.relu === true;
      const y = relu ? tmp(9) : out;
      if (opA.inputs[0].ndim === 2) {
        g.node("Gemm", x.slice(0, 3), y, [{ name: "transB", kind: "int", value: 1 }]);
      } else {
        const wt = g.node("Transpose", [x[1]], tmp(0), [{
          name: "perm",
          kind: "ints",
          value: [1, 0],
        }]);
        if (x.length > 2) g.node("Add", [g.node("MatMul", [x[0], wt], tmp(1)), x[2]], y);
        else g.node("MatMul", [x[0], wt], y);
      }
      if (relu) g.node("Relu", [y], out);
      return;
    }
    case "layerNorm": {
      const input = opA.inputs[0];
      let axes = 0;
      for (let size = 1; axes < input.ndim && size < attrs.n; axes++) {
        size *= input.shape[input.ndim - 1 - axes];
      }
      const normalized = input.shape.slice(input.ndim - axes);
      const ones = (value: number) =>
        g.nameOf(new TensorClass(new Float32Array(attrs.n).fill(value), normalized));
      const scale = attrs.weight ? x[1] : ones(1);
      const bias = attrs.bias ? x[attrs.weight ? 2 : 1] : ones(0);
      g.node("LayerNormalization", [x[0], scale, bias], out, [
        { name: "axis", kind: "int", value: -axes },
        { name: "epsilon", kind: "float", value: attrs.eps },
      ]);
      return;
    }
    case "softmax":
    case "logSoftmax":
      g.node(op === "softmax" ? "Softmax" : "LogSoftmax", [x[0]], out, [
        { name: "axis", kind: "int", value: attrs.dim },
      ]);
      return;
    case "conv2d":
    case "maxPool2d": {
      const common = [
        { name: "kernel_shape", kind: "ints", value: [attrs.kernelH, attrs.kernelW] },
        { name: "strides", kind: "ints", value: [attrs.strideH, attrs.strideW] },
        { name: "pads", kind: "ints", value: [attrs.padH, attrs.padW, attrs.padH, attrs.padW] },
      ] as const;
      const dilations = [attrs.dilationH ?? 1, attrs.dilationW ?? 1];
      if (attrs.groups !== undefined && attrs.groups !== 1) fail("grouped convolution");
      const withDilation = dilations.some((d) => d !== 1)
        ? [...common, { name: "dilations", kind: "ints" as const, value: dilations }]
        : [...common];
      if (op === "maxPool2d") {
        const floorH = Math.floor((attrs.height + 2 * attrs.padH - attrs.kernelH) / attrs.strideH) +
          1;
        const floorW = Math.floor((attrs.width + 2 * attrs.padW - attrs.kernelW) / attrs.strideW) +
          1;
        const ceil = floorH !== attrs.outH || floorW !== attrs.outW ? 1 : 0;
        g.node("MaxPool", [x[0]], out, [...withDilation, {
          name: "ceil_mode",
          kind: "int",
          value: ceil,
        }]);
        return;
      }
      const relu = attrs.relu === true;
      const y = g.node("Conv", x, relu ? tmp(0) : out, withDilation);
      if (relu) g.node("Relu", [y], out);
      return;
    }
    case "cumsum":
      g.node("CumSum", [x[0], g.int64s([attrs.dim], true)], out, [
        { name: "reverse", kind: "int", value: attrs.reverse ? 1 : 0 },
      ]);
      return;
    case "reshape": {
      const shape: number[] = [...attrs.shape];
      if (opB !== undefined) {
        const varying = shape.map((d, i) => d !== opB.attrs.shape[i] ? i : -1).filter((i) =>
          i >= 0
        );
        // One dimension that follows the batch: Reshape infers it (-1). More: computed at run time.
        if (varying.length > 1) {
          g.node("Reshape", [x[0], g.shape(shape, opB.attrs.shape, fail)], out);
          return;
        }
        if (varying.length === 1) shape[varying[0]] = -1;
      }
      g.node("Reshape", [x[0], g.int64s(shape)], out);
      return;
    }
    case "transpose": {
      const perm = Array.from({ length: opA.inputs[0].ndim }, (_, i) => i);
      [perm[attrs.dim0], perm[attrs.dim1]] = [perm[attrs.dim1], perm[attrs.dim0]];
      g.node("Transpose", [x[0]], out, [{ name: "perm", kind: "ints", value: perm }]);
      return;
    }
    case "permute":
      g.node("Transpose", [x[0]], out, [{ name: "perm", kind: "ints", value: attrs.dims }]);
      return;
    case "slice": {
      const { dim, start, length, step } = attrs;
      if (opB !== undefined && (opB.attrs.start !== start || opB.attrs.length !== length)) {
        fail(`the slice of dimension ${dim} follows the batch size`);
      }
      const last = start + (length - 1) * step;
      const end = length === 0
        ? start
        : step > 0
        ? last + 1
        : last - 1 < 0
        ? BEFORE_START
        : last - 1;
      g.node(
        "Slice",
        [x[0], g.int64s([start]), g.int64s([end]), g.int64s([dim]), g.int64s([step])],
        out,
      );
      return;
    }
    case "expand": {
      const target: number[] = [...attrs.shape];
      const input = opA.inputs[0];
      let grows = false;
      if (opB !== undefined) {
        target.forEach((d, i) => {
          if (d === opB.attrs.shape[i]) return;
          // ONNX Expand broadcasts: a 1 keeps the input's size, which follows the batch itself.
          if (input.shape[i - (target.length - input.ndim)] === d) target[i] = 1;
          else grows = true; // a constant grown to the batch: the target is computed at run time
        });
      }
      const shape = grows ? g.shape(attrs.shape, opB!.attrs.shape, fail) : g.int64s(target);
      g.node("Expand", [x[0], shape], out);
      return;
    }
    case "sliceScatter": {
      // zeros(shape) with the input written at start, start + step, … along dim: zero padding.
      const { shape, dim, start, step } = attrs;
      const src = opA.inputs[0];
      const length = src.shape[dim];
      if (opB !== undefined && opB.attrs.shape[dim] !== shape[dim]) {
        fail(`the scatter along dimension ${dim} follows the batch size`);
      }
      const span = length === 0 ? 0 : (length - 1) * step + 1;
      const pads = (before: number, after: number, rank: number, axis: number) => {
        const p = new Array<number>(2 * rank).fill(0);
        p[axis] = before;
        p[rank + axis] = after;
        return g.int64s(p);
      };
      let spread = x[0];
      if (step > 1 && length > 0) {
        // Interleave step − 1 zeros after each element: [.., L, ..] → [.., L, step, ..] →
        // [.., L·step, ..], then keep the first (L − 1)·step + 1.
        const rank = src.ndim;
        const lifted = g.node("Unsqueeze", [x[0], g.int64s([dim + 1])], tmp(0));
        const padded = g.node("Pad", [lifted, pads(0, step - 1, rank + 1, dim + 1)], tmp(1));
        const merged = (s: readonly number[]) => s.map((d, i) => (i === dim ? d * step : d));
        const flat = g.node(
          "Reshape",
          [padded, g.shape(merged(src.shape), opB && merged(opB.inputs[0].shape), fail)],
          tmp(2),
        );
        spread = g.node(
          "Slice",
          [flat, g.int64s([0]), g.int64s([span]), g.int64s([dim]), g.int64s([1])],
          tmp(3),
        );
      }
      g.node("Pad", [spread, pads(start, shape[dim] - start - span, src.ndim, dim)], out);
      return;
    }
    case "contiguous":
      g.node("Identity", [x[0]], out);
      return;
    case "gather":
      g.node("GatherElements", [x[0], x[1]], out, [{
        name: "axis",
        kind: "int",
        value: attrs.dim,
      }]);
      return;
    case "cat":
      g.node("Concat", opA.inputs.map((_, k) => typed(k)), out, [
        { name: "axis", kind: "int", value: attrs.dim },
      ]);
      return;
  }
  fail(
    "has no ONNX mapping (the exporter maps " + Object.keys(ONNX_OP_MAPPING).join(", ") + ")",
  );
}

/**
 * Exports a model to ONNX (opset 18) by running it on `exampleInput` (and, for the symbolic
 * batch, on it with one more row) under a tracer.
 * Parameters and buffers are stored as initializers under their PyTorch state-dict names, so the
 * file reads like `torch.onnx.export`'s; the first dimension is the symbolic "batch" unless
 * `dynamicBatch` is false. Other dimensions (a sequence length, say) are fixed at the example's.
 *
 * ```ts
 * import { zeros } from "@tapegrad/tapegrad";
 * import { Linear } from "@tapegrad/tapegrad/nn";
 * import { exportOnnx } from "@tapegrad/tapegrad/onnx";
 *
 * const bytes = exportOnnx(new Linear(4, 2), zeros([1, 4])); // an .onnx file's bytes
 * console.log(bytes[0]); // 8: the tag of ModelProto's first field, ir_version
 * ```
 *
 * @param model A module whose forward takes one tensor and returns one tensor.
 * @param exampleInput A representative input (its values only matter for data-dependent models).
 * @param options Names and the batch dimension.
 * @returns The bytes of the `.onnx` file.
 * @throws {OnnxExportError} Naming the op that has no ONNX mapping, the op that reads a value
 *   made from the input outside the traced ops, or the op whose graph depends on the batch size
 *   in a way ONNX cannot express.
 */
export function exportOnnx(
  // deno-lint-ignore no-explicit-any
  model: Module<[any], Tensor>,
  exampleInput: AnyTensor,
  options: ExportOnnxOptions = {},
): Uint8Array {
  const inputName = options.inputName ?? "input";
  const outputName = options.outputName ?? "output";
  const dynamic = options.dynamicBatch ?? true;
  const named: [string, AnyTensor][] = [...model.namedParameters(), ...model.namedBuffers()];
  const parameters = new Map<AnyTensor, string>();
  for (const [name, t] of named) if (!parameters.has(t)) parameters.set(t, name);

  const first = trace(model, exampleInput);
  // An op without a mapping is what a user can act on: name it before anything else.
  first.ops.forEach(({ op }, i) => {
    if (!Object.hasOwn(ONNX_OP_MAPPING, op)) {
      throw new OnnxExportError(
        op,
        i,
        `has no ONNX mapping (the exporter maps ${Object.keys(ONNX_OP_MAPPING).join(", ")})`,
      );
    }
  });
  const batches: Batches = { first: exampleInput, second: undefined };
  let second: Trace | undefined;
  if (dynamic) {
    batches.second = growBatch(exampleInput);
    second = trace(model, batches.second);
    compareTraces(first, second, batches, parameters);
  }

  const g = new GraphBuilder(named);
  g.input = { name: inputName, batch: exampleInput.shape[0] ?? 1 };
  if (g.has(exampleInput)) {
    throw new OnnxExportError(
      undefined,
      undefined,
      "the example input is one of the model's own tensors",
    );
  }
  g.bind(exampleInput, inputName);
  first.ops.forEach((op, i) => {
    const out = op.out === first.output ? outputName : `${op.op}_${i}`;
    emit(g, i, op, second?.ops[i], out);
    g.bind(op.out, out);
  });
  if (!first.ops.some((op) => op.out === first.output)) {
    const fixed = first.output === exampleInput || parameters.has(first.output) ||
      (second !== undefined && sameValues(first.output, second.output));
    if (!fixed) throw new OnnxExportError(undefined, undefined, `the model's output ${UNTRACED}`);
    g.node("Identity", [g.nameOf(first.output)], outputName);
  }

  const batchDim = (shape: readonly number[], other: readonly number[] | undefined): OnnxDim[] =>
    shape.map((d, i) =>
      other === undefined || other[i] === d
        ? d
        : i === 0 && d === exampleInput.shape[0]
        ? "batch"
        : null
    );
  // Keep only initializers the nodes read: a model may hold parameters its forward never uses.
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  const bytes = encodeOnnxModel({
    graphName: options.graphName ?? model.constructor.name,
    opset: ONNX_OPSET,
    irVersion: IR_VERSION,
    producerName: "tapegrad",
    producerVersion: "0.1.0",
    metadata: options.metadata,
    nodes: g.nodes,
    initializers: g.initializers.filter((t) => read.has(t.name)),
    inputs: [{
      name: inputName,
      dataType: DATA_TYPE[exampleInput.dtype],
      dims: batchDim(exampleInput.shape, batches.second?.shape),
    }],
    outputs: [{
      name: outputName,
      dataType: DATA_TYPE[first.output.dtype],
      dims: batchDim(first.output.shape, second?.output.shape),
    }],
  });
  return bytes;
}
