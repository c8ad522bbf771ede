/**
 * Elementwise kernels: unary maps and their derivatives over contiguous data, binary arithmetic over
 * strided (broadcast) operands, and the strided copy behind `contiguous()`.
 *
 * Each operation has its own loop (the `switch` sits outside it), so the hot loops hold no calls and
 * no closures. Strided kernels first merge dimensions that are contiguous for every operand, so the
 * common cases (same-shape contiguous, a bias row) become one or two long inner loops.
 *
 * @module
 */

import type {
  AddIntoKernel,
  BinaryKernel,
  CopyStridedKernel,
  DropoutMaskKernel,
  ScaleKernel,
  UnaryBackwardKernel,
  UnaryKernel,
  WhereKernel,
} from "./types.ts";
import type { AnyStorage } from "../dtype.ts";
import { erf as erfOf, erfc } from "./erf.ts";

/**
 * The unary maps with a kernel. `pow` and `leakyRelu` take a scalar parameter, and so does `gelu`
 * (0: exact, with erf; 1: the tanh approximation). `sign`, `floor` and `round` have zero gradient.
 */
export type UnaryKind =
  | "neg"
  | "exp"
  | "log"
  | "sqrt"
  | "abs"
  | "relu"
  | "leakyRelu"
  | "sigmoid"
  | "tanh"
  | "pow"
  | "erf"
  | "gelu"
  | "log1p"
  | "expm1"
  | "sin"
  | "cos"
  | "sign"
  | "floor"
  | "round";

const SQRT1_2 = Math.SQRT1_2;
/** 1/√(2π), the standard normal density's factor. */
const INV_SQRT_2PI = 0.3989422804014327;
/** √(2/π), the tanh GELU's factor. */
const SQRT_2_OVER_PI = 0.7978845608028654;
/** The cubic coefficient of the tanh GELU. */
const GELU_CUBIC = 0.044715;

/** Exact GELU x·Φ(x), with Φ(x) = erfc(−x/√2)/2 (relative accuracy in the negative tail too). */
export function geluExact(x: number): number {
  return 0.5 * x * erfc(-x * SQRT1_2);
}

/** The tanh approximation x/2·(1 + tanh(√(2/π)(x + 0.044715x³))), PyTorch's `approximate="tanh"`. */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)));
}

/** The derivative of {@linkcode geluTanh}. */
export function geluTanhGrad(x: number): number {
  const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_CUBIC * x * x);
}

/** Rounds half to even, as PyTorch's `round` (Math.round rounds half up). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The binary operations with a kernel. The comparisons (`eq` … `ge`) give 1 where they hold, else
 * 0; `maximum` / `minimum` propagate NaN as PyTorch does.
 */
export type BinaryKind =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "maximum"
  | "minimum"
  | "eq"
  | "ne"
  | "lt"
  | "le"
  | "gt"
  | "ge";

/** out[i] = f(x[i]) for i < n; `param` is the exponent of pow or the slope of leakyRelu. */
export const unary: UnaryKernel = (kind, x, xo, out, oo, n, param) => {
  switch (kind) {
    case "neg":
      for (let i = 0; i < n; i++) out[oo + i] = -x[xo + i];
      return;
    case "exp":
      for (let i = 0; i < n; i++) out[oo + i] = Math.exp(x[xo + i]);
      return;
    case "log":
      for (let i = 0; i < n; i++) out[oo + i] = Math.log(x[xo + i]);
      return;
    case "sqrt":
      for (let i = 0; i < n; i++) out[oo + i] = Math.sqrt(x[xo + i]);
      return;
    case "abs":
      for (let i = 0; i < n; i++) out[oo + i] = Math.abs(x[xo + i]);
      return;
    case "relu":
      for (let i = 0; i < n; i++) {
        const v = x[xo + i];
        out[oo + i] = v > 0 ? v : 0;
      }
      return;
    case "leakyRelu":
      for (let i = 0; i < n; i++) {
        const v = x[xo + i];
        out[oo + i] = v > 0 ? v : v * param;
      }
      return;
    case "sigmoid":
      for (let i = 0; i < n; i++) {
        const v = x[xo + i];
        // Two branches keep exp's argument non-positive, so neither overflows.
        if (v >= 0) out[oo + i] = 1 / (1 + Math.exp(-v));
        else {
          const e = Math.exp(v);
          out[oo + i] = e / (1 + e);
        }
      }
      return;
    case "tanh":
      for (let i = 0; i < n; i++) out[oo + i] = Math.tanh(x[xo + i]);
      return;
    case "pow":
      if (param === 2) { for (let i = 0; i < n; i++) out[oo + i] = x[xo + i] * x[xo + i]; }
      else for (let i = 0; i < n; i++) out[oo + i] = Math.pow(x[xo + i], param);
      return;
    case "erf":
      for (let i = 0; i < n; i++) out[oo + i] = erfOf(x[xo + i]);
      return;
    case "gelu":
      if (param === 0) { for (let i = 0; i < n; i++) out[oo + i] = geluExact(x[xo + i]); }
      else for (let i = 0; i < n; i++) out[oo + i] = geluTanh(x[xo + i]);
      return;
    case "log1p":
      for (let i = 0; i < n; i++) out[oo + i] = Math.log1p(x[xo + i]);
      return;
    case "expm1":
      for (let i = 0; i < n; i++) out[oo + i] = Math.expm1(x[xo + i]);
      return;
    case "sin":
      for (let i = 0; i < n; i++) out[oo + i] = Math.sin(x[xo + i]);
      return;
    case "cos":
      for (let i = 0; i < n; i++) out[oo + i] = Math.cos(x[xo + i]);
      return;
    case "sign":
      // Math.sign keeps −0 and NaN, as torch.sign does.
      for (let i = 0; i < n; i++) out[oo + i] = Math.sign(x[xo + i]);
      return;
    case "floor":
      for (let i = 0; i < n; i++) out[oo + i] = Math.floor(x[xo + i]);
      return;
    case "round":
      for (let i = 0; i < n; i++) out[oo + i] = roundHalfEven(x[xo + i]);
      return;
  }
};

