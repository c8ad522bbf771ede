/** Reference kernels: GEMM layouts against float64, im2col/col2im adjointness, table swapping. */

import assert from "node:assert/strict";
import { type ConvGeometry, kernels, referenceKernels, Rng, tensor, useKernels } from "../mod.ts";
import { allGemmCases, checkGemm } from "./helpers/gemm_cases.ts";

Deno.test("reference GEMM: all four layouts, edge shapes, offsets, padded rows, beta 0 over NaN and beta 1", () => {
  allGemmCases().forEach((c, i) => checkGemm(referenceKernels.gemm, c, i));
});

Deno.test("im2col and col2im are adjoint: <im2col(x), c> = <x, col2im(c)>", () => {
  const rng = new Rng(8);
  const geometries: ConvGeometry[] = [
    {
      channels: 2,
      height: 5,
      width: 6,
      kernelH: 3,
      kernelW: 3,
      strideH: 2,
      strideW: 1,
      padH: 1,
      padW: 1,
      outH: 3,
      outW: 6,
    },
    {
      channels: 1,
      height: 28,
      width: 28,
      kernelH: 4,
      kernelW: 4,
      strideH: 2,
      strideW: 2,
      padH: 0,
      padW: 0,
      outH: 13,
      outW: 13,
    },
    {
      channels: 3,
      height: 7,
      width: 7,
      kernelH: 3,
      kernelW: 3,
      strideH: 2,
      strideW: 2,
      padH: 1,
      padW: 1,
      outH: 4,
      outW: 4,
    },
  ];
  for (const g of geometries) {
    const imageSize = g.channels * g.height * g.width;
    const colSize = g.channels * g.kernelH * g.kernelW * g.outH * g.outW;
    const x = Float32Array.from({ length: imageSize }, () => rng.normal());
    const c = Float32Array.from({ length: colSize }, () => rng.normal());
    const col = new Float32Array(colSize);
    referenceKernels.im2col(x, 0, g, col, 0);
    const back = new Float32Array(imageSize);
    referenceKernels.col2im(c, 0, g, back, 0);
    let left = 0;
    let right = 0;
    for (let i = 0; i < colSize; i++) left += col[i] * c[i];
    for (let i = 0; i < imageSize; i++) right += x[i] * back[i];
    assert.ok(Math.abs(left - right) < 1e-3 * (1 + Math.abs(left)), `${left} vs ${right}`);
  }
});

Deno.test("useKernels swaps entries of the table and restores them", () => {
  let calls = 0;
  const before = kernels.gemm;
  const restore = useKernels({
    gemm: (...args) => {
      calls++;
      referenceKernels.gemm(...args);
    },
  });
  try {
    assert.deepEqual(tensor([[1, 2]]).matmul(tensor([[3], [4]])).toArray(), [[11]]);
    assert.equal(calls, 1);
  } finally {
    restore();
  }
  assert.equal(kernels.gemm, before);
});
