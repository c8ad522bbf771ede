/**
 * Gradients of gradients: second derivatives of elementwise functions against their closed forms,
 * `grad(grad(f))`, a Hessian-vector product of a small MLP against finite differences of its
 * gradient, fused ops differentiated twice through their composites, and a fused op without a
 * composite refusing by name.
 */

import assert from "node:assert/strict";
import {
  conv2d,
  crossEntropy,
  grad,
  gradients,
  linear,
  noGrad,
  randn,
  Rng,
  type Tensor,
  tensor,
  valueAndGrad,
} from "../mod.ts";

const points = [-1.5, -0.6, -0.1, 0.3, 0.8, 1.7];

function assertAll(actual: Tensor, expected: number[], tol: number, what: string): void {
  const values = actual.toFloat32Array();
  assert.equal(values.length, expected.length, what);
  values.forEach((v, i) => {
    assert.ok(
      Math.abs(v - expected[i]) <= tol * (1 + Math.abs(expected[i])),
      `${what}[${i}]: ${v} vs ${expected[i]}`,
    );
  });
}

const secondDerivatives: [string, (x: Tensor) => Tensor, (x: number) => number, number[]?][] = [
  ["tanh", (x) => x.tanh(), (x) => -2 * Math.tanh(x) * (1 - Math.tanh(x) ** 2)],
  ["sigmoid", (x) => x.sigmoid(), (x) => {
    const s = 1 / (1 + Math.exp(-x));
    return s * (1 - s) * (1 - 2 * s);
  }],
  ["exp", (x) => x.exp(), Math.exp],
  ["x³", (x) => x.pow(3), (x) => 6 * x],
  ["x·x·x", (x) => x.mul(x).mul(x), (x) => 6 * x],
  ["log(1+x²)", (x) => x.mul(x).add(1).log(), (x) => (2 - 2 * x * x) / (1 + x * x) ** 2],
  ["1/x", (x) => tensor([1]).div(x), (x) => 2 / x ** 3],
  ["sqrt", (x) => x.sqrt(), (x) => -0.25 * x ** -1.5, [0.3, 0.8, 1.7, 2.5]],
  [
    "softplus by log(1+eˣ)",
    (x) => x.exp().add(1).log(),
    (x) => Math.exp(x) / (1 + Math.exp(x)) ** 2,
  ],
];

for (const [name, f, d2, at] of secondDerivatives) {
  Deno.test(`second derivative of ${name} matches the closed form`, () => {
    const xs = at ?? points;
    // Elementwise f, so d/dx Σ f(x) = f′(x) and d/dx Σ f′(x) = f″(x).
    const firstSum = (x: Tensor) => grad((y: Tensor) => f(y).sum())(x).sum();
    assertAll(grad(firstSum)(tensor(xs)), xs.map(d2), 2e-4, name);
    // The same through backward({ createGraph: true }) and .grad.
    const x = tensor(xs, { requiresGrad: true });
    f(x).sum().backward(undefined, { createGraph: true });
    const first = x.grad!;
    assert.ok(first.requiresGrad, "the gradient is differentiable under createGraph");
    x.grad = null;
    first.sum().backward();
    assertAll(x.grad!, xs.map(d2), 2e-4, `${name} via backward`);
  });
}

Deno.test("valueAndGrad returns the value and the gradient and leaves .grad alone", () => {
  const x = tensor([1, 2, 3], { requiresGrad: true });
  const [y, dy] = valueAndGrad((t: Tensor) => t.mul(t).sum())(x);
  assert.equal(y.item(), 14);
  assert.deepEqual(dy.toArray(), [2, 4, 6]);
  assert.equal(x.grad, null);
  assert.throws(() => grad((t: Tensor) => t.mul(2))(x), /one-element tensor/);
});

Deno.test("gradients gives partial derivatives and stops at its inputs", () => {
  const a = tensor([2], { requiresGrad: true });
  const b = a.mul(3); // b depends on a
  const out = a.mul(b); // ∂out/∂a with b held fixed = b = 6; ∂out/∂b = a = 2
  const [da, db] = gradients(out.sum(), [a, b]);
  assert.deepEqual([da.item(), db.item()], [6, 2]);
});

/** A small MLP's loss as a function of its flattened first-layer weight (the rest fixed). */
function mlpLoss(rng: Rng) {
  const x = randn([6, 4], rng);
  const w2 = randn([3, 5], rng);
  const b2 = randn([3], rng);
  const b1 = randn([5], rng);
  const labels = new Int32Array([0, 2, 1, 1, 0, 2]);
  return (w1: Tensor) => {
    const h = linear(x, w1.reshape(5, 4), b1).tanh();
    return crossEntropy(linear(h, w2, b2, { relu: false }), labels);
  };
}

Deno.test("Hessian-vector product of a small MLP matches finite differences of its gradient", () => {
  const rng = new Rng(3);
  const loss = mlpLoss(rng);
  const w = randn([20], rng);
  const v = randn([20], rng);
  // Hv = d/dw (∇L(w) · v)
  const hv = grad((t: Tensor) => grad(loss)(t).mul(v).sum())(w);
  const eps = 1e-2;
  const gradAt = (s: number) => grad(loss)(noGrad(() => w.add(v.mul(s)))).toFloat32Array();
  const up = gradAt(eps);
  const down = gradAt(-eps);
  const numeric = Array.from(up, (u, i) => (u - down[i]) / (2 * eps));
  assertAll(hv, numeric, 2e-2, "Hv");
});

Deno.test("fused linear+ReLU and crossEntropy are twice differentiable through their composites", () => {
  const rng = new Rng(5);
  const x = randn([4, 3], rng);
  const w = randn([2, 3], rng, { requiresGrad: true });
  const fused = (t: Tensor) =>
    crossEntropy(linear(x, t, undefined, { relu: true }).mul(2), new Int32Array([0, 1, 1, 0]));
  const composite = (t: Tensor) =>
    x.matmul(t.transpose()).relu().mul(2).logSoftmax(1).mul(
      tensor([[1, 0], [0, 1], [0, 1], [1, 0]]),
    )
      .sum().neg().div(4);
  const hvFused = grad((t: Tensor) => grad(fused)(t).sum())(w.detach());
  const hvComposite = grad((t: Tensor) => grad(composite)(t).sum())(w.detach());
  assertAll(hvFused, Array.from(hvComposite.toFloat32Array()), 1e-5, "fused vs composite");
});

Deno.test("a fused op with no composite gives first-order gradients under createGraph and refuses a second by name", () => {
  const rng = new Rng(2);
  const w = randn([1, 1, 3, 3], rng);
  const x = randn([1, 1, 4, 4], rng);
  const first = (t: Tensor) => conv2d(t, w).pow(2).sum();
  // The plain first-order gradient, then the same under createGraph (a leaf that requires grad).
  const expected = grad(first)(x).toFloat32Array();
  const leaf = x.detach();
  leaf.requiresGrad = true;
  first(leaf).backward(undefined, { createGraph: true });
  assert.deepEqual(leaf.grad!.toFloat32Array(), expected);
  assert.throws(
    () => leaf.grad!.sum().backward(),
    /gradient of 'conv2d' was computed by a fused kernel/,
  );
  assert.throws(
    () => grad((t: Tensor) => grad(first)(t).sum())(x),
    /gradient of 'conv2d' was computed by a fused kernel/,
  );
});