/**
 * Gradient of a unary map: gx[i] = gy[i] · f′(x[i]), written with the input `x` or the output `y`,
 * whichever gives the derivative most cheaply and accurately. All arrays are contiguous from 0.
 */
export const unaryBackward: UnaryBackwardKernel = (kind, gy, x, y, gx, n, param) => {
  switch (kind) {
    case "neg":
      for (let i = 0; i < n; i++) gx[i] = -gy[i];
      return;
    case "exp":
      for (let i = 0; i < n; i++) gx[i] = gy[i] * y[i];
      return;
    case "log":
      for (let i = 0; i < n; i++) gx[i] = gy[i] / x[i];
      return;
    case "sqrt":
      for (let i = 0; i < n; i++) gx[i] = (0.5 * gy[i]) / y[i];
      return;
    case "abs":
      for (let i = 0; i < n; i++) gx[i] = x[i] > 0 ? gy[i] : x[i] < 0 ? -gy[i] : 0;
      return;
    case "relu":
      for (let i = 0; i < n; i++) gx[i] = x[i] > 0 ? gy[i] : 0;
      return;
    case "leakyRelu":
      for (let i = 0; i < n; i++) gx[i] = x[i] > 0 ? gy[i] : gy[i] * param;
      return;
    case "sigmoid":
      for (let i = 0; i < n; i++) gx[i] = gy[i] * y[i] * (1 - y[i]);
      return;
    case "tanh":
      for (let i = 0; i < n; i++) gx[i] = gy[i] * (1 - y[i] * y[i]);
      return;
    case "pow":
      if (param === 2) { for (let i = 0; i < n; i++) gx[i] = 2 * gy[i] * x[i]; }
      else for (let i = 0; i < n; i++) gx[i] = gy[i] * param * Math.pow(x[i], param - 1);
      return;
    case "erf":
      for (let i = 0; i < n; i++) gx[i] = gy[i] * 1.1283791670955126 * Math.exp(-x[i] * x[i]);
      return;
    case "gelu":
      // Φ(x) = y/x from the forward output: one exp per element instead of an erfc and an exp.
      if (param === 0) {
        for (let i = 0; i < n; i++) {
          const v = x[i];
          const cdf = Math.abs(v) > 1e-30 ? y[i] / v : 0.5;
          gx[i] = gy[i] * (cdf + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
        }
      } else for (let i = 0; i < n; i++) gx[i] = gy[i] * geluTanhGrad(x[i]);
      return;
    case "log1p":
      for (let i = 0; i < n; i++) gx[i] = gy[i] / (1 + x[i]);
      return;
    case "expm1":
      for (let i = 0; i < n; i++) gx[i] = gy[i] * (y[i] + 1);
      return;
    case "sin":
      for (let i = 0; i < n; i++) gx[i] = gy[i] * Math.cos(x[i]);
      return;
    case "cos":
      for (let i = 0; i < n; i++) gx[i] = -gy[i] * Math.sin(x[i]);
      return;
    case "sign":
    case "floor":
    case "round":
      gx.fill(0, 0, n);
      return;
  }
};

/**
 * Merges dimensions that are contiguous in every stride list (and drops size-1 dimensions), so the
 * loops run over as few, as long, rows as possible. Returns the reduced shape and stride lists.
 */
export function coalesce(shape: readonly number[], strideLists: readonly (readonly number[])[]): {
  shape: number[];
  strides: number[][];
} {
  const outShape: number[] = [];
  const outStrides: number[][] = strideLists.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    const mergeable = last >= 0 &&
      strideLists.every((s, k) => outStrides[k][last] === s[d] * shape[d]);
    if (mergeable) {
      outShape[last] *= shape[d];
      strideLists.forEach((s, k) => (outStrides[k][last] = s[d]));
    } else {
      outShape.push(shape[d]);
      strideLists.forEach((s, k) => outStrides[k].push(s[d]));
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    outStrides.forEach((s) => s.push(1));
  }
  return { shape: outShape, strides: outStrides };
}

/**
 * out = a ∘ b elementwise, where a and b are strided views already broadcast to `shape` (stride 0
 * on broadcast dimensions) and `out` is contiguous from `oo`.
 */
export const binary: BinaryKernel = (kind, shape, a, ao, aStrides, b, bo, bStrides, out, oo) => {
  const outStrides = new Array<number>(shape.length);
  let step = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    outStrides[d] = step;
    step *= shape[d];
  }
  if (step === 0) return;
  const { shape: dims, strides } = coalesce(shape, [aStrides, bStrides, outStrides]);
  const [as, bs] = strides;
  const nd = dims.length;
  const inner = dims[nd - 1];
  const ai = as[nd - 1];
  const bi = bs[nd - 1];
  const rows = step / inner;
  const index = new Array<number>(nd).fill(0);
  let aRow = ao;
  let bRow = bo;
  for (let r = 0; r < rows; r++) {
    binaryRow(kind, inner, a, aRow, ai, b, bRow, bi, out, oo + r * inner);
    // Advance the multi-index over the outer dimensions (odometer style).
    for (let d = nd - 2; d >= 0; d--) {
      index[d]++;
      aRow += as[d];
      bRow += bs[d];
      if (index[d] < dims[d]) break;
      aRow -= as[d] * dims[d];
      bRow -= bs[d] * dims[d];
      index[d] = 0;
    }
  }
};

