/**
 * The elementwise WGSL kernels: every unary kind and its derivative, binary arithmetic and
 * comparisons over strided, broadcast operands, `where`, dtype casts, fill, and the dropout mask.
 * Each kind's formula sits in one table ({@linkcode UNARY_WGSL}, {@linkcode BINARY_WGSL}) beside
 * the CPU's in `kernels/elementwise.ts`, with the same parameter meaning and special cases: round
 * halves to even, maximum/minimum propagate NaN, sign keeps −0 and NaN, exact GELU uses erfc.
 *
 * Accuracy. The CPU evaluates each map in float64 and rounds once; WGSL has only float32, and its
 * built-in transcendentals are loosely specified (sin and cos to 2⁻¹¹ absolute, exp to 3 + 2|x|
 * ulp, no log1p, expm1 or erf at all). So the maps are written out here in float32 with range
 * reduction and polynomials: exp, expm1, log and log1p, tanh, sigmoid, sin and cos (arguments up
 * to 4096; past that the built-ins), and erf / erfc, whose tail is e^(−z²)·g(z) with g fitted at
 * load time by Chebyshev interpolation of the CPU's own erfc (so the formula is the CPU's, not a
 * second one). e^(−z²) splits z into a 12-bit head and a tail so that z² is exact, which keeps
 * the relative accuracy of erfc and exact GELU deep in the tail. The tests hold every kind to a
 * few ulp of the CPU's result (or 2⁻²⁴ absolute on values of order one that pass through zero).
 * pow with an integer exponent up to 64 multiplies; other exponents go through exp(p·log|x|), whose
 * error grows with |p·log x|.
 *
 * Every dtype is one 32-bit word on the device (f32, i32, bool as u32 0/1). Strided operands are
 * first coalesced with the CPU's {@linkcode coalesce}, so the common layouts index with one or
 * two divisions per element.
 *
 * @module
 */

import type { DType } from "../../dtype.ts";
import type { Shape } from "../../shape.ts";
import { contiguousStrides, sizeOf } from "../../shape.ts";
import { type AnyTensor, Tensor } from "../../tensor.ts";
import { type BinaryKind, coalesce, type UnaryKind } from "../elementwise.ts";
import { erfc } from "../erf.ts";
import { f32Bits, type GpuKernel, LINEAR_ID_WGSL, webgpu, WORKGROUP_1D } from "./runtime.ts";
import { gpuEmpty, gpuStorage, STRIDED_WGSL, STRIDED_WORDS, stridedParams } from "./tensor.ts";

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** `v` rounded to float32 with its lowest `bits` mantissa bits cleared (a short head). */
function head(v: number, bits: number): number {
  F32[0] = v;
  U32[0] &= ~((1 << bits) - 1);
  return F32[0];
}

/** A WGSL f32 literal of `v` (nine digits: float32 round-trips). */
function lit(v: number): string {
  return `(${Math.fround(v).toPrecision(9)}f)`;
}

/** ln 2 in two parts: a 16-bit head (n·head is exact for |n| ≤ 255) and the rest. */
const LN2_HI = head(Math.LN2, 8);
const LN2_LO = Math.LN2 - LN2_HI;
/** π/2 in three parts: two 12-bit heads (n·head exact for n < 4096) and the rest. */
const PIO2_1 = head(Math.PI / 2, 12);
const PIO2_2 = head(Math.PI / 2 - PIO2_1, 12);
const PIO2_3 = Math.PI / 2 - PIO2_1 - PIO2_2;

/** 1/k! for the exp-family polynomials. */
function invFactorial(k: number): number {
  let f = 1;
  for (let i = 2; i <= k; i++) f *= i;
  return 1 / f;
}

/** Horner form of Σ c[i]·v^i in WGSL. */
function horner(v: string, c: readonly number[]): string {
  let s = lit(c[c.length - 1]);
  for (let i = c.length - 2; i >= 0; i--) s = `(${lit(c[i])} + ${v} * ${s})`;
  return s;
}

/**
 * Pieces of g(z) = erfc(z)·e^(z²) on [0.5, 10]: interval ends and Chebyshev degrees, chosen so
 * each piece interpolates to ~1e-10 relative (its float32 evaluation adds about an ulp).
 */
const ERFC_PIECES: readonly [number, number, number][] = [
  [0.5, 1, 10],
  [1, 2, 11],
  [2, 3.5, 11],
  [3.5, 6, 11],
  [6, 10, 11],
];

