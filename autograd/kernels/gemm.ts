/**
 * Reference GEMM in plain TypeScript: C = op(A)·op(B) + beta·C over row-major Float32Array operands.
 *
 * Cache blocking: op(B) is copied one [KC × NC] block at a time into a contiguous panel (which also
 * turns the transposed layouts into the plain one), then four rows of A at a time stream over that
 * panel, so each loaded panel value feeds four multiply-adds and each C row segment stays in L1 while
 * the K block is swept. The faster WebAssembly kernel is checked against this one.
 *
 * @module
 */

/**
 * Signature shared by every GEMM kernel: C = op(A)·op(B) + beta·C, row-major.
 *
 * op(A) is [m, k]: stored [k, m] when `transA`, else [m, k]; `lda` is the stored row stride.
 * op(B) is [k, n]: stored [n, k] when `transB`, else [k, n]; `ldb` is the stored row stride.
 * C is [m, n] with row stride `ldc`. `beta` is 0 (C is overwritten; its old contents, even NaN, are
 * ignored) or 1 (the product is added to C). Offsets count elements.
 */
export type Gemm = (
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  aOffset: number,
  lda: number,
  b: Float32Array,
  bOffset: number,
  ldb: number,
  beta: number,
  c: Float32Array,
  cOffset: number,
  ldc: number,
) => void;

const KC = 128;
const NC = 512;
let panel = new Float32Array(KC * NC);

/** Reference blocked GEMM; see {@linkcode Gemm} for the argument contract. */
export const gemmReference: Gemm = (
  transA,
  transB,
  m,
  n,
  k,
  a,
  aOffset,
  lda,
  b,
  bOffset,
  ldb,
  beta,
  c,
  cOffset,
  ldc,
) => {
  if (beta === 0) {
    for (let i = 0; i < m; i++) c.fill(0, cOffset + i * ldc, cOffset + i * ldc + n);
  }
  if (k === 0 || m === 0 || n === 0) return;
  if (panel.length < KC * NC) panel = new Float32Array(KC * NC);
  // Element (i, p) of op(A) is a[aOffset + i * ars + p * acs].
  const ars = transA ? 1 : lda;
  const acs = transA ? lda : 1;
  for (let j0 = 0; j0 < n; j0 += NC) {
    const nc = Math.min(NC, n - j0);
    for (let p0 = 0; p0 < k; p0 += KC) {
      const kc = Math.min(KC, k - p0);
      packB(transB, b, bOffset, ldb, p0, kc, j0, nc, panel);
      let i = 0;
      for (; i + 4 <= m; i += 4) {
        const c0 = cOffset + i * ldc + j0;
        const c1 = c0 + ldc;
        const c2 = c1 + ldc;
        const c3 = c2 + ldc;
        let ap = aOffset + i * ars + p0 * acs;
        for (let p = 0; p < kc; p++, ap += acs) {
          const a0 = a[ap];
          const a1 = a[ap + ars];
          const a2 = a[ap + 2 * ars];
          const a3 = a[ap + 3 * ars];
          const row = p * nc;
          for (let j = 0; j < nc; j++) {
            const bv = panel[row + j];
            c[c0 + j] += a0 * bv;
            c[c1 + j] += a1 * bv;
            c[c2 + j] += a2 * bv;
            c[c3 + j] += a3 * bv;
          }
        }
      }
      for (; i < m; i++) {
        const c0 = cOffset + i * ldc + j0;
        let ap = aOffset + i * ars + p0 * acs;
        for (let p = 0; p < kc; p++, ap += acs) {
          const a0 = a[ap];
          const row = p * nc;
          for (let j = 0; j < nc; j++) c[c0 + j] += a0 * panel[row + j];
        }
      }
    }
  }
};

/** Copies the [kc × nc] block of op(B) starting at (p0, j0) into `out`, row-major with row stride nc. */
function packB(
  transB: boolean,
  b: Float32Array,
  bOffset: number,
  ldb: number,
  p0: number,
  kc: number,
  j0: number,
  nc: number,
  out: Float32Array,
): void {
  if (!transB) {
    for (let p = 0; p < kc; p++) {
      const src = bOffset + (p0 + p) * ldb + j0;
      out.set(b.subarray(src, src + nc), p * nc);
    }
  } else {
    for (let j = 0; j < nc; j++) {
      const src = bOffset + (j0 + j) * ldb + p0;
      for (let p = 0; p < kc; p++) out[p * nc + j] = b[src + p];
    }
  }
}
