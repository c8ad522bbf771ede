/**
 * Normalisation, attention, pooling and the general convolutions beyond their op-table rows: the
 * fused layerNorm against its composite (values, gradients, second derivatives), batch norm's
 * running statistics and evaluation mode, attention masks, and the layers' state-dict keys
 * compared literally with PyTorch's.
 */

import assert from "node:assert/strict";
import * as F from "../autograd/ops/functions.ts";
import * as ref from "./helpers/reference.ts";
import {
  AdaptiveAvgPool2d,
  AvgPool2d,
  BatchNorm1d,
  BatchNorm2d,
  Conv1d,
  Conv2d,
  decodeSafetensors,
  encodeSafetensors,
  gradcheck,
  gradients,
  GroupNorm,
  type Layer,
  LayerNorm,
  Linear,
  ModuleDict,
  ModuleList,
  MultiheadAttention,
  opTable,
  randn,
  Rng,
  type Tensor,
  tensor,
} from "../mod.ts";

function assertNear(actual: Tensor, expected: ArrayLike<number>, tol: number, what: string): void {
  const values = actual.toFloat32Array();
  assert.equal(values.length, expected.length, `${what}: length`);
  values.forEach((v, i) => {
    assert.ok(
      Math.abs(v - expected[i]) <= tol * (1 + Math.abs(expected[i])),
      `${what}[${i}]: ${v} vs ${expected[i]}`,
    );
  });
}

function keysAndShapes(sd: Record<string, { shape: readonly number[] }>): [string, number[]][] {
  return Object.entries(sd).map(([k, t]) => [k, [...t.shape]]);
}

Deno.test("fused layerNorm equals its composite: values and gradients", () => {
  const rng = new Rng(3);
  const x = randn([6, 8], rng, { requiresGrad: true });
  const w = randn([8], rng, { requiresGrad: true });
  const b = randn([8], rng, { requiresGrad: true });
  const r = randn([6, 8], rng);
  const attrs = { rows: 6, n: 8, eps: 1e-5, weight: true, bias: true };
  const fused = F.layerNorm(x, 8, w, b);
  const composite = opTable.layerNorm.composite!([x, w, b], attrs);
  assertNear(fused, composite.toFloat32Array(), 1e-5, "forward");
  const gFused = gradients(fused.mul(r).sum(), [x, w, b]);
  const gComposite = gradients(composite.mul(r).sum(), [x, w, b]);
  gFused.forEach((g, i) => assertNear(g, gComposite[i].toFloat32Array(), 1e-4, `grad ${i}`));
});

Deno.test("layerNorm without weight or bias, over two dims, on a strided view", () => {
  const rng = new Rng(4);
  const source = randn([4, 3, 5], rng);
  const x = source.transpose(1, 2); // [4, 5, 3], not contiguous
  const y = F.layerNorm(x, [5, 3]);
  const values = y.toFloat32Array();
  for (let r = 0; r < 4; r++) {
    const row = values.subarray(r * 15, (r + 1) * 15);
    const m = row.reduce((s, v) => s + v, 0) / 15;
    const v = row.reduce((s, x) => s + (x - m) ** 2, 0) / 15;
    assert.ok(Math.abs(m) < 1e-5 && Math.abs(v - 1) < 1e-3, `row ${r}: mean ${m}, var ${v}`);
  }
  assert.throws(() => F.layerNorm(x, [3, 5]), /layerNorm: normalizedShape \[3, 5\]/);
});

/** Asserts that the Hessian-vector product of `loss` at x0 (via createGraph) matches finite differences. */
function assertHv(loss: (t: Tensor) => Tensor, x0: Tensor, rng: Rng): void {
  const v = randn([...x0.shape], rng);
  const gradAt = (t: Tensor, createGraph: boolean) => {
    const leaf = t.detach();
    leaf.requiresGrad = true;
    return [leaf, gradients(loss(leaf), [leaf], { createGraph })[0]] as const;
  };
  const [leaf, g] = gradAt(x0, true);
  const hv = gradients(g.mul(v).sum(), [leaf])[0];
  const eps = 1e-2;
  const up = gradAt(x0.add(v.mul(eps)), false)[1].toFloat32Array();
  const down = gradAt(x0.sub(v.mul(eps)), false)[1].toFloat32Array();
  assertNear(hv, Array.from(up, (u, i) => (u - down[i]) / (2 * eps)), 2e-2, "Hv");
}

