/**
 * Learning-rate schedulers: {@linkcode MultiStepLR}, {@linkcode StepLR},
 * {@linkcode CosineAnnealingLR} and {@linkcode LinearWarmup} (a linear ramp, then any other
 * schedule). Each sets `lr` of every parameter group of its optimizer.
 *
 * Protocol (PyTorch's): constructing a scheduler records each group's starting learning rate as
 * `initialLr` (kept when another scheduler already recorded it) and sets the rate for step 0; each
 * `step()` advances by one and sets the rate for the new step. The caller decides what a step is
 * by when it calls `step()`: once per epoch (after the epoch's optimizer steps) or once per
 * iteration.
 *
 * Rates are computed in closed form from the step number (`lrAt`), never by multiplying the previous
 * rate, so the rate at step k is the same whether it was reached by k calls or restored from a
 * state dict. PyTorch's chainable forms give the same sequences up to the rounding of repeated
 * multiplication (a few units in the last place of a double).
 *
 * @module
 */

import type { JsonObject } from "./json.ts";
import type { HyperParams, Optimizer } from "./optim/optimizer.ts";

/** A scheduler's state: plain JSON, for a checkpoint's metadata. */
export interface SchedulerStateDict {
  /** The scheduler's kind ("MultiStepLR", "StepLR", "CosineAnnealingLR", "LinearWarmup"). */
  type: string;
  /** Steps taken so far (PyTorch's `last_epoch`). */
  lastStep: number;
  /** The starting learning rate of each group. */
  baseLrs: number[];
  /** The scheduler's own settings (milestones, gamma, …). */
  settings: JsonObject;
  /** The schedule that follows the warm-up, for `LinearWarmup`. */
  inner?: SchedulerStateDict;
}

function checkNumber(value: unknown, name: string, where: string, min: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new RangeError(`${where}: ${name} must be a finite number >= ${min}, got ${value}`);
  }
  return value;
}

