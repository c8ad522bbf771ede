/**
 * Dynamic int8 quantization of a Linear layer, as PyTorch's `quantize_dynamic` does it for CPU
 * inference: the weights are quantized once, symmetrically per output row (scale = max |w| / 127,
 * so each row keeps its own range); each input row is quantized the same way at every call, the
 * product is summed exactly in int32 ({@linkcode quantizedDotReference}, the contract of the
 * `quantizedDot` kernel) and scaled back to float32 with the bias added. The math of all three
 * steps is here, once; only the integer product has faster kernels.
 *
 * Rows are zero-padded to a whole number of 16-value vectors ({@linkcode paddedLength}), which
 * changes no sum.
 *
 * @module
 */

/** Largest magnitude of a quantized value (symmetric int8: −127..127, −128 unused). */
export const INT8_MAX = 127;

/** Longest row the int32 sums allow: kp · 127² must stay below 2³¹. */
export const MAX_QUANTIZED_ROW = Math.floor((2 ** 31 - 1) / (INT8_MAX * INT8_MAX) / 16) * 16;

/** `k` rounded up to a whole number of 16-value vectors. */
export function paddedLength(k: number): number {
  return Math.ceil(k / 16) * 16;
}

/**
 * Quantizes `rows` rows of `cols` floats (row-major from `srcOffset`) into `out` (row stride `kp`,
 * the padding left as it is: zero in a fresh array) and writes each row's scale to `scales`:
 * scale = fround(max |v| / 127), q = round(v / scale) clamped to ±127. An all-zero row has scale 0
 * and q = 0; a row holding a NaN or an infinity gets scale NaN, so its results are NaN too.
 */
export function quantizeRows(
  src: Float32Array,
  srcOffset: number,
  rows: number,
  cols: number,
  out: Int8Array | Int16Array,
  kp: number,
  scales: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    const base = srcOffset + r * cols;
    let amax = 0;
    for (let c = 0; c < cols; c++) {
      const a = Math.abs(src[base + c]);
      if (a > amax) amax = a;
      else if (a !== a) {
        amax = NaN; // one NaN makes the whole row NaN
        break;
      }
    }
    const finite = Number.isFinite(amax);
    const scale = finite ? Math.fround(amax / INT8_MAX) : NaN;
    scales[r] = scale;
    const q = r * kp;
    if (!finite || scale === 0) {
      out.fill(0, q, q + cols);
      continue;
    }
    for (let c = 0; c < cols; c++) {
      const v = Math.round(src[base + c] / scale);
      out[q + c] = v > INT8_MAX ? INT8_MAX : v < -INT8_MAX ? -INT8_MAX : v;
    }
  }
}

/** The reference `quantizedDot`: plain loops over exact integers (see `QuantizedDotKernel`). */
export function quantizedDotReference(
  x: Int16Array,
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

/**
 * Scales the integer products back: y[i, j] = fround(fround(acc · fround(sx[i] · sw[j])) + b[j])
 * (no bias: the first rounding only). One fixed sequence of float32 roundings, so every backend
 * gives the same floats from the same integers.
 */
export function dequantizeInto(
  acc: Int32Array,
  m: number,
  n: number,
  inputScales: Float32Array,
  weightScales: Float32Array,
  bias: Float32Array | null,
  out: Float32Array,
): void {
  for (let i = 0; i < m; i++) {
    const sx = inputScales[i];
    for (let j = 0; j < n; j++) {
      let y = Math.fround(acc[i * n + j] * Math.fround(sx * weightScales[j]));
      if (bias !== null) y = Math.fround(y + bias[j]);
      out[i * n + j] = y;
    }
  }
}
