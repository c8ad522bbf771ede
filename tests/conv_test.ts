/** conv2d and maxPool2d on hand-computed cases and the shapes of the reference AlexNet. */

import assert from "node:assert/strict";
import { arange, conv2d, maxPool2d, ones, randn, Rng, tensor } from "../mod.ts";
import * as ref from "./helpers/reference.ts";

Deno.test("conv2d by hand: a 2×2 difference kernel over 1..9", () => {
  const x = arange(1, 10).to("float32").reshape(1, 1, 3, 3);
  const w = tensor([[[[1, 0], [0, -1]]]]);
  // Every output is x[i][j] − x[i+1][j+1] = −4.
  assert.deepEqual(conv2d(x, w).toArray(), [[[[-4, -4], [-4, -4]]]]);
});

Deno.test("conv2d by hand: stride 2, padding 1, 3×3 box filter over 1..16, and its gradients", () => {
  const x = arange(1, 17).to("float32").reshape(1, 1, 4, 4);
  x.requiresGrad = true;
  const w = ones([1, 1, 3, 3], { requiresGrad: true });
  const y = conv2d(x, w, undefined, { stride: 2, padding: 1 });
  // Windows cover rows/cols {0,1} and {1,2,3}: 1+2+5+6, 2+3+4+6+7+8, 5+6+9+10+13+14, 6+7+8+10+11+12+14+15+16.
  assert.deepEqual(y.toArray(), [[[[14, 30], [57, 99]]]]);
  y.sum().backward();
  // dL/dx counts the windows covering each pixel: row cover (1,2,1,1) ⊗ column cover (1,2,1,1).
  assert.deepEqual(x.grad?.toArray(), [[[[1, 2, 1, 1], [2, 4, 2, 2], [1, 2, 1, 1], [1, 2, 1, 1]]]]);
  // dL/dw[i][j] sums x[r][c] = 4r + c + 1 under tap (i, j) over the four windows: tap row i reads
  // rows {i−1, i+1} ∩ 0..3 (so {1}, {0, 2}, {1, 3}), likewise for columns; e.g. w[1][2]: rows {0, 2}
  // × cols {1, 3} = 2 + 4 + 10 + 12 = 28.
  assert.deepEqual(w.grad?.toArray(), [[[[6, 12, 14], [12, 24, 28], [20, 40, 44]]]]);
});

Deno.test("conv2d with bias adds it once per output channel", () => {
  const x = ones([2, 1, 3, 3]);
  const w = ones([2, 1, 3, 3]);
  const b = tensor([0.5, -1]);
  assert.deepEqual(conv2d(x, w, b).toArray(), [[[[9.5]], [[8]]], [[[9.5]], [[8]]]]);
});

Deno.test("conv2d gives the reference AlexNet's shapes: [N,1,28,28] → [N,32,13,13] → [N,64,7,7] → [N,128,4,4]", () => {
  const rng = new Rng(5);
  const x = randn([2, 1, 28, 28], rng);
  const w1 = randn([32, 1, 4, 4], rng, { requiresGrad: true });
  const w2 = randn([64, 32, 3, 3], rng).mul(0.1);
  const w3 = randn([128, 64, 3, 3], rng).mul(0.1);
  const h1 = conv2d(x, w1, undefined, { stride: 2, padding: 0 });
  assert.deepEqual(h1.shape, [2, 32, 13, 13]);
  const h2 = conv2d(h1.relu(), w2, undefined, { stride: 2, padding: 1 });
  assert.deepEqual(h2.shape, [2, 64, 7, 7]);
  const h3 = conv2d(h2.relu(), w3, undefined, { stride: 2, padding: 1 });
  assert.deepEqual(h3.shape, [2, 128, 4, 4]);
  h3.sum().backward();
  assert.deepEqual(w1.grad?.shape, [32, 1, 4, 4]);
  // One image through the first two layers against the direct loop.
  const one = ref.fromTensor(x.narrow(0, 0, 1));
  const r1 = ref.map(ref.conv2d(one, ref.fromTensor(w1), null, 2, 0), (v) => Math.max(v, 0));
  ref.assertClose(h1.narrow(0, 0, 1).relu(), r1, 1e-4, 1e-4, "conv1");
  ref.assertClose(
    h2.narrow(0, 0, 1),
    ref.conv2d(r1, ref.fromTensor(w2), null, 2, 1),
    1e-3,
    1e-4,
    "conv2",
  );
});

Deno.test("conv2d and maxPool2d refuse mismatched shapes with the shapes in the message", () => {
  assert.throws(
    () => conv2d(ones([1, 2, 5, 5]), ones([3, 1, 3, 3])),
    /conv2d: input \[1, 2, 5, 5\] and weight \[3, 1, 3, 3\] do not match/,
  );
  assert.throws(
    () => conv2d(ones([1, 1, 2, 2]), ones([1, 1, 3, 3])),
    /conv2d: a 3×3 window with padding 0×0 does not fit input \[1, 1, 2, 2\]/,
  );
  assert.throws(
    () => conv2d(ones([1, 1, 3, 3]), ones([2, 1, 3, 3]), ones([3])),
    /bias \[3\] does not match weight \[2, 1, 3, 3\]/,
  );
  assert.throws(
    () => maxPool2d(ones([2, 2]), 2),
    /maxPool2d: expected input \[N, C, H, W\], got \[2, 2\]/,
  );
});

Deno.test("maxPool2d by hand, with the gradient routed to each window's winner", () => {
  const x = tensor([[[[1, 5, 2, 0], [3, 4, 8, 1], [0, 9, 6, 7], [2, 1, 3, 4]]]], {
    requiresGrad: true,
  });
  const y = maxPool2d(x, 2);
  assert.deepEqual(y.toArray(), [[[[5, 8], [9, 7]]]]);
  y.sum().backward();
  assert.deepEqual(x.grad?.toArray(), [[[[0, 1, 0, 0], [0, 0, 1, 0], [0, 1, 0, 1], [0, 0, 0, 0]]]]);
});