Deno.test("layerNorm, groupNorm, attention and pooling are twice differentiable", () => {
  const rng = new Rng(5);
  const w = randn([5], rng);
  const r = randn([3, 5], rng);
  assertHv(
    (t) => F.layerNorm(t, 5, w).mul(r).sum().mul(F.layerNorm(t, 5).sum().add(2)),
    randn([3, 5], rng),
    rng,
  );
  const r4 = randn([2, 4, 3], rng);
  assertHv((t) => F.groupNorm(t, 2).mul(r4).pow(2).sum(), randn([2, 4, 3], rng), rng);
  const [k, v] = [randn([2, 4, 3], rng), randn([2, 4, 3], rng)];
  assertHv(
    (q) => F.scaledDotProductAttention(q, k, v, { causal: true }).pow(2).sum(),
    randn([2, 4, 3], rng),
    rng,
  );
  assertHv(
    (x) =>
      F.avgPool2d(x, 2, { stride: 1 }).pow(3).sum().add(F.adaptiveAvgPool2d(x, 2).pow(2).sum()),
    randn([1, 2, 4, 4], rng),
    rng,
  );
});

Deno.test("batchNorm updates the running statistics (unbiased variance) and uses them in eval", () => {
  const x = tensor([[1, 10], [3, 20], [5, 60]]);
  const runningMean = tensor([0, 0]);
  const runningVar = tensor([1, 1]);
  F.batchNorm(x, runningMean, runningVar, null, null, { training: true, momentum: 0.5 });
  // Batch means 3 and 30, unbiased variances 4 and 700.
  assertNear(runningMean, [1.5, 15], 1e-6, "running mean");
  assertNear(runningVar, [2.5, 350.5], 1e-6, "running var");
  const y = F.batchNorm(x, runningMean, runningVar, tensor([2, 1]), tensor([0, 1]));
  const expected = [1, 10, 3, 20, 5, 60].map((v, i) => {
    const c = i % 2;
    const m = [1.5, 15][c], s = Math.sqrt([2.5, 350.5][c] + 1e-5);
    return ((v - m) / s) * [2, 1][c] + [0, 1][c];
  });
  assertNear(y, expected, 1e-5, "eval output");
  assert.throws(
    () => F.batchNorm(tensor([[1, 2]]), null, null, null, null, { training: true }),
    /more than 1 value/,
  );
});

Deno.test("BatchNorm2d: PyTorch's state-dict keys, an int32 counter, train() and eval()", () => {
  const bn = new BatchNorm2d(3);
  assert.deepEqual(keysAndShapes(bn.stateDict()), [
    ["weight", [3]],
    ["bias", [3]],
    ["running_mean", [3]],
    ["running_var", [3]],
    ["num_batches_tracked", []],
  ]);
  assert.equal(bn.num_batches_tracked!.dtype, "int32");
  assert.equal(bn.parameters().length, 2);
  const x = randn([4, 3, 2, 2], new Rng(1)).mul(3).add(1);
  const yTrain = bn.call(x);
  const yTrain2 = bn.call(x);
  assert.equal(bn.num_batches_tracked!.item(), 2);
  assertNear(yTrain, yTrain2.toFloat32Array(), 1e-6, "training uses the batch's statistics");
  bn.eval();
  const yEval = bn.call(x);
  assert.equal(bn.num_batches_tracked!.item(), 2, "eval does not count batches");
  assert.notDeepEqual(Array.from(yEval.toFloat32Array()), Array.from(yTrain.toFloat32Array()));
  // The running statistics travel through the state dict (the counter as int32).
  const other = new BatchNorm2d(3);
  other.loadStateDict(bn.stateDict());
  assert.equal(other.num_batches_tracked!.item(), 2);
  other.eval();
  assertNear(other.call(x), yEval.toFloat32Array(), 1e-6, "loaded running statistics");
  assert.throws(() => bn.call(randn([2, 3])), /BatchNorm2d: expected input \[N, C, H, W\]/);
});

