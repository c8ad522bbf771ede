/**
 * More gradient checks of the original ops (central finite differences), including several
 * inputs, a tensor used twice and broadcasting both ways. The one-line checks of every op, and
 * the test that none is missing, are in `ops_table_test.ts`.
 */

import assert from "node:assert/strict";
import {
  conv2d,
  crossEntropy,
  dropout,
  gradcheck,
  type GradcheckOptions,
  linear,
  matmul,
  maxPool2d,
  nllLoss,
  Rng,
  type Tensor,
  tensor,
} from "../mod.ts";

const rng = new Rng(7);

/** A leaf with random normal values (optionally pushed away from 0 by `margin`). */
function leaf(shape: number[], margin = 0, scale = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = rng.normal() * scale;
    data[i] = v + Math.sign(v || 1) * margin;
  }
  return tensor(data, { shape, requiresGrad: true });
}

function check(fn: (...t: Tensor[]) => Tensor, inputs: Tensor[], options?: GradcheckOptions): void {
  const result = gradcheck(fn, inputs, options);
  assert.ok(result.ok, result.report);
  assert.ok(result.checked > 0);
}

const labels = new Int32Array([1, 0, 3, 3, 2]);

/** Extra cases per op. */
const gradientChecks: Record<string, () => void> = {
  add: () => {
    check((a, b) => a.add(b), [leaf([3, 4]), leaf([3, 4])]);
    check((a, b) => a.add(b), [leaf([2, 3, 4]), leaf([3, 1])]); // broadcast right
    check((a, b) => a.add(b), [leaf([4]), leaf([2, 3, 4])]); // broadcast left
    check((a) => a.add(2.5), [leaf([3])]);
  },
  sub: () => {
    check((a, b) => a.sub(b), [leaf([2, 1, 4]), leaf([3, 1])]);
    check((a, b) => a.transpose().sub(b), [leaf([4, 3]), leaf([4])]);
  },
  mul: () => {
    check((a, b) => a.mul(b), [leaf([3, 4]), leaf([4])]);
    check((a, b) => a.mul(b), [leaf([1, 4]), leaf([3, 1])]);
    check((a) => a.mul(a), [leaf([5])]); // the same tensor on both sides
  },
  div: () => {
    check((a, b) => a.div(b), [leaf([3, 4]), leaf([4], 0.5)]);
    check((a, b) => a.div(b), [leaf([4]), leaf([2, 4], 0.5)]);
  },
  neg: () => check((a) => a.slice(1, 0, 4, 2).neg(), [leaf([3, 4])]),
  pow: () => {
    check((a) => a.pow(2), [leaf([6])]);
    check((a) => a.pow(3), [leaf([6])]);
    check((a) => a.abs().add(0.5).pow(-1.5), [leaf([6], 0.01)]);
  },
  exp: () => check((a) => a.exp(), [leaf([2, 3])]),
  log: () => check((a) => a.abs().add(0.2).log(), [leaf([2, 3], 0.01)]),
  sqrt: () => check((a) => a.abs().add(0.3).sqrt(), [leaf([2, 3], 0.01)]),
  abs: () => check((a) => a.abs(), [leaf([2, 3], 0.05)]),
  relu: () => check((a) => a.relu(), [leaf([3, 4], 0.05)]),
  leakyRelu: () => check((a) => a.leakyRelu(0.2), [leaf([3, 4], 0.05)]),
  sigmoid: () => check((a) => a.sigmoid(), [leaf([3, 4], 0, 3)]),
  tanh: () => check((a) => a.tanh(), [leaf([3, 4])]),
  matmul: () => {
    check((a, b) => matmul(a, b), [leaf([3, 5]), leaf([5, 2])]);
    check((a, b) => matmul(a.transpose(), b), [leaf([5, 3]), leaf([5, 2])]); // transposed operand
    check((a, b) => matmul(a, b), [leaf([2, 3, 4]), leaf([2, 4, 2])]); // batched
    check((a, b) => matmul(a, b), [leaf([2, 3, 4]), leaf([4, 2])]); // shared right side
    check((a, b) => matmul(a, b), [leaf([3, 4]), leaf([2, 4, 2])]); // shared left side
  },
  linear: () => {
    check((x, w, b) => linear(x, w, b), [leaf([4, 5]), leaf([3, 5]), leaf([3])]);
    check((x, w) => linear(x, w), [leaf([2, 2, 5]), leaf([3, 5])]);
    // Fused ReLU, with a transposed input and a transposed (non-contiguous) weight.
    check((x, w, b) => linear(x, w, b, { relu: true }), [leaf([4, 5]), leaf([3, 5]), leaf([3])]);
    check(
      (x, w, b) => linear(x.transpose(), w.transpose(), b, { relu: true }),
      [leaf([5, 4]), leaf([5, 3]), leaf([3])],
    );
  },
  sum: () => {
    check((a) => a.sum(), [leaf([3, 4])]);
    check((a) => a.sum([0, 2], true), [leaf([2, 3, 4])]);
    check((a) => a.sum(1), [leaf([2, 3, 4])]);
  },
  mean: () => {
    check((a) => a.mean(), [leaf([3, 4])]);
    check((a) => a.mean([1, 2]), [leaf([2, 3, 4])]);
  },
  max: () => {
    // Distinct, well separated values: the maximum does not switch within ±eps.
    const values = rng.permutation(24);
    const a = tensor(Float32Array.from(values, (v) => v / 10), {
      shape: [2, 3, 4],
      requiresGrad: true,
    });
    check((t) => t.max(), [a]);
    check((t) => t.max([0, 2], true), [a]);
    check((t) => t.max(1), [a]);
  },
  softmax: () => {
    check((a) => a.softmax(), [leaf([3, 5])]);
    check((a) => a.softmax(0), [leaf([3, 5])]);
  },
  logSoftmax: () => {
    check((a) => a.logSoftmax(), [leaf([3, 5])]);
    check((a) => a.transpose().logSoftmax(1), [leaf([5, 3])]);
  },
  crossEntropy: () => {
    check((a) => crossEntropy(a, labels), [leaf([5, 4])]);
    check((a) => crossEntropy(a, labels, { labelSmoothing: 0.2, reduction: "sum" }), [
      leaf([5, 4]),
    ]);
    check((a) => crossEntropy(a.transpose(), labels), [leaf([4, 5])]);
  },
  nllLoss: () => check((a) => nllLoss(a.logSoftmax(), labels), [leaf([5, 4])]),
  conv2d: () => {
    check((x, w, b) => conv2d(x, w, b, { stride: 2, padding: 1 }), [
      leaf([2, 2, 5, 5]),
      leaf([3, 2, 3, 3]),
      leaf([3]),
    ]);
    check((x, w) => conv2d(x, w, undefined, { stride: 1, padding: 0 }), [
      leaf([1, 1, 4, 4]),
      leaf([2, 1, 2, 2]),
    ]);
    check((x, w, b) => conv2d(x, w, b, { stride: 2 }), [
      leaf([1, 1, 8, 8]),
      leaf([2, 1, 4, 4]),
      leaf([2]),
    ]);
  },
  maxPool2d: () => {
    const values = rng.permutation(2 * 2 * 6 * 6);
    const x = tensor(Float32Array.from(values, (v) => v / 20), {
      shape: [2, 2, 6, 6],
      requiresGrad: true,
    });
    check((t) => maxPool2d(t, 2), [x]);
    check((t) => maxPool2d(t, 3, { stride: 2, padding: 1 }), [x]);
  },
  dropout: () => {
    // The mask is drawn from a fresh generator on every call, so each evaluation sees the same mask.
    check((a) => dropout(a, 0.3, { rng: new Rng(11) }), [leaf([4, 5])]);
  },
  reshape: () => {
    check((a) => a.reshape(4, 3).mul(tensor([1, 2, 3])), [leaf([3, 4])]);
    check((a) => a.transpose().reshape(-1), [leaf([3, 4])]); // needs a copy first
    check((a) => a.unsqueeze(1).squeeze(1).flatten(), [leaf([3, 4])]);
  },
  transpose: () => check((a) => a.transpose(0, 2).mul(tensor([1, -2])), [leaf([2, 3, 2])]),
  permute: () =>
    check((a) => a.permute(2, 0, 1).mul(tensor([[[1]], [[2]], [[3]]])), [leaf([4, 2, 3])]),
  slice: () => {
    check((a) => a.slice(1, 1, 5, 2), [leaf([3, 6])]);
    check((a) => a.narrow(0, 1, 2).slice(-1, -3), [leaf([3, 6])]);
  },
  expand: () => check((a) => a.expand(3, 4, 2).mul(tensor([1, 3])), [leaf([4, 1])]),
  contiguous: () => {
    check((a) => a.transpose().contiguous(), [leaf([3, 4])]);
    check((a) => a.clone().mul(a), [leaf([3])]);
  },
};

for (const [op, run] of Object.entries(gradientChecks)) {
  Deno.test(`gradient ${op}`, run);
}

Deno.test("gradient textbook values: d/dx x³ = 3x², d/dx σ(x) = σ(1−σ), d(mean)/dx = 1/n", () => {
  const x = tensor([2, -1], { requiresGrad: true });
  x.pow(3).sum().backward();
  assert.deepEqual(x.grad?.toArray(), [12, 3]);
  const z = tensor([0], { requiresGrad: true });
  z.sigmoid().sum().backward();
  assert.deepEqual(z.grad?.toArray(), [0.25]);
  const m = tensor([1, 2, 3, 4], { requiresGrad: true });
  m.mean().backward();
  assert.deepEqual(m.grad?.toArray(), [0.25, 0.25, 0.25, 0.25]);
  const logits = tensor([[0, 0, 0, 0]], { requiresGrad: true });
  crossEntropy(logits, new Int32Array([1])).backward();
  assert.deepEqual(logits.grad?.toArray(), [[0.25, -0.75, 0.25, 0.25]]);
});
