/**
 * The elementwise primitives on the WebGPU device: every unary kind (one generated kernel per kind,
 * its formula beside the CPU's in `kernels/elementwise.ts`), binary arithmetic and comparisons over
 * strided, broadcast operands, `where`, the copies (`contiguous`, `cat`, `sliceScatter`),
 * `dropout` (the mask drawn on the host from the same generator as the CPU's, so the masks are
 * the same bits), and the helpers the core calls outside the table (`binaryInto`, `cast`, `fill`).
 *
 * Unary gradients use the rules written in differentiable ops (`derivative` in `ops/unary.ts`),
 * which run on the device by themselves.
 *
 * @module
 */

import type { DeviceHelpers, DeviceOp } from "../../device.ts";
import type { DType } from "../../dtype.ts";
import type { BinaryKind, UnaryKind } from "../elementwise.ts";
import { dropoutMask } from "../elementwise.ts";
import type { Primitive } from "../../ops/mod.ts";
import { derivative, type UnaryAttrs } from "../../ops/unary.ts";
import { broadcastShapes, contiguousStrides, sizeOf } from "../../shape.ts";
import { type AnyTensor, Tensor } from "../../tensor.ts";
import { f32Bits, LINEAR_ID_WGSL, webgpu, WORKGROUP_1D } from "./runtime.ts";
import {
  copyStridedGpu,
  gpuDense,
  gpuEmpty,
  gpuStorage,
  STRIDED_WGSL,
  STRIDED_WORDS,
  stridedParams,
} from "./tensor.ts";
import type { Rng } from "../../rng.ts";

/**
 * NaN by its bits: shader compilers may fold `x != x` to false (they assume no NaNs), so a NaN
 * test that must hold is written on the bit pattern.
 */
const NAN_WGSL = `
fn isNan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
`;

/** WGSL helpers the unary formulas use: erf/erfc to ~1e-7, log1p, expm1, a tanh that never overflows. */
const MATH_WGSL = `
fn erfcPositive(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  return t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
}
fn erfc_(x: f32) -> f32 {
  let c = erfcPositive(abs(x));
  return select(2.0 - c, c, x >= 0.0);
}
fn erf_(x: f32) -> f32 {
  if (abs(x) < 0.5) {
    let x2 = x * x;
    return 1.1283791670955126 * x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (0.1 + x2 * (-1.0 / 42.0 +
      x2 * (1.0 / 216.0 + x2 * (-1.0 / 1320.0))))));
  }
  return 1.0 - erfc_(x);
}
fn tanh_(x: f32) -> f32 {
  let t = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - t) / (1.0 + t);
}
fn log1p_(x: f32) -> f32 {
  let u = 1.0 + x;
  if (u == 1.0) { return x; }
  return log(u) * x / (u - 1.0);
}
fn expm1_(x: f32) -> f32 {
  let u = exp(x);
  if (u == 1.0) { return x; }
  let um1 = u - 1.0;
  if (um1 == -1.0) { return -1.0; }
  return um1 * x / log(u);
}
fn pow_(x: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  if (p == 1.0) { return x; }
  if (p == 2.0) { return x * x; }
  if (p == 0.5) { return sqrt(x); }
  if (p == -1.0) { return 1.0 / x; }
  let r = pow(abs(x), p);
  if (x >= 0.0) { return r; }
  if (floor(p) != p) { return bitcast<f32>(0x7fc00000u); }
  let odd = (floor(p * 0.5) * 2.0) != p;
  return select(r, -r, odd);
}
`;

