/**
 * Dynamic int8 quantization of a Linear layer, as PyTorch's `quantize_dynamic` does it for CPU
 * inference. The weights are quantized once, symmetrically per output row: w ≈ q · scale with
 * q in −127..127 and scale = max |w| / 127 ({@linkcode quantizeWeights}). Each input row is
 * quantized at every call, asymmetrically to seven bits: x ≈ (u − zero) · scale with u in 0..127,
 * so that a row of ReLU outputs uses all 128 levels and the product fits the byte dot products of
 * WebAssembly's relaxed SIMD exactly ({@linkcode quantizeInputs}). The product Σ u·q is summed
 * exactly in int32 ({@linkcode quantizedDotReference}), the zero point taken out with the
 * weights' row sums, and the result scaled back to float32 with the bias added
 * ({@linkcode dequantizeInto}). The math of each step is here, once;
 * {@linkcode quantizedLinearReference} chains them as the `quantizedLinear` kernel's contract,
 * which the wasm kernels meet bit for bit.
 *
 * Every float step is one float32 operation (written here with Math.fround), so the wasm kernels,
 * which do the same steps in f32 SIMD, give the same bits. Rounding is half up, floor(t + 0.5).
 * Rows are zero-padded to a whole number of 16-value vectors ({@linkcode paddedLength}), which
 * changes no sum.
 *
 * @module
 */

import type { QuantizedLinearArgs } from "./types.ts";

/** Largest magnitude of a quantized weight (symmetric int8: −127..127, −128 unused). */
export const INT8_MAX = 127;
/** Largest quantized input (seven bits: 0..127). */
export const UINT7_MAX = 127;

/**
 * Longest row the int32 sums allow: Σ u·q and zero · Σ q are each at most kp · 127², and their
 * difference must stay below 2³¹.
 */
export const MAX_QUANTIZED_ROW = Math.floor((2 ** 31 - 1) / (2 * INT8_MAX * UINT7_MAX) / 16) * 16;

const f32 = Math.fround;

/** `k` rounded up to a whole number of 16-value vectors. */
export function paddedLength(k: number): number {
  return Math.ceil(k / 16) * 16;
}

/** v clamped to lo..hi after rounding half up. */
function roundClamp(v: number, lo: number, hi: number): number {
  const q = Math.floor(v + 0.5);
  return q > hi ? hi : q < lo ? lo : q;
}

/**
 * Quantizes `rows` rows of `cols` weights (row-major from `srcOffset`) into `out` (row stride
 * `kp`, the padding zeroed): scale = fround(max |w| / 127), q = round(w / scale) in −127..127,
 * and each row's Σ q into `rowSums`. An all-zero row has scale 0; a row holding a NaN or an
 * infinity gets scale NaN, so its outputs are NaN.
 */
export function quantizeWeights(
  src: Float32Array,
  srcOffset: number,
  rows: number,
  cols: number,
  out: Int8Array,
  kp: number,
  scales: Float32Array,
  rowSums: Int32Array,
): void {
  for (let r = 0; r < rows; r++) {
    const base = srcOffset + r * cols;
    let amax = 0;
    for (let c = 0; c < cols; c++) amax = Math.max(amax, Math.abs(src[base + c]));
    const scale = Number.isFinite(amax) ? Math.fround(amax / INT8_MAX) : NaN;
    scales[r] = scale;
    const q = r * kp;
    out.fill(0, q, q + kp);
    let sum = 0;
    if (scale > 0) {
      const inverse = 1 / scale;
      for (let c = 0; c < cols; c++) {
        const v = roundClamp(src[base + c] * inverse, -INT8_MAX, INT8_MAX);
        out[q + c] = v;
        sum += v;
      }
    }
    rowSums[r] = sum;
  }
}

/**
 * Quantizes `rows` rows of `cols` inputs into bytes `out` (row stride `kp`, the padding zeroed),
 * in float32 steps: with lo = min(0, min x) and hi = max(0, max x), scale = (hi − lo) / 127,
 * inverse = 1 / scale, zero = floor(−lo · inverse + 0.5) and u = floor(x · inverse + zero + 0.5),
 * both clamped to 0..127; so x ≈ (u − zero) · scale, and 0 is exact. An all-zero row has scale 0
 * and zero 0; a row holding a NaN or an infinity gets scale NaN, so its outputs are NaN.
 */
