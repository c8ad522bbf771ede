import assert from "node:assert/strict";
import {
  CosineAnnealingLR,
  LinearWarmup,
  type LRScheduler,
  MultiStepLR,
  Parameter,
  SGD,
  StepLR,
} from "../nn/mod.ts";

function sgd(lr = 0.1): SGD {
  return new SGD([Parameter.zeros([2])], { lr });
}

/** The lr of group 0 after construction and after each of `steps` calls to step(). */
function sequence(scheduler: LRScheduler, steps: number): number[] {
  const out = [scheduler.optimizer.paramGroups[0].lr];
  for (let i = 0; i < steps; i++) {
    scheduler.step();
    out.push(scheduler.optimizer.paramGroups[0].lr);
  }
  return out;
}

function assertSequence(actual: number[], expected: number[]): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => {
    assert.ok(
      Math.abs(a - expected[i]) <= 1e-12 * Math.max(1, Math.abs(expected[i])),
      `step ${i}: ${a} vs ${expected[i]}\n${actual.join(", ")}`,
    );
  });
}

Deno.test("MultiStepLR: PyTorch's sequence (γ at each milestone)", () => {
  // torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[3, 6], gamma=0.1) with lr 0.05:
  const scheduler = new MultiStepLR(sgd(0.05), [6, 3], 0.1);
  assertSequence(sequence(scheduler, 8), [
    0.05,
    0.05,
    0.05,
    0.005,
    0.005,
    0.005,
    0.0005,
    0.0005,
    0.0005,
  ]);
  assert.deepEqual(scheduler.milestones, [3, 6]);
  // A repeated milestone applies γ twice, like PyTorch's Counter.
  const twice = new MultiStepLR(sgd(1), [2, 2], 0.5);
  assertSequence(sequence(twice, 3), [1, 1, 0.25, 0.25]);
});

Deno.test("StepLR: base·γ^⌊t/stepSize⌋", () => {
  const scheduler = new StepLR(sgd(1), 2, 0.5);
  assertSequence(sequence(scheduler, 6), [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125]);
  assert.throws(() => new StepLR(sgd(), 0), /stepSize must be an integer >= 1/);
});

Deno.test("CosineAnnealingLR: ηmin + (base − ηmin)(1 + cos(πt/T))/2, continuing past T", () => {
  const base = 0.1;
  const etaMin = 0.01;
  const tMax = 4;
  const expected = Array.from(
    { length: 9 },
    (_, t) => etaMin + (base - etaMin) * (1 + Math.cos(Math.PI * t / tMax)) / 2,
  );
  // Spelled out: 0.1, 0.01 + 0.045·(1 + √½), 0.055, 0.01 + 0.045·(1 − √½), 0.01, then back up.
  assert.ok(Math.abs(expected[2] - 0.055) < 1e-15);
  assert.ok(Math.abs(expected[4] - 0.01) < 1e-15);
  assert.ok(Math.abs(expected[8] - 0.1) < 1e-15);
  const scheduler = new CosineAnnealingLR(sgd(base), tMax, etaMin);
  assertSequence(sequence(scheduler, 8), expected);
});

Deno.test("LinearWarmup alone: ramp from startFactor·base, then constant", () => {
  const scheduler = new LinearWarmup(sgd(0.2), 4, 0.25);
  // factor s + (1 − s)·t/4 with s = 0.25: 0.25, 0.4375, 0.625, 0.8125, then 1.
  assertSequence(
    sequence(scheduler, 6),
    [0.05, 0.0875, 0.125, 0.1625, 0.2, 0.2, 0.2],
  );
  assert.throws(() => new LinearWarmup(sgd(), 3, 0), /startFactor must be in \(0, 1\]/);
});