/** The WGSL of each unary kind in `x` and the parameter `p` (same meaning as the CPU kernel's). */
const UNARY_WGSL: { readonly [K in UnaryKind]: string } = {
  neg: "-x",
  exp: "exp(x)",
  log: "log(x)",
  sqrt: "sqrt(x)",
  abs: "abs(x)",
  relu: "select(0.0, x, x > 0.0)",
  leakyRelu: "select(x * p, x, x > 0.0)",
  sigmoid: "1.0 / (1.0 + exp(-x))",
  tanh: "tanh_(x)",
  pow: "pow_(x, p)",
  erf: "erf_(x)",
  gelu:
    "select(0.5 * x * (1.0 + tanh_(0.7978845608028654 * (x + 0.044715 * x * x * x))), 0.5 * x * erfc_(-x * 0.7071067811865476), p == 0.0)",
  log1p: "log1p_(x)",
  expm1: "expm1_(x)",
  sin: "sin(x)",
  cos: "cos(x)",
  sign: "select(sign(x), x, isNan(x))",
  floor: "floor(x)",
  round: "round(x)",
};

function unaryKernel(kind: UnaryKind) {
  return webgpu().kernel(
    `unary ${kind}`,
    `${NAN_WGSL}
${MATH_WGSL}
${STRIDED_WGSL}
${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = linearId(gid, groups);
  if (i >= pu(0)) { return; }
  let p = pf(1);
  let x = src[stridedOffset(i, 2u)];
  dst[i] = ${UNARY_WGSL[kind]};
}`,
    1,
    1,
  );
}

/** x ∘ y of each binary kind; comparisons give 1 or 0 (as u32 words), maximum/minimum keep NaN. */
const BINARY_WGSL: { readonly [K in BinaryKind]: string } = {
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
  div: "a / b",
  maximum: "select(max(a, b), a + b, isNan(a) || isNan(b))",
  minimum: "select(min(a, b), a + b, isNan(a) || isNan(b))",
  eq: "a == b",
  ne: "a != b",
  lt: "a < b",
  le: "a <= b",
  gt: "a > b",
  ge: "a >= b",
};

const COMPARISONS: readonly BinaryKind[] = ["eq", "ne", "lt", "le", "gt", "ge"];

/** WGSL element type of a dtype on the device. */
function wgslType(dtype: DType): string {
  return dtype === "float32" ? "f32" : dtype === "int32" ? "i32" : "u32";
}

function binaryKernel(kind: BinaryKind, dtype: DType) {
  const t = wgslType(dtype);
  const comparison = COMPARISONS.includes(kind);
  const out = comparison ? "u32" : t;
  const value = comparison ? `select(0u, 1u, ${BINARY_WGSL[kind]})` : BINARY_WGSL[kind];
  const nanFree = t !== "f32" && (kind === "maximum" || kind === "minimum")
    ? kind === "maximum" ? "max(a, b)" : "min(a, b)"
    : value;
  return webgpu().kernel(
    `binary ${kind} ${dtype}`,
    `${NAN_WGSL}
${STRIDED_WGSL}
${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read> left: array<${t}>;
@group(0) @binding(2) var<storage, read> right: array<${t}>;
@group(0) @binding(3) var<storage, read_write> dst: array<${out}>;
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = linearId(gid, groups);
  if (i >= pu(0)) { return; }
  let a = left[stridedOffset(i, 2u)];
  let b = right[stridedOffset(i, ${2 + STRIDED_WORDS}u)];
  dst[pu(1) + i] = ${nanFree};
}`,
    2,
    1,
  );
}

/** Strides that read `t` broadcast to `shape` (0 on broadcast dims). */
function broadcastStrides(t: AnyTensor, shape: readonly number[]): number[] {
  const lead = shape.length - t.ndim;
  return shape.map((_, d) => (d < lead || t.shape[d - lead] === 1 ? 0 : t.strides[d - lead]));
}

function binaryInto(kind: BinaryKind, a: AnyTensor, b: AnyTensor, out: AnyTensor): void {
  if (a.dtype !== b.dtype) {
    throw new TypeError(`${kind}: operands of dtypes ${a.dtype} and ${b.dtype} on webgpu`);
  }
  const n = out.size;
  if (n === 0) return;
  webgpu().dispatch1d(
    binaryKernel(kind, a.dtype),
    [gpuStorage(a, kind), gpuStorage(b, kind), gpuStorage(out, kind)],
    [
      n,
      out.offset,
      ...stridedParams(out.shape, broadcastStrides(a, out.shape), a.offset),
      ...stridedParams(out.shape, broadcastStrides(b, out.shape), b.offset),
    ],
    n,
  );
}

