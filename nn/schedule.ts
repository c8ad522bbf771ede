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

/** Options of {@linkcode OneCycleLR} (PyTorch's names and defaults). */
export interface OneCycleLROptions {
  /** The peak rate, one for all groups or one per group. */
  maxLr: number | readonly number[];
  /** Length of the cycle in steps; or give `epochs` and `stepsPerEpoch`. */
  totalSteps?: number;
  /** Epochs of the cycle (with `stepsPerEpoch`, when `totalSteps` is not given). */
  epochs?: number;
  /** Steps per epoch (with `epochs`). */
  stepsPerEpoch?: number;
  /** Fraction of the cycle spent raising the rate (default 0.3). */
  pctStart?: number;
  /** "cos" (default) or "linear" interpolation inside each phase. */
  annealStrategy?: "cos" | "linear";
  /**
   * Cycle the momentum inversely to the rate, between `maxMomentum` and `baseMomentum` (default
   * true, as PyTorch): SGD's and RMSprop's `momentum`, Adam's β₁. An optimizer with neither refuses.
   */
  cycleMomentum?: boolean;
  /** Momentum at the peak rate (default 0.85). */
  baseMomentum?: number;
  /** Momentum at the start and the end (default 0.95). */
  maxMomentum?: number;
  /** The starting rate is maxLr / divFactor (default 25). */
  divFactor?: number;
  /** The final rate is the starting rate / finalDivFactor (default 1e4). */
  finalDivFactor?: number;
  /** Three phases (up, back down to the start, then to the minimum) instead of two (default false). */
  threePhase?: boolean;
}

const ONE_CYCLE = "OneCycleLR";

/**
 * The 1cycle policy (Smith & Topin), PyTorch's `OneCycleLR`: from maxLr/divFactor up to maxLr over
 * the first `pctStart` of `totalSteps`, then down to maxLr/(divFactor·finalDivFactor) at step
 * totalSteps − 1, each phase a half cosine (or a line). Step it once per batch. Phase k spans the
 * steps from the previous phase's end to its own end, at pctStart·total − 1 and total − 1 (three
 * phases: pctStart·total − 1, 2·pctStart·total − 2, total − 1), as PyTorch counts them; stepping past
 * totalSteps throws, as PyTorch does.
 *
 * As in PyTorch the schedule overwrites each group's `initialLr` with maxLr/divFactor and ignores the
 * optimizer's own `lr`. With `cycleMomentum` the momentum (β₁ for Adam) runs the opposite way,
 * maxMomentum → baseMomentum → maxMomentum.
 */
export class OneCycleLR extends LRScheduler {
  /** Length of the cycle in steps. */
  totalSteps: number;
  /** Fraction of the cycle spent raising the rate. */
  pctStart: number;
  /** Interpolation inside each phase. */
  annealStrategy: "cos" | "linear";
  /** Whether the momentum is cycled. */
  cycleMomentum: boolean;
  /** Momentum at the peak rate. */
  baseMomentum: number;
  /** Momentum at the start and the end. */
  maxMomentum: number;
  /** Ratio of the peak to the starting rate. */
  divFactor: number;
  /** Ratio of the starting to the final rate. */
  finalDivFactor: number;
  /** Whether the cycle has three phases. */
  threePhase: boolean;

