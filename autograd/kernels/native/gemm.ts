/**
 * The {@link Gemm} contract over a system BLAS: C = op(A)·op(B) + beta·C, row-major, offsets and
 * leading dimensions in elements, operands read and written where they are (a JavaScript-heap
 * `Float32Array` or a view of the wasm memory alike).
 *
 * Native code trusts its arguments, so every operand's extent is checked against its array
 * before the call (a wrong leading dimension would otherwise read or write past the array), and
 * each operand is handed over as a `subarray` that ends at the last element BLAS may touch.
 * A one-row product (batch-1 inference: x·Wᵀ or x·B) goes to `cblas_sgemv`, which BLAS libraries
 * tune for that case; everything else to `cblas_sgemm`.
 *
 * @module
 */

import type { Gemm } from "../gemm.ts";
import { parkThreads, profileAdd, profiling } from "../wasm/gemm.ts";
import type { Blas } from "./blas.ts";

/** Throws a RangeError naming the kernel, the product and the operand when it overruns its array. */
function isDimension(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0x7fffffff;
}

function checkOperand(
  shape: () => string,
  name: string,
  arr: Float32Array,
  offset: number,
  rows: number,
  cols: number,
  ld: number,
): void {
  if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(ld) || (rows > 1 && ld < cols)) {
    throw new RangeError(
      `nativeGemm ${shape()}: ${name} stored [${rows},${cols}] with offset ${offset}, leading dimension ${ld} is invalid`,
    );
  }
  if (rows > 0 && cols > 0 && offset + (rows - 1) * ld + cols > arr.length) {
    throw new RangeError(
      `nativeGemm ${shape()}: ${name} stored [${rows},${cols}] (offset ${offset}, ld ${ld}) overruns its array of ${arr.length}`,
    );
  }
}

/** The elements of a stored [rows, cols] operand, from its first to its last. */
function span(arr: Float32Array, offset: number, rows: number, cols: number, ld: number) {
  return arr.subarray(offset, offset + (rows - 1) * ld + cols);
}

/**
 * A leading dimension BLAS accepts: our contract lets a one-row operand have any ld (it is never
 * used), CBLAS requires ld ≥ max(1, columns).
 */
function blasLd(rows: number, cols: number, ld: number): number {
  return rows <= 1 ? Math.max(1, cols) : ld;
}

/** A {@link Gemm} that runs on `blas` (see the module comment). */
export function createNativeGemm(blas: Blas): Gemm {
  return (transA, transB, m, n, k, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc) => {
    // The product's description, for error messages only (built when one is thrown: this runs
    // thousands of times a step for attention's per-head products).
    const shape = () => `${transA ? "Aᵀ" : "A"}·${transB ? "Bᵀ" : "B"} m=${m} n=${n} k=${k}`;
    if (!isDimension(m) || !isDimension(n) || !isDimension(k)) {
      const name = !isDimension(m) ? "m" : !isDimension(n) ? "n" : "k";
      throw new RangeError(`nativeGemm ${shape()}: ${name} must be a non-negative 32-bit integer`);
    }
    if (beta !== 0 && beta !== 1) {
      throw new RangeError(`nativeGemm ${shape()}: beta must be 0 or 1, got ${beta}`);
    }
    const aRows = transA ? k : m;
    const aCols = transA ? m : k;
    const bRows = transB ? n : k;
    const bCols = transB ? k : n;
    checkOperand(shape, "A", a, aOffset, aRows, aCols, lda);
    checkOperand(shape, "B", b, bOffset, bRows, bCols, ldb);
    checkOperand(shape, "C", c, cOffset, m, n, ldc);
    if (m === 0 || n === 0) return;
    if (k === 0) {
      // BLAS would do the same, but the contract is ours: beta = 0 overwrites, even NaN.
      if (beta === 0) {
        for (let i = 0; i < m; i++) c.fill(0, cOffset + i * ldc, cOffset + i * ldc + n);
      }
      return;
    }
    // The wasm workers that just ran a job (the optimizer step, a convolution's layout pass)
    // would spin for the next one on the cores BLAS's threads are about to use.
    parkThreads();
    // bench:profile's kernel profile gets the time spent inside BLAS under "blas".
    const t0 = profiling() ? performance.now() : 0;
    try {
      call(blas, [
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
      ]);
    } finally {
      if (t0 !== 0) profileAdd("blas", performance.now() - t0);
    }
  };
}

/** The BLAS call of a checked product with m, n and k > 0. */
function call(blas: Blas, args: Parameters<Gemm>): void {
  const [transA, transB, m, n, k, a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc] = args;
  const aRows = transA ? k : m;
  const aCols = transA ? m : k;
  const bRows = transB ? n : k;
  const bCols = transB ? k : n;
  const A = span(a, aOffset, aRows, aCols, lda);
  const B = span(b, bOffset, bRows, bCols, ldb);
  const C = span(c, cOffset, m, n, ldc);
  if (m === 1) {
    // x = op(A)'s one row: contiguous when A is stored [1, k], every lda-th element when [k, 1].
    const incx = transA && k > 1 ? lda : 1;
    if (transB) blas.sgemv(false, n, k, B, blasLd(n, k, ldb), A, incx, beta, C);
    else blas.sgemv(true, k, n, B, blasLd(k, n, ldb), A, incx, beta, C);
    return;
  }
  blas.sgemm(
    transA,
    transB,
    m,
    n,
    k,
    A,
    blasLd(aRows, aCols, lda),
    B,
    blasLd(bRows, bCols, ldb),
    beta,
    C,
    blasLd(m, n, ldc),
  );
}
