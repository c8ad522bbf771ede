import assert from "node:assert/strict";
import { crossEntropy, randn, Rng, Tensor, tensor } from "../autograd/mod.ts";
import {
  Adagrad,
  Adam,
  AdamW,
  Linear,
  type Optimizer,
  type OptimizerStateDict,
  Parameter,
  ReLU,
  RMSprop,
  Sequential,
  SGD,
} from "../nn/mod.ts";

// A fixed case: one parameter of three elements, two steps with known gradients. The expected
// values are computed below in float64 from the published update rules, element by element.
const f = Math.fround;
const P0 = [1, -2, 0.5];
const G1 = [f(0.1), f(-0.2), f(0.3)];
const G2 = [f(-0.4), f(0.5), f(0.25)];

/** Runs `make`'s optimizer on P0 with gradients G1 then G2; the parameter after each step. */
function run(make: (params: Tensor[]) => Optimizer): number[][] {
  const p = new Parameter(Float32Array.from(P0), [3]);
  const optimizer = make([p]);
  return [G1, G2].map((g) => {
    p.grad = new Tensor(Float32Array.from(g), [3]);
    optimizer.step();
    return [...p.toFloat32Array()];
  });
}

function assertClose(actual: number[], expected: number[], label: string, rtol = 1e-6): void {
  actual.forEach((a, i) => {
    const e = expected[i];
    assert.ok(
      Math.abs(a - e) <= rtol * Math.abs(e) + 1e-12,
      `${label}[${i}]: got ${a}, expected ${e} (relative error ${Math.abs(a - e) / Math.abs(e)})`,
    );
  });
}

/** Element i of vector expressions, written out as the formulas say. */
const each = (fn: (i: number) => number): number[] => [0, 1, 2].map(fn);

Deno.test("SGD: plain, by hand", () => {
  const lr = 0.1;
  const p1 = each((i) => P0[i] - lr * G1[i]);
  const p2 = each((i) => p1[i] - lr * G2[i]);
  const [a1, a2] = run((ps) => new SGD(ps, { lr }));
  assertClose(a1, p1, "step 1");
  assertClose(a2, p2, "step 2");
});

Deno.test("SGD: momentum, by hand (buffer = g on the first step)", () => {
  const lr = 0.1;
  const mu = 0.9;
  const b1 = G1; // first step: b ← g
  const p1 = each((i) => P0[i] - lr * b1[i]);
  const b2 = each((i) => mu * b1[i] + G2[i]); // b ← μ·b + (1 − 0)·g
  const p2 = each((i) => p1[i] - lr * b2[i]);
  const [a1, a2] = run((ps) => new SGD(ps, { lr, momentum: mu }));
  assertClose(a1, p1, "step 1");
  assertClose(a2, p2, "step 2");
});

Deno.test("SGD: dampening, by hand (not applied on the first step)", () => {
  const lr = 0.1;
  const mu = 0.9;
  const tau = 0.5;
  const b1 = G1;
  const p1 = each((i) => P0[i] - lr * b1[i]);
  const b2 = each((i) => mu * b1[i] + (1 - tau) * G2[i]);
  const p2 = each((i) => p1[i] - lr * b2[i]);
  const [a1, a2] = run((ps) => new SGD(ps, { lr, momentum: mu, dampening: tau }));
  assertClose(a1, p1, "step 1");
  assertClose(a2, p2, "step 2");
});

Deno.test("SGD: nesterov, by hand (g ← g + μ·b)", () => {
  const lr = 0.1;
  const mu = 0.9;
  const b1 = G1;
  const d1 = each((i) => G1[i] + mu * b1[i]);
  const p1 = each((i) => P0[i] - lr * d1[i]);
  const b2 = each((i) => mu * b1[i] + G2[i]);
  const d2 = each((i) => G2[i] + mu * b2[i]);
  const p2 = each((i) => p1[i] - lr * d2[i]);
  const [a1, a2] = run((ps) => new SGD(ps, { lr, momentum: mu, nesterov: true }));
  assertClose(a1, p1, "step 1");
  assertClose(a2, p2, "step 2");
});

