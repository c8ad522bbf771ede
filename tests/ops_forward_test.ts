/**
 * Every op's forward pass against the naive float64 reference, on seeded random shapes, for
 * contiguous, transposed and sliced inputs, with broadcasting in both directions.
 */

import assert from "node:assert/strict";
import {
  conv2d,
  crossEntropy,
  dropout,
  linear,
  matmul,
  maxPool2d,
  nllLoss,
  Rng,
  type Tensor,
  tensor,
} from "../mod.ts";
import { layouts } from "./helpers/layouts.ts";
import * as ref from "./helpers/reference.ts";

const rng = new Rng(20261125);

function randomShape(ndim: number, max = 5): number[] {
  return Array.from({ length: ndim }, () => 1 + rng.int(max));
}

const unaryCases: [string, (t: Tensor) => Tensor, (x: number) => number, (x: number) => number][] =
  [
    ["neg", (t) => t.neg(), (x) => -x, (x) => x],
    ["exp", (t) => t.exp(), Math.exp, (x) => x],
    ["log", (t) => t.log(), Math.log, (x) => Math.abs(x) + 0.1],
    ["sqrt", (t) => t.sqrt(), Math.sqrt, (x) => Math.abs(x)],
    ["abs", (t) => t.abs(), Math.abs, (x) => x],
    ["relu", (t) => t.relu(), (x) => Math.max(x, 0), (x) => x],
    ["leakyRelu", (t) => t.leakyRelu(0.2), (x) => (x > 0 ? x : 0.2 * x), (x) => x],
    ["sigmoid", (t) => t.sigmoid(), (x) => 1 / (1 + Math.exp(-x)), (x) => 30 * x],
    ["tanh", (t) => t.tanh(), Math.tanh, (x) => 3 * x],
    ["pow 2", (t) => t.pow(2), (x) => x * x, (x) => x],
    ["pow 3", (t) => t.pow(3), (x) => x ** 3, (x) => x],
    ["pow -1.5", (t) => t.pow(-1.5), (x) => x ** -1.5, (x) => Math.abs(x) + 0.5],
  ];

for (const [name, op, f, domain] of unaryCases) {
  Deno.test(`forward ${name}: all layouts match the float64 reference`, () => {
    for (let trial = 0; trial < 4; trial++) {
      const input = ref.map(
        ref.randomRef(randomShape(1 + trial % 3), rng),
        (x) => Math.fround(domain(x)),
      );
      const expected = ref.map(input, f);
      for (const { name: layout, t } of layouts(input)) {
        ref.assertClose(op(t), expected, 1e-6, 1e-5, `${name} ${layout}`);
      }
    }
  });
}

const binaryCases: [string, (a: Tensor, b: Tensor) => Tensor, (x: number, y: number) => number][] =
  [
    ["add", (a, b) => a.add(b), (x, y) => x + y],
    ["sub", (a, b) => a.sub(b), (x, y) => x - y],
    ["mul", (a, b) => a.mul(b), (x, y) => x * y],
    ["div", (a, b) => a.div(b), (x, y) => x / y],
  ];

/** Shape pairs that broadcast: same, one side smaller, both sides stretched, scalar. */
const broadcastPairs: [number[], number[]][] = [
  [[3, 4], [3, 4]],
  [[3, 4], [4]],
  [[4], [3, 4]],
  [[2, 3, 4], [3, 1]],
  [[3, 1], [2, 3, 4]],
  [[2, 1, 4], [1, 3, 1]],
  [[5, 1], [1, 6]],
  [[3, 4], []],
  [[], [3, 4]],
];

for (const [name, op, f] of binaryCases) {
  Deno.test(`forward ${name}: broadcasting both ways, every layout pairing`, () => {
    for (const [sa, sb] of broadcastPairs) {
      const a = ref.randomRef(sa, rng);
      const b = ref.map(
        ref.randomRef(sb, rng),
        (x) => (name === "div" ? Math.fround(Math.sign(x) * (Math.abs(x) + 0.5)) : x),
      );
      const expected = ref.broadcast(a, b, f);
      for (const la of layouts(a)) {
        for (const lb of layouts(b)) {
          ref.assertClose(
            op(la.t, lb.t),
            expected,
            1e-6,
            1e-5,
            `${name} ${sa}(${la.name}) ${sb}(${lb.name})`,
          );
        }
      }
    }
  });
}

