/**
 * Every tapegrad op the ONNX exporter maps, checked in ONNX Runtime: four small models between
 * them apply each op of `ONNX_OP_MAPPING` (a test fails when one is listed but not exercised),
 * each is exported once with a symbolic batch and run at batch sizes 1 and 7, and every output
 * value agrees with tapegrad's to 1e-4.
 */

import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import {
  abs,
  adaptiveAvgPool2d,
  type AnyTensor,
  avgPool2d,
  batchNorm,
  cat,
  chunk,
  clamp,
  clone,
  conv1d,
  cos,
  cumsum,
  div,
  elu,
  erf,
  exp,
  expand,
  expm1,
  flip,
  floor,
  gelu,
  groupNorm,
  gt,
  hardtanh,
  indexSelect,
  layerNorm,
  leakyRelu,
  log,
  log1p,
  logSoftmax,
  logsumexp,
  maskedFill,
  matmul,
  max,
  maximum,
  maxPool2d,
  mean,
  min,
  minimum,
  narrow,
  neg,
  noGrad,
  norm,
  ones,
  pad,
  permute,
  pow,
  prod,
  randn,
  reciprocal,
  relu,
  repeat,
  reshape,
  Rng,
  roll,
  round,
  rsqrt,
  scaledDotProductAttention,
  select,
  sigmoid,
  sign,
  silu,
  sin,
  slice,
  sliceScatter,
  softmax,
  softplus,
  split,
  sqrt,
  square,
  squeeze,
  stack,
  std,
  sum,
  tanh,
  Tensor,
  tile,
  topk,
  transpose,
  unbind,
  unsqueeze,
  variance,
  where,
  zeros,
} from "../autograd/mod.ts";
import { setOpTracer } from "../autograd/ops/op.ts";
import { BatchNorm2d, Conv2d, Embedding, Linear, Module } from "../nn/mod.ts";
import { exportOnnx, ONNX_OP_MAPPING } from "../nn/onnx/mod.ts";

/** Flattens each piece to [N, -1] and concatenates them, so every value is compared. */
function gatherUp(pieces: Tensor[]): Tensor {
  return cat(pieces.map((p) => reshape(p, [p.shape[0], -1])), 1);
}

/** The unary and binary elementwise ops on [N, 6, 5]. */
class Elementwise extends Module {
  override forward(x: Tensor): Tensor {
    const pos = abs(x);
    return gatherUp([
      neg(x),
      exp(x.mul(0.5)),
      log(pos.add(1)),
      sqrt(pos),
      relu(x),
      leakyRelu(x, 0.1),
      sigmoid(x),
      tanh(x),
      pow(x, 3),
      erf(x),
      gelu(x),
      gelu(x, { approximate: "tanh" }),
      log1p(pos),
      expm1(x),
      sin(x),
      cos(x),
      sign(x),
      floor(x.mul(3)),
      round(x.mul(3)),
      div(x, pos.add(2)),
      x.sub(0.25),
      maximum(x, 0.5),
      minimum(x, -0.5),
    ]);
  }
}

/** Views, reductions, normalisation, matmul and the joins on [N, 6, 5]. */
class Shapes extends Module {
  proj = new Linear(5, 3, { rng: new Rng(2) });
  weight = randn([5, 4], new Rng(3));
  mask = new Tensor<"bool">(Uint8Array.from({ length: 30 }, (_, i) => i % 3 === 0 ? 1 : 0), [6, 5]);

  override forward(x: Tensor): Tensor {
    const n = x.shape[0];
    return gatherUp([
      transpose(x, 1, 2),
      permute(x, [0, 2, 1]).contiguous(),
      slice(x, 1, 1, 6, 2),
      flip(x, 1),
      expand(sum(x, 1, true), [n, 6, 5]),
      cumsum(x, 2),
      prod(x, 2, true),
      mean(x, [1, 2], true),
      max(x, 2),
      softmax(x, 1),
      logSoftmax(x, -1),
      layerNorm(x, [5]),
      matmul(x, this.weight),
      this.proj.call(x),
      where(this.mask, x, neg(x)),
      sliceScatter(x, [n, 6, 11], 2, 1, 2),
      sliceScatter(x, [n, 8, 5], 1, 2),
    ]);
  }
}

/** A grouped, dilated convolution, max and average pooling, BatchNorm (eval) on [N, 4, 9, 9]. */
class Image extends Module {
  conv = new Conv2d(4, 8, 3, { groups: 4, dilation: 2, padding: 1, rng: new Rng(4) });
  plain = new Conv2d(8, 6, 3, { stride: 2, padding: 1, rng: new Rng(5) });
  bn = new BatchNorm2d(6);
  head = new Linear(6 * 2 * 2, 4, { rng: new Rng(6) });

  override forward(x: Tensor): Tensor {
    const a = relu(this.conv.call(x)); // [N, 8, 7, 7]
    const b = maxPool2d(relu(this.plain.call(a)), 2, { stride: 2 }); // [N, 6, 2, 2]
    const c = this.bn.call(b);
    return gatherUp([this.head.call(c.flatten(1)), avgPool2d(a, 3), c]);
  }
}