  /**
   * Creates a OneCycleLR and sets the rate (and momentum) of step 0.
   *
   * @param optimizer The optimizer to drive.
   * @param options `maxLr` and the length (`totalSteps`, or `epochs` and `stepsPerEpoch`), and
   *   PyTorch's other settings.
   */
  constructor(optimizer: Optimizer<HyperParams>, options: OneCycleLROptions) {
    super(ONE_CYCLE, optimizer);
    const groups = optimizer.paramGroups;
    const maxLrs = typeof options.maxLr === "number"
      ? groups.map(() => options.maxLr as number)
      : [...options.maxLr];
    if (maxLrs.length !== groups.length) {
      throw new RangeError(
        `${ONE_CYCLE}: maxLr has ${maxLrs.length} values for ${groups.length} parameter groups`,
      );
    }
    maxLrs.forEach((lr) => checkNumber(lr, "maxLr", ONE_CYCLE, 0));
    let total = options.totalSteps;
    if (total === undefined) {
      if (options.epochs === undefined || options.stepsPerEpoch === undefined) {
        throw new RangeError(`${ONE_CYCLE}: give totalSteps, or epochs and stepsPerEpoch`);
      }
      total = checkInteger(options.epochs, "epochs", ONE_CYCLE, 1) *
        checkInteger(options.stepsPerEpoch, "stepsPerEpoch", ONE_CYCLE, 1);
    }
    this.totalSteps = 1;
    this.pctStart = 0.3;
    this.annealStrategy = "cos";
    this.cycleMomentum = true;
    this.baseMomentum = 0.85;
    this.maxMomentum = 0.95;
    this.divFactor = 25;
    this.finalDivFactor = 1e4;
    this.threePhase = false;
    this.loadSettings({
      totalSteps: total,
      pctStart: options.pctStart ?? 0.3,
      annealStrategy: options.annealStrategy ?? "cos",
      cycleMomentum: options.cycleMomentum ?? true,
      baseMomentum: options.baseMomentum ?? 0.85,
      maxMomentum: options.maxMomentum ?? 0.95,
      divFactor: options.divFactor ?? 25,
      finalDivFactor: options.finalDivFactor ?? 1e4,
      threePhase: options.threePhase ?? false,
    });
    if (this.cycleMomentum) {
      for (const group of groups) {
        if (!("betas" in group) && !("momentum" in group)) {
          throw new TypeError(
            `${ONE_CYCLE}: ${optimizer.type} has neither momentum nor betas; pass cycleMomentum: false`,
          );
        }
      }
    }
    this.baseLrs = maxLrs.map((lr) => lr / this.divFactor);
    groups.forEach((group, i) => (group.initialLr = this.baseLrs[i]));
    this.applyLr();
  }