/** The scalar function of each binary kind (NaN-propagating maximum and minimum). */
const BINARY: { readonly [K in BinaryKind]: (a: number, b: number) => number } = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  maximum: (a, b) => (a > b || a !== a ? a : b),
  minimum: (a, b) => (a < b || a !== a ? a : b),
  eq: (a, b) => +(a === b),
  ne: (a, b) => +(a !== b),
  lt: (a, b) => +(a < b),
  le: (a, b) => +(a <= b),
  gt: (a, b) => +(a > b),
  ge: (a, b) => +(a >= b),
};

function binaryRow(
  kind: BinaryKind,
  n: number,
  a: AnyStorage,
  ai: number,
  as: number,
  b: AnyStorage,
  bi: number,
  bs: number,
  out: AnyStorage,
  oi: number,
): void {
  // The four arithmetic kinds on unit strides are the hot cases: loops of their own, no calls.
  if (as === 1 && bs === 1) {
    switch (kind) {
      case "add":
        for (let i = 0; i < n; i++) out[oi + i] = a[ai + i] + b[bi + i];
        return;
      case "sub":
        for (let i = 0; i < n; i++) out[oi + i] = a[ai + i] - b[bi + i];
        return;
      case "mul":
        for (let i = 0; i < n; i++) out[oi + i] = a[ai + i] * b[bi + i];
        return;
      case "div":
        for (let i = 0; i < n; i++) out[oi + i] = a[ai + i] / b[bi + i];
        return;
    }
  }
  switch (kind) {
    case "add":
      for (let i = 0; i < n; i++) out[oi + i] = a[ai + i * as] + b[bi + i * bs];
      return;
    case "sub":
      for (let i = 0; i < n; i++) out[oi + i] = a[ai + i * as] - b[bi + i * bs];
      return;
    case "mul":
      for (let i = 0; i < n; i++) out[oi + i] = a[ai + i * as] * b[bi + i * bs];
      return;
    case "div":
      for (let i = 0; i < n; i++) out[oi + i] = a[ai + i * as] / b[bi + i * bs];
      return;
  }
  const f = BINARY[kind];
  for (let i = 0; i < n; i++) out[oi + i] = f(a[ai + i * as], b[bi + i * bs]);
}

