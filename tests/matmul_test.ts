/**
 * matmul's broadcasting beyond the op-table rows: transposed views reach the GEMM as layout flags
 * (no copies), a batch against a shared matrix is one GEMM each way, and shape errors name the op
 * and the shapes.
 */

import assert from "node:assert/strict";
import { kernels, useKernels } from "../autograd/kernels/mod.ts";
import { matmul, randn, Rng, type Tensor } from "../mod.ts";

/** Counts the GEMM and strided-copy calls `fn` makes. */
function calls(fn: () => void): { gemm: number; copies: number } {
  const counts = { gemm: 0, copies: 0 };
  const { gemm, copyStrided } = kernels;
  const restore = useKernels({
    gemm: (...args) => (counts.gemm++, gemm(...args)),
    copyStrided: (...args) => (counts.copies++, copyStrided(...args)),
  });
  try {
    fn();
  } finally {
    restore();
  }
  return counts;
}

Deno.test("transposed batch views go to the GEMM without copies", () => {
  const rng = new Rng(2);
  const a = randn([2, 3, 5, 4], rng);
  const b = randn([2, 3, 5, 4], rng);
  let y: Tensor | null = null;
  const counts = calls(() => (y = matmul(a.transpose(-1, -2), b)));
  assert.deepEqual(y!.shape, [2, 3, 4, 4]);
  assert.equal(counts.copies, 0);
  assert.equal(counts.gemm, 6);
});

Deno.test("a batch times a shared matrix is one GEMM forward and one per gradient", () => {
  const rng = new Rng(3);
  const x = randn([4, 8, 16], rng, { requiresGrad: true });
  const w = randn([16, 32], rng, { requiresGrad: true });
  const forward = calls(() => matmul(x, w));
  assert.equal(forward.gemm, 1);
  // A dense upstream gradient (a plain sum's would be an expanded view).
  const loss = matmul(x, w).mul(randn([4, 8, 32], rng)).sum();
  const backward = calls(() => loss.backward());
  assert.equal(backward.gemm, 2);
  assert.deepEqual(w.grad!.shape, [16, 32]);
  assert.deepEqual(x.grad!.shape, [4, 8, 16]);
});

Deno.test("matmul errors name the shapes", () => {
  assert.throws(
    () => matmul(randn([2, 3]), randn([4, 5])),
    /matmul: cannot multiply \[2, 3\] by \[4, 5\]/,
  );
  assert.throws(() => matmul(randn([2, 2, 3]), randn([3, 3, 4])), /matmul/);
  assert.throws(() => matmul(randn([]), randn([3])), /at least 1 dim/);
});
