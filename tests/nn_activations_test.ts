/** The activation layers: each equals its function, holds no parameters and prints its settings. */

import assert from "node:assert/strict";
import {
  elu,
  gelu,
  hardtanh,
  logSigmoid,
  logSoftmax,
  randn,
  Rng,
  sigmoid,
  silu,
  softmax,
  softplus,
  tanh,
  type Tensor,
} from "../mod.ts";
import {
  ELU,
  GELU,
  Hardtanh,
  Identity,
  Linear,
  LogSigmoid,
  LogSoftmax,
  type Module,
  Sequential,
  Sigmoid,
  SiLU,
  Softmax,
  Softplus,
  Tanh,
} from "../nn/mod.ts";

Deno.test("activation layers equal their functions and have no parameters", () => {
  const x = randn([3, 5], new Rng(4)).mul(3);
  const cases: [Module<[Tensor], Tensor>, Tensor][] = [
    [new GELU(), gelu(x)],
    [new GELU("tanh"), gelu(x, { approximate: "tanh" })],
    [new SiLU(), silu(x)],
    [new Tanh(), tanh(x)],
    [new Sigmoid(), sigmoid(x)],
    [new LogSigmoid(), logSigmoid(x)],
    [new Softmax(0), softmax(x, 0)],
    [new LogSoftmax(), logSoftmax(x, -1)],
    [new Softplus(2, 4), softplus(x, 2, 4)],
    [new ELU(0.5), elu(x, 0.5)],
    [new Hardtanh(-2, 2), hardtanh(x, -2, 2)],
    [new Identity(), x],
  ];
  for (const [layer, expected] of cases) {
    assert.deepEqual(layer.call(x).toArray(), expected.toArray(), layer.constructor.name);
    assert.equal(layer.parameters().length, 0);
    assert.deepEqual(Object.keys(layer.stateDict()), []);
  }
  assert.equal(new Identity().call(x), x);
  assert.throws(() => new Hardtanh(1, -1), /Hardtanh: minVal 1 must not exceed maxVal -1/);
});

Deno.test("activation layers chain in Sequential with PyTorch's state-dict keys", () => {
  const model = new Sequential(new Linear(4, 8), new GELU(), new Linear(8, 3), new Softmax(-1));
  assert.deepEqual(Object.keys(model.stateDict()), ["0.weight", "0.bias", "2.weight", "2.bias"]);
  const y = model.call(randn([2, 4]));
  assert.deepEqual(y.shape, [2, 3]);
  assert.ok(String(model).includes('GELU(approximate="none")'));
  assert.ok(String(model).includes("Softmax(dim=-1)"));
});