Deno.test("LinearWarmup then MultiStepLR / Cosine: the inner schedule restarts at its step 0", () => {
  const optimizer = sgd(0.1);
  const warm = new LinearWarmup(optimizer, 2, 0.5, new MultiStepLR(optimizer, [2], 0.1));
  // Warm-up 0.05, 0.075; then MultiStepLR from its own step 0: 0.1, 0.1, then 0.01.
  assertSequence(sequence(warm, 6), [0.05, 0.075, 0.1, 0.1, 0.01, 0.01, 0.01]);

  const optimizer2 = sgd(1);
  const cosine = new LinearWarmup(optimizer2, 3, 0.1, new CosineAnnealingLR(optimizer2, 2));
  assertSequence(sequence(cosine, 6), [
    0.1,
    0.1 + 0.9 / 3,
    0.1 + 0.9 * 2 / 3,
    1, // cosine t = 0
    0.5, // t = 1: (1 + cos(π/2))/2
    0, // t = 2
    0.5, // t = 3: rising again
  ]);
  assert.throws(
    () => new LinearWarmup(sgd(), 2, 0.5, new StepLR(sgd(), 1)),
    /inner scheduler drives another optimizer/,
  );
});

Deno.test("schedulers act on every group from its own base rate; lrAt is pure", () => {
  const a = Parameter.zeros([1]);
  const b = Parameter.zeros([1]);
  const optimizer = new SGD([{ params: [a] }, { params: [b], lr: 0.5 }], { lr: 0.1 });
  const scheduler = new StepLR(optimizer, 1, 0.5);
  scheduler.step();
  scheduler.step();
  assert.deepEqual(optimizer.paramGroups.map((g) => g.lr), [0.025, 0.125]);
  assert.deepEqual(scheduler.getLastLr(), [0.025, 0.125]);
  assert.deepEqual(scheduler.baseLrs, [0.1, 0.5]);
  assert.deepEqual(optimizer.paramGroups.map((g) => g.initialLr), [0.1, 0.5]);
  assert.equal(scheduler.lrAt(5, 1), 0.5 / 32);
  assert.equal(scheduler.lastStep, 2); // unchanged by lrAt
  assert.equal(optimizer.paramGroups[0].lr, 0.025);
  assert.throws(() => scheduler.lrAt(1, 2), /group 2 does not exist/);
  assert.throws(() => scheduler.lrAt(-1), /step must be an integer >= 0/);
});

Deno.test("a second scheduler starts from the recorded initialLr", () => {
  const optimizer = sgd(1);
  const first = new StepLR(optimizer, 1, 0.5);
  first.step();
  assert.equal(optimizer.paramGroups[0].lr, 0.5);
  const second = new MultiStepLR(optimizer, [10]);
  assert.deepEqual(second.baseLrs, [1]);
});

Deno.test("scheduler stateDict round trip (through JSON) continues the same sequence", () => {
  const make = () => {
    const optimizer = sgd(0.1);
    return new LinearWarmup(optimizer, 3, 0.2, new MultiStepLR(optimizer, [2, 4], 0.5));
  };
  const straight = sequence(make(), 10);

  const first = make();
  const head = sequence(first, 4);
  const saved = JSON.parse(JSON.stringify(first.stateDict()));
  assert.deepEqual(saved, {
    type: "LinearWarmup",
    lastStep: 4,
    baseLrs: [0.1],
    settings: { steps: 3, startFactor: 0.2 },
    inner: {
      type: "MultiStepLR",
      lastStep: 0,
      baseLrs: [0.1],
      settings: { milestones: [2, 4], gamma: 0.5 },
    },
  });

  const resumed = make();
  resumed.loadStateDict(saved);
  // The group's lr is restored with the step, even without the optimizer's state dict.
  assert.equal(resumed.optimizer.paramGroups[0].lr, head[4]);
  const tail = sequence(resumed, 6).slice(1);
  assert.deepEqual([...head, ...tail], straight);

  assert.throws(
    () => new StepLR(sgd(), 2).loadStateDict(saved),
    /the state dict is from LinearWarmup, not StepLR/,
  );
  const plain = new LinearWarmup(sgd(), 3);
  assert.throws(() => plain.loadStateDict(saved), /has an inner schedule/);
});