Deno.test("SGD: weight decay, by hand, plain and with momentum", () => {
  const lr = 0.1;
  const wd = 0.05;
  {
    const p1 = each((i) => P0[i] - lr * (G1[i] + wd * P0[i]));
    const p2 = each((i) => p1[i] - lr * (G2[i] + wd * p1[i]));
    const [a1, a2] = run((ps) => new SGD(ps, { lr, weightDecay: wd }));
    assertClose(a1, p1, "plain step 1");
    assertClose(a2, p2, "plain step 2");
  }
  {
    const mu = 0.8;
    const g1 = each((i) => G1[i] + wd * P0[i]);
    const b1 = g1;
    const p1 = each((i) => P0[i] - lr * b1[i]);
    const g2 = each((i) => G2[i] + wd * p1[i]);
    const b2 = each((i) => mu * b1[i] + g2[i]);
    const p2 = each((i) => p1[i] - lr * b2[i]);
    const [a1, a2] = run((ps) => new SGD(ps, { lr, momentum: mu, weightDecay: wd }));
    assertClose(a1, p1, "momentum step 1");
    assertClose(a2, p2, "momentum step 2");
  }
});

Deno.test("Adam: by hand, with bias corrections", () => {
  const lr = 0.01;
  const [b1, b2] = [0.9, 0.999];
  const eps = 1e-8;
  // t = 1
  const m1 = each((i) => (1 - b1) * G1[i]);
  const v1 = each((i) => (1 - b2) * G1[i] ** 2);
  const p1 = each((i) => {
    const mHat = m1[i] / (1 - b1 ** 1);
    const vHat = v1[i] / (1 - b2 ** 1);
    return P0[i] - lr * mHat / (Math.sqrt(vHat) + eps);
  });
  // t = 2
  const m2 = each((i) => b1 * m1[i] + (1 - b1) * G2[i]);
  const v2 = each((i) => b2 * v1[i] + (1 - b2) * G2[i] ** 2);
  const p2 = each((i) => {
    const mHat = m2[i] / (1 - b1 ** 2);
    const vHat = v2[i] / (1 - b2 ** 2);
    return p1[i] - lr * mHat / (Math.sqrt(vHat) + eps);
  });
  const [a1, a2] = run((ps) => new Adam(ps, { lr }));
  assertClose(a1, p1, "step 1");
  assertClose(a2, p2, "step 2");
});

Deno.test("Adam: L2 weight decay and custom betas, by hand", () => {
  const lr = 0.02;
  const [b1, b2] = [0.8, 0.99];
  const eps = 1e-6;
  const wd = 0.1;
  const g1 = each((i) => G1[i] + wd * P0[i]); // g ← g + λ·p
  const m1 = each((i) => (1 - b1) * g1[i]);
  const v1 = each((i) => (1 - b2) * g1[i] ** 2);
  const p1 = each((i) => P0[i] - lr * (m1[i] / (1 - b1)) / (Math.sqrt(v1[i] / (1 - b2)) + eps));
  const g2 = each((i) => G2[i] + wd * p1[i]);
  const m2 = each((i) => b1 * m1[i] + (1 - b1) * g2[i]);
  const v2 = each((i) => b2 * v1[i] + (1 - b2) * g2[i] ** 2);
  const p2 = each((i) =>
    p1[i] - lr * (m2[i] / (1 - b1 ** 2)) / (Math.sqrt(v2[i] / (1 - b2 ** 2)) + eps)
  );
  const [a1, a2] = run((ps) => new Adam(ps, { lr, betas: [b1, b2], eps, weightDecay: wd }));
  assertClose(a1, p1, "step 1");
  assertClose(a2, p2, "step 2");
});

Deno.test("AdamW: decoupled decay p ← p·(1 − lr·λ), then Adam on the raw gradient, by hand", () => {
  const lr = 0.01;
  const [b1, b2] = [0.9, 0.999];
  const eps = 1e-8;
  const wd = 0.1;
  const q0 = each((i) => P0[i] * (1 - lr * wd));
  const m1 = each((i) => (1 - b1) * G1[i]);
  const v1 = each((i) => (1 - b2) * G1[i] ** 2);
  const p1 = each((i) => q0[i] - lr * (m1[i] / (1 - b1)) / (Math.sqrt(v1[i] / (1 - b2)) + eps));
  const q1 = each((i) => p1[i] * (1 - lr * wd));
  const m2 = each((i) => b1 * m1[i] + (1 - b1) * G2[i]);
  const v2 = each((i) => b2 * v1[i] + (1 - b2) * G2[i] ** 2);
  const p2 = each((i) =>
    q1[i] - lr * (m2[i] / (1 - b1 ** 2)) / (Math.sqrt(v2[i] / (1 - b2 ** 2)) + eps)
  );
  const [a1, a2] = run((ps) => new AdamW(ps, { lr, weightDecay: wd }));
  assertClose(a1, p1, "step 1");
  assertClose(a2, p2, "step 2");
  // The same rule through Adam's flag.
  const [c1, c2] = run((ps) => new Adam(ps, { lr, weightDecay: wd, decoupledWeightDecay: true }));
  assert.deepEqual([c1, c2], [a1, a2]);
});