export function quantizeInputs(
  src: Float32Array,
  srcOffset: number,
  rows: number,
  cols: number,
  out: Uint8Array,
  kp: number,
  scales: Float32Array,
  zeroPoints: Int32Array,
): void {
  out.fill(0, 0, rows * kp);
  for (let r = 0; r < rows; r++) {
    const base = srcOffset + r * cols;
    let lo = 0;
    let hi = 0;
    let nan = false;
    for (let c = 0; c < cols; c++) {
      const v = src[base + c];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      if (v !== v) nan = true;
    }
    const range = f32(hi - lo);
    const scale = nan || !Number.isFinite(range) ? NaN : f32(range / UINT7_MAX);
    scales[r] = scale;
    zeroPoints[r] = 0;
    if (!(scale > 0)) continue;
    const inverse = f32(1 / scale);
    const zero = clamp(Math.floor(f32(f32(-lo * inverse) + 0.5)), 0, UINT7_MAX);
    zeroPoints[r] = zero;
    const zeroHalf = zero + 0.5;
    const at = r * kp;
    for (let c = 0; c < cols; c++) {
      // Clamped first, then truncated by the byte store: the same integer as floor, for t ≥ 0.
      const t = f32(f32(src[base + c] * inverse) + zeroHalf);
      out[at + c] = t > UINT7_MAX ? UINT7_MAX : t < 0 ? 0 : t;
    }
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v > hi ? hi : v < lo ? lo : v;
}

/**
 * out[i·n + j] = Σₚ x[i·kp + p] · w[j·kp + p] for bytes x (0..127) and int8 w, in plain loops over
 * exact integers (the middle step of {@linkcode quantizedLinearReference}).
 */
export function quantizedDotReference(
  x: Uint8Array,
  w: Int8Array,
  out: Int32Array,
  m: number,
  n: number,
  kp: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < kp; p++) sum += x[i * kp + p] * w[j * kp + p];
      out[i * n + j] = sum;
    }
  }
}

/** The scales and zero points of quantized inputs and weights, for {@linkcode dequantizeInto}. */
export interface QuantizedScales {
  /** One scale per input row. */
  inputScales: Float32Array;
  /** One zero point per input row. */
  zeroPoints: Int32Array;
  /** One scale per weight row (output). */
  weightScales: Float32Array;
  /** Σ q of each weight row. */
  rowSums: Int32Array;
}

/**
 * Scales the integer products back, in float32 steps: with s = Σ u·q − zero[i] · rowSum[j]
 * (exact in int32), y[i, j] = fround(s) · (sx[i] · sw[j]) + b[j] (no bias: no add), then
 * y > 0 ? y : 0 when `relu`. One fixed sequence of float32 roundings, so every backend gives the
 * same floats from the same integers.
 */
export function dequantizeInto(
  sums: Int32Array,
  m: number,
  n: number,
  scales: QuantizedScales,
  bias: Float32Array | null,
  relu: boolean,
  out: Float32Array,
): void {
  const { inputScales, zeroPoints, weightScales, rowSums } = scales;
  for (let i = 0; i < m; i++) {
    const sx = inputScales[i];
    const zero = zeroPoints[i];
    for (let j = 0; j < n; j++) {
      const s = sums[i * n + j] - zero * rowSums[j];
      let y = f32(f32(s) * f32(sx * weightScales[j]));
      if (bias !== null) y = f32(y + bias[j]);
      out[i * n + j] = relu && !(y > 0) ? 0 : y;
    }
  }
}

/**
 * The reference `quantizedLinear`: the three steps above, with arrays of its own (see
 * `QuantizedLinearKernel`).
 */
export function quantizedLinearReference(a: QuantizedLinearArgs): void {
  const { rows, inFeatures, outFeatures: n, rowLength: kp } = a;
  const inputs = new Uint8Array(rows * kp);
  const inputScales = new Float32Array(rows);
  const zeroPoints = new Int32Array(rows);
  quantizeInputs(a.x, a.xOffset, rows, inFeatures, inputs, kp, inputScales, zeroPoints);
  const sums = new Int32Array(rows * n);
  quantizedDotReference(inputs, a.weights, sums, rows, n, kp);
  const scales = { inputScales, zeroPoints, weightScales: a.weightScales, rowSums: a.rowSums };
  dequantizeInto(sums, rows, n, scales, a.bias, a.relu, a.out);
}