Deno.test("forward binary ops accept plain numbers on either side", () => {
  const a = tensor([[1, 2], [3, 4]]);
  assert.deepEqual(a.add(1).toArray(), [[2, 3], [4, 5]]);
  assert.deepEqual(a.mul(-2).toArray(), [[-2, -4], [-6, -8]]);
  assert.deepEqual(a.div(2).toArray(), [[0.5, 1], [1.5, 2]]);
  assert.deepEqual(a.sub(1).toArray(), [[0, 1], [2, 3]]);
});

Deno.test("forward broadcasting into an expanded view", () => {
  const row = ref.randomRef([1, 5], rng);
  const full = ref.randomRef([4, 5], rng);
  const expanded = ref.toTensor(row).expand(4, 5);
  assert.equal(expanded.strides[0], 0);
  ref.assertClose(expanded.mul(ref.toTensor(full)), ref.broadcast(row, full, (x, y) => x * y));
});

Deno.test("forward matmul: 2-D, batched, shared 2-D side, transposed and sliced operands", () => {
  const cases: [number[], number[]][] = [
    [[1, 1], [1, 1]],
    [[3, 5], [5, 4]],
    [[7, 13], [13, 5]],
    [[2, 3, 4], [2, 4, 5]],
    [[2, 3, 4], [4, 5]],
    [[3, 4], [2, 4, 5]],
  ];
  for (const [sa, sb] of cases) {
    const a = ref.randomRef(sa, rng);
    const b = ref.randomRef(sb, rng);
    const expected = ref.matmul(a, b);
    for (const la of layouts(a)) {
      for (const lb of layouts(b)) {
        ref.assertClose(
          matmul(la.t, lb.t),
          expected,
          1e-5,
          1e-5,
          `matmul ${sa}(${la.name})·${sb}(${lb.name})`,
        );
      }
    }
  }
  assert.throws(
    () => matmul(tensor([[1, 2]]), tensor([[1, 2]])),
    /matmul: cannot multiply \[1, 2\] by \[1, 2\]/,
  );
});

Deno.test("linear with fused ReLU equals relu(linear(·)), forward and backward", () => {
  // 64×96 outputs take the wasm paths of the default kernels (the small ones stay in TypeScript).
  for (const [rows, inF, outF] of [[3, 5, 4], [64, 33, 96], [1, 40, 7]]) {
    for (const bias of [true, false]) {
      const make = (shape: number[]) => ref.toTensor(ref.randomRef(shape, rng), true);
      const x = make([rows, inF]);
      const w = make([outF, inF]);
      const b = bias ? make([outF]) : undefined;
      const gy = ref.toTensor(ref.randomRef([rows, outF], rng));
      const fused = linear(x, w, b, { relu: true });
      const plain = linear(x, w, b).relu();
      assert.deepEqual(fused.toFloat32Array(), plain.toFloat32Array(), `${rows}×${inF}→${outF}`);
      fused.backward(gy);
      const fusedX = ref.fromTensor(x.grad!);
      const fusedW = ref.fromTensor(w.grad!);
      const fusedB = b === undefined ? null : ref.fromTensor(b.grad!);
      x.grad = w.grad = null;
      if (b) b.grad = null;
      plain.backward(gy);
      ref.assertClose(x.grad!, fusedX, 1e-5, 1e-5, "input gradient");
      ref.assertClose(w.grad!, fusedW, 1e-5, 1e-5, "weight gradient");
      if (b) ref.assertClose(b.grad!, fusedB!, 1e-5, 1e-5, "bias gradient");
    }
  }
});

Deno.test("forward linear: x·Wᵀ + b, with and without bias, 2-D and 3-D input", () => {
  const x = ref.randomRef([6, 5], rng);
  const w = ref.randomRef([3, 5], rng);
  const b = ref.randomRef([3], rng);
  const wt = ref.build([5, 3], ([i, j]) => ref.at(w, [j, i]));
  const noBias = ref.matmul(x, wt);
  ref.assertClose(linear(ref.toTensor(x), ref.toTensor(w)), noBias);
  const withBias = ref.broadcast(noBias, b, (p, q) => p + q);
  for (const lx of layouts(x)) {
    ref.assertClose(linear(lx.t, ref.toTensor(w), ref.toTensor(b)), withBias, 1e-5, 1e-5, lx.name);
  }
  const y3 = linear(ref.toTensor(x).reshape(2, 3, 5), ref.toTensor(w), ref.toTensor(b));
  assert.deepEqual(y3.shape, [2, 3, 3]);
  ref.assertClose(y3.reshape(6, 3), withBias);
  assert.throws(
    () => linear(tensor([[1, 2]]), ref.toTensor(w)),
    /linear: input \[1, 2\] does not match weight \[3, 5\]/,
  );
});

