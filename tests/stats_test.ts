/**
 * Reductions beyond the op-table rows: prod's gradient with zeros present, logsumexp on infinite
 * slices, topk's order with NaN and ties, variance corrections, negative dims in sum and mean,
 * second derivatives through prod and logsumexp.
 */

import assert from "node:assert/strict";
import {
  cumsum,
  grad,
  gradcheck,
  logsumexp,
  norm,
  prod,
  type Tensor,
  tensor,
  topk,
  variance,
} from "../mod.ts";

Deno.test("prod's gradient is the product of the others, zeros included", () => {
  const x = tensor([[2, 0, 3], [0, 0, 4], [1, 2, 3]], { requiresGrad: true });
  prod(x, 1).sum().backward();
  assert.deepEqual(x.grad!.toArray(), [[0, 6, 0], [0, 0, 0], [6, 3, 2]]);
  // prod is linear in each element, so finite differences are exact at the zeros too.
  const result = gradcheck((t) => prod(t, [0, 1]), [
    tensor([[2, 0], [3, 5]], { requiresGrad: true }),
  ]);
  assert.ok(result.ok, result.report);
  // Second derivative: d²/dx₀dx₁ of x₀x₁x₂ is x₂.
  const h = grad((t: Tensor) => grad((u: Tensor) => prod(u))(t).slice(0, 0, 1).sum());
  const hx = h(tensor([1.5, 2, 3]));
  assert.deepEqual(Array.from(hx.toFloat32Array()), [0, 3, 2]);
});

Deno.test("logsumexp: infinite slices, keepDim, softmax gradient", () => {
  const y = logsumexp(tensor([[-Infinity, -Infinity], [Infinity, 1], [1000, 1000]]), 1);
  assert.deepEqual(Array.from(y.toFloat32Array()), [
    -Infinity,
    Infinity,
    Math.fround(1000 + Math.LN2),
  ]);
  assert.deepEqual(logsumexp(tensor([[1, 2], [3, 4]]), -1, true).shape, [2, 1]);
  const g = grad((t: Tensor) => logsumexp(t))(tensor([0, Math.log(3)]));
  assert.ok(Math.abs(g.toFloat32Array()[0] - 0.25) < 1e-6);
});

Deno.test("topk: sorted, NaN counts as largest, ties keep the lower index, gradient to the chosen", () => {
  const x = tensor([[1, Number.NaN, 3, 3, -2]], { requiresGrad: true });
  const { values, indices } = topk(x, 3);
  assert.deepEqual(Array.from(indices.values()), [1, 2, 3]);
  assert.equal(indices.dtype, "int32");
  assert.ok(Number.isNaN(values.toFloat32Array()[0]));
  const small = topk(x, 2, -1, false);
  assert.deepEqual(Array.from(small.indices.values()), [4, 0]);
  small.values.sum().backward();
  assert.deepEqual(Array.from(x.grad!.toFloat32Array()), [1, 0, 0, 0, 1]);
  assert.throws(() => topk(x, 6), /topk: k = 6 is out of range/);
  assert.deepEqual(topk(tensor([[1, 2], [4, 3]]), 1, 0).indices.toArray(), [[1, 1]]);
});

Deno.test("variance corrections, norm at zero, negative dims, cumsum twice differentiable", () => {
  const x = tensor([[1, 2, 3, 4], [2, 2, 2, 2]]);
  assert.deepEqual(Array.from(variance(x, -1).toFloat32Array()), [Math.fround(5 / 3), 0]);
  assert.deepEqual(Array.from(variance(x, 1, { correction: 0 }).toFloat32Array()), [1.25, 0]);
  assert.deepEqual(x.var(0, { keepDim: true }).shape, [1, 4]);
  assert.deepEqual(x.sum(-1).toArray(), [10, 8]);
  assert.deepEqual(x.mean([-2, -1], true).toArray(), [[2.25]]);
  const z = tensor([0, 0, 0], { requiresGrad: true });
  norm(z).backward();
  assert.deepEqual(Array.from(z.grad!.toFloat32Array()), [0, 0, 0], "no NaN at the zero vector");
  const c = grad((t: Tensor) => cumsum(t, 0).mul(t).sum())(tensor([1, 2, 3]));
  // d/dxᵢ Σⱼ xⱼ·Σ_{t≤j} x_t = Σ_{t≤i} x_t + Σ_{j≥i} x_j.
  assert.deepEqual(Array.from(c.toFloat32Array()), [1 + 6, 3 + 5, 6 + 3]);
});