  /** The phases as [end step, start factor, end factor] of the starting rate. */
  #phases(): [number, number, number][] {
    const total = this.totalSteps;
    const peak = this.divFactor;
    const last = 1 / this.finalDivFactor;
    if (!this.threePhase) return [[this.pctStart * total - 1, 1, peak], [total - 1, peak, last]];
    return [
      [this.pctStart * total - 1, 1, peak],
      [2 * this.pctStart * total - 2, peak, 1],
      [total - 1, 1, last],
    ];
  }

  /** Where `step` falls: interpolates `values[k]` → `values[k + 1]` of phase k, as PyTorch. */
  #interpolate(step: number, ends: number[], values: number[]): number {
    if (step > this.totalSteps) {
      throw new RangeError(
        `${ONE_CYCLE}: tried to step ${step} times; the cycle has ${this.totalSteps} steps`,
      );
    }
    let start = 0;
    for (let k = 0; k < ends.length; k++) {
      if (step <= ends[k] || k === ends.length - 1) {
        const pct = (step - start) / (ends[k] - start);
        const [a, b] = [values[k], values[k + 1]];
        return this.annealStrategy === "cos"
          ? b + (a - b) / 2 * (Math.cos(Math.PI * pct) + 1)
          : (b - a) * pct + a;
      }
      start = ends[k];
    }
    throw new Error("unreachable");
  }

  /** The rate at `step` for a group whose starting rate is `baseLr` (maxLr / divFactor). */
  lrFor(baseLr: number, step: number): number {
    const phases = this.#phases();
    const factors = [phases[0][1], ...phases.map((p) => p[2])];
    return this.#interpolate(step, phases.map((p) => p[0]), factors.map((f) => baseLr * f));
  }

  /** The momentum at `step`: maxMomentum → baseMomentum → maxMomentum (→ maxMomentum). */
  momentumAt(step: number): number {
    const ends = this.#phases().map((p) => p[0]);
    const [lo, hi] = [this.baseMomentum, this.maxMomentum];
    return this.#interpolate(step, ends, this.threePhase ? [hi, lo, hi, hi] : [hi, lo, hi]);
  }

  /** Sets the rates, and the momentum (β₁ for Adam) when it is cycled. */
  protected override applyLr(): void {
    super.applyLr();
    if (!this.cycleMomentum) return;
    const momentum = this.momentumAt(this.lastStep);
    for (const group of this.optimizer.paramGroups as unknown as Record<string, unknown>[]) {
      const betas = group.betas;
      if (Array.isArray(betas)) group.betas = [momentum, betas[1]];
      else if ("momentum" in group) group.momentum = momentum;
    }
  }

  /** Every setting, as JSON. */
  protected settings(): JsonObject {
    return {
      totalSteps: this.totalSteps,
      pctStart: this.pctStart,
      annealStrategy: this.annealStrategy,
      cycleMomentum: this.cycleMomentum,
      baseMomentum: this.baseMomentum,
      maxMomentum: this.maxMomentum,
      divFactor: this.divFactor,
      finalDivFactor: this.finalDivFactor,
      threePhase: this.threePhase,
    };
  }

  /** Checks and sets the settings (PyTorch's checks). */
  protected loadSettings(settings: JsonObject): void {
    this.totalSteps = checkInteger(settings.totalSteps, "totalSteps", ONE_CYCLE, 1);
    const pct = checkNumber(settings.pctStart, "pctStart", ONE_CYCLE, 0);
    if (pct > 1) throw new RangeError(`${ONE_CYCLE}: pctStart must be in [0, 1], got ${pct}`);
    this.pctStart = pct;
    const strategy = settings.annealStrategy;
    if (strategy !== "cos" && strategy !== "linear") {
      throw new RangeError(
        `${ONE_CYCLE}: annealStrategy must be "cos" or "linear", got ${strategy}`,
      );
    }
    this.annealStrategy = strategy;
    for (const key of ["cycleMomentum", "threePhase"] as const) {
      if (typeof settings[key] !== "boolean") {
        throw new TypeError(`${ONE_CYCLE}: ${key} must be a boolean, got ${settings[key]}`);
      }
    }
    this.cycleMomentum = settings.cycleMomentum as boolean;
    this.threePhase = settings.threePhase as boolean;
    this.baseMomentum = checkNumber(settings.baseMomentum, "baseMomentum", ONE_CYCLE, 0);
    this.maxMomentum = checkNumber(settings.maxMomentum, "maxMomentum", ONE_CYCLE, 0);
    const div = checkNumber(settings.divFactor, "divFactor", ONE_CYCLE, 0);
    const finalDiv = checkNumber(settings.finalDivFactor, "finalDivFactor", ONE_CYCLE, 0);
    if (div === 0 || finalDiv === 0) {
      throw new RangeError(`${ONE_CYCLE}: divFactor and finalDivFactor must be > 0`);
    }
    this.divFactor = div;
    this.finalDivFactor = finalDiv;
  }
}

/** Options of {@linkcode ReduceLROnPlateau} (PyTorch's names and defaults). */
export interface ReduceLROnPlateauOptions {
  /** "min" (default): the metric should fall (a loss); "max": it should rise (an accuracy). */
  mode?: "min" | "max";
  /** Factor applied to the rate on a plateau (default 0.1; must be < 1). */
  factor?: number;
  /** Steps without improvement tolerated before the rate drops (default 10). */
  patience?: number;
  /** Minimum change that counts as an improvement (default 1e-4). */
  threshold?: number;
  /** "rel" (default): relative to the best value; "abs": absolute. */
  thresholdMode?: "rel" | "abs";
  /** Steps to wait after a drop before counting again (default 0). */
  cooldown?: number;
  /** Lower bound of the rate, one for all groups or one per group (default 0). */
  minLr?: number | readonly number[];
  /** A drop smaller than this is not applied (default 1e-8). */
  eps?: number;
}