Deno.test("forward sum / mean / max over any dims, keepDim, every layout", () => {
  const dimSets = [undefined, [0], [1], [2], [0, 2], [1, 2], [0, 1, 2], [-1]];
  for (let trial = 0; trial < 3; trial++) {
    const x = ref.randomRef(randomShape(3), rng);
    for (const dims of dimSets) {
      const list = dims === undefined ? [0, 1, 2] : dims.map((d) => (d < 0 ? d + 3 : d));
      for (const keepDim of [false, true]) {
        const sum = ref.reduce(x, list, keepDim, (v) => v.reduce((s, y) => s + y, 0));
        const mean = ref.reduce(x, list, keepDim, (v) => v.reduce((s, y) => s + y, 0) / v.length);
        const max = ref.reduce(x, list, keepDim, (v) => Math.max(...v));
        for (const { name, t } of layouts(x)) {
          const tag = `dims ${dims} keepDim ${keepDim} ${name}`;
          ref.assertClose(t.sum(dims, keepDim), sum, 1e-5, 1e-5, `sum ${tag}`);
          ref.assertClose(t.mean(dims, keepDim), mean, 1e-5, 1e-5, `mean ${tag}`);
          ref.assertClose(t.max(dims, keepDim), max, 0, 0, `max ${tag}`);
        }
      }
    }
  }
});

Deno.test("forward sum keeps float32 precision over many elements (float64 accumulation)", () => {
  const n = 1_000_000;
  const t = tensor(new Float32Array(n).fill(0.1));
  const expected = n * Math.fround(0.1);
  assert.ok(Math.abs(t.sum().item() - expected) / expected < 1e-6);
});

Deno.test("forward argmax picks the first maximum", () => {
  const t = tensor([[1, 5, 5, 2], [7, 0, 7, -1]]);
  assert.deepEqual(t.argmax(1).toArray(), [1, 0]);
  assert.deepEqual(t.argmax(0).toArray(), [1, 0, 1, 0]);
});

Deno.test("forward softmax / logSoftmax along each dim, stable for huge logits", () => {
  for (const dim of [0, 1, -1]) {
    const x = ref.randomRef([4, 6], rng, 3);
    for (const { name, t } of layouts(x)) {
      ref.assertClose(
        t.softmax(dim),
        ref.softmax(x, dim, false),
        1e-6,
        1e-5,
        `softmax dim ${dim} ${name}`,
      );
      ref.assertClose(
        t.logSoftmax(dim),
        ref.softmax(x, dim, true),
        1e-5,
        1e-5,
        `logSoftmax dim ${dim} ${name}`,
      );
    }
  }
  const huge = tensor([[1000, 0, -1000], [88, 89, 90]]);
  ref.assertClose(huge.softmax(), ref.softmax(ref.fromTensor(huge), 1, false), 1e-7, 1e-5);
  const logp = huge.logSoftmax().toFloat32Array();
  assert.ok(logp.every(Number.isFinite), "logSoftmax of ±1000 stays finite");
  assert.equal(logp[0], 0);
  assert.equal(logp[2], -2000);
});

Deno.test("forward crossEntropy (mean, sum, label smoothing) and nllLoss", () => {
  const logits = ref.randomRef([7, 5], rng, 2);
  const labels = new Int32Array([0, 4, 2, 2, 1, 3, 0]);
  for (const { name, t } of layouts(logits)) {
    assert.ok(
      Math.abs(crossEntropy(t, labels).item() - ref.crossEntropy(logits, labels)) < 1e-5,
      name,
    );
    assert.ok(
      Math.abs(
        crossEntropy(t, labels, { reduction: "sum" }).item() -
          ref.crossEntropy(logits, labels, 0, "sum"),
      ) < 1e-4,
    );
    assert.ok(
      Math.abs(
        crossEntropy(t, labels, { labelSmoothing: 0.1 }).item() -
          ref.crossEntropy(logits, labels, 0.1),
      ) < 1e-5,
    );
    const nll = nllLoss(t.logSoftmax(), labels).item();
    assert.ok(Math.abs(nll - ref.crossEntropy(logits, labels)) < 1e-5, `nll ${name}`);
  }
  // Textbook value: uniform logits over C classes give log C.
  assert.ok(
    Math.abs(crossEntropy(tensor([[0, 0, 0, 0]]), new Int32Array([2])).item() - Math.log(4)) < 1e-7,
  );
  assert.throws(
    () => crossEntropy(tensor([[0, 0]]), new Int32Array([2])),
    /label 2 at position 0 is outside 0\.\.1/,
  );
  assert.throws(
    () => crossEntropy(tensor([[0, 0]]), new Int32Array([0, 1])),
    /2 labels for scores of shape \[1, 2\]/,
  );
});