/** Chebyshev coefficients of f on [a, b] interpolated at n nodes. */
function chebyshev(f: (x: number) => number, a: number, b: number, n: number): number[] {
  const c = new Array<number>(n).fill(0);
  for (let k = 0; k < n; k++) {
    const v = f(0.5 * (a + b) + 0.5 * (b - a) * Math.cos((Math.PI * (k + 0.5)) / n));
    for (let j = 0; j < n; j++) c[j] += (2 / n) * v * Math.cos((Math.PI * j * (k + 0.5)) / n);
  }
  c[0] /= 2;
  return c;
}

/** WGSL of g(z) = erfc(z)·e^(z²) for z ≥ 0.5 by Clenshaw's recurrence on each piece. */
function erfcScaledWgsl(): string {
  const g = (z: number) => erfc(z) * Math.exp(z * z);
  const pieces = ERFC_PIECES.map(([a, b, n]) => {
    const c = chebyshev(g, a, b, n);
    let body = `let y = (2.0 * z - ${lit(a + b)}) * ${lit(1 / (b - a))};
    let y2 = 2.0 * y;
    var b1 = 0.0;
    var b2 = 0.0;
    var t = 0.0;\n`;
    for (let j = n - 1; j >= 1; j--) {
      body += `    t = y2 * b1 - b2 + ${lit(c[j])}; b2 = b1; b1 = t;\n`;
    }
    body += `    return y * b1 - b2 + ${lit(c[0])};`;
    return `if (z < ${lit(b)}) {\n    ${body}\n  }`;
  });
  return `fn erfcScaled(z: f32) -> f32 {\n  ${pieces.join(" else ")}\n  return 0.0;\n}`;
}

/** The erf series coefficients (2/√π)·(−1)ⁿ/(n!(2n+1)) in x², for |x| < 0.5. */
const ERF_SERIES = Array.from(
  { length: 9 },
  (_, n) => (1.1283791670955126 * (n % 2 === 0 ? 1 : -1) * invFactorial(n)) / (2 * n + 1),
);