Deno.test("BatchNorm1d takes [N, C] and [N, C, L]; momentum null averages cumulatively", () => {
  const bn = new BatchNorm1d(2, { momentum: null, affine: false });
  assert.deepEqual(Object.keys(bn.stateDict()), [
    "running_mean",
    "running_var",
    "num_batches_tracked",
  ]);
  bn.call(tensor([[0, 0], [2, 4]]));
  bn.call(tensor([[[4, 4], [8, 8]], [[4, 4], [8, 8]]]));
  assertNear(bn.running_mean!, [2.5, 5], 1e-6, "cumulative mean of 1 and 4, 2 and 8");
  const untracked = new BatchNorm1d(2, { trackRunningStats: false });
  assert.deepEqual(Object.keys(untracked.stateDict()), ["weight", "bias"]);
  untracked.eval();
  const y = untracked.call(tensor([[0, 0], [2, 4]]));
  assertNear(y, [-1, -1, 1, 1], 1e-4, "batch statistics in eval without running ones");
});

Deno.test("LayerNorm and GroupNorm: PyTorch's keys and defaults", () => {
  const ln = new LayerNorm([4, 3]);
  assert.deepEqual(keysAndShapes(ln.stateDict()), [["weight", [4, 3]], ["bias", [4, 3]]]);
  assert.deepEqual(Object.keys(new LayerNorm(3, { elementwiseAffine: false }).stateDict()), []);
  assert.deepEqual(Object.keys(new LayerNorm(3, { bias: false }).stateDict()), ["weight"]);
  const x = randn([2, 4, 3], new Rng(2));
  assertNear(ln.call(x), F.layerNorm(x, [4, 3]).toFloat32Array(), 1e-6, "identity affine");
  const gn = new GroupNorm(2, 4);
  assert.deepEqual(keysAndShapes(gn.stateDict()), [["weight", [4]], ["bias", [4]]]);
  assertNear(gn.call(x.reshape(2, 4, 3)), F.groupNorm(x, 2).toFloat32Array(), 1e-6, "group norm");
  assert.throws(() => new GroupNorm(3, 4), /not divisible/);
});

Deno.test("attention: bool masks (true attends), additive masks and causal agree", () => {
  const rng = new Rng(7);
  const [q, k, v] = [randn([2, 3, 4, 5], rng), randn([2, 3, 4, 5], rng), randn([2, 3, 4, 2], rng)];
  const causal = F.scaledDotProductAttention(q, k, v, { causal: true });
  const allowed = tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]).to("bool");
  const byBool = F.scaledDotProductAttention(q, k, v, { mask: allowed });
  const additive = F.where(allowed, 0, -Infinity);
  const byFloat = F.scaledDotProductAttention(q, k, v, { mask: additive.reshape(1, 1, 4, 4) });
  assertNear(byBool, causal.toFloat32Array(), 1e-6, "bool mask vs causal");
  assertNear(byFloat, causal.toFloat32Array(), 1e-6, "additive mask vs causal");
  const expected = ref.attention(ref.fromTensor(q), ref.fromTensor(k), ref.fromTensor(v), 0.3);
  const scaled = F.scaledDotProductAttention(q, k, v, { scale: 0.3 });
  ref.assertClose(scaled, expected, 1e-5, 1e-5, "scale");
  assert.throws(
    () => F.scaledDotProductAttention(q, k, v, { mask: randn([1, 3]) }),
    /does not broadcast|cannot broadcast|broadcast/,
  );
  assert.throws(() => F.scaledDotProductAttention(q, k.slice(-1, 0, 3), v), /do not match/);
});

Deno.test("attention dropout is seeded and only drops weights", () => {
  const rng = new Rng(8);
  const [q, k, v] = [randn([3, 4, 5], rng), randn([3, 4, 5], rng), randn([3, 4, 5], rng)];
  const a = F.scaledDotProductAttention(q, k, v, { dropout: 0.5, rng: new Rng(1) });
  const b = F.scaledDotProductAttention(q, k, v, { dropout: 0.5, rng: new Rng(1) });
  assertNear(a, b.toFloat32Array(), 0, "same seed, same mask");
  const plain = F.scaledDotProductAttention(q, k, v);
  assert.notDeepEqual(Array.from(a.toFloat32Array()), Array.from(plain.toFloat32Array()));
});

