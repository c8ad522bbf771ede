/**
 * Every op, one table row each: a forward check against the float64 reference on contiguous,
 * transposed, sliced and broadcast inputs, and a gradcheck on the same layouts (see
 * `helpers/check_op.ts`). The first test enumerates the primitive table and the functional API:
 * an op without a row fails the suite. Ops that have no gradient (comparisons, argmax, casts) have
 * forward rows only; `NOT_DIFFERENTIABLE` lists them.
 */

import assert from "node:assert/strict";
import * as F from "../autograd/ops/functions.ts";
import { opTable, Rng, tensor } from "../mod.ts";
import { forward, gradient } from "./helpers/check_op.ts";
import * as ref from "./helpers/reference.ts";

const labels = new Int32Array([1, 0, 3, 3, 2]);
const bool = (v: boolean) => +v;
/** The variance of a list with `correction` (the textbook two-pass formula). */
const variance = (v: number[], correction: number) => {
  const m = v.reduce((s, x) => s + x, 0) / v.length;
  return v.reduce((s, x) => s + (x - m) ** 2, 0) / (v.length - correction);
};

/** Index tensors for the indexing rows (repeats on purpose: gradients must accumulate). */
const i32 = (v: number[][]) => tensor(v, { dtype: "int32" });
const gatherIndex = [[0, 3], [2, 2], [1, 0]];
const scatterIndex = [[0, 2, 2, 1], [2, 2, 0, 1]];
const tokens = [[0, 4, 2], [2, 2, 1]];