Deno.test("defaults and types follow PyTorch", () => {
  const p = [Parameter.zeros([2])];
  assert.deepEqual(new SGD(p).defaults, {
    lr: 1e-3,
    momentum: 0,
    dampening: 0,
    nesterov: false,
    weightDecay: 0,
  });
  assert.deepEqual(new Adam(p).defaults, {
    lr: 1e-3,
    betas: [0.9, 0.999],
    eps: 1e-8,
    weightDecay: 0,
  });
  const adamw = new AdamW(p);
  assert.equal(adamw.defaults.weightDecay, 1e-2);
  assert.equal(adamw.type, "AdamW");
  assert.equal(new Adam(p).type, "Adam");
  assert.equal(new SGD(p).type, "SGD");
});

Deno.test("parameter groups: own lr and weight decay, by hand; lr settable between steps", () => {
  const a = new Parameter(Float32Array.from([1, 2]), [2]);
  const b = new Parameter(Float32Array.from([3]), [1]);
  const optimizer = new SGD([{ params: [a] }, { params: [b], lr: 0.01, weightDecay: 0.5 }], {
    lr: 0.1,
  });
  assert.equal(optimizer.paramGroups[0].lr, 0.1);
  assert.equal(optimizer.paramGroups[1].weightDecay, 0.5);
  a.grad = tensor([f(0.5), f(-1)]);
  b.grad = tensor([f(2)]);
  optimizer.step();
  assertClose([...a.toFloat32Array()], [1 - 0.1 * 0.5, 2 - 0.1 * -1], "a");
  const b1 = 3 - 0.01 * (2 + 0.5 * 3);
  assertClose([...b.toFloat32Array()], [b1], "b");
  optimizer.paramGroups[1].lr = 0.1; // what a scheduler does
  optimizer.step();
  assertClose([...b.toFloat32Array()], [b1 - 0.1 * (2 + 0.5 * b1)], "b after lr change");
});

Deno.test("zeroGrad keeps the gradient storage; step skips parameters without gradients", () => {
  const a = new Parameter(Float32Array.from([1, 2]), [2]);
  const b = new Parameter(Float32Array.from([3]), [1]);
  const optimizer = new Adam([a, b], { lr: 0.1 });
  a.mul(a).sum().backward();
  const grad = a.grad!;
  optimizer.step();
  assert.equal(optimizer.getState(a)?.step, 1);
  assert.equal(optimizer.getState(b), undefined);
  assert.deepEqual(b.toArray(), [3]);
  optimizer.zeroGrad();
  assert.equal(a.grad, grad);
  assert.deepEqual(grad.toArray(), [0, 0]);
  optimizer.zeroGrad({ setToNone: true });
  assert.equal(a.grad, null);
  optimizer.step(); // nothing has a gradient: nothing changes
  assert.equal(optimizer.getState(a)?.step, 1);
});

Deno.test("invalid settings are refused with the setting named", () => {
  const p = [Parameter.zeros([2])];
  assert.throws(() => new SGD(p, { lr: -1 }), /SGD: lr must be a finite number >= 0/);
  assert.throws(() => new SGD(p, { nesterov: true }), /nesterov momentum needs momentum > 0/);
  assert.throws(
    () => new SGD(p, { nesterov: true, momentum: 0.9, dampening: 0.1 }),
    /dampening 0/,
  );
  assert.throws(() => new Adam(p, { betas: [0.9, 1] }), /betas must be two numbers in \[0, 1\)/);
  assert.throws(() => new Adam(p, { eps: -1 }), /Adam: eps/);
  assert.throws(
    () => new SGD([{ params: p, weight_decay: 0.1 } as never]),
    /unknown hyper-parameter "weight_decay"/,
  );
  assert.throws(() => new SGD([...p, p[0]]), /appears twice/);
  assert.throws(() => new SGD([]), /empty parameter list/);
  const x = tensor([1, 2], { requiresGrad: true });
  assert.throws(() => new SGD([x.mul(2)]), /not a leaf tensor/);
});