function whereKernel() {
  return webgpu().kernel(
    "where",
    `${STRIDED_WGSL}
${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read> cond: array<u32>;
@group(0) @binding(2) var<storage, read> left: array<u32>;
@group(0) @binding(3) var<storage, read> right: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = linearId(gid, groups);
  if (i >= pu(0)) { return; }
  let c = cond[stridedOffset(i, 1u)];
  let a = left[stridedOffset(i, ${1 + STRIDED_WORDS}u)];
  let b = right[stridedOffset(i, ${1 + 2 * STRIDED_WORDS}u)];
  dst[i] = select(b, a, c != 0u);
}`,
    3,
    1,
  );
}

function castKernel(from: DType, to: DType) {
  const expr = to === "bool"
    ? "select(0u, 1u, x != 0)"
    : to === "int32"
    ? from === "float32" ? "i32(trunc(x))" : "i32(x)"
    : "f32(x)";
  const zero = from === "float32" ? "0.0" : from === "int32" ? "0i" : "0u";
  return webgpu().kernel(
    `cast ${from} ${to}`,
    `${STRIDED_WGSL}
${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read> src: array<${wgslType(from)}>;
@group(0) @binding(2) var<storage, read_write> dst: array<${wgslType(to)}>;
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = linearId(gid, groups);
  if (i >= pu(0)) { return; }
  let x = src[stridedOffset(i, 1u)];
  dst[i] = ${expr.replace("x != 0", `x != ${zero}`)};
}`,
    1,
    1,
  );
}

function fillKernel() {
  return webgpu().kernel(
    "fill value",
    `${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = linearId(gid, groups);
  if (i >= pu(0)) { return; }
  dst[pu(1) + i] = pu(2);
}`,
    0,
    1,
  );
}

/** The word a value is stored as on the device for `dtype`. */
function wordOf(value: number, dtype: DType): number {
  if (dtype === "float32") return f32Bits(value);
  if (dtype === "int32") return value >>> 0;
  return value !== 0 ? 1 : 0;
}

function unaryOp(kind: UnaryKind): DeviceOp {
  return {
    forward([x], { param }: UnaryAttrs) {
      const out = gpuEmpty(x.shape);
      const n = x.size;
      if (n > 0) {
        webgpu().dispatch1d(
          unaryKernel(kind),
          [gpuStorage(x, kind), gpuStorage(out, kind)],
          [n, f32Bits(param), ...stridedParams(x.shape, x.strides, x.offset)],
          n,
        );
      }
      return { out, saved: x };
    },
    backward(g, _saved, [x], { param }: UnaryAttrs, out) {
      return [derivative[kind](g, x as Tensor, out, param)];
    },
  };
}

function arithmetic(kind: BinaryKind): DeviceOp {
  return {
    forward([a, b]) {
      if (a.dtype !== "float32" || b.dtype !== "float32") {
        throw new TypeError(`${kind}: expected float32 tensors, got ${a.dtype}, ${b.dtype}`);
      }
      const out = gpuEmpty(broadcastShapes(a.shape, b.shape, kind));
      binaryInto(kind, a, b, out);
      return { out, saved: null };
    },
  };
}

/** Copies each input into its place along `dim` of one new tensor. */
const catOp: DeviceOp = {
  forward(inputs, { dim, sizes }: { dim: number; sizes: number[] }) {
    const shape = [...inputs[0].shape];
    shape[dim] = sizes.reduce((a, b) => a + b, 0);
    const out = gpuEmpty(shape, inputs[0].dtype);
    const strides = contiguousStrides(shape);
    let at = 0;
    inputs.forEach((t, i) => {
      if (t.device !== "webgpu") throw new Error(`cat: input ${i} is on ${t.device}, not webgpu`);
      copyStridedGpu(t, gpuStorage(out, "cat"), at * strides[dim], strides);
      at += sizes[i];
    });
    return { out, saved: null };
  },
};