/** Each op's checks. Keys are primitive names and functional-API names. */
const checks: Record<string, (() => void)[]> = {
  add: [
    forward((a, b) => a.add(b), (a, b) => ref.broadcast(a, b, (x, y) => x + y), [[3, 4], [4]]),
    gradient((a, b) => a.add(b), [[2, 3, 4], [3, 1]]),
  ],
  sub: [
    forward((a, b) => a.sub(b), (a, b) => ref.broadcast(a, b, (x, y) => x - y), [[3, 4], [3, 4]]),
    gradient((a, b) => a.sub(b), [[3, 4], [1, 4]]),
  ],
  mul: [
    forward((a, b) => a.mul(b), (a, b) => ref.broadcast(a, b, (x, y) => x * y), [[3, 4], [3, 1]]),
    gradient((a, b) => a.mul(b), [[3, 4], [4]]),
  ],
  div: [
    forward((a, b) => a.div(b), (a, b) => ref.broadcast(a, b, (x, y) => x / y), [[3, 4], [4]], {
      positive: true,
    }),
    gradient((a, b) => a.div(b), [[3, 4], [3, 4]], { positive: true }),
  ],
  maximum: [
    forward(F.maximum, (a, b) => ref.broadcast(a, b, Math.max), [[3, 4], [4]]),
    gradient(F.maximum, [[3, 4], [3, 4]]),
  ],
  minimum: [
    forward(F.minimum, (a, b) => ref.broadcast(a, b, Math.min), [[3, 4], [3, 1]]),
    gradient(F.minimum, [[3, 4], [3, 4]]),
  ],
  where: [
    forward(
      (a, b) => F.where(a.gt(b), a, b.mul(2)),
      (a, b) => ref.broadcast(a, b, (x, y) => (x > y ? x : 2 * y)),
      [[3, 4], [3, 4]],
    ),
    gradient((a, b) => F.where(a.gt(0), a.mul(3), b), [[3, 4], [4]], { margin: 0.05 }),
  ],
  maskedFill: [
    forward(
      (a) => F.maskedFill(a, a.lt(0), -7),
      (a) => ref.map(a, (x) => (x < 0 ? -7 : x)),
      [[3, 4]],
    ),
    gradient((a) => a.maskedFill(a.lt(0), 2), [[3, 4]], { margin: 0.05 }),
  ],
  eq: [forward((a) => a.eq(a.mul(1)).to("float32"), (a) => ref.map(a, () => 1), [[3, 4]])],
  ne: [
    forward(
      (a, b) => a.ne(b).to("float32"),
      (a, b) => ref.broadcast(a, b, (x, y) => bool(x !== y)),
      [[3, 4], [4]],
    ),
  ],
  lt: [
    forward((a, b) => a.lt(b).to("float32"), (a, b) => ref.broadcast(a, b, (x, y) => bool(x < y)), [
      [3, 4],
      [4],
    ]),
  ],
  le: [
    forward(
      (a, b) => a.le(b).to("float32"),
      (a, b) => ref.broadcast(a, b, (x, y) => bool(x <= y)),
      [[3, 4], [4]],
    ),
  ],
  gt: [
    forward((a, b) => a.gt(b).to("float32"), (a, b) => ref.broadcast(a, b, (x, y) => bool(x > y)), [
      [3, 4],
      [4],
    ]),
  ],
  ge: [
    forward(
      (a, b) => a.ge(b).to("float32"),
      (a, b) => ref.broadcast(a, b, (x, y) => bool(x >= y)),
      [[3, 4], [4]],
    ),
  ],
  cast: [
    forward(
      (a) => F.cast(a.mul(3), "int32").to("float32"),
      (a) => ref.map(a, (x) => Math.trunc(Math.fround(3 * x))),
      [[3, 4]],
    ),
  ],
  neg: [
    forward((a) => a.neg(), (a) => ref.map(a, (x) => -x), [[3, 4]]),
    gradient((a) => a.neg(), [[3, 4]]),
  ],
  pow: [
    forward((a) => a.pow(3), (a) => ref.map(a, (x) => x ** 3), [[3, 4]], { atol: 1e-4 }),
    gradient((a) => a.pow(2.5), [[3, 4]], { positive: true }),
  ],
  exp: [
    forward((a) => a.exp(), (a) => ref.map(a, Math.exp), [[3, 4]]),
    gradient((a) => a.exp(), [[3, 4]]),
  ],
  log: [
    forward((a) => a.log(), (a) => ref.map(a, Math.log), [[3, 4]], { positive: true }),
    gradient((a) => a.log(), [[3, 4]], { positive: true, margin: 0.3 }),
  ],
  sqrt: [
    forward((a) => a.sqrt(), (a) => ref.map(a, Math.sqrt), [[3, 4]], { positive: true }),
    gradient((a) => a.sqrt(), [[3, 4]], { positive: true, margin: 0.3 }),
  ],
  abs: [
    forward((a) => a.abs(), (a) => ref.map(a, Math.abs), [[3, 4]]),
    gradient((a) => a.abs(), [[3, 4]], { margin: 0.05 }),
  ],
  relu: [
    forward((a) => a.relu(), (a) => ref.map(a, (x) => Math.max(x, 0)), [[3, 4]]),
    gradient((a) => a.relu(), [[3, 4]], { margin: 0.05 }),
  ],
  leakyRelu: [
    forward((a) => a.leakyRelu(0.2), (a) => ref.map(a, (x) => (x > 0 ? x : 0.2 * x)), [[3, 4]]),
    gradient((a) => a.leakyRelu(0.2), [[3, 4]], { margin: 0.05 }),
  ],
  sigmoid: [
    forward((a) => a.sigmoid(), (a) => ref.map(a, (x) => 1 / (1 + Math.exp(-x))), [[3, 4]]),
    gradient((a) => a.sigmoid(), [[3, 4]]),
  ],
  tanh: [
    forward((a) => a.tanh(), (a) => ref.map(a, Math.tanh), [[3, 4]]),
    gradient((a) => a.tanh(), [[3, 4]]),
  ],
  gelu: [
    forward(
      (a) => F.gelu(a),
      (a) => ref.map(a, (x) => 0.5 * x * (1 + ref.erf(x / Math.SQRT2))),
      [[3, 4]],
    ),
    forward(
      (a) => F.gelu(a, { approximate: "tanh" }),
      (a) =>
        ref.map(
          a,
          (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
        ),
      [[3, 4]],
      { scale: 3 },
    ),
    gradient((a) => F.gelu(a), [[3, 4]], { scale: 2 }),
    gradient((a) => F.gelu(a, { approximate: "tanh" }), [[3, 4]], { scale: 2 }),
  ],
  silu: [
    forward(F.silu, (a) => ref.map(a, (x) => x / (1 + Math.exp(-x))), [[3, 4]], { scale: 3 }),
    gradient(F.silu, [[3, 4]], { scale: 2 }),
  ],
  softplus: [
    forward(
      (a) => F.softplus(a),
      (a) => ref.map(a, (x) => Math.log1p(Math.exp(x))),
      [[3, 4]],
      { scale: 5 },
    ),
    forward(
      (a) => F.softplus(a, 2, 3),
      (a) => ref.map(a, (x) => (2 * x > 3 ? x : Math.log1p(Math.exp(2 * x)) / 2)),
      [[3, 4]],
      { scale: 3 },
    ),
    gradient((a) => F.softplus(a, 1.5, 30), [[3, 4]], { scale: 2 }),
  ],
  elu: [
    forward(
      (a) => F.elu(a, 0.7),
      (a) => ref.map(a, (x) => (x > 0 ? x : 0.7 * Math.expm1(x))),
      [[3, 4]],
    ),
    gradient((a) => F.elu(a, 1.3), [[3, 4]], { margin: 0.05 }),
  ],
  hardtanh: [
    forward(
      (a) => F.hardtanh(a, -0.5, 1),
      (a) => ref.map(a, (x) => Math.min(Math.max(x, -0.5), 1)),
      [[3, 4]],
    ),
    gradient((a) => F.hardtanh(a.add(0.02), -1, 1), [[3, 4]], { margin: 0.05 }),
  ],
  logSigmoid: [
    forward(
      F.logSigmoid,
      (a) => ref.map(a, (x) => (x < 0 ? x - Math.log1p(Math.exp(x)) : -Math.log1p(Math.exp(-x)))),
      [[3, 4]],
      { scale: 10 },
    ),
    gradient(F.logSigmoid, [[3, 4]], { scale: 3 }),
  ],
  erf: [
    forward(F.erf, (a) => ref.map(a, ref.erf), [[3, 4]], { scale: 2 }),
    gradient(F.erf, [[3, 4]]),
  ],
  log1p: [
    forward(F.log1p, (a) => ref.map(a, Math.log1p), [[3, 4]], { positive: true, scale: 1e-3 }),
    gradient(F.log1p, [[3, 4]], { positive: true }),
  ],
  expm1: [
    forward(F.expm1, (a) => ref.map(a, Math.expm1), [[3, 4]], { scale: 1e-4, rtol: 1e-6 }),
    gradient(F.expm1, [[3, 4]]),
  ],
  sin: [
    forward(F.sin, (a) => ref.map(a, Math.sin), [[3, 4]], { scale: 5 }),
    gradient((a) => a.sin(), [[3, 4]]),
  ],
  cos: [
    forward(F.cos, (a) => ref.map(a, Math.cos), [[3, 4]], { scale: 5 }),
    gradient((a) => a.cos(), [[3, 4]]),
  ],
  sign: [
    forward(F.sign, (a) => ref.map(a, Math.sign), [[3, 4]]),
    gradient((a) => a.sign().add(a), [[3, 4]], { margin: 0.05 }),
  ],
  floor: [
    forward(F.floor, (a) => ref.map(a, Math.floor), [[3, 4]], { scale: 4 }),
    gradient((a) => a.floor().add(a), [[3, 4]], { scale: 0.3, margin: 0.05 }),
  ],
  round: [
    forward(
      (a) => F.round(a.mul(2)),
      (a) => ref.map(a, (x) => Math.round(Math.fround(2 * x))),
      [[3, 4]],
      { scale: 3 },
    ),
    forward(
      () => F.round(tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6])),
      () => ({ shape: [8], data: Float64Array.of(0, 2, 2, -0, -2, -2, 2, -3) }),
      [[1]],
    ),
    gradient((a) => a.round().add(a), [[3, 4]], { scale: 0.2, margin: 0.05 }),
  ],
  rsqrt: [
    forward(F.rsqrt, (a) => ref.map(a, (x) => 1 / Math.sqrt(x)), [[3, 4]], { positive: true }),
    gradient((a) => a.rsqrt(), [[3, 4]], { positive: true, margin: 0.3 }),
  ],
  reciprocal: [
    forward(F.reciprocal, (a) => ref.map(a, (x) => 1 / x), [[3, 4]], { margin: 0.2 }),
    gradient((a) => a.reciprocal(), [[3, 4]], { margin: 0.3 }),
  ],
  square: [
    forward(F.square, (a) => ref.map(a, (x) => x * x), [[3, 4]]),
    gradient((a) => a.square(), [[3, 4]]),
  ],
  clamp: [
    forward(
      (a) => F.clamp(a, -0.5, 0.7),
      (a) => ref.map(a, (x) => Math.min(Math.max(x, -0.5), 0.7)),
      [[3, 4]],
    ),
    forward((a, b) => a.clamp(b), (a, b) => ref.broadcast(a, b, Math.max), [[3, 4], [4]]),
    forward((a) => F.clamp(a, undefined, 0), (a) => ref.map(a, (x) => Math.min(x, 0)), [[3, 4]]),
    gradient((a) => a.clamp(-0.5, 0.5), [[3, 4]], { margin: 0.05 }),
  ],
  matmul: [
    forward(F.matmul, ref.matmul, [[3, 4], [4, 5]], { atol: 1e-5 }),
    forward(F.matmul, ref.matmulNd, [[4], [4]], { atol: 1e-5 }),
    forward(F.matmul, ref.matmulNd, [[4], [4, 3]], { atol: 1e-5 }),
    forward(F.matmul, ref.matmulNd, [[3, 4], [4]], { atol: 1e-5 }),
    forward(F.matmul, ref.matmulNd, [[2, 3, 4], [4]], { atol: 1e-5 }),
    forward(F.matmul, ref.matmulNd, [[4], [2, 4, 3]], { atol: 1e-5 }),
    forward(F.matmul, ref.matmulNd, [[2, 3, 4, 5], [2, 3, 5, 4]], { atol: 1e-5 }),
    forward(F.matmul, ref.matmulNd, [[2, 1, 4, 5], [3, 5, 6]], { atol: 1e-5 }),
    forward(F.matmul, ref.matmulNd, [[2, 3, 4, 5], [5, 2]], { atol: 1e-5 }),
    forward(F.matmul, ref.matmulNd, [[3, 2], [2, 2, 4]], { atol: 1e-5 }),
    gradient(F.matmul, [[2, 3, 4], [4, 5]]),
    gradient(F.matmul, [[4], [4]]),
    gradient(F.matmul, [[4], [4, 3]]),
    gradient(F.matmul, [[3, 4], [4]]),
    gradient(F.matmul, [[2, 3, 4], [4]]),
    gradient(F.matmul, [[2, 3, 4, 5], [2, 3, 5, 4]]),
    gradient(F.matmul, [[2, 1, 4, 5], [3, 5, 6]]),
    gradient(F.matmul, [[3, 2], [2, 2, 4]]),
    gradient(F.matmul, [[2, 2, 3, 4], [4, 3]]),
  ],
  linear: [
    forward(
      (x, w, b) => F.linear(x, w, b),
      (x, w, b) => ref.broadcast(ref.matmul(x, ref.transpose2d(w)), b, (p, q) => p + q),
      [[5, 4], [3, 4], [3]],
      { atol: 1e-5 },
    ),
    gradient((x, w, b) => F.linear(x, w, b, { relu: true }), [[5, 4], [3, 4], [3]]),
  ],
  layerNorm: [
    forward(
      (x, w, b) => F.layerNorm(x, [3, 4], w, b),
      (x, w, b) => ref.layerNorm(x, 2, w, b),
      [[2, 3, 4], [3, 4], [3, 4]],
      { atol: 1e-4 },
    ),
    gradient((x, w, b) => F.layerNorm(x, 4, w, b), [[3, 4], [4], [4]]),
  ],
  batchNorm: [
    forward(
      (x, w, b) => F.batchNorm(x, null, null, w, b, { training: true }),
      (x, w, b) => ref.batchNorm(x, w, b),
      [[3, 2, 4], [2], [2]],
      { atol: 1e-4 },
    ),
    gradient((x, w) => F.batchNorm(x, null, null, w, null, { training: true }), [[4, 3], [3]]),
  ],
  groupNorm: [
    forward(
      (x, w, b) => F.groupNorm(x, 2, w, b),
      (x, w, b) => ref.groupNorm(x, 2, w, b),
      [[2, 4, 3], [4], [4]],
      { atol: 1e-4 },
    ),
    gradient((x, w, b) => F.groupNorm(x, 2, w, b), [[2, 4, 2], [4], [4]]),
  ],
  attentionWeights: [
    forward(
      (q, k) => F.attentionWeights(q, k, { causal: true }),
      (q, k) => ref.attentionWeights(q, k, 1 / 2, (i, j) => (j > i ? -Infinity : 0)),
      [[2, 3, 4, 4], [2, 3, 5, 4]],
      { atol: 1e-6 },
    ),
    gradient((q, k) => F.attentionWeights(q, k, { scale: 0.7 }), [[2, 3, 4], [2, 5, 4]]),
  ],
  scaledDotProductAttention: [
    forward(
      (q, k, v) => F.scaledDotProductAttention(q, k, v, { causal: true }),
      (q, k, v) => ref.attention(q, k, v, 1 / 2, (i, j) => (j > i ? -Infinity : 0)),
      [[2, 3, 4, 4], [2, 3, 4, 4], [2, 3, 4, 5]],
      { atol: 1e-5 },
    ),
    gradient(
      (q, k, v) => F.scaledDotProductAttention(q, k, v, { scale: 0.7 }),
      [[2, 3, 4], [2, 5, 4], [2, 5, 3]],
    ),
  ],
  sum: [
    forward(
      (a) => a.sum([0, 2]),
      (a) => ref.reduce(a, [0, 2], false, (v) => v.reduce((s, x) => s + x, 0)),
      [[2, 3, 4]],
      { atol: 1e-5 },
    ),
    gradient((a) => a.sum(-1, true), [[3, 4]]),
  ],
  mean: [
    forward(
      (a) => a.mean(1),
      (a) => ref.reduce(a, [1], false, (v) => v.reduce((s, x) => s + x, 0) / v.length),
      [[3, 4]],
    ),
    gradient((a) => a.mean([0, 1]), [[3, 4]]),
  ],
  max: [
    forward((a) => a.max(1), (a) => ref.reduce(a, [1], false, (v) => Math.max(...v)), [[3, 4]]),
    gradient((a) => a.max(0), [[3, 4]]),
  ],
  min: [
    forward((a) => a.min(1), (a) => ref.reduce(a, [1], false, (v) => Math.min(...v)), [[3, 4]]),
    gradient((a) => a.min([0, -1], true), [[3, 4]]),
  ],
  variance: [
    forward(
      (a) => F.variance(a, [0, 2]),
      (a) => ref.reduce(a, [0, 2], false, (v) => variance(v, 1)),
      [[2, 3, 4]],
    ),
    gradient((a) => F.variance(a, -1, { correction: 0, keepDim: true }), [[3, 4]]),
  ],
  var: [
    forward((a) => a.var(), (a) => ref.reduce(a, [0, 1], false, (v) => variance(v, 1)), [[3, 4]]),
    gradient((a) => F.var(a, 0), [[3, 4]]),
  ],
  std: [
    forward(
      (a) => a.std(-1, { correction: 0 }),
      (a) => ref.reduce(a, [1], false, (v) => Math.sqrt(variance(v, 0))),
      [[3, 4]],
    ),
    gradient((a) => F.std(a, 1), [[3, 4]]),
  ],
  logsumexp: [
    forward(
      (a) => a.logsumexp(-1),
      (a) => ref.reduce(a, [1], false, (v) => Math.log(v.reduce((s, x) => s + Math.exp(x), 0))),
      [[3, 4]],
      { scale: 20 },
    ),
    gradient((a) => F.logsumexp(a, [0, 1], true), [[3, 4]]),
  ],
  norm: [
    forward(
      (a) => a.norm(),
      (a) => ({ shape: [], data: Float64Array.of(Math.hypot(...a.data)) }),
      [[3, 4]],
    ),
    forward(
      (a) => F.norm(a, 3, 1),
      (a) => ref.reduce(a, [1], false, (v) => ref.pnorm(v, 3)),
      [[3, 4]],
    ),
    forward(
      (a) => F.norm(a, Infinity, 0),
      (a) => ref.reduce(a, [0], false, (v) => Math.max(...v.map(Math.abs))),
      [[3, 4]],
    ),
    gradient((a) => a.norm(2, -1), [[3, 4]]),
    gradient((a) => a.norm(1.5, 0, true), [[3, 4]], { margin: 0.05 }),
    gradient((a) => a.norm(1), [[3, 4]], { margin: 0.05 }),
  ],
  cumsum: [
    forward(
      (a) => a.cumsum(1),
      (a) => ref.cumsum(a, 1),
      [[2, 3, 4]],
    ),
    gradient((a) => F.cumsum(a, -1), [[3, 4]]),
  ],
  prod: [
    forward(
      (a) => a.prod([0, 2]),
      (a) => ref.reduce(a, [0, 2], false, (v) => v.reduce((p, x) => p * x, 1)),
      [[2, 3, 4]],
    ),
    gradient((a) => a.prod(1), [[3, 4]]),
    gradient((a) => F.prod(a, [0, 1], true), [[2, 3]]),
  ],
  topk: [
    forward(
      (a) => a.topk(2, 1).values,
      (a) => ref.topk(a, 2, 1, true),
      [[3, 5]],
    ),
    forward(
      (a) => F.topk(a, 3, 0, false).indices.to("float32"),
      (a) => ref.topk(a, 3, 0, false, true),
      [[4, 3]],
    ),
    gradient((a) => a.topk(2, 0).values, [[4, 3]]),
  ],
  argmax: [
    forward(
      (a) => a.argmax(1).to("float32"),
      (a) => ref.reduce(a, [1], false, (v) => v.indexOf(Math.max(...v))),
      [[3, 4]],
    ),
  ],
  argmin: [
    forward(
      (a) => a.argmin(0).to("float32"),
      (a) => ref.reduce(a, [0], false, (v) => v.indexOf(Math.min(...v))),
      [[3, 4]],
    ),
  ],
  softmax: [
    forward((a) => a.softmax(0), (a) => ref.softmax(a, 0, false), [[3, 4]]),
    gradient((a) => a.softmax(-1), [[3, 4]]),
  ],
  logSoftmax: [
    forward((a) => a.logSoftmax(1), (a) => ref.softmax(a, 1, true), [[3, 4]]),
    gradient((a) => a.logSoftmax(0), [[3, 4]]),
  ],
  crossEntropy: [
    forward(
      (a) => F.crossEntropy(a, labels, { labelSmoothing: 0.1 }),
      (a) => ({ shape: [], data: Float64Array.of(ref.crossEntropy(a, labels, 0.1)) }),
      [[5, 4]],
    ),
    gradient((a) => F.crossEntropy(a, labels), [[5, 4]]),
  ],
  nllLoss: [
    forward(
      (a) => F.nllLoss(a.logSoftmax(), labels),
      (a) => ({ shape: [], data: Float64Array.of(ref.crossEntropy(a, labels)) }),
      [[5, 4]],
    ),
    gradient((a) => F.nllLoss(a, labels, { reduction: "sum" }), [[5, 4]]),
  ],
  conv2d: [
    forward(
      (x, w) => F.conv2d(x, w, undefined, { padding: 1 }),
      (x, w) => ref.conv2d(x, w, null, 1, 1),
      [[2, 2, 5, 5], [3, 2, 3, 3]],
      { atol: 1e-4 },
    ),
    gradient((x, w) => F.conv2d(x, w, undefined, { stride: 2 }), [[1, 2, 5, 5], [2, 2, 3, 3]]),
  ],
  conv1d: [
    forward(
      (x, w, b) => F.conv1d(x, w, b, { padding: 2, dilation: 2, stride: 2 }),
      (x, w, b) => ref.conv1d(x, w, b, 2, 2, 2, 1),
      [[2, 2, 7], [4, 2, 3], [4]],
      { atol: 1e-4, seed: 99 },
    ),
    gradient((x, w) => F.conv1d(x, w, undefined, { groups: 2, padding: 1 }), [[1, 4, 5], [
      2,
      2,
      3,
    ]]),
  ],
  avgPool2d: [
    forward(
      (x) => F.avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false, ceilMode: true }),
      (x) => ref.avgPool2d(x, 3, 2, 1, false, true),
      [[2, 2, 6, 6]],
    ),
    gradient((x) => F.avgPool2d(x, 2, { padding: 1 }), [[1, 2, 4, 5]]),
  ],
  adaptiveAvgPool2d: [
    forward((x) => F.adaptiveAvgPool2d(x, [3, 2]), (x) => ref.adaptiveAvgPool2d(x, 3, 2), [[
      2,
      2,
      7,
      5,
    ]]),
    gradient((x) => F.adaptiveAvgPool2d(x, 3), [[1, 2, 5, 4]]),
  ],
  maxPool2d: [
    forward((x) => F.maxPool2d(x, 2), (x) => ref.maxPool2d(x, 2, 2, 0), [[2, 2, 4, 4]]),
    gradient((x) => F.maxPool2d(x, 2), [[1, 2, 4, 4]]),
  ],
  dropout: [
    forward((a) => F.dropout(a, 0.5, { training: false }), (a) => a, [[3, 4]]),
    gradient((a) => F.dropout(a, 0.3, { rng: new Rng(11) }), [[4, 5]]),
  ],
  reshape: [
    forward((a) => a.reshape([4, 3]), (a) => ({ shape: [4, 3], data: a.data }), [[3, 4]]),
    gradient((a) => a.reshape(2, 6), [[3, 4]]),
  ],
  view: [forward((a) => a.contiguous().view(-1), (a) => ({ shape: [12], data: a.data }), [[3, 4]])],
  flatten: [gradient((a) => a.flatten(), [[2, 3, 4]])],
  squeeze: [gradient((a) => a.unsqueeze(0).squeeze(0), [[3, 4]])],
  unsqueeze: [gradient((a) => a.unsqueeze(1), [[3, 4]])],
  transpose: [gradient((a) => a.transpose(0, 1), [[3, 4]])],
  permute: [
    forward(
      (a) => a.permute([2, 0, 1]),
      (a) => ref.build([4, 2, 3], ([k, i, j]) => ref.at(a, [i, j, k])),
      [[2, 3, 4]],
    ),
    gradient((a) => a.permute(1, 0), [[3, 4]]),
  ],
  slice: [
    forward(
      (a) => a.slice(1, 1, 4, 2),
      (a) => ref.build([3, 2], ([i, j]) => ref.at(a, [i, 1 + 2 * j])),
      [[3, 5]],
    ),
    gradient((a) => a.slice(0, 1, undefined, 2), [[5, 3]]),
  ],
  narrow: [gradient((a) => a.narrow(1, 1, 2), [[3, 4]])],
  sliceScatter: [
    forward(
      (a) => F.sliceScatter(a, [3, 7], 1, 1, 2),
      (a) =>
        ref.build([3, 7], ([i, j]) => (j % 2 === 1 && j < 9 ? ref.at(a, [i, (j - 1) / 2]) : 0)),
      [[3, 3]],
    ),
    gradient((a) => F.sliceScatter(a, [6, 3], 0, 0, 2), [[3, 3]]),
  ],
  expand: [gradient((a) => a.unsqueeze(0).expand(2, -1, -1), [[3, 4]])],
  contiguous: [gradient((a) => a.transpose().contiguous(), [[3, 4]])],
  clone: [gradient((a) => a.clone(), [[3, 4]])],
  gather: [
    forward(
      (a) => F.gather(a, 1, i32(gatherIndex)),
      (a) => ref.build([3, 2], ([i, j]) => ref.at(a, [i, gatherIndex[i][j]])),
      [[3, 4]],
    ),
    gradient((a) => F.gather(a, 0, i32(scatterIndex)), [[3, 4]]),
  ],
  scatterAdd: [
    forward(
      (a, b) => F.scatterAdd(a, 0, i32(scatterIndex), b),
      (a, b) =>
        ref.build([3, 4], ([i, k]) =>
          ref.at(a, [i, k]) +
          [0, 1].reduce((s, j) => s + (scatterIndex[j][k] === i ? ref.at(b, [j, k]) : 0), 0)),
      [[3, 4], [2, 4]],
    ),
    gradient((a, b) => F.scatterAdd(a, 1, i32(gatherIndex), b), [[3, 4], [3, 3]]),
  ],
  indexSelect: [
    forward(
      (a) => F.indexSelect(a, 0, [2, 0, 2]),
      (a) => ref.build([3, 4], ([i, j]) => ref.at(a, [[2, 0, 2][i], j])),
      [[3, 4]],
    ),
    gradient((a) => a.indexSelect(1, new Int32Array([3, 1, 3])), [[3, 4]]),
  ],
  embedding: [
    forward(
      (w) => F.embedding(i32(tokens), w),
      (w) => ref.build([2, 3, 4], ([i, j, k]) => ref.at(w, [tokens[i][j], k])),
      [[5, 4]],
    ),
    forward(
      (w) => F.embedding(i32(tokens), w, { paddingIdx: -3 }),
      (w) => ref.build([2, 3, 4], ([i, j, k]) => ref.at(w, [tokens[i][j], k])),
      [[5, 4]],
    ),
    gradient((w) => F.embedding(i32(tokens), w), [[5, 4]]),
  ],
  select: [
    forward((a) => a.select(1, -1), (a) => ref.build([3], ([i]) => ref.at(a, [i, 3])), [[3, 4]]),
    gradient((a) => F.select(a, 0, 1), [[3, 4]]),
  ],
  index: [
    forward(
      (a) => F.index(a, 1, 2),
      (a) => ref.build([4], ([k]) => ref.at(a, [1, 2, k])),
      [[2, 3, 4]],
    ),
    gradient((a) => a.index(-1), [[3, 4]]),
  ],
  flip: [
    forward(
      (a) => a.flip(0, 1),
      (a) => ref.build([3, 4], ([i, j]) => ref.at(a, [2 - i, 3 - j])),
      [[3, 4]],
    ),
    gradient((a) => F.flip(a, [1]), [[3, 4]]),
  ],
  roll: [
    forward(
      (a) => a.roll([1, -1], [0, 1]),
      (a) => ref.build([3, 4], ([i, j]) => ref.at(a, [(i + 2) % 3, (j + 1) % 4])),
      [[3, 4]],
    ),
    forward(
      (a) => F.roll(a, 5),
      (a) => ref.build([3, 4], ([i, j]) => a.data[(i * 4 + j + 7) % 12]),
      [[3, 4]],
    ),
    gradient((a) => a.roll(2, 1), [[3, 4]]),
  ],
  pad: [
    forward(
      (a) => F.pad(a, [1, 2, -1, 1], 0.5),
      (a) =>
        ref.build([3, 7], ([i, j]) => (i < 2 && j >= 1 && j < 5 ? ref.at(a, [i + 1, j - 1]) : 0.5)),
      [[3, 4]],
    ),
    gradient((a) => F.pad(a, [2, 1]), [[3, 4]]),
    gradient((a) => F.pad(a, [0, 1, 1, -1, 1, 0], -2), [[2, 3, 4]]),
  ],
  repeat: [
    forward(
      (a) => a.repeat(2, 1, 2),
      (a) => ref.build([2, 3, 8], ([, i, j]) => ref.at(a, [i, j % 4])),
      [[3, 4]],
    ),
    gradient((a) => F.repeat(a, [2, 3]), [[3, 4]]),
  ],
  tile: [
    forward(
      (a) => a.tile(2),
      (a) => ref.build([3, 8], ([i, j]) => ref.at(a, [i, j % 4])),
      [[3, 4]],
    ),
    gradient((a) => F.tile(a, [2, 1, 1]), [[3, 4]]),
  ],
  cat: [
    forward(
      (a, b) => F.cat([a, b, a], 1),
      (a, b) =>
        ref.build(
          [3, 10],
          ([i, j]) =>
            j < 4 ? ref.at(a, [i, j]) : j < 6 ? ref.at(b, [i, j - 4]) : ref.at(a, [i, j - 6]),
        ),
      [[3, 4], [3, 2]],
    ),
    gradient((a, b) => F.cat([a, b, a], 0), [[3, 4], [2, 4]]),
  ],
  stack: [
    forward(
      (a, b) => F.stack([a, b], -1),
      (a, b) => ref.build([3, 4, 2], ([i, j, k]) => ref.at(k ? b : a, [i, j])),
      [[3, 4], [3, 4]],
    ),
    gradient((a, b) => F.stack([a, b], 1), [[3, 4], [3, 4]]),
  ],
  split: [
    forward(
      (a) => F.cat(F.split(a, [1, 3], 1).reverse(), 1),
      (a) => ref.build([3, 4], ([i, j]) => ref.at(a, [i, j < 3 ? j + 1 : 0])),
      [[3, 4]],
    ),
    gradient((a) => a.split(2, 0)[1], [[3, 4]]),
  ],
  chunk: [
    forward(
      (a) => F.chunk(a, 3, 1)[1],
      (a) => ref.build([3, 2], ([i, j]) => ref.at(a, [i, j + 2])),
      [[3, 4]],
    ),
    gradient((a) => a.chunk(2, 1)[0], [[3, 4]]),
  ],
  unbind: [
    forward(
      (a) => F.stack(F.unbind(a, 1), 0),
      (a) => ref.build([4, 3], ([j, i]) => ref.at(a, [i, j])),
      [[3, 4]],
    ),
    gradient((a) => a.unbind(0)[2], [[3, 4]]),
  ],
};

/** Functional-API names that are not ops (types are erased; these are plain values). */
const NOT_OPS = new Set<string>([]);

Deno.test("every primitive and every function of the API has a row of checks", () => {
  const functions = Object.entries(F).filter(([, v]) => typeof v === "function").map(([k]) => k);
  const names = new Set([...Object.keys(opTable), ...functions].filter((n) => !NOT_OPS.has(n)));
  const missing = [...names].filter((n) => !(n in checks));
  assert.deepEqual(missing, [], "ops without checks");
  const unknown = Object.keys(checks).filter((n) => !names.has(n));
  assert.deepEqual(unknown, [], "checks naming no op");
});

for (const [name, rows] of Object.entries(checks)) {
  Deno.test(`op ${name}`, () => rows.forEach((row) => row()));
}