/** The float32 math the unary kinds use (see the module doc for the methods). */
const MATH_WGSL = `
fn isNan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn inf_() -> f32 { return bitcast<f32>(0x7f800000u); }
fn nan_() -> f32 { return bitcast<f32>(0x7fc00000u); }
/** |x| with the sign bit of s. */
fn copySign(x: f32, s: f32) -> f32 {
  return bitcast<f32>((bitcast<u32>(x) & 0x7fffffffu) | (bitcast<u32>(s) & 0x80000000u));
}
/** x·2ⁿ in two steps, so no step leaves the exponent range of ldexp. */
fn scale2(x: f32, n: i32) -> f32 {
  let h = n / 2;
  return ldexp(ldexp(x, h), n - h);
}
fn exp_(x: f32) -> f32 {
  if (isNan_(x)) { return x; }
  if (x > 88.7228394) { return inf_(); }
  if (x < -104.0) { return 0.0; }
  let n = round(x * ${lit(Math.LOG2E)});
  let r = (x - n * ${lit(LN2_HI)}) - n * ${lit(LN2_LO)};
  let p = 1.0 + r * ${horner("r", Array.from({ length: 8 }, (_, k) => invFactorial(k + 1)))};
  return scale2(p, i32(n));
}
fn expm1_(x: f32) -> f32 {
  if (isNan_(x)) { return x; }
  if (x > 88.7228394) { return inf_(); }
  if (x < -18.0) { return -1.0; }
  let n = round(x * ${lit(Math.LOG2E)});
  let r = (x - n * ${lit(LN2_HI)}) - n * ${lit(LN2_LO)};
  // expm1(r) = r + r²·(1/2 + r/6 + …), |r| ≤ ln2/2.
  let e = r + r * r * ${horner("r", Array.from({ length: 8 }, (_, k) => invFactorial(k + 2)))};
  if (n == 0.0) { return e; }
  let k = i32(n);
  if (k > 24) { return scale2(e + 1.0, k); }
  // 2ᵏ − 1 is exact for k ≤ 24, so one rounding joins the parts.
  let s = ldexp(1.0, k);
  return (s - 1.0) + s * e;
}
fn log_(x: f32) -> f32 {
  if (isNan_(x)) { return x; }
  if (x < 0.0) { return nan_(); }
  if (x == 0.0) { return -inf_(); }
  var bits = bitcast<u32>(x);
  if (bits == 0x7f800000u) { return x; }
  var k = 0i;
  if (bits < 0x00800000u) {
    bits = bitcast<u32>(x * 33554432.0);
    k = -25;
  }
  k += i32(bits >> 23u) - 127;
  var m = bitcast<f32>((bits & 0x007fffffu) | 0x3f800000u);
  if (m > ${lit(Math.SQRT2)}) {
    m = m * 0.5;
    k += 1;
  }
  let kf = f32(k);
  return kf * ${lit(LN2_HI)} + (logCore(m - 1.0) + kf * ${lit(LN2_LO)});
}
/** log(1 + f) for √½ − 1 ≤ f ≤ √2 − 1: 2·atanh(s), s = f/(2 + f), as f − s·(f − R). */
fn logCore(f: f32) -> f32 {
  let s = f / (2.0 + f);
  let s2 = s * s;
  let R = s2 * ${horner("s2", [2 / 3, 2 / 5, 2 / 7, 2 / 9, 2 / 11, 2 / 13])};
  return f - s * (f - R);
}
fn log1p_(x: f32) -> f32 {
  // Near 0, x itself is the f of logCore: no rounding of 1 + x at all. (Kahan's log(u)·x/(u − 1)
  // with u = 1 + x does not survive compilers that fold (1 + x) − 1 to x, as llvmpipe's does.)
  if (x > ${lit(Math.SQRT1_2 - 1)} && x < ${lit(Math.SQRT2 - 1)}) { return logCore(x); }
  let u = 1.0 + x;
  if (u == inf_() || u == 0.0) { return log_(u); }
  // Elsewhere log(u) ≥ 0.34 in size, so u's rounding costs under an ulp; the correction term
  // recovers it where the compiler keeps it.
  return log_(u) + (x - (u - 1.0)) / u;
}
fn tanh_(x: f32) -> f32 {
  let t = abs(x);
  if (t > 9.1) { return copySign(1.0, x); }
  let e = expm1_(2.0 * t);
  return copySign(e / (e + 2.0), x);
}
fn sigmoid_(v: f32) -> f32 {
  // Two branches keep exp's argument non-positive, as the CPU's.
  if (v >= 0.0) { return 1.0 / (1.0 + exp_(-v)); }
  let e = exp_(v);
  return e / (1.0 + e);
}
fn sinPoly(r: f32) -> f32 {
  let r2 = r * r;
  return r + r * r2 * ${horner("r2", [-1 / 6, 1 / 120, -1 / 5040, 1 / 362880, -1 / 39916800])};
}
fn cosPoly(r: f32) -> f32 {
  let r2 = r * r;
  return 1.0 - (0.5 * r2 - r2 * r2 * ${
  horner("r2", [1 / 24, -1 / 720, 1 / 40320, -1 / 3628800, 1 / 479001600])
});
}
/** sin (q = 0) or cos (q = 1) of x: x − n·π/2 in three parts, then the quadrant's polynomial. */
fn sinCos(x: f32, q: u32) -> f32 {
  if (!(abs(x) <= 4096.0)) {
    if (isNan_(x) || abs(x) == inf_()) { return nan_(); }
    return select(sin(x), cos(x), q == 1u);
  }
  let n = round(x * ${lit(2 / Math.PI)});
  let r = ((x - n * ${lit(PIO2_1)}) - n * ${lit(PIO2_2)}) - n * ${lit(PIO2_3)};
  let quadrant = (u32(i32(n) & 3) + q) & 3u;
  switch quadrant {
    case 0u: { return sinPoly(r); }
    case 1u: { return cosPoly(r); }
    case 2u: { return -sinPoly(r); }
    default: { return -cosPoly(r); }
  }
}
/** e^(−z·z) with z·z exact: z = h + l with h of 12 bits, so h² is exact and z² = h² + l·(z + h). */
fn expNegSquare(z: f32) -> f32 {
  if (!(abs(z) < 11.0)) { return select(0.0, z, isNan_(z)); }
  let h = bitcast<f32>(bitcast<u32>(z) & 0xfffff000u);
  let l = z - h;
  return exp_(-(h * h)) * exp_(-(l * (z + h)));
}
/** e^(−x·x/2), as expNegSquare (halving is exact). */
fn expNegHalfSquare(x: f32) -> f32 {
  if (!(abs(x) < 15.0)) { return select(0.0, x, isNan_(x)); }
  let h = bitcast<f32>(bitcast<u32>(x) & 0xfffff000u);
  let l = x - h;
  return exp_(-0.5 * (h * h)) * exp_(-0.5 * (l * (x + h)));
}
${erfcScaledWgsl()}
fn erfSmall(x: f32) -> f32 {
  let x2 = x * x;
  return x * ${horner("x2", ERF_SERIES)};
}
fn erf_(x: f32) -> f32 {
  let z = abs(x);
  if (z < 0.5) { return erfSmall(x); }
  if (isNan_(x)) { return x; }
  return copySign(1.0 - expNegSquare(z) * erfcScaled(z), x);
}
/** erfc(−x/√2), the normal CDF's double, with the tail's e^(−x²/2) from x itself. */
fn erfcGelu(x: f32) -> f32 {
  let z = -x * ${lit(Math.SQRT1_2)};
  if (abs(z) < 0.5) { return 1.0 - erfSmall(z); }
  let tail = expNegHalfSquare(x) * erfcScaled(abs(z));
  return select(2.0 - tail, tail, z > 0.0);
}
fn geluTanhArg(x: f32) -> f32 {
  return ${lit(2 * 0.7978845608028654)} * (x + ${lit(0.044715)} * (x * x * x));
}
/** x^n for a whole n ≥ 0 by repeated squaring. */
fn powInt(x: f32, n: u32) -> f32 {
  var r = 1.0;
  var b = x;
  var e = n;
  loop {
    if ((e & 1u) != 0u) { r = r * b; }
    e = e >> 1u;
    if (e == 0u) { break; }
    b = b * b;
  }
  return r;
}
/** Math.pow for a scalar exponent p (with JavaScript's special cases). */
fn pow_(x: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  if (isNan_(p) || isNan_(x)) { return nan_(); }
  let whole = floor(p) == p;
  if (whole && abs(p) <= 64.0) {
    let r = powInt(x, u32(abs(p)));
    return select(r, 1.0 / r, p < 0.0);
  }
  if (p == 0.5 || p == -0.5) {
    if (x == 0.0) { return select(0.0, inf_(), p < 0.0); }
    if (x == -inf_()) { return select(inf_(), 0.0, p < 0.0); }
    let s = sqrt(x);
    return select(s, 1.0 / s, p < 0.0);
  }
  let r = exp_(p * log_(abs(x)));
  // A negative base has a real power only for whole exponents (and −∞ for every exponent);
  // odd whole powers keep the base's sign, −0's included.
  if (x < 0.0 && !whole && x != -inf_()) { return nan_(); }
  return select(r, copySign(r, x), whole && floor(p * 0.5) * 2.0 != p);
}
`;