/** Every elementwise primitive on the device. */
export const elementwiseOps: { readonly [P in Primitive]?: DeviceOp } = {
  ...(Object.fromEntries(
    (Object.keys(UNARY_WGSL) as UnaryKind[]).map((kind) => [kind, unaryOp(kind)]),
  ) as { [K in UnaryKind]: DeviceOp }),
  add: arithmetic("add"),
  sub: arithmetic("sub"),
  mul: arithmetic("mul"),
  div: arithmetic("div"),
  maximum: arithmetic("maximum"),
  minimum: arithmetic("minimum"),
  where: {
    forward([cond, a, b]) {
      if (cond.dtype !== "bool") {
        throw new TypeError(`where: the condition is ${cond.dtype}, not bool`);
      }
      if (a.dtype !== b.dtype) {
        throw new TypeError(
          `where: the branches have dtypes ${a.dtype} and ${b.dtype}; convert one`,
        );
      }
      const shape = broadcastShapes(
        broadcastShapes(cond.shape, a.shape, "where"),
        b.shape,
        "where",
      );
      const out = gpuEmpty(shape, a.dtype);
      const n = out.size;
      if (n > 0) {
        webgpu().dispatch1d(
          whereKernel(),
          [
            gpuStorage(cond, "where"),
            gpuStorage(a, "where"),
            gpuStorage(b, "where"),
            gpuStorage(out, "where"),
          ],
          [
            n,
            ...stridedParams(shape, broadcastStrides(cond, shape), cond.offset),
            ...stridedParams(shape, broadcastStrides(a, shape), a.offset),
            ...stridedParams(shape, broadcastStrides(b, shape), b.offset),
          ],
          n,
        );
      }
      return { out, saved: null };
    },
  },
  contiguous: {
    forward([x]) {
      const out = gpuEmpty(x.shape, x.dtype);
      copyStridedGpu(x, gpuStorage(out, "contiguous"), 0, out.strides);
      return { out, saved: null };
    },
  },
  sliceScatter: {
    forward(
      [src],
      { shape, dim, start, step }: { shape: number[]; dim: number; start: number; step: number },
    ) {
      const out = gpuEmpty(shape, "float32", true);
      const strides = [...out.strides];
      strides[dim] *= step;
      const offset = src.shape[dim] > 0 ? start * out.strides[dim] : 0;
      copyStridedGpu(src, gpuStorage(out, "sliceScatter"), offset, strides);
      return { out, saved: null };
    },
  },
  cat: catOp,
  dropout: {
    forward([x], { p, rng }: { p: number; rng: Rng }) {
      // The CPU's mask, bit for bit: the generator is sequential, so it runs on the host.
      const bits = new Uint32Array(x.size);
      rng.fillUint32(bits);
      const host = new Float32Array(x.size);
      dropoutMask(bits, p, host, x.size);
      const mask = new Tensor(webgpu().upload(host), x.shape);
      const out = gpuEmpty(x.shape);
      binaryInto("mul", x, mask, out);
      return { out, saved: mask };
    },
  },
};

/** The elementwise helpers the core calls outside the table. */
export const elementwiseHelpers: Pick<DeviceHelpers, "binaryInto" | "cast" | "fill"> = {
  binaryInto,
  cast(x: AnyTensor, dtype: DType): AnyTensor {
    if (x.dtype === dtype) return x;
    const out = gpuEmpty(x.shape, dtype);
    const n = x.size;
    if (n > 0) {
      webgpu().dispatch1d(
        castKernel(x.dtype, dtype),
        [gpuStorage(x, "cast"), gpuStorage(out, "cast")],
        [n, ...stridedParams(x.shape, x.strides, x.offset)],
        n,
      );
    }
    return out;
  },
  fill(out: AnyTensor, value: number): void {
    const n = sizeOf(out.shape);
    if (n === 0) return;
    const dense = gpuDense(out);
    if (dense !== out) throw new Error("fill: expected a contiguous webgpu tensor");
    webgpu().dispatch1d(
      fillKernel(),
      [gpuStorage(out, "fill")],
      [n, out.offset, wordOf(value, out.dtype)],
      n,
    );
  },
};
