/** The Tensor type: factories, views that never copy, copies, conversions, text and shape errors. */

import assert from "node:assert/strict";
import {
  add,
  arange,
  full,
  matmul,
  ones,
  rand,
  randn,
  Rng,
  type Tensor,
  tensor,
  zeros,
} from "../mod.ts";
import * as ref from "./helpers/reference.ts";

Deno.test("factories: nested arrays, Float32Array with shape, constants, ranges", () => {
  const t = tensor([[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(t.shape, [2, 3]);
  assert.deepEqual(t.strides, [3, 1]);
  assert.equal(t.size, 6);
  assert.equal(t.ndim, 2);
  assert.deepEqual(t.toArray(), [[1, 2, 3], [4, 5, 6]]);
  const storage = new Float32Array([1, 2, 3, 4]);
  const s = tensor(storage, { shape: [2, 2] });
  assert.equal(s.data, storage, "a Float32Array is used as storage without a copy");
  assert.equal(tensor(3.5).item(), 3.5);
  assert.deepEqual(tensor(3.5).shape, []);
  assert.deepEqual(zeros([2, 2]).toArray(), [[0, 0], [0, 0]]);
  assert.deepEqual(ones([3]).toArray(), [1, 1, 1]);
  assert.deepEqual(full([2], 7).toArray(), [7, 7]);
  assert.deepEqual(arange(4).toArray(), [0, 1, 2, 3]);
  assert.deepEqual(arange(1, 2, 0.25).toArray(), [1, 1.25, 1.5, 1.75]);
  assert.deepEqual(arange(5, 0, -2).toArray(), [5, 3, 1]);
  assert.equal(tensor([1], { requiresGrad: true }).requiresGrad, true);
  assert.throws(() => tensor([[1, 2], [3]]), /ragged/);
  assert.throws(
    () => tensor(new Float32Array(5), { shape: [2, 2] }),
    /5 values cannot have shape \[2, 2\]/,
  );
  assert.throws(() => zeros([2, -1]), /zeros: invalid shape \[2, -1\]/);
});

Deno.test("rand and randn are reproducible from a seeded Rng", () => {
  assert.deepEqual(rand([5], new Rng(1)).toArray(), rand([5], new Rng(1)).toArray());
  assert.notDeepEqual(randn([5], new Rng(1)).toArray(), randn([5], new Rng(2)).toArray());
  const u = rand([1000], new Rng(4)).toFloat32Array();
  assert.ok(u.every((v) => v >= 0 && v < 1));
});

/** Asserts `view` shares `base`'s storage and holds the values `expected` computes from indices. */
function assertView(base: Tensor, view: Tensor, expected: (idx: number[]) => number): void {
  assert.equal(view.data, base.data, "views share storage");
  const values = view.toFloat32Array();
  for (let i = 0; i < values.length; i++) {
    assert.equal(values[i], expected(ref.unravel(i, view.shape)));
  }
}

Deno.test("views never copy: reshape, view, transpose, permute, slice, narrow, expand, squeeze, unsqueeze, flatten", () => {
  const base = arange(24).to("float32").reshape(2, 3, 4);
  const v = (i: number, j: number, k: number) => 12 * i + 4 * j + k;
  assertView(base, base.reshape(6, 4), ([r, k]) => 4 * r + k);
  assertView(base, base.view(4, -1), ([r, c]) => 6 * r + c);
  assertView(base, base.transpose(0, 2), ([k, j, i]) => v(i, j, k));
  assertView(base, base.permute(1, 2, 0), ([j, k, i]) => v(i, j, k));
  assertView(base, base.slice(2, 1, 4, 2), ([i, j, k]) => v(i, j, 1 + 2 * k));
  assertView(base, base.slice(1, -2), ([i, j, k]) => v(i, j + 1, k));
  assertView(base, base.narrow(0, 1, 1), ([i, j, k]) => v(i + 1, j, k));
  assertView(base, base.narrow(1, 0, 2).expand(3, 2, 2, 4), ([, i, j, k]) => v(i, j, k));
  assertView(base, base.unsqueeze(1), ([i, , j, k]) => v(i, j, k));
  assertView(base, base.unsqueeze(-1), ([i, j, k]) => v(i, j, k));
  assertView(base, base.unsqueeze(0).squeeze(), ([i, j, k]) => v(i, j, k));
  assertView(base, base.flatten(1), ([i, r]) => 12 * i + r);
  assertView(base, base.transpose(0, 1).squeeze(0).unsqueeze(0), ([, j, i, k]) => v(i, j, k));
  // A view of a non-contiguous tensor, when the strides allow it.
  assertView(
    base,
    base.permute(1, 0, 2).reshape(3, 2, 2, 2),
    ([j, i, k1, k2]) => v(i, j, 2 * k1 + k2),
  );
  const row = tensor([[1, 2, 3]]);
  const wide = row.broadcastTo([4, 3]);
  assert.deepEqual(wide.strides, [0, 1]);
});

Deno.test("reshape copies only when no view exists; view refuses instead", () => {
  const t = arange(6).to("float32").reshape(2, 3).transpose();
  assert.throws(
    () => t.view(6),
    /view: a tensor of shape \[3, 2\] with strides \[1, 3\] cannot be viewed as \[6\]/,
  );
  const flat = t.reshape(6);
  assert.notEqual(flat.data, t.data);
  assert.deepEqual(flat.toArray(), [0, 3, 1, 4, 2, 5]);
  assert.throws(
    () => t.reshape(4, 2),
    /reshape: cannot reshape \[3, 2\] \(6 elements\) to \[4, 2\] \(8 elements\)/,
  );
  assert.throws(() => t.reshape(-1, -1), /only one dimension can be -1/);
});

Deno.test("contiguous, clone, detach", () => {
  const t = arange(6).to("float32").reshape(2, 3);
  assert.equal(t.contiguous(), t, "already contiguous: the same tensor");
  const tt = t.transpose();
  assert.equal(tt.isContiguous(), false);
  const c = tt.contiguous();
  assert.equal(c.isContiguous(), true);
  assert.notEqual(c.data, t.data);
  assert.deepEqual(c.toArray(), tt.toArray());
  const k = t.clone();
  assert.notEqual(k.data, t.data);
  k.data[0] = 99;
  assert.equal(t.data[0], 0);
  const g = tensor([1, 2], { requiresGrad: true });
  const d = g.mul(2).detach();
  assert.equal(d.requiresGrad, false);
  assert.equal(d.gradFn, null);
});

Deno.test("item, toArray, toFloat32Array of views and scalars", () => {
  assert.equal(arange(5).slice(0, 3, 4).item(), 3);
  assert.throws(() => arange(2).item(), /item: the tensor has shape \[2\], not a single element/);
  assert.deepEqual(arange(6).to("float32").reshape(2, 3).transpose().toArray(), [[0, 3], [1, 4], [
    2,
    5,
  ]]);
  assert.equal(tensor(2).toArray(), 2);
  const copy = arange(3).toFloat32Array();
  copy[0] = 5;
  assert.deepEqual(Array.from(copy), [5, 1, 2]);
  assert.deepEqual(zeros([2, 0]).toArray(), [[], []]);
});

Deno.test("toString looks like PyTorch's", () => {
  assert.equal(
    tensor([[1, 2], [3, -4.5]]).toString(),
    "tensor([[ 1.0000,  2.0000],\n        [ 3.0000, -4.5000]])",
  );
  assert.equal(tensor(0.5).toString(), "tensor(0.5000)");
  assert.equal(
    tensor([1], { requiresGrad: true }).toString(),
    "tensor([1.0000], requiresGrad=true)",
  );
  assert.equal(
    tensor([1], { requiresGrad: true }).mul(2).toString(),
    "tensor([2.0000], gradFn=mul)",
  );
  assert.equal(tensor([1e-6, 2]).toString(), "tensor([1.0000e-6, 2.0000e+0])");
  assert.equal(tensor([NaN, Infinity]).toString(), "tensor([nan, inf])");
  const big = arange(2000).to("float32").toString();
  assert.equal(
    big,
    "tensor([   0.0000,    1.0000,    2.0000, ..., 1997.0000, 1998.0000, 1999.0000])",
  );
});

Deno.test("shape errors name the op and both shapes", () => {
  assert.throws(
    () => add(zeros([2, 3]), zeros([4])),
    /add: shapes \[2, 3\] and \[4\] cannot be broadcast/,
  );
  assert.throws(
    () => matmul(zeros([2, 3]), zeros([2, 3])),
    /matmul: cannot multiply \[2, 3\] by \[2, 3\]/,
  );
  assert.throws(() => zeros([2, 3]).expand(4, 4), /expand: cannot expand \[2, 3\] to \[4, 4\]/);
  assert.throws(
    () => zeros([2, 3]).narrow(1, 2, 2),
    /narrow: start 2, length 2 is outside dimension 1 of \[2, 3\]/,
  );
  assert.throws(() => zeros([2, 3]).permute(0, 0), /permute: \[0, 0\] repeats a dimension/);
  assert.throws(
    () => zeros([2, 3]).transpose(0, 2),
    /transpose: dimension 2 is out of range for a tensor with 2 dimensions/,
  );
  assert.throws(() => zeros([2, 3]).sum(3), /sum: dimension 3 is out of range/);
});
