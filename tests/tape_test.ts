/** Tape semantics: accumulation, reuse, noGrad, detach, freed graphs, explicit gradients. */

import assert from "node:assert/strict";
import { applyOp, defineOp, isGradEnabled, linear, noGrad, type Tensor, tensor } from "../mod.ts";

/** The gradient of a leaf as a plain array (read through a function so narrowing cannot go stale). */
function gradOf(t: Tensor): number[] {
  assert.ok(t.grad !== null, "gradient expected");
  return Array.from(t.grad.toFloat32Array());
}

Deno.test("a tensor used twice gets the sum of both gradients", () => {
  const x = tensor([1, -2, 3], { requiresGrad: true });
  x.mul(x).add(x).sum().backward(); // d/dx (x² + x) = 2x + 1
  assert.deepEqual(x.grad?.toArray(), [3, -3, 7]);
});

Deno.test("diamond graph: a shared intermediate receives both branches before its own rule runs", () => {
  const x = tensor([0.5, 1], { requiresGrad: true });
  const a = x.exp();
  a.mul(a).add(a).sum().backward(); // d/dx (e^{2x} + e^x) = 2e^{2x} + e^x
  const expected = [0.5, 1].map((v) => 2 * Math.exp(2 * v) + Math.exp(v));
  x.grad!.toFloat32Array().forEach((g, i) => assert.ok(Math.abs(g - expected[i]) < 1e-5));
});

Deno.test("gradients accumulate across backward calls until cleared", () => {
  const w = tensor([2], { requiresGrad: true });
  w.mul(3).sum().backward();
  w.mul(3).sum().backward();
  assert.deepEqual(w.grad?.toArray(), [6]);
  w.grad = null;
  w.mul(5).sum().backward();
  assert.deepEqual(gradOf(w), [5]);
});

/** Backward calls of doubleIntoSink that were offered a sink. */
let sinkOffers = 0;

/** y = 2x, whose rule adds 2·g straight into the leaf's gradient whenever it is offered one. */
const doubleIntoSink = defineOp<[Tensor], null, null>({
  name: "doubleIntoSink",
  forward([x]) {
    return { out: x.mul(2), saved: null };
  },
  backward(g, _saved, _inputs, _attrs, _out, into) {
    const sink = into[0];
    if (!sink) return [g.mul(2)];
    sinkOffers++;
    const twice = g.mul(2).contiguous();
    for (let i = 0; i < sink.size; i++) sink.data[sink.offset + i] += twice.data[twice.offset + i];
    return [null];
  },
});

Deno.test("a rule may add into a leaf's existing gradient in place (GradSinks)", () => {
  sinkOffers = 0;
  const x = tensor([1, 2, 3], { requiresGrad: true });
  applyOp(doubleIntoSink, [x], null).sum().backward();
  const first = x.grad;
  assert.deepEqual(gradOf(x), [2, 2, 2]);
  applyOp(doubleIntoSink, [x], null).mul(tensor([1, 10, 100])).sum().backward();
  assert.equal(x.grad, first, "the same gradient tensor, updated in place");
  assert.deepEqual(gradOf(x), [4, 22, 202]);
  assert.equal(sinkOffers, 2, "a leaf is offered its gradient, the first time included");
  // Intermediates are never sinks: the rule's returned gradient flows on to the leaf.
  const y = tensor([1, 1, 1], { requiresGrad: true });
  applyOp(doubleIntoSink, [y.mul(3)], null).sum().backward();
  assert.deepEqual(gradOf(y), [6, 6, 6]);
  assert.equal(sinkOffers, 2);
});

Deno.test("a gradient the user replaced by a strided view is not offered as a sink", () => {
  const w = tensor([[1, 2], [3, 4]], { requiresGrad: true });
  w.grad = tensor([[10, 20], [30, 40]]).transpose(0, 1); // strided: [[10, 30], [20, 40]]
  sinkOffers = 0;
  applyOp(doubleIntoSink, [w], null).sum().backward();
  assert.deepEqual(w.grad?.toArray(), [[12, 32], [22, 42]]);
  assert.equal(sinkOffers, 0);
  // Linear's weight and bias use sinks too; a strided weight gradient still comes out right.
  const x = tensor([[1, 2], [3, 4], [5, 6]]);
  const weight = tensor([[1, 0], [0, 1]], { requiresGrad: true });
  const bias = tensor([0, 0], { requiresGrad: true });
  weight.grad = tensor([[0, 0], [0, 0]]).transpose(0, 1);
  linear(x, weight, bias).sum().backward();
  assert.deepEqual(weight.grad?.toArray(), [[9, 12], [9, 12]]);
  assert.deepEqual(bias.grad?.toArray(), [3, 3]);
  linear(x, weight, bias).sum().backward();
  assert.deepEqual(weight.grad?.toArray(), [[18, 24], [18, 24]]);
  assert.deepEqual(bias.grad?.toArray(), [6, 6]);
});