/**
 * Each unary kind in WGSL, as the CPU's `unary` and `unaryBackward` kernels: `forward` of `x` and
 * the parameter `p`; `backward` of the output gradient `gy`, the input `x`, the output `y`, `p`,
 * and `pm1` (p − 1 rounded once from float64, for pow's derivative).
 */
export const UNARY_WGSL: {
  readonly [K in UnaryKind]: { readonly forward: string; readonly backward: string };
} = {
  neg: { forward: "-x", backward: "-gy" },
  exp: { forward: "exp_(x)", backward: "gy * y" },
  log: { forward: "log_(x)", backward: "gy / x" },
  sqrt: { forward: "sqrt(x)", backward: "(0.5 * gy) / y" },
  abs: { forward: "abs(x)", backward: "select(select(0.0, -gy, x < 0.0), gy, x > 0.0)" },
  relu: { forward: "select(0.0, x, x > 0.0)", backward: "select(0.0, gy, x > 0.0)" },
  leakyRelu: { forward: "select(x * p, x, x > 0.0)", backward: "select(gy * p, gy, x > 0.0)" },
  sigmoid: { forward: "sigmoid_(x)", backward: "gy * y * (1.0 - y)" },
  // 1 − y² as (1 − y)(1 + y): 1 − y is exact near |y| = 1, where y·y would cancel.
  tanh: { forward: "tanh_(x)", backward: "gy * ((1.0 - y) * (1.0 + y))" },
  pow: {
    forward: "pow_(x, p)",
    backward: "select(gy * p * pow_(x, pm1), 2.0 * gy * x, p == 2.0)",
  },
  erf: { forward: "erf_(x)", backward: `gy * ${lit(1.1283791670955126)} * expNegSquare(x)` },
  // Exact (p = 0): 0.5·x·erfc(−x/√2); backward Φ(x) = y/x from the output, as the CPU. Tanh
  // (p = 1): 0.5·x·(1 + tanh u) = x·σ(2u), which keeps its accuracy for negative x.
  gelu: {
    forward: "select(x * sigmoid_(geluTanhArg(x)), 0.5 * x * erfcGelu(x), p == 0.0)",
    backward: `select(geluTanhGrad(x), ` +
      `select(0.5, y / x, abs(x) > 1e-30) + x * ${
        lit(0.3989422804014327)
      } * expNegHalfSquare(x), ` +
      `p == 0.0) * gy`,
  },
  log1p: { forward: "log1p_(x)", backward: "gy / (1.0 + x)" },
  expm1: { forward: "expm1_(x)", backward: "gy * (y + 1.0)" },
  sin: { forward: "sinCos(x, 0u)", backward: "gy * sinCos(x, 1u)" },
  cos: { forward: "sinCos(x, 1u)", backward: "-gy * sinCos(x, 0u)" },
  // Math.sign: ±1, and x itself for ±0 and NaN.
  sign: { forward: "select(select(x, -1.0, x < 0.0), 1.0, x > 0.0)", backward: "0.0" },
  floor: { forward: "floor(x)", backward: "0.0" },
  // WGSL's round is round-half-to-even, as the CPU's roundHalfEven.
  round: { forward: "round(x)", backward: "0.0" },
};