// ---------------------------------------------------------------------------------------------
// State dicts: a resumed run continues bitwise like an uninterrupted one.

function makeNet(seed: number): Sequential {
  const rng = new Rng(seed);
  return new Sequential(new Linear(4, 8, { rng }), new ReLU(), new Linear(8, 3, { rng }));
}

const X = randn([16, 4], new Rng(100));
const Y = new Int32Array(16).map((_, i) => (i * 7) % 3);

function train(net: Sequential, optimizer: Optimizer, steps: number): number[] {
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    optimizer.zeroGrad();
    const loss = crossEntropy(net.call(X), Y);
    loss.backward();
    optimizer.step();
    losses.push(loss.item());
  }
  return losses;
}

/** What a checkpoint does to the state: JSON for the metadata, fresh Float32Arrays for buffers. */
function throughStorage(state: OptimizerStateDict): OptimizerStateDict {
  const json = JSON.parse(JSON.stringify({
    type: state.type,
    paramGroups: state.paramGroups,
    steps: state.state.map((s) => [s.param, s.step]),
  }));
  return {
    type: json.type,
    paramGroups: json.paramGroups,
    state: state.state.map((s, i) => ({
      param: json.steps[i][0],
      step: json.steps[i][1],
      buffers: Object.fromEntries(
        Object.entries(s.buffers).map(([k, v]) => [k, new Float32Array(v)]),
      ),
    })),
  };
}

const factories: [string, (net: Sequential) => Optimizer][] = [
  [
    "SGD momentum nesterov",
    (n) => new SGD(n.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }),
  ],
  ["SGD dampening", (n) => new SGD(n.parameters(), { lr: 0.1, momentum: 0.5, dampening: 0.3 })],
  ["Adam", (n) => new Adam(n.parameters(), { lr: 0.01, weightDecay: 1e-2 })],
  ["AdamW", (n) => new AdamW(n.parameters(), { lr: 0.01 })],
  [
    "RMSprop centered momentum",
    (n) =>
      new RMSprop(n.parameters(), { lr: 0.01, momentum: 0.9, centered: true, weightDecay: 1e-3 }),
  ],
  [
    "Adagrad",
    (n) => new Adagrad(n.parameters(), { lr: 0.1, lrDecay: 0.01, initialAccumulatorValue: 0.1 }),
  ],
];

for (const [name, make] of factories) {
  Deno.test(`${name}: stateDict round trip continues bitwise`, () => {
    const straight = makeNet(1);
    const straightLosses = train(straight, make(straight), 6);

    const first = makeNet(1);
    const firstOptimizer = make(first);
    const firstLosses = train(first, firstOptimizer, 3);
    const modelState = first.stateDict();
    const optimizerState = throughStorage(firstOptimizer.stateDict());

    const resumed = makeNet(2); // other initial weights, fresh optimizer state
    const resumedOptimizer = make(resumed);
    resumedOptimizer.paramGroups[0].lr = 123; // overwritten by the state dict
    resumed.loadStateDict(modelState);
    resumedOptimizer.loadStateDict(optimizerState);
    const resumedLosses = train(resumed, resumedOptimizer, 3);

    assert.deepEqual([...firstLosses, ...resumedLosses], straightLosses);
    straight.parameters().forEach((p, i) => {
      assert.deepEqual(
        new Uint32Array(resumed.parameters()[i].toFloat32Array().buffer),
        new Uint32Array(p.toFloat32Array().buffer),
      );
    });
  });
}

