/** Gradient clipping by global norm and by value. */

import assert from "node:assert/strict";
import { clipGradNorm, clipGradValue, gradNorm, tensor } from "../mod.ts";

Deno.test("gradNorm is the L2 norm over all gradients; clipGradNorm scales them down to maxNorm", () => {
  const a = tensor([1, 1], { requiresGrad: true });
  const b = tensor([1], { requiresGrad: true });
  a.mul(tensor([3, 0])).sum().add(b.mul(4).sum()).backward(); // grads [3, 0] and [4]: norm 5
  assert.equal(gradNorm([a, b]), 5);
  assert.equal(clipGradNorm([a, b], 10), 5);
  assert.deepEqual(a.grad?.toArray(), [3, 0], "under the limit: unchanged");
  assert.equal(clipGradNorm([a, b], 1), 5);
  assert.ok(Math.abs(gradNorm([a, b]) - 1) < 1e-5);
  assert.ok(Math.abs((a.grad?.toFloat32Array()[0] ?? 0) - 0.6) < 1e-5);
  assert.throws(() => clipGradNorm([a], 0), /maxNorm must be > 0/);
});

Deno.test("clipGradNorm reports a non-finite norm and leaves the gradients alone", () => {
  const a = tensor([1], { requiresGrad: true });
  a.mul(Infinity).sum().backward();
  assert.equal(clipGradNorm([a], 1), Infinity);
});

Deno.test("clipGradValue clamps each gradient element in place, NaN kept, no grad skipped", () => {
  const a = tensor([1, 1, 1, 1], { requiresGrad: true });
  const b = tensor([1], { requiresGrad: true });
  a.mul(tensor([3, -0.2, -7, Number.NaN])).sum().backward();
  const storage = a.grad!.data;
  clipGradValue([a, b], 0.5);
  assert.equal(a.grad!.data, storage, "in place");
  const g = a.grad!.toFloat32Array();
  assert.deepEqual([g[0], g[1], g[2]], [0.5, Math.fround(-0.2), -0.5]);
  assert.ok(Number.isNaN(g[3]));
  assert.equal(b.grad, null);
  assert.throws(() => clipGradValue([a], -1), /clipValue must be a finite number >= 0/);
});