const PLATEAU = "ReduceLROnPlateau";

/**
 * Drops the rate by `factor` when a metric has stopped improving for more than `patience` steps
 * (PyTorch's `ReduceLROnPlateau`): call `step(metric)` after each evaluation. An improvement is
 * metric < best·(1 − threshold) in "min"/"rel" mode (best − threshold in "abs" mode; the mirror
 * images in "max" mode). After a drop, `cooldown` steps pass before bad steps are counted again.
 * Unlike the closed-form schedules its rate depends on the metrics seen, so its state dict holds
 * the best value and the counters.
 */
export class ReduceLROnPlateau {
  /** The optimizer whose groups' `lr` this scheduler lowers. */
  readonly optimizer: Optimizer<HyperParams>;
  /** The scheduler's kind, as written in state dicts. */
  readonly type: string = PLATEAU;
  /** Whether lower or higher metrics are better. */
  mode: "min" | "max" = "min";
  /** Factor applied on a plateau. */
  factor = 0.1;
  /** Bad steps tolerated. */
  patience = 10;
  /** Minimum significant change. */
  threshold = 1e-4;
  /** Relative or absolute threshold. */
  thresholdMode: "rel" | "abs" = "rel";
  /** Steps to wait after a drop. */
  cooldown = 0;
  /** Lower bound of each group's rate. */
  minLrs: number[];
  /** Smallest drop applied. */
  eps = 1e-8;
  /** The best metric so far (±Infinity before the first). */
  best: number;
  /** Consecutive steps without improvement. */
  numBadSteps = 0;
  /** Steps of cooldown left. */
  cooldownCounter = 0;
  /** Steps taken so far. */
  lastStep = 0;