Deno.test("optimizer stateDict: contents and refusals", () => {
  const net = makeNet(3);
  const optimizer = new Adam(net.parameters(), { lr: 0.01 });
  train(net, optimizer, 2);
  const state = optimizer.stateDict();
  assert.equal(state.type, "Adam");
  assert.deepEqual(state.paramGroups, [{
    params: [0, 1, 2, 3],
    hyper: { lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 },
  }]);
  assert.deepEqual(state.state.map((s) => [s.param, s.step, Object.keys(s.buffers)]), [
    [0, 2, ["exp_avg", "exp_avg_sq"]],
    [1, 2, ["exp_avg", "exp_avg_sq"]],
    [2, 2, ["exp_avg", "exp_avg_sq"]],
    [3, 2, ["exp_avg", "exp_avg_sq"]],
  ]);
  // The state dict holds copies.
  state.state[0].buffers.exp_avg[0] += 1;
  assert.notEqual(
    optimizer.getState(net.parameters()[0])!.buffers.exp_avg[0],
    state.state[0].buffers.exp_avg[0],
  );

  const other = new SGD(net.parameters());
  assert.throws(() => other.loadStateDict(state), /the state dict is from Adam, not SGD/);
  const small = new Adam(net.parameters().slice(0, 2));
  assert.throws(() => small.loadStateDict(state), /group 0 has parameters \[0,1,2,3\]/);
  const broken = structuredClone(state);
  broken.state[1].buffers.exp_avg = new Float32Array(3);
  const fresh = new Adam(net.parameters());
  assert.throws(
    () => fresh.loadStateDict(broken),
    /buffer "exp_avg" of parameter 1 \[8\] has 3 values/,
  );
  assert.equal(fresh.getState(net.parameters()[0]), undefined); // nothing applied
});

Deno.test("RMSprop: plain, centred, momentum and weight decay, by hand (PyTorch's rule)", () => {
  const cases: [string, { alpha: number; momentum: number; centered: boolean; wd: number }][] = [
    ["plain", { alpha: 0.99, momentum: 0, centered: false, wd: 0 }],
    ["centred momentum decay", { alpha: 0.9, momentum: 0.8, centered: true, wd: 0.1 }],
  ];
  for (const [label, h] of cases) {
    const lr = 0.01;
    const eps = 1e-8;
    const p = [...P0];
    const v = [0, 0, 0];
    const avg = [0, 0, 0];
    const b = [0, 0, 0];
    const expected = [G1, G2].map((grads) => {
      grads.forEach((g0, i) => {
        const g = g0 + h.wd * p[i];
        v[i] = h.alpha * v[i] + (1 - h.alpha) * g * g;
        let d = Math.sqrt(v[i]) + eps;
        if (h.centered) {
          avg[i] = h.alpha * avg[i] + (1 - h.alpha) * g;
          d = Math.sqrt(v[i] - avg[i] * avg[i]) + eps;
        }
        if (h.momentum > 0) {
          b[i] = h.momentum * b[i] + g / d;
          p[i] -= lr * b[i];
        } else p[i] -= lr * g / d;
      });
      return [...p];
    });
    const got = run((ps) =>
      new RMSprop(ps, {
        lr,
        alpha: h.alpha,
        momentum: h.momentum,
        centered: h.centered,
        weightDecay: h.wd,
      })
    );
    got.forEach((step, t) => assertClose(step, expected[t], `${label} step ${t + 1}`, 1e-5));
  }
  const o = new RMSprop([Parameter.zeros([1])]);
  assert.deepEqual(
    { ...o.defaults },
    { lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false },
  );
  assert.throws(() => new RMSprop([Parameter.zeros([1])], { alpha: -1 }), /RMSprop: alpha/);
});

Deno.test("Adagrad: rate decay, weight decay and initial accumulator, by hand (PyTorch's rule)", () => {
  const [lr, lrDecay, wd, init, eps] = [0.1, 0.5, 0.2, 0.3, 1e-10];
  const p = [...P0];
  const s = [init, init, init];
  const expected = [G1, G2].map((grads, t) => {
    const rate = lr / (1 + t * lrDecay);
    grads.forEach((g0, i) => {
      const g = g0 + wd * p[i];
      s[i] += g * g;
      p[i] -= rate * g / (Math.sqrt(s[i]) + eps);
    });
    return [...p];
  });
  const got = run((ps) =>
    new Adagrad(ps, { lr, lrDecay, weightDecay: wd, initialAccumulatorValue: init })
  );
  got.forEach((step, t) => assertClose(step, expected[t], `Adagrad step ${t + 1}`, 1e-6));
  const o = new Adagrad([Parameter.zeros([1])]);
  assert.deepEqual(
    { ...o.defaults },
    { lr: 1e-2, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10 },
  );
  assert.throws(() => new Adagrad([Parameter.zeros([1])], { lrDecay: -1 }), /Adagrad: lrDecay/);
});