/** The tanh GELU's derivative: 0.5(1 + t) = σ(2u) and 1 − t² = 4σ(2u)σ(−2u), without cancellation. */
const GELU_TANH_GRAD_WGSL = `
fn geluTanhGrad(x: f32) -> f32 {
  // Far out the derivative is 1 or 0; the product below would meet ∞·0 first. At ±∞ the CPU's
  // formula gives NaN (∞·0), and so does this.
  if (abs(x) == inf_()) { return nan_(); }
  if (abs(x) > 100.0) { return select(0.0, 1.0, x > 0.0); }
  let u2 = geluTanhArg(x);
  let s = sigmoid_(u2);
  let sm = sigmoid_(-u2);
  return s + 2.0 * x * s * sm * ${lit(0.7978845608028654)} * (1.0 + ${lit(3 * 0.044715)} * x * x);
}
`;

/** A strided operand: shape, strides and offset after coalescing with the others. */
interface Operands {
  shape: number[];
  strides: number[][];
}

/**
 * Merges the dimensions of `shape` that are contiguous for every operand and for the row-major
 * output (so the flat output index still walks the original order).
 */
function coalesced(shape: Shape, strideLists: readonly (readonly number[])[]): Operands {
  const { shape: dims, strides } = coalesce(shape, [...strideLists, contiguousStrides(shape)]);
  strides.pop();
  return { shape: dims, strides };
}

/** Strides that read `t` as if broadcast to `shape` (0 on broadcast dimensions). */
export function broadcastStridesOf(t: AnyTensor, shape: Shape): number[] {
  const lead = shape.length - t.ndim;
  return shape.map((_, d) => (d < lead || t.shape[d - lead] === 1 ? 0 : t.strides[d - lead]));
}

/** The WGSL element type of a dtype on the device. */
function wgslType(dtype: DType): "f32" | "i32" | "u32" {
  return dtype === "float32" ? "f32" : dtype === "int32" ? "i32" : "u32";
}

const HEADER = `${STRIDED_WGSL}\n${LINEAR_ID_WGSL}`;
const MAIN = `@compute @workgroup_size(${WORKGROUP_1D})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = linearId(gid, groups);
  if (i >= pu(0)) { return; }`;

function unaryKernel(kind: UnaryKind): GpuKernel {
  return webgpu().kernel(
    `elementwise unary ${kind}`,
    `${MATH_WGSL}
${HEADER}
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
${MAIN}
  let p = pf(1u);
  let x = src[stridedOffset(i, 2u)];
  dst[i] = ${UNARY_WGSL[kind].forward};
}`,
    1,
    1,
  );
}