Deno.test("forward conv2d against the direct loop: strides, paddings, bias, layouts", () => {
  const configs: [number[], number[], number, number][] = [
    [[2, 1, 6, 6], [3, 1, 3, 3], 1, 0],
    [[2, 2, 7, 5], [3, 2, 3, 3], 2, 1],
    [[1, 3, 5, 5], [2, 3, 1, 1], 1, 0],
    [[2, 1, 9, 9], [4, 1, 4, 4], 2, 0],
    [[1, 2, 4, 4], [2, 2, 2, 2], 1, 2],
  ];
  for (const [xs, ws, stride, padding] of configs) {
    const x = ref.randomRef(xs, rng);
    const w = ref.randomRef(ws, rng);
    const b = ref.randomRef([ws[0]], rng);
    const expected = ref.conv2d(x, w, b, stride, padding);
    for (const { name, t } of layouts(x)) {
      ref.assertClose(
        conv2d(t, ref.toTensor(w), ref.toTensor(b), { stride, padding }),
        expected,
        1e-5,
        1e-5,
        `conv ${xs} ${name}`,
      );
    }
    ref.assertClose(
      conv2d(ref.toTensor(x), ref.toTensor(w), undefined, { stride, padding }),
      ref.conv2d(x, w, null, stride, padding),
      1e-5,
      1e-5,
    );
  }
});

Deno.test("forward maxPool2d against the direct loop", () => {
  for (
    const [shape, k, s, p] of [[[2, 3, 6, 6], 2, 2, 0], [[1, 2, 7, 7], 3, 2, 1], [
      [1, 1, 5, 4],
      2,
      1,
      0,
    ]] as const
  ) {
    const x = ref.randomRef([...shape], rng);
    for (const { name, t } of layouts(x)) {
      ref.assertClose(
        maxPool2d(t, k, { stride: s, padding: p }),
        ref.maxPool2d(x, k, s, p),
        0,
        0,
        `pool ${shape} ${name}`,
      );
    }
  }
});

Deno.test("forward dropout: zeros about p of the values, scales the rest by 1/(1-p), identity in eval", () => {
  const x = tensor(new Float32Array(20000).fill(2));
  const y = dropout(x, 0.25, { rng: new Rng(3) }).toFloat32Array();
  const zeros = y.filter((v) => v === 0).length;
  assert.ok(Math.abs(zeros / y.length - 0.25) < 0.02, `dropped fraction ${zeros / y.length}`);
  assert.ok(y.every((v) => v === 0 || Math.abs(v - 2 / 0.75) < 1e-6));
  assert.equal(dropout(x, 0.25, { training: false }), x);
  const again = dropout(x, 0.25, { rng: new Rng(3) }).toFloat32Array();
  assert.deepEqual(again, y, "same seed, same mask");
  assert.throws(() => dropout(x, 1), /dropout: p must be in \[0, 1\)/);
});

Deno.test("max: a NaN anywhere in a slice wins wherever it sits (PyTorch's amax), on the CPU", () => {
  const rows = tensor([[1, NaN], [3, 3], [-Infinity, -Infinity], [2, 2]]);
  assert.deepEqual(Array.from(rows.max(0).values()), [3, NaN]);
  assert.deepEqual(Array.from(rows.max(1).values()), [NaN, 3, -Infinity, 2]);
  // NaN first, then larger numbers: the bug this guards against let a later number replace it.
  assert.ok(Number.isNaN(tensor([NaN, 5, 7]).max(0).item()));
  assert.ok(Number.isNaN(tensor([[NaN], [5], [7]]).max(0).item()));
});