/** out = cond ? a : b over strided operands broadcast to `shape`; `out` contiguous from `oo`. */
export const where: WhereKernel = (
  shape,
  c,
  co,
  cStrides,
  a,
  ao,
  aStrides,
  b,
  bo,
  bStrides,
  out,
  oo,
) => {
  const outStrides = new Array<number>(shape.length);
  let step = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    outStrides[d] = step;
    step *= shape[d];
  }
  if (step === 0) return;
  const { shape: dims, strides } = coalesce(shape, [cStrides, aStrides, bStrides, outStrides]);
  const [cs, as, bs] = strides;
  const nd = dims.length;
  const inner = dims[nd - 1];
  const [csi, asi, bsi] = [cs[nd - 1], as[nd - 1], bs[nd - 1]];
  const rows = step / inner;
  const index = new Array<number>(nd).fill(0);
  let cRow = co;
  let aRow = ao;
  let bRow = bo;
  for (let r = 0; r < rows; r++) {
    const o = oo + r * inner;
    for (let i = 0; i < inner; i++) {
      out[o + i] = c[cRow + i * csi] ? a[aRow + i * asi] : b[bRow + i * bsi];
    }
    for (let d = nd - 2; d >= 0; d--) {
      index[d]++;
      cRow += cs[d];
      aRow += as[d];
      bRow += bs[d];
      if (index[d] < dims[d]) break;
      cRow -= cs[d] * dims[d];
      aRow -= as[d] * dims[d];
      bRow -= bs[d] * dims[d];
      index[d] = 0;
    }
  }
};

/** Rows at least this long are copied with `set` (a memcpy); shorter ones by an element loop. */
const SET_MIN_ROW = 256;

/**
 * Copies a strided view of `shape` from `src` into a strided view in `dst` (either may be contiguous:
 * pass row-major strides). `contiguous()` is the case of contiguous destination strides.
 */
export const copyStrided: CopyStridedKernel = (
  shape,
  src,
  so,
  srcStrides,
  dst,
  dOffset,
  dstStrides,
) => {
  let total = 1;
  for (const d of shape) total *= d;
  if (total === 0) return;
  const { shape: dims, strides } = coalesce(shape, [srcStrides, dstStrides]);
  const [ss, ds] = strides;
  const nd = dims.length;
  const inner = dims[nd - 1];
  const si = ss[nd - 1];
  const di = ds[nd - 1];
  const rows = total / inner;
  const index = new Array<number>(nd).fill(0);
  let sRow = so;
  let dRow = dOffset;
  for (let r = 0; r < rows; r++) {
    // set() of a subarray creates a view object per row: only worth it for long rows.
    if (si === 1 && di === 1 && inner >= SET_MIN_ROW) {
      dst.set(src.subarray(sRow, sRow + inner) as ArrayLike<number>, dRow);
    } else if (si === 1 && di === 1) {
      for (let i = 0; i < inner; i++) dst[dRow + i] = src[sRow + i];
    } else for (let i = 0; i < inner; i++) dst[dRow + i * di] = src[sRow + i * si];
    for (let d = nd - 2; d >= 0; d--) {
      index[d]++;
      sRow += ss[d];
      dRow += ds[d];
      if (index[d] < dims[d]) break;
      sRow -= ss[d] * dims[d];
      dRow -= ds[d] * dims[d];
      index[d] = 0;
    }
  }
};

/** dst[i] += src[i] for i < n (gradient accumulation). */
export const addInto: AddIntoKernel = (dst, dOffset, src, sOffset, n) => {
  for (let i = 0; i < n; i++) dst[dOffset + i] += src[sOffset + i];
};

/** out[i] = x[i] · s for i < n. */
export const scale: ScaleKernel = (x, xo, s, out, oo, n) => {
  for (let i = 0; i < n; i++) out[oo + i] = x[xo + i] * s;
};

/**
 * Fills `mask` with an inverted-dropout mask from uniform 32-bit random `bits`: entry i is 0 when
 * bits[i] < p·2³² (probability p), else 1/(1 − p), so masked activations keep their expected value.
 */
export const dropoutMask: DropoutMaskKernel = (bits, p, mask, n) => {
  const keep = 1 / (1 - p);
  const threshold = p * 4294967296;
  // Branch-free: a 25% drop rate would mispredict a branch on every fourth element.
  for (let i = 0; i < n; i++) mask[i] = +(bits[i] >= threshold) * keep;
};