Deno.test("leaf gradients are private copies, even when the rule returns the same tensor twice", () => {
  const a = tensor([1, 2], { requiresGrad: true });
  const b = tensor([3, 4], { requiresGrad: true });
  a.add(b).sum().backward();
  assert.notEqual(a.grad, b.grad);
  assert.notEqual(a.grad!.data, b.grad!.data);
  a.grad!.data[0] = 100;
  assert.deepEqual(b.grad?.toArray(), [1, 1]);
});

Deno.test("noGrad records nothing and restores the mode, even after a throw", () => {
  const x = tensor([1, 2], { requiresGrad: true });
  const y = noGrad(() => x.mul(2));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.gradFn, null);
  assert.throws(() =>
    noGrad(() => {
      throw new Error("inside");
    }), /inside/);
  assert.equal(isGradEnabled(), true);
  assert.throws(() => y.sum().backward(), /does not require grad/);
});

Deno.test("detach cuts the graph but shares storage", () => {
  const x = tensor([1, 2], { requiresGrad: true });
  const d = x.mul(2).detach();
  assert.equal(d.requiresGrad, false);
  const z = x.mul(d).sum(); // only the direct path reaches x
  z.backward();
  assert.deepEqual(x.grad?.toArray(), [2, 4]);
  const e = x.detach();
  assert.equal(e.data, x.data);
});

Deno.test("a second backward through a freed graph is a clear error; retainGraph allows it", () => {
  const x = tensor([1, 2], { requiresGrad: true });
  const loss = x.exp().sum();
  loss.backward();
  assert.throws(() => loss.backward(), /already freed by an earlier backward\(\).*retainGraph/);
  const kept = x.exp().sum();
  x.grad = null;
  kept.backward(undefined, { retainGraph: true });
  kept.backward();
  const twice = [1, 2].map((v) => 2 * Math.exp(v));
  gradOf(x).forEach((g, i) => assert.ok(Math.abs(g - twice[i]) < 1e-5, `${g} vs ${twice[i]}`));
  // A branch that shares a freed part is refused too.
  const y = tensor([1], { requiresGrad: true });
  const shared = y.mul(2);
  shared.sum().backward();
  assert.throws(() => shared.mul(3).sum().backward(), /already freed/);
});

Deno.test("backward frees each entry it used", () => {
  const x = tensor([1, 2], { requiresGrad: true });
  const h = x.mul(2);
  const loss = h.sum();
  loss.backward();
  assert.equal(h.gradFn?.backward, null);
  assert.deepEqual(h.gradFn?.inputs, []);
});

Deno.test("non-scalar backward needs an explicit gradient of the same shape", () => {
  const x = tensor([[1, 2], [3, 4]], { requiresGrad: true });
  const y = x.mul(2);
  assert.throws(() => y.backward(), /has shape \[2, 2\]; pass the gradient explicitly/);
  assert.throws(
    () => y.backward(tensor([1, 1])),
    /gradient shape \[2\] differs from the tensor's \[2, 2\]/,
  );
  y.backward(tensor([[1, 0], [0, 1]]));
  assert.deepEqual(x.grad?.toArray(), [[2, 0], [0, 2]]);
});

Deno.test("only leaves keep .grad; inputs without requiresGrad get none", () => {
  const x = tensor([1, 2], { requiresGrad: true });
  const c = tensor([5, 6]);
  const h = x.mul(c);
  h.sum().backward();
  assert.equal(h.grad, null);
  assert.equal(c.grad, null);
  assert.deepEqual(x.grad?.toArray(), [5, 6]);
});

Deno.test("a backward rule returning the wrong shape is reported with the op's name", () => {
  const bad = defineOp<[Tensor], null, null>({
    name: "badShape",
    forward: ([x]) => ({ out: noGrad(() => x.mul(1)), saved: null }),
    backward: () => [tensor([1])],
  });
  const x = tensor([1, 2], { requiresGrad: true });
  assert.throws(
    () => applyOp(bad, [x], null).sum().backward(),
    /backward of 'badShape': gradient for input 0 has shape \[1\], but the input has shape \[2\]/,
  );
});

Deno.test("entries are recorded in execution order and hang off their outputs", () => {
  const x = tensor([1], { requiresGrad: true });
  const a = x.mul(2);
  const b = a.add(1);
  assert.ok(b.gradFn!.seq > a.gradFn!.seq);
  assert.equal(b.gradFn!.op, "add");
  assert.equal(b.gradFn!.inputs[0], a);
  assert.equal(x.gradFn, null);
  assert.ok(x.isLeaf && !b.isLeaf);
});
