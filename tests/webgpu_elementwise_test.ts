/**
 * The WebGPU elementwise kernels and ops against the CPU. Kernels first, straight through the
 * runtime: every unary kind forward and backward (against `referenceKernels.unary` and
 * `unaryBackward`) on a grid, random values and edge cases (±0, halves, NaN, ±∞, overflow and
 * underflow points) in contiguous, transposed, sliced and broadcast layouts, to a few ulp; every
 * binary kind over float32 and int32 (comparisons also bool and mixed dtypes) with broadcast and
 * strided operands, exactly (div to the few ulp WGSL allows); where, casts, fill and the copies
 * exactly; the dropout mask bit for bit. Then the ops: `x.to("webgpu").op(…)` against the CPU op,
 * gradients included. Small sizes: CI runs a software adapter.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  cat,
  dropout,
  gelu,
  gradients,
  maximum,
  minimum,
  Rng,
  sliceScatter,
  Tensor,
  useDevice,
  where,
} from "../mod.ts";
import type { DType } from "../autograd/dtype.ts";
import type { BinaryKind, UnaryKind } from "../autograd/kernels/elementwise.ts";
import { referenceKernels as cpu } from "../autograd/kernels/mod.ts";
import {
  broadcastStridesOf,
  COMPARISONS,
  gpuBinaryInto,
  gpuCast,
  gpuDropout,
  gpuFill,
  gpuUnary,
  gpuUnaryBackward,
  gpuWhere,
  UNARY_WGSL,
} from "../autograd/kernels/webgpu/elementwise.ts";
import { webgpu } from "../autograd/kernels/webgpu/runtime.ts";
import { gpuEmpty } from "../autograd/kernels/webgpu/tensor.ts";
import type { AnyTensor } from "../autograd/tensor.ts";
import { broadcastShapes } from "../autograd/shape.ts";
import { gpu, gpuTest } from "./helpers/webgpu.ts";

if (gpu !== null) await useDevice("webgpu");

/** Every unary kind (the table's type lists them all, so a new kind is enumerated here too). */
const UNARY = Object.keys(UNARY_WGSL) as UnaryKind[];
const BINARY: readonly BinaryKind[] = [
  "add",
  "sub",
  "mul",
  "div",
  "maximum",
  "minimum",
  "eq",
  "ne",
  "lt",
  "le",
  "gt",
  "ge",
];

/** The parameters each kind is checked with (0 where it has none). */
const PARAMS: Partial<Record<UnaryKind, number[]>> = {
  pow: [2, 3, -1, 0, 7, 0.5, -0.5, 1.7, -2.3, 70],
  leakyRelu: [0.01, 0.2],
  gelu: [0, 1],
};

/** Kinds computed exactly (no rounding beyond the float32 result, or the parameter's). */
const EXACT: readonly UnaryKind[] = ["neg", "abs", "relu", "sign", "floor", "round"];

/** Edge inputs: signed zeros, halves (round), points where the formulas switch, NaN, ±∞. */
const EDGES = [
  0,
  -0,
  1,
  -1,
  0.5,
  -0.5,
  1.5,
  -1.5,
  2.5,
  -2.5,
  3.5,
  -3.5,
  0.49999997,
  -0.49999997,
  1e-30,
  -1e-30,
  1e-6,
  -1e-6,
  0.1,
  -0.1,
  0.3465,
  -0.3466,
  0.55,
  9.1,
  -9.2,
  10,
  -11,
  17.5,
  -18.5,
  20,
  -20,
  50,
  -50,
  88,
  88.7,
  89,
  -89,
  -103,
  -105,
  1000,
  4095.9,
  -4095.9,
  1e10,
  -1e10,
  3e38,
  NaN,
  Infinity,
  -Infinity,
];

/** The spacing of float32 values at |v| (the smallest normal's at 0). */
function ulpOf(v: number): number {
  const m = Math.max(Math.abs(v), 1.1754944e-38);
  return Math.pow(2, Math.floor(Math.log2(m)) - 23);
}

