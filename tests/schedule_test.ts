import assert from "node:assert/strict";
import {
  AdamW,
  CosineAnnealingLR,
  LinearWarmup,
  type LRScheduler,
  MultiStepLR,
  OneCycleLR,
  Parameter,
  ReduceLROnPlateau,
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

Deno.test("OneCycleLR: PyTorch's two-phase cosine cycle, momentum cycled inversely", () => {
  const optimizer = new SGD([Parameter.zeros([2])], { lr: 123, momentum: 0.9 });
  const scheduler = new OneCycleLR(optimizer, { maxLr: 1, totalSteps: 10 });
  // torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1, total_steps=10): initial 1/25, minimum
  // 1/25/1e4; phase ends at 0.3·10 − 1 = 2 and 9; lr = end + (start − end)/2·(cos(π·pct) + 1).
  const lo = 1 / 25 / 1e4;
  const down = (t: number) => lo + (1 - lo) / 2 * (Math.cos(Math.PI * (t - 2) / 7) + 1);
  const expected = [0.04, 0.52, 1, ...[3, 4, 5, 6, 7, 8, 9, 10].map(down)];
  assertSequence(sequence(scheduler, 10), expected);
  assert.ok(Math.abs(scheduler.lrAt(9) - lo) < 1e-18);
  assert.throws(() => scheduler.step(), /tried to step 11 times; the cycle has 10 steps/);
  // Momentum: 0.95 → 0.85 at the peak → 0.95 at the end.
  assert.ok(Math.abs(scheduler.momentumAt(0) - 0.95) < 1e-15);
  assert.ok(Math.abs(scheduler.momentumAt(1) - 0.9) < 1e-15);
  assert.ok(Math.abs(scheduler.momentumAt(2) - 0.85) < 1e-15);
  assert.ok(Math.abs(scheduler.momentumAt(9) - 0.95) < 1e-15);
});

Deno.test("OneCycleLR: β₁ of Adam cycles, three phases, linear, per-group maxLr, exact resume", () => {
  const adam = new AdamW([{ params: [Parameter.zeros([2])] }, { params: [Parameter.zeros([3])] }]);
  const scheduler = new OneCycleLR(adam, {
    maxLr: [0.01, 0.1],
    epochs: 2,
    stepsPerEpoch: 10,
    threePhase: true,
    annealStrategy: "linear",
    divFactor: 10,
    finalDivFactor: 100,
  });
  // Phase ends 0.3·20 − 1 = 5, 2·0.3·20 − 2 = 10, 19; rates 1e-3 → 1e-2 → 1e-3 → 1e-5 (group 0).
  const lr = (t: number) =>
    t <= 5
      ? 1e-3 + 9e-3 * t / 5
      : t <= 10
      ? 1e-2 - 9e-3 * (t - 5) / 5
      : 1e-3 - (1e-3 - 1e-5) * (t - 10) / 9;
  const seen = sequence(scheduler, 19);
  assertSequence(seen, Array.from({ length: 20 }, (_, t) => lr(t)));
  assert.ok(Math.abs(adam.paramGroups[1].lr - 10 * lr(19)) < 1e-15);
  assert.equal(adam.paramGroups[0].initialLr, 1e-3);
  assert.ok(Math.abs(adam.paramGroups[0].betas[0] - 0.95) < 1e-15, "β₁ back at maxMomentum");
  assert.equal(adam.paramGroups[0].betas[1], 0.999);
  assert.equal(adam.defaults.betas[0], 0.9, "the defaults are not mutated");
  // Resume: a scheduler restored at step 7 continues exactly like the original.
  const a = new OneCycleLR(new SGD([Parameter.zeros([1])], { momentum: 0.9 }), {
    maxLr: 0.3,
    totalSteps: 30,
  });
  for (let i = 0; i < 7; i++) a.step();
  const b = new OneCycleLR(new SGD([Parameter.zeros([1])], { momentum: 0.9 }), {
    maxLr: 5,
    totalSteps: 3,
  });
  b.loadStateDict(JSON.parse(JSON.stringify(a.stateDict())));
  assert.deepEqual(sequence(b, 10), sequence(a, 10));
  assert.equal(b.optimizer.paramGroups[0].lr, a.optimizer.paramGroups[0].lr);
  assert.throws(
    () => new OneCycleLR(new SGD([Parameter.zeros([1])]), { maxLr: 1 }),
    /give totalSteps, or epochs and stepsPerEpoch/,
  );
});

/** The lr of group 0 after each `step(metric)`. */
function plateau(scheduler: ReduceLROnPlateau, metrics: number[]): number[] {
  return metrics.map((m) => (scheduler.step(m), scheduler.optimizer.paramGroups[0].lr));
}

Deno.test("ReduceLROnPlateau: PyTorch's patience, threshold, cooldown and minLr", () => {
  // Traced by PyTorch's rule: a drop after more than `patience` bad steps, counters reset.
  const a = new ReduceLROnPlateau(sgd(1), { patience: 2, factor: 0.5 });
  assert.deepEqual(plateau(a, [10, 9, 9, 9, 9, 8, 8, 8, 8]), [
    1,
    1,
    1,
    1,
    0.5,
    0.5,
    0.5,
    0.5,
    0.25,
  ]);
  const b = new ReduceLROnPlateau(sgd(1), { patience: 1, factor: 0.5, cooldown: 2, minLr: 0.3 });
  assert.deepEqual(plateau(b, [5, 5, 5, 5, 5, 5, 5, 5]), [1, 1, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3]);
  // "max" with an absolute threshold: +0.4 is not an improvement of more than 0.5, +0.6 is.
  const c = new ReduceLROnPlateau(sgd(1), {
    mode: "max",
    thresholdMode: "abs",
    threshold: 0.5,
    patience: 0,
  });
  assert.deepEqual(plateau(c, [1, 1.4, 2, 2.6]), [1, 0.1, 0.1, 0.1]);
  // A relative threshold: 9.9995 is not below 10·(1 − 1e-4).
  const d = new ReduceLROnPlateau(sgd(1), { patience: 0 });
  assert.deepEqual(plateau(d, [10, 9.9995]), [1, 0.1]);
  assert.throws(() => new ReduceLROnPlateau(sgd(), { factor: 1 }), /factor must be < 1/);
});

Deno.test("ReduceLROnPlateau: the state dict resumes the counters and the rates", () => {
  const a = new ReduceLROnPlateau(sgd(1), { patience: 2, factor: 0.5, cooldown: 1 });
  plateau(a, [3, 2, 2, 2, 2]);
  const saved = JSON.parse(JSON.stringify(a.stateDict()));
  const b = new ReduceLROnPlateau(sgd(7));
  b.loadStateDict(saved);
  assert.equal(b.optimizer.paramGroups[0].lr, 0.5);
  const rest = [2, 2, 2, 1.5, 1.5, 1.5, 1.5];
  assert.deepEqual(plateau(b, rest), plateau(a, rest));
  // Before any metric the best is infinite, stored as null.
  const fresh = new ReduceLROnPlateau(sgd(1), { mode: "max" });
  const state = JSON.parse(JSON.stringify(fresh.stateDict()));
  assert.equal(state.settings.best, null);
  const restored = new ReduceLROnPlateau(sgd(1));
  restored.loadStateDict(state);
  assert.equal(restored.best, -Infinity);
});