/** Multi-head self-attention written out head by head with the float64 reference. */
function referenceMha(mha: MultiheadAttention, x: Tensor, causal: boolean): ref.Ref {
  const [n, l, e] = x.shape;
  const h = mha.numHeads, d = e / h;
  const qkv = ref.fromTensor(F.linear(x, mha.in_proj_weight, mha.in_proj_bias ?? undefined));
  const part = (which: number, b: number, head: number) =>
    ref.build([l, d], ([i, j]) => ref.at(qkv, [b, i, which * e + head * d + j]));
  const merged = ref.build([n, l, e], () => 0);
  for (let b = 0; b < n; b++) {
    for (let head = 0; head < h; head++) {
      const o = ref.attention(
        part(0, b, head),
        part(1, b, head),
        part(2, b, head),
        1 / Math.sqrt(d),
        (i, j) => (causal && j > i ? -Infinity : 0),
      );
      for (let i = 0; i < l; i++) {
        for (let j = 0; j < d; j++) merged.data[(b * l + i) * e + head * d + j] = o.data[i * d + j];
      }
    }
  }
  const w = ref.fromTensor(mha.out_proj.weight), bias = ref.fromTensor(mha.out_proj.bias!);
  return ref.build([n, l, e], ([b, i, j]) => {
    let s = bias.data[j];
    for (let c = 0; c < e; c++) s += ref.at(merged, [b, i, c]) * ref.at(w, [j, c]);
    return s;
  });
}