function unaryBackwardKernel(kind: UnaryKind): GpuKernel {
  return webgpu().kernel(
    `elementwise unaryBackward ${kind}`,
    `${MATH_WGSL}
${GELU_TANH_GRAD_WGSL}
${HEADER}
@group(0) @binding(1) var<storage, read> gys: array<f32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read> ys: array<f32>;
@group(0) @binding(4) var<storage, read_write> gx: array<f32>;
${MAIN}
  let p = pf(1u);
  let pm1 = pf(2u);
  let gy = gys[stridedOffset(i, 3u)];
  let x = xs[stridedOffset(i, ${3 + STRIDED_WORDS}u)];
  let y = ys[stridedOffset(i, ${3 + 2 * STRIDED_WORDS}u)];
  _ = pm1;
  gx[i] = ${UNARY_WGSL[kind].backward};
}`,
    3,
    1,
  );
}

/** out = f(x) for a float32 device tensor of any layout; `param` as the CPU kernel's. */
export function gpuUnary(kind: UnaryKind, x: AnyTensor, param: number): Tensor {
  const out = gpuEmpty(x.shape);
  const n = x.size;
  if (n === 0) return out;
  const { shape, strides } = coalesced(x.shape, [x.strides]);
  webgpu().dispatch1d(
    unaryKernel(kind),
    [gpuStorage(x, kind), gpuStorage(out, kind)],
    [n, f32Bits(param), ...stridedParams(shape, strides[0], x.offset)],
    n,
  );
  return out;
}

/**
 * gx = gy·f′ for the unary `kind` (the CPU's `unaryBackward`), from the output gradient `gy`, the
 * input `x` and the output `y`, all float32 device tensors of one shape in any layout.
 */
export function gpuUnaryBackward(
  kind: UnaryKind,
  gy: AnyTensor,
  x: AnyTensor,
  y: AnyTensor,
  param: number,
): Tensor {
  const out = gpuEmpty(gy.shape);
  const n = gy.size;
  if (n === 0) return out;
  const op = `${kind} backward`;
  const { shape, strides } = coalesced(gy.shape, [gy.strides, x.strides, y.strides]);
  webgpu().dispatch1d(
    unaryBackwardKernel(kind),
    [gpuStorage(gy, op), gpuStorage(x, op), gpuStorage(y, op), gpuStorage(out, op)],
    [
      n,
      f32Bits(param),
      f32Bits(param - 1),
      ...stridedParams(shape, strides[0], gy.offset),
      ...stridedParams(shape, strides[1], x.offset),
      ...stridedParams(shape, strides[2], y.offset),
    ],
    n,
  );
  return out;
}

/**
 * Each binary kind in WGSL of `a` and `b` (already of one type), as the CPU's `BINARY` table:
 * maximum/minimum return `a` when it wins or is NaN, else `b` (so either NaN propagates); `ne` is
 * the negation of `==`, true when either side is NaN.
 */
export const BINARY_WGSL: { readonly [K in BinaryKind]: string } = {
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
  div: "a / b",
  maximum: "select(b, a, a > b || isNan_(a))",
  minimum: "select(b, a, a < b || isNan_(a))",
  eq: "a == b",
  ne: "!(a == b)",
  lt: "a < b",
  le: "a <= b",
  gt: "a > b",
  ge: "a >= b",
};

/** The kinds whose result is bool. */
export const COMPARISONS: readonly BinaryKind[] = ["eq", "ne", "lt", "le", "gt", "ge"];

/** The integer forms where they differ: no NaN, and x/0 is 0 (the CPU stores ±Inf/NaN as 0). */
const BINARY_INT_WGSL: Partial<Record<BinaryKind, string>> = {
  maximum: "max(a, b)",
  minimum: "min(a, b)",
  div: "select(a / b, 0, b == 0)",
};

/** `v` of WGSL type `from` as WGSL type `to` (bool targets are ≠ 0; float → int truncates). */
function convert(v: string, from: string, to: string): string {
  if (from === to) return v;
  if (to === "bool") return `select(0u, 1u, !(${v} == ${from}(0)))`;
  if (from === "f32" && to === "i32") return `toInt32(${v})`;
  return `${to}(${v})`;
}

/**
 * ToInt32 of a float, as the CPU's `Int32Array` stores `Math.trunc(v)`: truncation, NaN and ±∞
 * to 0, and values past 2³¹ wrapped modulo 2³² (WGSL's i32() would clamp them).
 */
const TO_INT32_WGSL = `
fn toInt32(v: f32) -> i32 {
  let bits = bitcast<u32>(v);
  let e = i32((bits >> 23u) & 0xffu) - 127;
  if (e < 31) { return i32(v); }
  if (e >= 55) { return 0; }
  let w = bitcast<i32>(((bits & 0x7fffffu) | 0x800000u) << u32(e - 23));
  return select(w, -w, v < 0.0);
}
`;