  /**
   * Creates a ReduceLROnPlateau; the rates are left as they are until a plateau.
   *
   * @param optimizer The optimizer to drive.
   * @param options PyTorch's settings.
   */
  constructor(optimizer: Optimizer<HyperParams>, options: ReduceLROnPlateauOptions = {}) {
    this.optimizer = optimizer;
    const groups = optimizer.paramGroups.length;
    const minLr = options.minLr ?? 0;
    this.minLrs = typeof minLr === "number" ? new Array(groups).fill(minLr) : [...minLr];
    if (this.minLrs.length !== groups) {
      throw new RangeError(
        `${PLATEAU}: minLr has ${this.minLrs.length} values for ${groups} parameter groups`,
      );
    }
    this.minLrs.forEach((lr) => checkNumber(lr, "minLr", PLATEAU, 0));
    this.#load({
      mode: options.mode ?? "min",
      factor: options.factor ?? 0.1,
      patience: options.patience ?? 10,
      threshold: options.threshold ?? 1e-4,
      thresholdMode: options.thresholdMode ?? "rel",
      cooldown: options.cooldown ?? 0,
      eps: options.eps ?? 1e-8,
    });
    this.best = this.mode === "min" ? Infinity : -Infinity;
  }

  #load(settings: JsonObject): void {
    const { mode, thresholdMode } = settings;
    if (mode !== "min" && mode !== "max") {
      throw new RangeError(`${PLATEAU}: mode must be "min" or "max", got ${mode}`);
    }
    if (thresholdMode !== "rel" && thresholdMode !== "abs") {
      throw new RangeError(
        `${PLATEAU}: thresholdMode must be "rel" or "abs", got ${thresholdMode}`,
      );
    }
    const factor = checkNumber(settings.factor, "factor", PLATEAU, 0);
    if (factor >= 1) throw new RangeError(`${PLATEAU}: factor must be < 1, got ${factor}`);
    this.mode = mode;
    this.thresholdMode = thresholdMode;
    this.factor = factor;
    this.patience = checkInteger(settings.patience, "patience", PLATEAU, 0);
    this.threshold = checkNumber(settings.threshold, "threshold", PLATEAU, 0);
    this.cooldown = checkInteger(settings.cooldown, "cooldown", PLATEAU, 0);
    this.eps = checkNumber(settings.eps, "eps", PLATEAU, 0);
  }

  /** Whether `value` improves on the best so far by more than the threshold. */
  isBetter(value: number): boolean {
    const best = this.best;
    const t = this.threshold;
    if (this.mode === "min") {
      return this.thresholdMode === "rel" ? value < best * (1 - t) : value < best - t;
    }
    return this.thresholdMode === "rel" ? value > best * (1 + t) : value > best + t;
  }

  /** Records one evaluation's metric and drops the rates after more than `patience` bad steps. */
  step(metric: number): void {
    if (typeof metric !== "number") {
      throw new TypeError(`${PLATEAU}.step: the metric must be a number, got ${typeof metric}`);
    }
    this.lastStep += 1;
    if (this.isBetter(metric)) {
      this.best = metric;
      this.numBadSteps = 0;
    } else this.numBadSteps += 1;
    if (this.cooldownCounter > 0) {
      this.cooldownCounter -= 1;
      this.numBadSteps = 0;
    }
    if (this.numBadSteps > this.patience) {
      this.optimizer.paramGroups.forEach((group, i) => {
        const lowered = Math.max(group.lr * this.factor, this.minLrs[i]);
        if (group.lr - lowered > this.eps) group.lr = lowered;
      });
      this.cooldownCounter = this.cooldown;
      this.numBadSteps = 0;
    }
  }

  /** The current rate of each group. */
  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  /**
   * The counters, the best value (null while infinite, for JSON), the current rates (as
   * `baseLrs`) and the settings.
   */
  stateDict(): SchedulerStateDict {
    return {
      type: PLATEAU,
      lastStep: this.lastStep,
      baseLrs: this.getLastLr(),
      settings: {
        mode: this.mode,
        factor: this.factor,
        patience: this.patience,
        threshold: this.threshold,
        thresholdMode: this.thresholdMode,
        cooldown: this.cooldown,
        eps: this.eps,
        minLrs: [...this.minLrs],
        best: Number.isFinite(this.best) ? this.best : null,
        numBadSteps: this.numBadSteps,
        cooldownCounter: this.cooldownCounter,
      },
    };
  }

  /** Restores a state dict of a ReduceLROnPlateau, rates included. */
  loadStateDict(state: SchedulerStateDict): void {
    const where = `${PLATEAU}.loadStateDict`;
    if (state.type !== PLATEAU) {
      throw new TypeError(`${where}: the state dict is from ${state.type}, not ${PLATEAU}`);
    }
    const groups = this.optimizer.paramGroups;
    const s = state.settings;
    const minLrs = s.minLrs;
    if (
      !Array.isArray(state.baseLrs) || state.baseLrs.length !== groups.length ||
      !Array.isArray(minLrs) || minLrs.length !== groups.length
    ) {
      throw new RangeError(`${where}: the state dict does not fit ${groups.length} groups`);
    }
    this.#load(s);
    this.lastStep = checkInteger(state.lastStep, "lastStep", where, 0);
    this.minLrs = minLrs.map((v) => checkNumber(v, "minLr", where, 0));
    this.best = s.best === null ? (this.mode === "min" ? Infinity : -Infinity) : checkNumber(
      s.best,
      "best",
      where,
      -Infinity,
    );
    this.numBadSteps = checkInteger(s.numBadSteps, "numBadSteps", where, 0);
    this.cooldownCounter = checkInteger(s.cooldownCounter, "cooldownCounter", where, 0);
    state.baseLrs.forEach((lr, i) => (groups[i].lr = checkNumber(lr, "lr", where, 0)));
  }
}