/**
 * Asserts `actual[i]` is within `ulps(i)` float32 ulps of `expected[i]`, or within `atol(i)`
 * absolutely (values of order one that cross zero, where ulps of the result mean nothing); NaN
 * matches NaN and infinities match exactly. `exact` also tells −0 from +0.
 */
function assertUlps(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  ulps: (i: number) => number,
  atol: (i: number) => number = () => 2 ** -24,
  inputs?: ArrayLike<number>,
): void {
  assert.equal(actual.length, expected.length, `${what}: lengths`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const at = inputs === undefined ? "" : ` (input ${inputs[i]})`;
    if (Number.isNaN(e) || Number.isNaN(a)) {
      assert.ok(Number.isNaN(a) && Number.isNaN(e), `${what}: [${i}] ${a}, CPU ${e}${at}`);
      continue;
    }
    const bound = ulps(i);
    if (bound === 0) {
      assert.ok(Object.is(a, e), `${what}: [${i}] ${a}, CPU ${e}${at}`);
      continue;
    }
    if (a === e) continue;
    assert.ok(Number.isFinite(a) && Number.isFinite(e), `${what}: [${i}] ${a}, CPU ${e}${at}`);
    const diff = Math.abs(a - e);
    assert.ok(
      diff <= bound * ulpOf(e) || diff <= atol(i),
      `${what}: [${i}] ${a}, CPU ${e}${at}: ${(diff / ulpOf(e)).toFixed(1)} ulp`,
    );
  }
}

/** Bitwise (and NaN-insensitive) equality of two typed arrays. */
function assertSame(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assertUlps(actual, expected, what, () => 0);
}

/**
 * The device twin of a CPU view: the view's whole storage uploaded and viewed with the same
 * shape, strides and offset (`to("webgpu")` would make it contiguous).
 */
function twin<D extends DType>(view: Tensor<D>): Tensor<D> {
  return new Tensor<D>(webgpu().upload(view.data) as never, view.shape, view.strides, view.offset);
}

/** Values of `values.length` = rows·cols as a CPU view in each layout, named. */
function layouts(values: Float32Array, rows: number, cols: number): [string, Tensor][] {
  const n = rows * cols;
  const transposed = new Float32Array(n);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) transposed[c * rows + r] = values[r * cols + c];
  }
  // Every other element of rows twice as wide plus one, from 1: an offset and a stride of 2.
  const wide = new Float32Array(rows * (2 * cols + 1)).fill(7e7);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) wide[r * (2 * cols + 1) + 1 + 2 * c] = values[r * cols + c];
  }
  return [
    ["contiguous", new Tensor(values, [rows, cols])],
    ["transposed", new Tensor(transposed, [cols, rows]).transpose()],
    ["sliced", new Tensor(wide, [rows, 2 * cols + 1]).slice(1, 1, 2 * cols + 1, 2)],
    ["broadcast", new Tensor(values.slice(0, cols), [1, cols]).expand(rows, cols)],
  ];
}