Deno.test("MultiheadAttention: PyTorch's keys, and causal self-attention against the reference", () => {
  const mha = new MultiheadAttention(8, 2, { rng: new Rng(3) });
  assert.deepEqual(keysAndShapes(mha.stateDict()), [
    ["in_proj_weight", [24, 8]],
    ["in_proj_bias", [24]],
    ["out_proj.weight", [8, 8]],
    ["out_proj.bias", [8]],
  ]);
  assert.deepEqual(
    Object.keys(new MultiheadAttention(8, 2, { bias: false }).stateDict()),
    ["in_proj_weight", "out_proj.weight"],
  );
  // Non-zero biases, so the reference checks that they are applied.
  mha.in_proj_bias!.data.set(randn([24], new Rng(4)).toFloat32Array());
  mha.out_proj.bias!.data.set(randn([8], new Rng(5)).toFloat32Array());
  const x = randn([2, 5, 8], new Rng(6));
  for (const causal of [false, true]) {
    const y = mha.call(x, x, x, { isCausal: causal });
    ref.assertClose(y, referenceMha(mha, x, causal), 1e-5, 1e-4, `causal ${causal}`);
  }
  // The same through separate query/key/value projections, sequence-first and with masks.
  const y = mha.call(x, x, x, { isCausal: true });
  const copy = x.mul(1);
  assertNear(mha.call(x, copy, copy, { isCausal: true }), y.toFloat32Array(), 1e-5, "cross path");
  const seqFirst = new MultiheadAttention(8, 2, { batchFirst: false });
  seqFirst.loadStateDict(mha.stateDict());
  const xt = x.transpose(0, 1);
  assertNear(
    seqFirst.call(xt, xt, xt, { isCausal: true }).transpose(0, 1).contiguous(),
    y.toFloat32Array(),
    1e-5,
    "batchFirst false",
  );
  const blocked = tensor([[0, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [
    0,
    0,
    0,
    0,
    0,
  ]]).to("bool");
  assertNear(mha.call(x, x, x, { attnMask: blocked }), y.toFloat32Array(), 1e-5, "attnMask");
  const padding = tensor([[0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]).to("bool");
  const padded = mha.call(x, x, x, { keyPaddingMask: padding, isCausal: true });
  assertNear(padded.narrow(0, 1, 1), y.narrow(0, 1, 1).toFloat32Array(), 1e-5, "unpadded batch");
  assertNear(padded.narrow(1, 0, 4), y.narrow(1, 0, 4).toFloat32Array(), 1e-5, "causal rows");
  assert.throws(() => mha.call(x, x, x, { needWeights: true }), /forwardWithWeights/);
  assert.throws(() => new MultiheadAttention(8, 3), /not divisible/);
});

Deno.test("MultiheadAttention.forwardWithWeights: the same output, and each head's weights", () => {
  const mha = new MultiheadAttention(8, 2, { rng: new Rng(12) });
  const x = randn([2, 5, 8], new Rng(13));
  const { output, weights } = mha.forwardWithWeights(x, x, x, {
    isCausal: true,
    averageAttnWeights: false,
  });
  assertNear(output, mha.call(x, x, x, { isCausal: true }).toFloat32Array(), 1e-6, "output");
  assert.deepEqual(weights.shape, [2, 2, 5, 5]);
  // Head h of batch b: softmax(q·kᵀ/√d) of that head's slice of the projection, causal.
  const qkv = ref.fromTensor(F.linear(x, mha.in_proj_weight, mha.in_proj_bias ?? undefined));
  for (let b = 0; b < 2; b++) {
    for (let head = 0; head < 2; head++) {
      const part = (which: number) =>
        ref.build([5, 4], ([i, j]) => ref.at(qkv, [b, i, which * 8 + head * 4 + j]));
      const expected = ref.attentionWeights(
        part(0),
        part(1),
        1 / 2,
        (i, j) => j > i ? -Infinity : 0,
      );
      ref.assertClose(
        weights.select(0, b).select(0, head),
        expected,
        1e-6,
        1e-5,
        `batch ${b} head ${head}`,
      );
    }
  }
  const averaged = mha.forwardWithWeights(x, x, x, { isCausal: true }).weights;
  assert.deepEqual(averaged.shape, [2, 5, 5]);
  assertNear(averaged, weights.mean(1).toFloat32Array(), 1e-7, "averaged over heads");
  // The weights are in the graph: a loss on them reaches the projection.
  mha.zeroGrad();
  mha.forwardWithWeights(x, x, x).weights.pow(2).sum().backward();
  assert.ok(mha.in_proj_weight.grad!.toFloat32Array().some((g) => g !== 0));
});

Deno.test("MultiheadAttention gradients reach every parameter", () => {
  const mha = new MultiheadAttention(4, 2, { rng: new Rng(9) });
  const x = randn([2, 3, 4], new Rng(10), { requiresGrad: true });
  mha.call(x, x, x, { isCausal: true }).pow(2).sum().backward();
  for (const [name, p] of mha.namedParameters()) {
    assert.ok(p.grad !== null && p.grad.toFloat32Array().some((g) => g !== 0), name);
  }
  assert.ok(x.grad !== null);
});

Deno.test("grouped and dilated conv2d against the direct loop, with gradients", () => {
  const rng = new Rng(11);
  const x = randn([2, 4, 7, 6], rng);
  const w = randn([6, 2, 3, 2], rng);
  const b = randn([6], rng);
  for (const [groups, dilation] of [[2, 1], [1, 2], [2, 2]]) {
    const weight = groups === 1 ? randn([6, 4, 3, 2], rng) : w;
    const y = F.conv2d(x, weight, b, { stride: 1, padding: 1, groups, dilation });
    const expected = ref.convGeneral(
      ref.fromTensor(x),
      ref.fromTensor(weight),
      ref.fromTensor(b),
      1,
      1,
      dilation,
      groups,
    );
    ref.assertClose(y, expected, 1e-4, 1e-4, `groups ${groups}, dilation ${dilation}`);
  }
  const relu = F.conv2d(x, w, b, { groups: 2, relu: true });
  assertNear(relu, F.conv2d(x, w, b, { groups: 2 }).relu().toFloat32Array(), 0, "relu");
  const xs = randn([1, 4, 5, 5], rng, { requiresGrad: true });
  const ws = randn([4, 2, 2, 2], rng, { requiresGrad: true });
  const bs = randn([4], rng, { requiresGrad: true });
  const result = gradcheck(
    (a, c, d) => F.conv2d(a, c, d, { groups: 2, dilation: [2, 1], stride: [1, 2] }),
    [xs, ws, bs],
  );
  assert.ok(result.ok, result.report);
  assert.throws(() => F.conv2d(x, w, b, { groups: 3 }), /groups = 3/);
});

Deno.test("Conv1d, Conv2d (groups), AvgPool2d and AdaptiveAvgPool2d layers", () => {
  const c1 = new Conv1d(4, 6, 3, { groups: 2, padding: 1, rng: new Rng(1) });
  assert.deepEqual(keysAndShapes(c1.stateDict()), [["weight", [6, 2, 3]], ["bias", [6]]]);
  const x1 = randn([2, 4, 9], new Rng(2));
  const y1 = c1.call(x1);
  assert.deepEqual(y1.shape, [2, 6, 9]);
  ref.assertClose(
    y1,
    ref.conv1d(ref.fromTensor(x1), ref.fromTensor(c1.weight), ref.fromTensor(c1.bias!), 1, 1, 1, 2),
    1e-4,
    1e-4,
    "Conv1d",
  );
  const c2 = new Conv2d(4, 8, 3, { groups: 4, dilation: 2 });
  assert.deepEqual(keysAndShapes(c2.stateDict()), [["weight", [8, 1, 3, 3]], ["bias", [8]]]);
  assert.deepEqual(c2.call(randn([1, 4, 9, 9])).shape, [1, 8, 5, 5]);
  const x = randn([2, 3, 6, 6], new Rng(3));
  const pool = new AvgPool2d(2);
  assert.deepEqual(Object.keys(pool.stateDict()), []);
  ref.assertClose(
    pool.call(x),
    ref.avgPool2d(ref.fromTensor(x), 2, 2, 0, true),
    1e-6,
    1e-5,
    "pool",
  );
  const global = new AdaptiveAvgPool2d(1).call(x);
  assertNear(global, x.mean([2, 3], true).toFloat32Array(), 1e-6, "global average pool");
  const adaptive = new AdaptiveAvgPool2d([null, 4]).call(x);
  assert.deepEqual(adaptive.shape, [2, 3, 6, 4]);
  assert.throws(() => F.avgPool2d(x, 2, { padding: 2 }), /at most half the window/);
  assert.throws(() => F.adaptiveAvgPool2d(randn([6, 6]), 2), /expected input \[N, C, H, W\]/);
});

Deno.test("ModuleList and ModuleDict name children as PyTorch; train()/eval() reach BatchNorm", () => {
  const list = new ModuleList<Layer>([new Linear(2, 3), new BatchNorm1d(3)]);
  list.append(new LayerNorm(3));
  assert.equal(list.length, 3);
  assert.ok(list.at(-1) instanceof LayerNorm);
  assert.deepEqual(Object.keys(list.stateDict()), [
    "0.weight",
    "0.bias",
    "1.weight",
    "1.bias",
    "1.running_mean",
    "1.running_var",
    "1.num_batches_tracked",
    "2.weight",
    "2.bias",
  ]);
  assert.deepEqual([...list].map((m) => m.constructor.name), [
    "Linear",
    "BatchNorm1d",
    "LayerNorm",
  ]);
  const dict = new ModuleDict<Layer>({ proj: new Linear(3, 3), norm: new BatchNorm2d(2) });
  dict.set("blocks", list);
  assert.deepEqual(dict.keys(), ["proj", "norm", "blocks"]);
  assert.ok(dict.has("norm") && dict.get("missing") === undefined);
  assert.deepEqual(Object.keys(dict.stateDict()).slice(0, 4), [
    "proj.weight",
    "proj.bias",
    "norm.weight",
    "norm.bias",
  ]);
  assert.ok(Object.keys(dict.stateDict()).includes("blocks.1.running_var"));
  dict.eval();
  assert.equal((list.at(1) as BatchNorm1d).training, false);
  dict.train();
  assert.equal((dict.get("norm") as BatchNorm2d).training, true);
  assert.throws(() => dict.set("training", new Linear(1, 1)), /cannot be a key/);
  assert.throws(() => dict.set("a.b", new Linear(1, 1)), /cannot be a key/);
  assert.ok(dict.delete("proj") && !dict.has("proj"));
  assert.throws(() => list.forward(), /ModuleList has no forward/);
});

Deno.test("BatchNorm's state dict survives safetensors (the int32 counter stored as I32)", () => {
  const bn = new BatchNorm1d(3);
  for (let i = 0; i < 5; i++) bn.call(randn([4, 3], new Rng(i)));
  const stored = Object.fromEntries(
    Object.entries(bn.stateDict()).map(([k, t]) => [k, { shape: [...t.shape], data: t.data }]),
  );
  const { tensors } = decodeSafetensors(encodeSafetensors(stored));
  const loaded = new BatchNorm1d(3);
  loaded.loadStateDict(tensors);
  assert.equal(loaded.num_batches_tracked!.dtype, "int32");
  assert.equal(loaded.num_batches_tracked!.item(), 5);
  assertNear(loaded.running_var!, bn.running_var!.toFloat32Array(), 0, "running var");
});