function checkInteger(value: unknown, name: string, where: string, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${where}: ${name} must be an integer >= ${min}, got ${value}`);
  }
  return value;
}

/** Base class of the schedulers: owns the step counter and writes `lr` into the groups. */
export abstract class LRScheduler {
  /** The optimizer whose groups' `lr` this scheduler sets. */
  readonly optimizer: Optimizer<HyperParams>;
  /** The scheduler's kind, as written in state dicts. */
  readonly type: string;
  /** Steps taken so far (0 after construction; PyTorch's `last_epoch`). */
  lastStep = 0;
  /** The learning rate each group started from (its `initialLr`). */
  baseLrs: number[];

  /**
   * Records the groups' starting rates. Subclasses call {@linkcode LRScheduler.applyLr} at the end
   * of their constructor, once their settings exist.
   */
  protected constructor(type: string, optimizer: Optimizer<HyperParams>) {
    this.type = type;
    this.optimizer = optimizer;
    for (const group of optimizer.paramGroups) group.initialLr ??= group.lr;
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr!);
  }

  /** The learning rate at `step` for a group that started at `baseLr`: the schedule itself. */
  abstract lrFor(baseLr: number, step: number): number;

  /** This scheduler's settings as JSON (for the state dict). */
  protected abstract settings(): JsonObject;

  /** Restores settings saved by {@linkcode LRScheduler.settings}. */
  protected abstract loadSettings(settings: JsonObject): void;

  /** The learning rate of group `group` (default 0) at step `step`, without changing anything. */
  lrAt(step: number, group = 0): number {
    checkInteger(step, "step", `${this.type}.lrAt`, 0);
    const base = this.baseLrs[group];
    if (base === undefined) {
      throw new RangeError(
        `${this.type}.lrAt: group ${group} does not exist (${this.baseLrs.length} groups)`,
      );
    }
    return this.lrFor(base, step);
  }

  /** Sets every group's `lr` to its value at {@linkcode LRScheduler.lastStep}. */
  protected applyLr(): void {
    const groups = this.optimizer.paramGroups;
    if (groups.length !== this.baseLrs.length) {
      throw new RangeError(
        `${this.type}: the optimizer has ${groups.length} parameter groups, but the scheduler was made for ${this.baseLrs.length}`,
      );
    }
    groups.forEach((group, i) => group.lr = this.lrFor(this.baseLrs[i], this.lastStep));
  }

  /** Advances one step (an epoch or an iteration, as the caller decides) and sets the new rates. */
  step(): void {
    this.lastStep += 1;
    this.applyLr();
  }

  /** The rates set by the last `step()` (or by construction), one per group. */
  getLastLr(): number[] {
    return this.baseLrs.map((base) => this.lrFor(base, this.lastStep));
  }

  /** The step counter, starting rates and settings, as JSON. */
  stateDict(): SchedulerStateDict {
    return {
      type: this.type,
      lastStep: this.lastStep,
      baseLrs: [...this.baseLrs],
      settings: this.settings(),
    };
  }

  /**
   * Restores a state dict of the same kind of scheduler and sets the groups' `lr` to the restored
   * step's value (the same value the optimizer's own state dict holds).
   */
  loadStateDict(state: SchedulerStateDict): void {
    const where = `${this.type}.loadStateDict`;
    if (state.type !== this.type) {
      throw new TypeError(`${where}: the state dict is from ${state.type}, not ${this.type}`);
    }
    checkInteger(state.lastStep, "lastStep", where, 0);
    if (
      !Array.isArray(state.baseLrs) || state.baseLrs.length !== this.baseLrs.length ||
      !state.baseLrs.every((lr) => typeof lr === "number" && Number.isFinite(lr))
    ) {
      throw new RangeError(
        `${where}: baseLrs ${
          JSON.stringify(state.baseLrs)
        } do not fit an optimizer with ${this.baseLrs.length} groups`,
      );
    }
    this.loadSettings(state.settings);
    this.loadInner(state);
    this.lastStep = state.lastStep;
    this.baseLrs = [...state.baseLrs];
    this.applyLr();
  }

  /** Restores nested schedulers (only `LinearWarmup` has one). */
  protected loadInner(_state: SchedulerStateDict): void {}
}

/**
 * Multiplies the rate by `gamma` at each milestone (PyTorch's `MultiStepLR`):
 * lr(t) = base · γ^(number of milestones ≤ t).
 */
export class MultiStepLR extends LRScheduler {
  /** Steps at which the rate is multiplied by gamma, ascending. */
  milestones: number[];
  /** The factor applied at each milestone. */
  gamma: number;

  /**
   * Creates a MultiStepLR.
   *
   * @param optimizer The optimizer to drive.
   * @param milestones Steps (epochs or iterations) at which the rate drops.
   * @param gamma Factor per milestone (default 0.1).
   */
  constructor(optimizer: Optimizer<HyperParams>, milestones: readonly number[], gamma = 0.1) {
    super("MultiStepLR", optimizer);
    this.milestones = [];
    this.gamma = 0;
    this.loadSettings({ milestones: [...milestones], gamma });
    this.applyLr();
  }

  /** base · γ^(milestones ≤ step). */
  lrFor(baseLr: number, step: number): number {
    let passed = 0;
    for (const m of this.milestones) if (m <= step) passed++;
    return baseLr * this.gamma ** passed;
  }

  /** `{milestones, gamma}`. */
  protected settings(): JsonObject {
    return { milestones: [...this.milestones], gamma: this.gamma };
  }

  /** Checks and sets `{milestones, gamma}`. */
  protected loadSettings(settings: JsonObject): void {
    const milestones = settings.milestones;
    if (!Array.isArray(milestones)) {
      throw new RangeError(`MultiStepLR: milestones must be a list of steps, got ${milestones}`);
    }
    this.milestones = milestones.map((m) => checkInteger(m, "a milestone", "MultiStepLR", 0))
      .sort((a, b) => a - b);
    this.gamma = checkNumber(settings.gamma, "gamma", "MultiStepLR", 0);
  }
}

/** Multiplies the rate by `gamma` every `stepSize` steps: lr(t) = base · γ^⌊t / stepSize⌋. */
export class StepLR extends LRScheduler {
  /** Steps between two drops. */
  stepSize: number;
  /** The factor of each drop. */
  gamma: number;

  /**
   * Creates a StepLR.
   *
   * @param optimizer The optimizer to drive.
   * @param stepSize Steps between drops (a positive integer).
   * @param gamma Factor per drop (default 0.1).
   */
  constructor(optimizer: Optimizer<HyperParams>, stepSize: number, gamma = 0.1) {
    super("StepLR", optimizer);
    this.stepSize = 1;
    this.gamma = 0;
    this.loadSettings({ stepSize, gamma });
    this.applyLr();
  }

  /** base · γ^⌊step / stepSize⌋. */
  lrFor(baseLr: number, step: number): number {
    return baseLr * this.gamma ** Math.floor(step / this.stepSize);
  }

  /** `{stepSize, gamma}`. */
  protected settings(): JsonObject {
    return { stepSize: this.stepSize, gamma: this.gamma };
  }

  /** Checks and sets `{stepSize, gamma}`. */
  protected loadSettings(settings: JsonObject): void {
    this.stepSize = checkInteger(settings.stepSize, "stepSize", "StepLR", 1);
    this.gamma = checkNumber(settings.gamma, "gamma", "StepLR", 0);
  }
}

/**
 * Cosine annealing from the base rate down to `etaMin` over `tMax` steps (PyTorch's
 * `CosineAnnealingLR`, without restarts): lr(t) = ηmin + (base − ηmin)·(1 + cos(π·t / tMax)) / 2.
 * Past tMax the cosine continues, rising again, as PyTorch's does.
 */
export class CosineAnnealingLR extends LRScheduler {
  /** Steps from the base rate to the minimum. */
  tMax: number;
  /** The minimum rate. */
  etaMin: number;

  /**
   * Creates a CosineAnnealingLR.
   *
   * @param optimizer The optimizer to drive.
   * @param tMax Steps of the half cosine (a positive integer).
   * @param etaMin Minimum rate (default 0).
   */
  constructor(optimizer: Optimizer<HyperParams>, tMax: number, etaMin = 0) {
    super("CosineAnnealingLR", optimizer);
    this.tMax = 1;
    this.etaMin = 0;
    this.loadSettings({ tMax, etaMin });
    this.applyLr();
  }

  /** ηmin + (base − ηmin)·(1 + cos(π·step / tMax)) / 2. */
  lrFor(baseLr: number, step: number): number {
    return this.etaMin + (baseLr - this.etaMin) * (1 + Math.cos(Math.PI * step / this.tMax)) / 2;
  }

  /** `{tMax, etaMin}`. */
  protected settings(): JsonObject {
    return { tMax: this.tMax, etaMin: this.etaMin };
  }

  /** Checks and sets `{tMax, etaMin}`. */
  protected loadSettings(settings: JsonObject): void {
    this.tMax = checkInteger(settings.tMax, "tMax", "CosineAnnealingLR", 1);
    this.etaMin = checkNumber(settings.etaMin, "etaMin", "CosineAnnealingLR", 0);
  }
}

/**
 * Linear warm-up, then another schedule: for t < steps, lr(t) = base·(s + (1 − s)·t / steps) with
 * start factor s; from t = steps on, the inner schedule runs from its own step 0:
 * lr(t) = inner(t − steps) (the base rate when there is none). This is PyTorch's
 * `SequentialLR([LinearLR(optimizer, s, 1, steps), inner], milestones=[steps])`.
 */
export class LinearWarmup extends LRScheduler {
  /** Length of the ramp in steps. */
  warmupSteps: number;
  /** Fraction of the base rate at step 0, in (0, 1]. */
  startFactor: number;
  /** The schedule after the ramp, or null for a constant rate. */
  readonly then: LRScheduler | null;

  /**
   * Creates a LinearWarmup.
   *
   * @param optimizer The optimizer to drive.
   * @param steps Length of the ramp (a positive integer).
   * @param startFactor Fraction of the base rate at step 0 (default 1/3, as PyTorch's `LinearLR`).
   * @param then The schedule after the ramp, built on the same optimizer (its own stepping is
   *   ignored: this scheduler drives it).
   */
  constructor(
    optimizer: Optimizer<HyperParams>,
    steps: number,
    startFactor = 1 / 3,
    then?: LRScheduler,
  ) {
    super("LinearWarmup", optimizer);
    if (then !== undefined && then.optimizer !== optimizer) {
      throw new RangeError("LinearWarmup: the inner scheduler drives another optimizer");
    }
    this.then = then ?? null;
    this.warmupSteps = 1;
    this.startFactor = 1;
    this.loadSettings({ steps, startFactor });
    this.applyLr();
  }

  /** The ramp for step < warmupSteps, then the inner schedule at step − warmupSteps. */
  lrFor(baseLr: number, step: number): number {
    if (step < this.warmupSteps) {
      return baseLr * (this.startFactor + (1 - this.startFactor) * step / this.warmupSteps);
    }
    return this.then === null ? baseLr : this.then.lrFor(baseLr, step - this.warmupSteps);
  }

  /** `{steps, startFactor}`. */
  protected settings(): JsonObject {
    return { steps: this.warmupSteps, startFactor: this.startFactor };
  }

  /** Checks and sets `{steps, startFactor}`. */
  protected loadSettings(settings: JsonObject): void {
    this.warmupSteps = checkInteger(settings.steps, "steps", "LinearWarmup", 1);
    const factor = checkNumber(settings.startFactor, "startFactor", "LinearWarmup", 0);
    if (factor === 0 || factor > 1) {
      throw new RangeError(`LinearWarmup: startFactor must be in (0, 1], got ${factor}`);
    }
    this.startFactor = factor;
  }

  /** Includes the inner schedule's state. */
  override stateDict(): SchedulerStateDict {
    const state = super.stateDict();
    if (this.then !== null) state.inner = this.then.stateDict();
    return state;
  }

  /** Restores the inner schedule's state. */
  protected override loadInner(state: SchedulerStateDict): void {
    if ((state.inner === undefined) !== (this.then === null)) {
      throw new RangeError(
        `LinearWarmup.loadStateDict: the state dict ${
          state.inner === undefined ? "has no" : "has an"
        } inner schedule, this scheduler ${this.then === null ? "has none" : "has one"}`,
      );
    }
    if (this.then !== null && state.inner !== undefined) {
      // The inner scheduler's own counter and rates are not used; restore them for completeness.
      this.then.loadStateDict(state.inner);
    }
  }
}