function binaryKernel(kind: BinaryKind, ta: DType, tb: DType, to: DType): GpuKernel {
  const [wa, wb] = [wgslType(ta), wgslType(tb)];
  // Mixed operands meet in the widest type: f32 if either is float, else i32 if either is int.
  const common = wa === "f32" || wb === "f32"
    ? "f32"
    : wa === "i32" || wb === "i32"
    ? "i32"
    : "u32";
  const comparison = COMPARISONS.includes(kind);
  const expr = common === "f32" ? BINARY_WGSL[kind] : BINARY_INT_WGSL[kind] ?? BINARY_WGSL[kind];
  const value = comparison
    ? `select(0u, 1u, ${expr})`
    : convert(expr, common, to === "bool" ? "bool" : wgslType(to));
  return webgpu().kernel(
    `elementwise binary ${kind} ${ta} ${tb} ${to}`,
    `fn isNan_(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
${TO_INT32_WGSL}
${HEADER}
@group(0) @binding(1) var<storage, read> left: array<${wa}>;
@group(0) @binding(2) var<storage, read> right: array<${wb}>;
@group(0) @binding(3) var<storage, read_write> dst: array<${wgslType(to)}>;
${MAIN}
  let a = ${common}(left[stridedOffset(i, 2u)]);
  let b = ${common}(right[stridedOffset(i, ${2 + STRIDED_WORDS}u)]);
  dst[pu(1u) + i] = ${value};
}`,
    2,
    1,
  );
}

/**
 * out = a ∘ b with broadcasting, into the contiguous device tensor `out` (bool for comparisons).
 * `a` and `b` are device tensors of any layout and dtype (mixed dtypes compare as float32).
 */
export function gpuBinaryInto(kind: BinaryKind, a: AnyTensor, b: AnyTensor, out: AnyTensor): void {
  const n = out.size;
  if (n === 0) return;
  if (!out.isContiguous()) throw new Error(`${kind}: the output must be contiguous`);
  const { shape, strides } = coalesced(out.shape, [
    broadcastStridesOf(a, out.shape),
    broadcastStridesOf(b, out.shape),
  ]);
  webgpu().dispatch1d(
    binaryKernel(kind, a.dtype, b.dtype, out.dtype),
    [gpuStorage(a, kind), gpuStorage(b, kind), gpuStorage(out, kind)],
    [
      n,
      out.offset,
      ...stridedParams(shape, strides[0], a.offset),
      ...stridedParams(shape, strides[1], b.offset),
    ],
    n,
  );
}

function whereKernel(): GpuKernel {
  return webgpu().kernel(
    "elementwise where",
    `${HEADER}
@group(0) @binding(1) var<storage, read> cond: array<u32>;
@group(0) @binding(2) var<storage, read> left: array<u32>;
@group(0) @binding(3) var<storage, read> right: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst: array<u32>;
${MAIN}
  let c = cond[stridedOffset(i, 1u)];
  let a = left[stridedOffset(i, ${1 + STRIDED_WORDS}u)];
  let b = right[stridedOffset(i, ${1 + 2 * STRIDED_WORDS}u)];
  dst[i] = select(b, a, c != 0u);
}`,
    3,
    1,
  );
}

/**
 * cond ? a : b with all three broadcast, as a new contiguous tensor of a's dtype (any dtype: the
 * words are copied as they are).
 */
export function gpuWhere(cond: AnyTensor, a: AnyTensor, b: AnyTensor, shape: Shape): AnyTensor {
  const out = gpuEmpty(shape, a.dtype);
  const n = out.size;
  if (n === 0) return out;
  const { shape: dims, strides } = coalesced(shape, [
    broadcastStridesOf(cond, shape),
    broadcastStridesOf(a, shape),
    broadcastStridesOf(b, shape),
  ]);
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
      ...stridedParams(dims, strides[0], cond.offset),
      ...stridedParams(dims, strides[1], a.offset),
      ...stridedParams(dims, strides[2], b.offset),
    ],
    n,
  );
  return out;
}