function gridAndRandom(seed: number, rows: number, cols: number, scale: number): Float32Array {
  const rng = new Rng(seed);
  const n = rows * cols;
  const out = new Float32Array(n);
  for (let i = 0; i < EDGES.length && i < n; i++) out[i] = EDGES[i];
  const grid = Math.floor((n - EDGES.length) / 2);
  for (let i = 0; i < grid; i++) out[EDGES.length + i] = scale * (-1 + (2 * i) / grid);
  for (let i = EDGES.length + grid; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

/** The range each kind is exercised over (beyond the edges). */
function scaleOf(kind: UnaryKind): number {
  return kind === "exp" || kind === "expm1" || kind === "sigmoid" ? 40 : kind === "sin" ||
      kind === "cos"
    ? 100
    : 8;
}

/** The ulps a kind may be off (pow's grow with |p·ln x|, the error of its exp(p·log x) path). */
function forwardUlps(kind: UnaryKind, p: number, x: number): number {
  if (EXACT.includes(kind)) return 0;
  if (kind === "leakyRelu") return 1; // the slope is rounded to float32 on the device
  if (kind === "gelu" && p === 1 && x < 0) {
    // x·σ(2u) with u = √(2/π)(x + 0.044715x³) rounded in float32: σ's relative error is 2u's
    // absolute one, which grows with |u|.
    return 4 + 6 * 0.7978845608028654 * Math.abs(x + 0.044715 * x * x * x);
  }
  if (kind === "pow" && !(Number.isInteger(p) && Math.abs(p) <= 64) && Math.abs(p) !== 0.5) {
    return 4 + 3 * Math.abs(p * Math.log(Math.abs(x)));
  }
  return 4;
}

Deno.test({
  name: "webgpu kernels: every unary kind and its derivative in every layout, to a few ulp",
  ...gpuTest,
  async fn() {
    const rows = 12;
    const cols = 21;
    for (const kind of UNARY) {
      for (const p of PARAMS[kind] ?? [0]) {
        const values = gridAndRandom(kind.length + Math.round(10 * p), rows, cols, scaleOf(kind));
        // sin and cos reduce arguments to 4096 themselves; past that WGSL's built-ins (2⁻¹¹).
        if (kind === "sin" || kind === "cos") values.forEach((v, i) => (values[i] = v % 4096));
        const rng = new Rng(99);
        const gy = Float32Array.from({ length: rows * cols }, () => rng.normal());
        for (const [layout, view] of layouts(values, rows, cols)) {
          const what = `${kind}(${p}) ${layout}`;
          const x = view.values();
          const n = x.length;
          const expected = new Float32Array(n);
          cpu.unary(kind, x, 0, expected, 0, n, p);
          const y = await gpuUnary(kind, twin(view), p).read();
          // The CPU's own tanh GELU, 0.5x(1 + tanh u) in float64, cancels to 0 below x ≈ −9; the
          // device's x·σ(2u) does not.
          const atol = (i: number) => (kind === "gelu" && p === 1 ? Math.abs(x[i]) * 2 ** -52 : 0);
          assertUlps(y, expected, what, (i) => forwardUlps(kind, p, x[i]), atol, x);

          // With transposed inputs the output gradient is broadcast from one value per column:
          // a stride-0 operand too.
          const gyView = layout === "transposed"
            ? new Tensor(gy.slice(0, cols), [cols]).expand(rows, cols)
            : new Tensor(gy, [rows, cols]);
          const gyValues = gyView.values();
          const gx = new Float32Array(n);
          cpu.unaryBackward(kind, gyValues, x, expected, gx, n, p);
          const got = await gpuUnaryBackward(
            kind,
            twin(gyView),
            twin(view),
            twin(new Tensor(expected, [rows, cols])),
            p,
          ).read();
          assertUlps(
            got,
            gx,
            `${what} backward`,
            (i) => forwardUlps(kind, p - 1, x[i]) + (kind === "pow" ? 4 : 0),
            // GELU's derivative is Φ(x) + x·φ(x), two terms of order one that cancel for x < 0.
            (i) => 2 ** (kind === "gelu" ? -21 : -24) * Math.max(1, Math.abs(gyValues[i])),
            x,
          );
        }
      }
    }
  },
});

/** A CPU operand of `shape` in a named layout, with values from `fill`. */
function operand(
  dtype: DType,
  shape: number[],
  layout: string,
  value: (i: number) => number,
): Tensor<DType> {
  const n = shape.reduce((a, b) => a * b, 1);
  const make = (m: number) => {
    const data = dtype === "float32"
      ? new Float32Array(m)
      : dtype === "int32"
      ? new Int32Array(m)
      : new Uint8Array(m);
    for (let i = 0; i < m; i++) data[i] = dtype === "bool" ? +(value(i) > 0) : value(i);
    return data;
  };
  if (layout === "transposed" && shape.length === 2) {
    return new Tensor<DType>(make(n), [shape[1], shape[0]]).transpose();
  }
  if (layout === "sliced" && shape.length >= 1) {
    const last = shape[shape.length - 1];
    const wide = [...shape.slice(0, -1), 2 * last + 1];
    return new Tensor<DType>(make(n * 2 + n / last), wide).slice(-1, 1, 2 * last + 1, 2);
  }
  return new Tensor<DType>(make(n), shape);
}

/** The CPU's binary kernel into a new contiguous tensor of `dtype`. */
function cpuBinary(kind: BinaryKind, a: AnyTensor, b: AnyTensor, dtype: DType): AnyTensor {
  const shape = broadcastShapes(a.shape, b.shape, kind);
  const out = new Tensor<DType>(
    dtype === "float32"
      ? new Float32Array(shape.reduce((x, y) => x * y, 1))
      : dtype === "int32"
      ? new Int32Array(shape.reduce((x, y) => x * y, 1))
      : new Uint8Array(shape.reduce((x, y) => x * y, 1)),
    shape,
  );
  cpu.binary(
    kind,
    shape,
    a.data,
    a.offset,
    broadcastStridesOf(a, shape),
    b.data,
    b.offset,
    broadcastStridesOf(b, shape),
    out.data,
    0,
  );
  return out;
}

/** Operand shape pairs: same shape, row / column / outer / scalar broadcast, 1×1, odd sizes. */
const PAIRS: [number[], string, number[], string][] = [
  [[5, 7], "contiguous", [5, 7], "contiguous"],
  [[5, 7], "transposed", [5, 7], "sliced"],
  [[5, 7], "sliced", [7], "contiguous"],
  [[5, 1], "contiguous", [1, 7], "contiguous"],
  [[7, 5], "transposed", [], "contiguous"],
  [[1, 1], "contiguous", [1, 1], "contiguous"],
  [[3, 4, 5], "contiguous", [4, 1], "contiguous"],
  [[13], "sliced", [13], "contiguous"],
];

/** Values with ties, signed zeros, NaN and infinities among ordinary ones. */
const FLOAT_VALUES = [0, -0, 1, -1, 2.5, NaN, Infinity, -Infinity, 1e-7, 3, -3, 0.1, 1e30, -1e30];

Deno.test({
  name: "webgpu kernels: every binary kind over float32, int32, bool and mixed operands",
  ...gpuTest,
  async fn() {
    const cases: [DType, DType, readonly BinaryKind[]][] = [
      ["float32", "float32", BINARY],
      ["int32", "int32", BINARY],
      ["bool", "bool", COMPARISONS],
      ["int32", "float32", COMPARISONS],
      ["float32", "bool", COMPARISONS],
    ];
    for (const [ta, tb, kinds] of cases) {
      for (const [sa, la, sb, lb] of PAIRS) {
        const fa = (i: number) =>
          ta === "float32" ? FLOAT_VALUES[(i * 5) % FLOAT_VALUES.length] : ((i * 7) % 11) - 5;
        const fb = (i: number) =>
          tb === "float32" ? FLOAT_VALUES[(i * 3 + 1) % FLOAT_VALUES.length] : ((i * 5) % 9) - 4;
        const a = operand(ta, sa, la, fa);
        const b = operand(tb, sb, lb, fb);
        for (const kind of kinds) {
          const dtype: DType = COMPARISONS.includes(kind) ? "bool" : ta;
          const what = `${kind} ${ta}${la}[${sa}] ${tb}${lb}[${sb}]`;
          const expected = cpuBinary(kind, a, b, dtype);
          const out = gpuEmpty(expected.shape, dtype);
          gpuBinaryInto(kind, twin(a), twin(b), out);
          // WGSL's division may be off by 2.5 ulp; +, −, · and the rest are exact.
          const ulps = kind === "div" && dtype === "float32" ? 3 : 0;
          assertUlps(await out.read(), expected.data, what, () => ulps, () => 0);
        }
      }
    }
    // Into an output that starts at an offset of its storage.
    const a = operand("float32", [4, 3], "contiguous", (i) => i - 5);
    const b = operand("float32", [3], "contiguous", (i) => 2 * i + 1);
    const big = gpuEmpty([6, 3]);
    gpuFill(big, -1);
    gpuBinaryInto("mul", twin(a), twin(b), big.slice(0, 2, 6));
    const expected = cpuBinary("mul", a, b, "float32").data;
    assertSame(
      await big.read(),
      Float32Array.from([-1, -1, -1, -1, -1, -1, ...expected]),
      "mul at an offset",
    );
  },
});

Deno.test({
  name: "webgpu kernels: where over broadcast operands of every dtype, exactly",
  ...gpuTest,
  async fn() {
    for (const dtype of ["float32", "int32", "bool"] as const) {
      const cond = operand("bool", [4, 1], "contiguous", (i) => (i % 3) - 0.5);
      const a = operand(dtype, [4, 6], "transposed", (i) => FLOAT_VALUES[i % 14] ?? i);
      const b = operand(dtype, [6], "sliced", (i) => -i - 1);
      const shape = [4, 6];
      const expected = new Tensor<DType>(
        dtype === "float32"
          ? new Float32Array(24)
          : dtype === "int32"
          ? new Int32Array(24)
          : new Uint8Array(24),
        shape,
      );
      cpu.where(
        shape,
        cond.data as Uint8Array,
        cond.offset,
        broadcastStridesOf(cond, shape),
        a.data,
        a.offset,
        broadcastStridesOf(a, shape),
        b.data,
        b.offset,
        broadcastStridesOf(b, shape),
        expected.data,
        0,
      );
      const got = gpuWhere(twin(cond), twin(a), twin(b), shape);
      assert.equal(got.dtype, dtype);
      assertSame(await got.read(), expected.data, `where ${dtype}`);
    }
  },
});

Deno.test({
  name: "webgpu kernels: casts between float32, int32 and bool are the CPU's exactly",
  ...gpuTest,
  async fn() {
    const floats = [
      0,
      -0,
      0.5,
      -0.5,
      2.7,
      -2.7,
      1e-40,
      NaN,
      Infinity,
      -Infinity,
      2147483520,
      2147483648,
      -2147483648,
      3e9,
      -3e9,
      1e20,
      16777216,
      123456789,
    ];
    const sources: Tensor<DType>[] = [
      operand("float32", [3, 6], "transposed", (i) => floats[i]),
      operand(
        "int32",
        [3, 6],
        "sliced",
        (i) => [0, 1, -1, 7, -2147483648, 2147483647, 16777217, 16777219, -16777219][i % 9],
      ),
      operand("bool", [2, 9], "contiguous", (i) => (i % 3) - 1),
    ];
    for (const source of sources) {
      for (const dtype of ["float32", "int32", "bool"] as const) {
        const got = gpuCast(twin(source), dtype);
        assert.equal(got.dtype, dtype);
        assertSame(await got.read(), source.to(dtype).values(), `${source.dtype} → ${dtype}`);
      }
    }
  },
});

Deno.test({
  name: "webgpu kernels: fill writes the value in the tensor's dtype, from its offset only",
  ...gpuTest,
  async fn() {
    for (const [dtype, value] of [["float32", -1.25], ["int32", -7.9], ["bool", 3]] as const) {
      const whole = gpuEmpty([4, 3], dtype);
      gpuFill(whole, 0);
      gpuFill(whole.slice(0, 1, 3), value);
      const expected = new Tensor<DType>(
        dtype === "float32"
          ? new Float32Array(12)
          : dtype === "int32"
          ? new Int32Array(12)
          : new Uint8Array(12),
        [4, 3],
      );
      expected.data.fill(dtype === "bool" ? 1 : value, 3, 9);
      assertSame(await whole.read(), expected.data, `fill ${dtype}`);
    }
  },
});

Deno.test({
  name: "webgpu dropout: the mask is the CPU's bit for bit and the generator advances alike",
  ...gpuTest,
  async fn() {
    const rng = new Rng(4);
    const x = new Tensor(Float32Array.from({ length: 7 * 9 }, () => rng.normal()), [7, 9]);
    for (const p of [0.1, 0.5, 0.9, 0.999999]) {
      for (const [layout, view] of [["contiguous", x], ["transposed", x.transpose()]] as const) {
        const cpuRng = new Rng(21);
        const gpuRng = new Rng(21);
        const expected = dropout(view, p, { rng: cpuRng });
        const got = dropout(twin(view), p, { rng: gpuRng });
        assertSame(await got.read(), expected.values(), `dropout ${p} ${layout}`);
        assert.equal(gpuRng.nextUint32(), cpuRng.nextUint32(), "the generators end alike");
      }
      // The kernel's mask itself against the CPU's dropoutMask from the same bits.
      const bits = new Uint32Array(x.size);
      new Rng(5).fillUint32(bits);
      const mask = new Float32Array(x.size);
      cpu.dropoutMask(bits, p, mask, x.size);
      assertSame(await gpuDropout(twin(x), bits, p).mask.read(), mask, `mask ${p}`);
    }
    // Thresholds at the ends: every draw kept, or the largest p below 1 drops nearly all.
    const edge = Uint32Array.from([0, 1, 0x7fffffff, 0xfffffffe, 0xffffffff]);
    for (const p of [1e-12, 1 - 2 ** -40]) {
      const mask = new Float32Array(edge.length);
      cpu.dropoutMask(edge, p, mask, edge.length);
      const ones = twin(new Tensor(new Float32Array(edge.length).fill(1), [edge.length]));
      assertSame(await gpuDropout(ones, edge, p).mask.read(), mask, `mask at p = ${p}`);
    }
  },
});

/** Random CPU values of `shape` (away from 0 for kinds with a kink there; positive for logs). */
function random(shape: number[], seed: number, positive = false): Tensor {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor(
    Float32Array.from({ length: n }, () => {
      const v = rng.normal() * 2;
      return positive ? Math.abs(v) + 0.1 : v;
    }),
    shape,
  );
}

function applyUnary(kind: UnaryKind, x: Tensor, p: number): Tensor {
  switch (kind) {
    case "pow":
      return x.pow(p);
    case "leakyRelu":
      return x.leakyRelu(p);
    case "gelu":
      return gelu(x, { approximate: p === 0 ? "none" : "tanh" });
    default:
      return (x as unknown as Record<string, () => Tensor>)[kind]();
  }
}

Deno.test({
  name: "webgpu ops: every unary op and its gradient on device tensors are the CPU's",
  ...gpuTest,
  async fn() {
    const w = random([5, 6], 77);
    const wGpu = w.to("webgpu");
    for (const kind of UNARY) {
      for (const p of PARAMS[kind] ?? [0]) {
        const positive = kind === "log" || kind === "sqrt" || (kind === "pow" && p % 1 !== 0);
        const x = random([6, 5], 3, positive);
        const leafCpu = x.detach();
        leafCpu.requiresGrad = true;
        const leafGpu = x.to("webgpu");
        leafGpu.requiresGrad = true;
        // A transposed view in, a weighted sum out: the gradient is neither 1 nor contiguous.
        const yCpu = applyUnary(kind, leafCpu.transpose(), p);
        const yGpu = applyUnary(kind, leafGpu.transpose(), p);
        assert.equal(yGpu.device, "webgpu");
        const xs = leafCpu.transpose().values();
        const what = `${kind}(${p})`;
        assertUlps(await yGpu.read(), yCpu.values(), what, (i) => forwardUlps(kind, p, xs[i]));
        const [gCpu] = gradients(yCpu.mul(w).sum(), [leafCpu]);
        const [gGpu] = gradients(yGpu.mul(wGpu).sum(), [leafGpu]);
        const leaves = leafCpu.values();
        assertUlps(
          await gGpu.read(),
          gCpu.values(),
          `${what} gradient`,
          (i) => 8 + (kind === "pow" ? forwardUlps(kind, p - 1, leaves[i]) : 0),
          () => 2 ** -21,
        );
      }
    }
  },
});

Deno.test({
  name: "webgpu ops: second derivatives of unary ops go through the differentiable rule",
  ...gpuTest,
  async fn() {
    for (const kind of ["tanh", "sin", "gelu", "exp"] as const) {
      const x = random([4, 3], 8);
      const results = [];
      for (const leaf of [x.detach(), x.to("webgpu")]) {
        leaf.requiresGrad = true;
        const [g] = gradients(applyUnary(kind, leaf, 0).sum(), [leaf], { createGraph: true });
        const [gg] = gradients(g.sum(), [leaf]);
        results.push(await gg.read());
      }
      assertUlps(results[1], results[0], `${kind}''`, () => 16, () => 2 ** -20);
    }
  },
});

function binaryOp(kind: BinaryKind, a: Tensor, b: Tensor): AnyTensor {
  if (kind === "maximum") return maximum(a, b);
  if (kind === "minimum") return minimum(a, b);
  return (a as unknown as Record<string, (b: Tensor) => AnyTensor>)[kind](b);
}

Deno.test({
  name: "webgpu ops: binary arithmetic and comparisons with broadcasting, and their gradients",
  ...gpuTest,
  async fn() {
    const a = random([4, 5], 1);
    const cases: [string, Tensor, Tensor][] = [
      ["same shape", a, random([4, 5], 2)],
      ["row broadcast", a, random([5], 3)],
      ["column broadcast", random([4, 1], 4), a],
      ["transposed", random([5, 4], 5).transpose(), a],
      ["scalar", a, new Tensor(new Float32Array([0.5]), [])],
      ["ties", a, a],
    ];
    for (const kind of BINARY) {
      for (const [what, x, y] of cases) {
        const label = `${kind} ${what}`;
        const xc = x.detach();
        const yc = y.detach();
        const xg = twin(x);
        const yg = twin(y);
        const arithmetic = !COMPARISONS.includes(kind);
        for (const t of [xc, yc, xg, yg]) t.requiresGrad = arithmetic;
        const cpuOut = binaryOp(kind, xc, yc);
        const gpuOut = binaryOp(kind, xg, yg);
        assert.equal(gpuOut.dtype, cpuOut.dtype, `${label}: dtype`);
        assert.deepEqual(gpuOut.shape, cpuOut.shape, `${label}: shape`);
        assertUlps(await gpuOut.read(), cpuOut.values(), label, () => (kind === "div" ? 3 : 0));
        if (!arithmetic) continue;
        const [gxc, gyc] = gradients((cpuOut as Tensor).sum(), [xc, yc]);
        const [gxg, gyg] = gradients((gpuOut as Tensor).sum(), [xg, yg]);
        // Broadcast operands' gradients are sums, of terms that may cancel: a few ulp of the
        // largest gradient.
        for (const [got, expected, name] of [[gxg, gxc, "da"], [gyg, gyc, "db"]] as const) {
          const values = expected.values();
          const atol = 8 * ulpOf(values.reduce((m, v) => Math.max(m, Math.abs(v)), 0));
          assertUlps(await got.read(), values, `${label} ${name}`, () => 4, () => atol);
        }
      }
    }
  },
});

Deno.test({
  name: "webgpu ops: where, contiguous, cat, sliceScatter and dropout, with gradients",
  ...gpuTest,
  async fn() {
    const x = random([3, 4], 7);
    const y = random([4], 8);
    const runs: { values: ArrayLike<number>[]; grads: ArrayLike<number>[] }[] = [];
    for (const device of ["cpu", "webgpu"] as const) {
      const xl = device === "cpu" ? x.detach() : x.to("webgpu");
      const yl = device === "cpu" ? y.detach() : y.to("webgpu");
      xl.requiresGrad = true;
      yl.requiresGrad = true;
      const w = where(xl.gt(0), xl, yl);
      const c = xl.transpose().contiguous();
      const joined = cat([xl, yl.reshape(1, 4), xl.slice(0, 0, 3, 2)], 0);
      const scattered = sliceScatter(xl.transpose(), [4, 7], 1, 1, 2);
      const dropped = dropout(xl.transpose(), 0.4, { rng: new Rng(3) });
      const ints = cat([xl.to("int32"), xl.gt(0).to("int32")], 1);
      const loss = w.sum().add(c.mul(c).sum()).add(joined.mul(joined).sum())
        .add(scattered.sum()).add(dropped.mul(dropped).sum());
      const grads = gradients(loss, [xl, yl]);
      runs.push({
        values: await Promise.all([w, c, joined, scattered, dropped, ints].map((t) => t.read())),
        grads: await Promise.all(grads.map((g) => g.read())),
      });
      assert.equal(w.device, device);
    }
    const names = ["where", "contiguous", "cat", "sliceScatter", "dropout", "cat int32"];
    runs[0].values.forEach((v, i) => assertSame(runs[1].values[i], v, names[i]));
    runs[0].grads.forEach((g, i) => assertUlps(runs[1].grads[i], g, `grad ${i}`, () => 2));
  },
});
