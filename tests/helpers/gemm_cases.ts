/**
 * GEMM cases shared by the kernel tests: random operands in every layout, with offsets, leading
 * dimensions wider than the rows, and C pre-filled with NaN (beta 0 must ignore it) or values
 * (beta 1 must add to them). A naive float64 product is the reference.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Gemm, Rng } from "../../mod.ts";

/** One GEMM problem. */
export interface GemmCase {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  beta: number;
}

/** Shapes that exercise edges: 1×1×1, odd sizes, K below and above block sizes, N = 10, m = 1. */
export const gemmShapes: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [3, 3, 1],
  [5, 4, 9],
  [1, 512, 784],
  [16, 10, 33],
  [33, 600, 130],
  [64, 17, 257],
];

/** Runs `gemm` on a case and checks it against the float64 product, within float32 rounding. */
export function checkGemm(gemm: Gemm, c: GemmCase, seed: number): void {
  const rng = new Rng(seed);
  const { transA, transB, m, n, k, beta } = c;
  // Stored shapes with padding: leading dimension = row length + 3, and a 5-element offset.
  const [ar, ac] = transA ? [k, m] : [m, k];
  const [br, bc] = transB ? [n, k] : [k, n];
  const lda = ac + 3;
  const ldb = bc + 3;
  const ldc = n + 2;
  const a = Float32Array.from({ length: 5 + ar * lda }, () => rng.normal());
  const b = Float32Array.from({ length: 7 + br * ldb }, () => rng.normal());
  const c0 = Float32Array.from({ length: 4 + m * ldc }, () => (beta === 0 ? NaN : rng.normal()));
  const out = c0.slice();
  gemm(transA, transB, m, n, k, a, 5, lda, b, 7, ldb, beta, out, 4, ldc);
  const A = (i: number, p: number) => a[5 + (transA ? p * lda + i : i * lda + p)];
  const B = (p: number, j: number) => b[7 + (transB ? j * ldb + p : p * ldb + j)];
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = beta === 0 ? 0 : c0[4 + i * ldc + j];
      let magnitude = Math.abs(sum);
      for (let p = 0; p < k; p++) {
        sum += A(i, p) * B(p, j);
        magnitude += Math.abs(A(i, p) * B(p, j));
      }
      const got = out[4 + i * ldc + j];
      const tolerance = 1e-6 * (magnitude + 1) * Math.sqrt(k + 1);
      if (!(Math.abs(got - sum) <= tolerance)) {
        assert.fail(`gemm ${JSON.stringify(c)}: C[${i}][${j}] = ${got}, expected ${sum}`);
      }
    }
  }
  // Padding between rows and before the offset stays untouched.
  for (let i = 0; i < 4; i++) {
    assert.ok(Object.is(out[i], c0[i]), "C before the offset was written");
  }
  for (let i = 0; i < m; i++) {
    for (let j = n; j < ldc && 4 + i * ldc + j < out.length; j++) {
      assert.ok(
        Object.is(out[4 + i * ldc + j], c0[4 + i * ldc + j]),
        `C padding [${i}][${j}] was written`,
      );
    }
  }
}

/** Every layout × shape × beta combination. */
export function allGemmCases(): GemmCase[] {
  const cases: GemmCase[] = [];
  for (const [m, n, k] of gemmShapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const beta of [0, 1]) cases.push({ transA, transB, m, n, k, beta });
      }
    }
  }
  return cases;
}