/** Composites (written in the primitives above) that the README lists as exporting, on [N, 24]. */
class Composites extends Module {
  override forward(x: Tensor): Tensor {
    const n = x.shape[0];
    const pos = abs(x).add(1);
    const grid = reshape(x, [n, 1, 4, 6]);
    return gatherUp([
      silu(x),
      rsqrt(pos),
      reciprocal(pos),
      square(x),
      variance(x, 1),
      std(x, 1),
      min(x, 1),
      groupNorm(reshape(x, [n, 4, 6]), 2),
      batchNorm(x, zeros([24]), ones([24]), ones([24]), zeros([24]), { training: false }),
      select(x, 1, 2),
      roll(x, 2, 1),
      pad(x, [1, 2]),
      repeat(x, [1, 2]),
      tile(x, [2]),
      stack([x, x], 1),
      split(x, 12, 1)[1],
      chunk(x, 2, 1)[0],
      unbind(reshape(x, [n, 4, 6]), 1)[3],
      narrow(x, 1, 2, 3),
      squeeze(unsqueeze(x, 1), 1),
      adaptiveAvgPool2d(grid, [2, 3]),
      conv1d(reshape(x, [n, 2, 12]), ones([3, 2, 3]), undefined, { padding: 1 }),
      indexSelect(x, 1, new Tensor<"int32">(Int32Array.from([3, 1]), [2])),
      scaledDotProductAttention(grid, grid, grid, { causal: true }),
      clone(x),
    ]);
  }
}

/** Embedding lookups of int32 tokens [N, 4]. */
class Tokens extends Module<[Tensor<"int32">], Tensor> {
  emb = new Embedding(11, 3, { rng: new Rng(7) });

  override forward(tokens: Tensor<"int32">): Tensor {
    return sum(this.emb.call(tokens), 1);
  }
}

async function runOrt(session: ort.InferenceSession, x: AnyTensor): Promise<Float32Array> {
  const c = x.contiguous();
  const values = c.data.subarray(c.offset, c.offset + c.size);
  const feed = x.dtype === "int32"
    ? new ort.Tensor("int32", Int32Array.from(values), [...x.shape])
    : new ort.Tensor("float32", Float32Array.from(values), [...x.shape]);
  return (await session.run({ input: feed })).output.data as Float32Array;
}

const rng = new Rng(21);
const cases: [string, Module<[never], Tensor>, (n: number) => AnyTensor][] = [
  ["elementwise", new Elementwise(), (n) => randn([n, 6, 5], rng)],
  ["shapes", new Shapes(), (n) => randn([n, 6, 5], rng)],
  ["image", new Image(), (n) => randn([n, 4, 9, 9], rng)],
  ["composite", new Composites(), (n) => randn([n, 24], rng)],
  [
    "tokens",
    new Tokens(),
    (n) => new Tensor<"int32">(Int32Array.from({ length: n * 4 }, (_, i) => (i * 7) % 11), [n, 4]),
  ],
];

// Give the BatchNorm running statistics that are not the identity.
{
  const image = cases[2][1] as Image;
  for (let i = 0; i < 3; i++) image.call(randn([4, 4, 9, 9], rng).mul(2).add(1));
}

const traced = new Set<string>();

for (const [name, model, input] of cases) {
  Deno.test(`ONNX Runtime agrees with tapegrad on the ${name} ops at batch 1 and 7`, async () => {
    model.eval();
    const session = await ort.InferenceSession.create(exportOnnx(model, input(2)));
    for (const n of [1, 7]) {
      const x = input(n);
      const previous = setOpTracer((op) => traced.add(op));
      const want = noGrad(() => model.forward(x as never)).toFloat32Array();
      setOpTracer(previous);
      const got = await runOrt(session, x);
      assert.equal(got.length, want.length);
      let diff = 0;
      let worst = 0;
      for (let i = 0; i < want.length; i++) {
        const d = Math.abs(want[i] - got[i]);
        if (!(d <= diff)) [diff, worst] = [d, i];
      }
      assert.ok(diff <= 1e-4, `batch ${n}: value ${worst} differs by ${diff}`);
    }
    session.release();
  });
}

/** A one-function model. */
class Apply extends Module {
  constructor(readonly fn: (x: Tensor) => Tensor) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return this.fn(x);
  }
}

Deno.test("composites built on untraced comparisons or indices are refused, naming the op", () => {
  const refused: [string, (x: Tensor) => Tensor, RegExp][] = [
    ["clamp", (x) => clamp(x, -0.5, 0.5), /op "where" \(#0\): its input 0/],
    ["hardtanh", (x) => hardtanh(x), /op "where"/],
    ["elu", (x) => elu(x), /op "where"/],
    ["softplus", (x) => softplus(x), /op "where"/],
    ["maskedFill", (x) => maskedFill(x, gt(x, 0), 0), /op "where"/],
    ["logsumexp", (x) => logsumexp(x, 1), /op "abs"/],
    ["topk", (x) => topk(x, 3).values, /op "gather"/],
    ["norm", (x) => norm(x, 2, 1), /op "where"/], // eq(total, 0) guards the root's slope at 0
  ];
  for (const [name, fn, op] of refused) {
    assert.throws(
      () => exportOnnx(new Apply(fn), randn([2, 24], rng)),
      (e: Error) => op.test(e.message) && /made outside the traced ops/.test(e.message),
      name,
    );
  }
});

Deno.test("every op of ONNX_OP_MAPPING was exercised in ONNX Runtime above", () => {
  const missing = Object.keys(ONNX_OP_MAPPING).filter((op) => !traced.has(op));
  assert.deepEqual(missing, [], `mapped but not run in ONNX Runtime: ${missing.join(", ")}`);
});
