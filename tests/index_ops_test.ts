/**
 * Indexing, joining and the general tensor loader beyond the op table's rows: second derivatives
 * through gather, embedding and cat; embedding's padding row and errors; the Embedding layer's
 * state-dict names; TensorDataset / TensorDataLoader order, copies and options.
 */

import assert from "node:assert/strict";
import { cat, embedding, gather, grad, randn, Rng, type Tensor, tensor } from "../mod.ts";
import { Embedding } from "../nn/mod.ts";
import { streamSeed, TensorDataLoader, TensorDataset } from "../data/mod.ts";

function assertAll(actual: Tensor, expected: ArrayLike<number>, tol: number, what: string): void {
  const values = actual.toFloat32Array();
  assert.equal(values.length, expected.length, what);
  values.forEach((v, i) => {
    assert.ok(
      Math.abs(v - expected[i]) <= tol * (1 + Math.abs(expected[i])),
      `${what}[${i}]: ${v} vs ${expected[i]}`,
    );
  });
}

const tokens = tensor([[0, 2, 2], [3, 0, 2]], { dtype: "int32" });
/** How often each of the 4 rows is looked up by `tokens`. */
const uses = [2, 0, 3, 1];

Deno.test("second derivatives through embedding, gather and cat", () => {
  const w = randn([4, 3], new Rng(7));
  // Σ e³ over looked-up rows: d²/dw² summed = 6·w·(uses of the row).
  const viaEmbedding = grad((t: Tensor) =>
    grad((u: Tensor) => embedding(tokens, u).pow(3).sum())(t).sum()
  )(w);
  const expected = Array.from(w.toFloat32Array(), (v, i) => 6 * v * uses[Math.floor(i / 3)]);
  assertAll(viaEmbedding, expected, 1e-4, "embedding");
  const index = tensor([[0, 0], [2, 1], [1, 1], [2, 2]], { dtype: "int32" });
  const viaGather = grad((t: Tensor) =>
    grad((u: Tensor) => gather(u, 1, index).pow(3).sum())(t).sum()
  )(w);
  const counts = [2, 0, 0, 0, 1, 1, 0, 2, 0, 0, 0, 2];
  assertAll(viaGather, Array.from(w.toFloat32Array(), (v, i) => 6 * v * counts[i]), 1e-4, "gather");
  const b = randn([2, 3], new Rng(8));
  const viaCat = grad((t: Tensor) => grad((u: Tensor) => cat([b, u, u], 0).pow(3).sum())(t).sum())(
    w,
  );
  assertAll(viaCat, Array.from(w.toFloat32Array(), (v) => 12 * v), 1e-4, "cat");
});

Deno.test("embedding: the padding row passes no gradient; indices out of range and wrong dtypes throw", () => {
  const w = randn([4, 3], new Rng(1), { requiresGrad: true });
  embedding(tokens, w, { paddingIdx: 2 }).sum().backward();
  assert.deepEqual(w.grad!.toArray(), [[2, 2, 2], [0, 0, 0], [0, 0, 0], [1, 1, 1]]);
  assert.throws(
    () => embedding([4], w),
    /embedding: index 4 is out of range for dimension 0 of size 4/,
  );
  assert.throws(() => embedding([-1], w), /embedding: index -1/);
  assert.throws(() => embedding(tensor([1]), w), /embedding \(indices\): expected int32/);
  assert.throws(
    () => gather(w, 1, tensor([[0]], { dtype: "int32" }).expand(5, 1)),
    /gather: index \[5, 1\] does not fit/,
  );
});

Deno.test("Embedding: PyTorch's parameter name and layout, N(0, 1) init, zeroed padding row", () => {
  const layer = new Embedding(30, 8, { paddingIdx: -1, rng: new Rng(3) });
  const state = layer.stateDict();
  assert.deepEqual(Object.keys(state), ["weight"]);
  assert.deepEqual(state.weight.shape, [30, 8]);
  assert.equal(layer.paddingIdx, 29);
  const values = layer.weight.toFloat32Array();
  assert.ok(values.subarray(29 * 8).every((v) => v === 0));
  const mean = values.reduce((s, v) => s + v, 0) / (29 * 8);
  const sd = Math.sqrt(
    values.subarray(0, 29 * 8).reduce((s, v) => s + (v - mean) ** 2, 0) / (29 * 8),
  );
  assert.ok(Math.abs(mean) < 0.2 && Math.abs(sd - 1) < 0.2, `mean ${mean}, sd ${sd}`);
  assert.deepEqual(layer.call(new Int32Array([[1, 2], [3, 4]].flat())).shape, [4, 8]);
  assert.deepEqual(layer.call(tokens).shape, [2, 3, 8]);
});

Deno.test("TensorDataLoader: seeded order as the MNIST loader's, dropLast, copied contiguous rows", () => {
  const x = tensor(Array.from({ length: 10 * 6 }, (_, i) => i), { shape: [10, 2, 3] });
  const y = Int32Array.from({ length: 10 }, (_, i) => 100 + i);
  const data = new TensorDataset(x.transpose(1, 2).transpose(1, 2), y);
  assert.equal(data.length, 10);
  const loader = new TensorDataLoader(data, { batchSize: 4, seed: 5, dropLast: true });
  assert.equal(loader.length, 2);
  const order = new Rng(streamSeed(5, 1, -1)).permutation(10);
  assert.deepEqual(loader.order(1), order);
  const batches = [...loader.epoch(1)];
  assert.equal(batches.length, 2);
  const [bx, by] = batches[1];
  assert.deepEqual(bx.shape, [4, 2, 3]);
  assert.ok(bx.isContiguous() && bx.data !== x.data);
  assert.deepEqual(Array.from(by.values()), Array.from(order.subarray(4, 8), (i) => 100 + i));
  assert.deepEqual(
    bx.toArray(),
    Array.from(order.subarray(4, 8), (i) => (x.toArray() as number[][][])[i]),
  );
  // Iterating runs epoch 0, then 1.
  const first = [...loader].map(([, t]) => Array.from(t.values()));
  const second = [...loader].map(([, t]) => Array.from(t.values()));
  assert.deepEqual(second, batches.map(([, t]) => Array.from(t.values())));
  assert.notDeepEqual(first, second);
  // Keeping the last partial batch, in order, with int32 inputs.
  const tokensData = new TensorDataset(
    tensor([[1, 2], [3, 4], [5, 6]], { dtype: "int32" }),
    new Int32Array([7, 8, 9]),
  );
  const plain = new TensorDataLoader(tokensData, { batchSize: 2, shuffle: false });
  assert.equal(plain.length, 2);
  const [[a, ya], [b, yb]] = [...plain];
  assert.equal(a.dtype, "int32");
  assert.deepEqual([a.toArray(), ya.toArray(), b.toArray(), yb.toArray()], [
    [[1, 2], [3, 4]],
    [7, 8],
    [[5, 6]],
    [9],
  ]);
  const [gx, gy] = tokensData.get(2);
  assert.deepEqual([gx.toArray(), gy.item()], [[5, 6], 9]);
  assert.throws(() => new TensorDataset(x, new Int32Array(3)), /same first dimension/);
  assert.throws(() => new TensorDataLoader(data, { batchSize: 0 }), /batchSize/);
});