function castKernel(from: DType, to: DType): GpuKernel {
  const wf = wgslType(from);
  return webgpu().kernel(
    `elementwise cast ${from} ${to}`,
    `${TO_INT32_WGSL}
${HEADER}
@group(0) @binding(1) var<storage, read> src: array<${wf}>;
@group(0) @binding(2) var<storage, read_write> dst: array<${wgslType(to)}>;
${MAIN}
  let x = src[stridedOffset(i, 1u)];
  dst[i] = ${convert("x", wf, to === "bool" ? "bool" : wgslType(to))};
}`,
    1,
    1,
  );
}

/**
 * The values of `x` (any layout) as `dtype`, a new contiguous tensor, as the CPU's `cast`: float →
 * int32 truncates (NaN → 0, wrapping past 2³¹), anything → bool is ≠ 0 (NaN is true).
 */
export function gpuCast(x: AnyTensor, dtype: DType): AnyTensor {
  const out = gpuEmpty(x.shape, dtype);
  const n = x.size;
  if (n === 0) return out;
  const { shape, strides } = coalesced(x.shape, [x.strides]);
  webgpu().dispatch1d(
    castKernel(x.dtype, dtype),
    [gpuStorage(x, "cast"), gpuStorage(out, "cast")],
    [n, ...stridedParams(shape, strides[0], x.offset)],
    n,
  );
  return out;
}

/** The word `value` is stored as in a `dtype` tensor (the CPU's typed-array conversions). */
export function wordOf(value: number, dtype: DType): number {
  if (dtype === "float32") return f32Bits(value);
  if (dtype === "int32") return value >>> 0;
  return value !== 0 ? 1 : 0;
}

function fillKernel(): GpuKernel {
  return webgpu().kernel(
    "elementwise fill",
    `${LINEAR_ID_WGSL}
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
${MAIN}
  dst[pu(1u) + i] = pu(2u);
}`,
    0,
    1,
  );
}

/** `value` (converted to the tensor's dtype) into every element of the contiguous device `out`. */
export function gpuFill(out: AnyTensor, value: number): void {
  const n = sizeOf(out.shape);
  if (n === 0) return;
  if (!out.isContiguous()) throw new Error("fill: expected a contiguous webgpu tensor");
  webgpu().dispatch1d(
    fillKernel(),
    [gpuStorage(out, "fill")],
    [n, out.offset, wordOf(value, out.dtype)],
    n,
  );
}

function dropoutKernel(): GpuKernel {
  return webgpu().kernel(
    "elementwise dropout",
    `${HEADER}
@group(0) @binding(1) var<storage, read> bits: array<u32>;
@group(0) @binding(2) var<storage, read> xs: array<f32>;
@group(0) @binding(3) var<storage, read_write> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
${MAIN}
  let m = select(0.0, pf(2u), bits[i] >= pu(1u));
  mask[i] = m;
  out[i] = xs[stridedOffset(i, 3u)] * m;
}`,
    2,
    2,
  );
}

/**
 * Inverted dropout of the float32 device tensor `x` (any layout) with the uniform 32-bit `bits`
 * (one per element, drawn on the host): the mask (0 where bits < p·2³², else 1/(1 − p), as the
 * CPU's `dropoutMask`, so the two are the same bits) and x·mask, both new contiguous tensors.
 */
export function gpuDropout(
  x: AnyTensor,
  bits: Uint32Array,
  p: number,
): { out: Tensor; mask: Tensor } {
  const mask = gpuEmpty(x.shape);
  const out = gpuEmpty(x.shape);
  const n = x.size;
  if (n === 0) return { out, mask };
  // bits ≥ p·2³² ⇔ bits ≥ ⌈p·2³²⌉; when that is 2³² nothing is kept, and a zero scale says so.
  const threshold = Math.ceil(p * 4294967296);
  const keep = threshold > 0xffffffff ? 0 : 1 / (1 - p);
  const { shape, strides } = coalesced(x.shape, [x.strides]);
  const gpu = webgpu();
  gpu.dispatch1d(
    dropoutKernel(),
    [
      gpu.upload(new Int32Array(bits.buffer, bits.byteOffset, n)),
      gpuStorage(x, "dropout"),
      gpuStorage(mask, "dropout"),
      gpuStorage(out, "dropout"),
    ],
    [
      n,
      Math.min(threshold, 0xffffffff),
      f32Bits(keep),
      ...stridedParams(shape, strides[0], x.offset),
    ],
    n,
  );
  return { out, mask };
}

/** A float32 device tensor over existing storage (for tests that drive the kernels directly). */
export function gpuTensor(data: Float32Array, shape: Shape): Tensor {
  return new Tensor(webgpu().upload(data), shape);
}
