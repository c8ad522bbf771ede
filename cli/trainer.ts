/**
 * The training loop behind `deno task train`: builds the model, optimizer and schedule of a
 * {@linkcode TrainConfig}, trains epoch by epoch with a live progress bar, evaluates on the test
 * split, and writes checkpoints, metrics, plots and a log to the run folder.
 *
 * Nothing is lost:
 * - a checkpoint holds everything a run needs to continue exactly (weights, optimizer buffers,
 *   schedule step, generator state, position in the epoch, partial sums, history), so a resumed
 *   run is bitwise identical to an uninterrupted one;
 * - Ctrl-C finishes the current step, saves, prints how to resume and exits 130; a second Ctrl-C
 *   exits at once (files are only ever replaced by rename, so nothing is left half-written);
 *   SIGTERM and SIGHUP do the same, exiting 143 and 129;
 * - a NaN or infinite loss (or gradient norm, when clipping) stops the run before anything is
 *   saved, naming the epoch, the step and the last good checkpoint (exit code 3).
 *
 * On a device (`--device webgpu`) the model's parameters and each batch live on the device, and
 * no step waits for it: the loss, the error count and the gradient norm stay there as tensors and
 * are read every {@linkcode DEVICE_READ_EVERY} steps or {@linkcode DEVICE_READ_MS} milliseconds
 * (and at the end of the epoch and before any save), so a non-finite loss is still caught and
 * named by its step, up to that many steps late.
 * Checkpoints are written from a host copy, byte for byte in the format a CPU run writes, so a run
 * resumes on either device.
 *
 * @module
 */

import { type Device, deviceBackend } from "../autograd/device.ts";
import {
  argmax,
  crossEntropy,
  noGrad,
  Rng,
  type RngState,
  stack,
  type Tensor,
  tensor,
  where,
} from "../autograd/mod.ts";
import type { Dataset } from "../data/datasets.ts";
import { ProgressBar } from "../data/progress.ts";
import {
  type Checkpoint,
  CheckpointError,
  restoreCheckpoint,
  saveCheckpoint,
  saveModel,
} from "../nn/checkpoint.ts";
import { clipGradNorm } from "../nn/clip.ts";
import type { JsonObject } from "../nn/json.ts";
import type { Module } from "../nn/module.ts";
import { createModel } from "../nn/models/registry.ts";
import { Adam, AdamW, type Optimizer, SGD } from "../nn/optim/mod.ts";
import {
  CosineAnnealingLR,
  LinearWarmup,
  type LRScheduler,
  MultiStepLR,
  OneCycleLR,
} from "../nn/schedule.ts";
import { describeBackend, describeDevice, type DeviceChoice } from "./common.ts";
import { describeConfig, type TrainConfig } from "./configs.ts";
import { type EpochRecord, peakRssMiB, type RunFiles } from "./run_files.ts";
import { type BatchSource, imageTask, type Task } from "./tasks.ts";

/** Exit code of a run stopped by Ctrl-C (128 + SIGINT, the shell convention). */
export const EXIT_INTERRUPTED = 130;
/** Exit codes of a run stopped by a signal, 128 + its number: SIGINT 130, SIGTERM 143, SIGHUP 129. */
export const SIGNAL_EXIT_CODES: Readonly<Record<"SIGINT" | "SIGTERM" | "SIGHUP", number>> = {
  SIGINT: EXIT_INTERRUPTED,
  SIGTERM: 143,
  SIGHUP: 129,
};
/** Exit code of a run stopped because the loss or gradients stopped being finite. */
export const EXIT_DIVERGED = 3;
/**
 * Steps a device run takes between reads of its loss, error and gradient-norm figures: each read
 * waits for the device, so it is done rarely; a non-finite loss is detected up to this many steps
 * after the step that produced it (and still named by that step).
 */
export const DEVICE_READ_EVERY = 50;
/** Milliseconds after which a device run reads its figures before {@linkcode DEVICE_READ_EVERY} steps. */
export const DEVICE_READ_MS = 1000;

/** Where a run stands: the next batch to train and the sums of the epoch so far. */
interface Position {
  /** Epoch in progress (0-based). */
  epoch: number;
  /** Next batch of that epoch. */
  batch: number;
  /** Σ loss × batch size over the epoch so far. */
  lossSum: number;
  /** Misclassified training examples so far. */
  errors: number;
  /** Training examples seen so far. */
  seen: number;
  /** Training seconds so far. */
  seconds: number;
}

/** The epoch `best.safetensors` holds, and its test figures. */
interface BestEpoch {
  /** Its test error. */
  testError: number;
  /** Its test loss (absent in runs saved before the names tasks chose by loss). */
  testLoss?: number;
  /** Its number, from 1. */
  epoch: number;
}

/** The state of a run that is not in the model, optimizer or scheduler. */
interface RunState {
  position: Position;
  history: EpochRecord[];
  best: BestEpoch | null;
  rng: RngState;
}

/** How a run ended. */
export interface TrainResult {
  /** Process exit code: 0 done, 130 interrupted, 3 diverged. */
  exitCode: number;
  /** The per-epoch records. */
  history: EpochRecord[];
}

/** Options of {@linkcode Trainer}. */
export interface TrainerOptions {
  /** The run's recipe. */
  config: TrainConfig;
  /** Both splits of an image dataset (used when `task` is not given). */
  data?: Dataset;
  /** The batches to train and test on (default: the image task of `data`). */
  task?: Task;
  /** The run folder. */
  files: RunFiles;
  /** The command line, recorded in checkpoints. */
  command: string;
  /** A checkpoint to continue from. */
  resume?: Checkpoint;
  /** The path of `resume`, named in its errors. */
  resumePath?: string;
  /** Where lines go (default console.log; the log file gets them too). */
  print?: (line: string) => void;
  /** The device to train on, from {@linkcode applyDeviceFlag} (default: the CPU). */
  device?: DeviceChoice;
}

/** A training run. Create it, then `await run()`. */
export class Trainer {
  readonly #config: TrainConfig;
  readonly #task: Task;
  readonly #files: RunFiles;
  readonly #command: string;
  readonly #print: (line: string) => void;
  readonly #rng: Rng;
  readonly #model: Module<[Tensor], Tensor>;
  readonly #optimizer: Optimizer;
  readonly #scheduler: LRScheduler | null;
  readonly #train: BatchSource;
  readonly #test: BatchSource;
  /** Epochs the run lasts: `config.epochs`, or the epochs that `config.steps` reach into. */
  readonly #epochs: number;
  readonly #state: RunState;
  readonly #device: DeviceChoice;
  #interrupts = 0;
  #stopCode = EXIT_INTERRUPTED;

  /** Builds everything; restores from `options.resume` when given. */
  constructor(options: TrainerOptions) {
    const c = options.config;
    this.#config = c;
    if (options.task === undefined && options.data === undefined) {
      throw new TypeError("Trainer: give the data or a task");
    }
    this.#task = options.task ?? imageTask(options.data!, c);
    this.#files = options.files;
    this.#command = options.command;
    this.#device = options.device ?? { requested: "cpu", device: "cpu", description: "cpu" };
    const print = options.print ?? ((line: string) => console.log(line));
    this.#print = (line) => {
      print(line);
      this.#files.appendLog(line);
    };
    this.#train = this.#task.train;
    this.#test = this.#task.test;
    this.#epochs = c.steps ? Math.ceil(c.steps / this.#train.batchesPerEpoch) : c.epochs;
    // One generator for initial weights and dropout masks; its state goes into every checkpoint.
    this.#rng = new Rng(c.seed);
    this.#model = createModel(c.model, { ...c.modelOptions, rng: this.#rng });
    this.#optimizer = makeOptimizer(c, this.#model);
    this.#scheduler = makeScheduler(c, this.#optimizer, this.#train.batchesPerEpoch, this.#epochs);
    this.#state = {
      position: { epoch: 0, batch: 0, lossSum: 0, errors: 0, seen: 0, seconds: 0 },
      history: [],
      best: null,
      rng: this.#rng.getState(),
    };
    if (options.resume) this.#restore(options.resume, options.resumePath ?? "resume checkpoint");
  }

  /** The model being trained. */
  get model(): Module<[Tensor], Tensor> {
    return this.#model;
  }

  #restore(checkpoint: Checkpoint, path: string): void {
    restoreCheckpoint(checkpoint, { model: this.#model, optimizer: this.#optimizer }, "resume");
    // The schedule is rebuilt from the (possibly changed) config and moved to the saved step: the
    // same rates when nothing changed, a schedule stretched to the new length after --epochs.
    if (this.#scheduler) {
      this.#scheduler.loadStateDict({
        ...this.#scheduler.stateDict(),
        lastStep: checkpoint.scheduler?.lastStep ?? 0,
      });
    }
    const run = parseRunState(path, checkpoint.metadata.run, this.#train.batchesPerEpoch);
    this.#state.position = run.position;
    this.#state.history = run.history;
    this.#state.best = run.best;
    this.#rng.setState(run.rng);
  }

  /** Trains to the configured number of epochs (or until interrupted or diverged). */
  async run(): Promise<TrainResult> {
    const c = this.#config;
    const p = this.#state.position;
    const signals = (Object.keys(SIGNAL_EXIT_CODES) as (keyof typeof SIGNAL_EXIT_CODES)[])
      .filter((signal) => signal === "SIGINT" || Deno.build.os !== "windows");
    const handlers = signals.map((signal) => {
      const handler = () => {
        this.#interrupts++;
        if (this.#interrupts > 1) Deno.exit(SIGNAL_EXIT_CODES[signal]);
        this.#stopCode = SIGNAL_EXIT_CODES[signal];
        this.#print(
          `\ninterrupted: finishing the current step and saving a checkpoint (${signal}; ` +
            "Ctrl-C again quits at once)",
        );
      };
      Deno.addSignalListener(signal, handler);
      return [signal, handler] as const;
    });
    this.#print(`config   ${describeConfig(c)}`);
    this.#print(
      `data     ${this.#task.description}; ${this.#train.size} train, ${this.#test.size} test`,
    );
    this.#print(
      `model    ${c.model}: ${this.#model.numParameters().toLocaleString("en-US")} parameters`,
    );
    this.#print(`kernels  ${describeBackend()}`);
    this.#print(`device   ${describeDevice(this.#device)}`);
    this.#print(`run      ${this.#files.dir}`);
    if (p.epoch > 0 || p.batch > 0) {
      this.#print(
        `resuming at epoch ${p.epoch + 1}, batch ${p.batch + 1} of ${this.#train.batchesPerEpoch}`,
      );
    } else await this.#save(this.#files.last); // a last good checkpoint exists from the start
    await this.#files.writeConfig({ ...c, command: this.#command });
    // Before the first step: the optimizer's state follows its parameters there by itself.
    await this.#model.to(this.#device.device);

    try {
      while (!this.#finished()) {
        const outcome = await this.#trainEpoch();
        if (outcome !== 0) return { exitCode: outcome, history: this.#state.history };
        await this.#finishEpoch();
        if (this.#interrupts > 0 && !this.#finished()) {
          this.#printStopped();
          return { exitCode: this.#stopCode, history: this.#state.history };
        }
      }
    } finally {
      for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
    }
    // The final weights file holds only what the seed and the inputs determine (no command line,
    // no timings, no memory figures), so two identical runs write identical bytes. The model ends
    // the run on the host, where the caller can read it.
    await this.#toHost();
    const latest = this.#state.history.at(-1);
    await saveModel(this.#files.model, this.#model, {
      epoch: this.#state.position.epoch,
      ...(latest ? { metrics: deterministicMetrics(latest) } : {}),
      metadata: this.#metadata(false),
    });
    const best = this.#state.best;
    const bestFigure = this.#task.selectBy === "loss"
      ? `best test loss ${typeof best?.testLoss === "number" ? best.testLoss.toFixed(4) : "-"}`
      : `best test error ${best ? pct(best.testError) : "-"}`;
    this.#print(
      `done     ${c.steps ? `${c.steps} steps, ` : ""}${this.#epochs} epochs; ${bestFigure}` +
        `${
          best ? ` (epoch ${best.epoch})` : ""
        }; checkpoints ${this.#files.best} and ${this.#files.last}`,
    );
    return { exitCode: 0, history: this.#state.history };
  }

  /** Whether the run is complete: all epochs, or all `steps` when the config counts steps. */
  #finished(): boolean {
    const p = this.#state.position;
    const c = this.#config;
    if (c.steps) return p.epoch * this.#train.batchesPerEpoch + p.batch >= c.steps;
    return p.epoch >= this.#epochs;
  }

  /** Trains the rest of the current epoch; returns 0, or the exit code of an interruption or divergence. */
  async #trainEpoch(): Promise<number> {
    const c = this.#config;
    const p = this.#state.position;
    const steps = this.#train.batchesPerEpoch;
    // With a step budget, the last epoch ends early.
    const end = c.steps ? Math.min(steps, c.steps - p.epoch * steps) : steps;
    const bar = new ProgressBar(this.#train.size, {
      label: `epoch ${p.epoch + 1}/${this.#epochs}`,
      transient: true,
      writer: Deno.stderr,
    });
    bar.done = Math.min(p.batch * c.batchSize, this.#train.size);
    const params = this.#model.parameters();
    this.#model.train();
    let last = performance.now();
    let lastYield = last;
    let lastRead = last;
    const ignoreIndex = this.#task.ignoreIndex;
    const device = this.#device.device;
    // On a device the step's figures wait there to be read in a batch of steps; on the CPU they
    // are in host memory at once and are checked before the step is taken.
    const window = device === "cpu" ? null : new DeviceWindow(device, p.batch);
    for (const { x, y, count } of this.#train.epoch(p.epoch, p.batch)) {
      if (p.batch >= end) break;
      this.#optimizer.zeroGrad();
      const logits = flatLogits(this.#model.call(x.to(device) as Tensor));
      // The labels stay a host array: the loss keeps them as an attribute either way.
      const loss = crossEntropy(logits, y, {
        labelSmoothing: c.labelSmoothing,
        ...(ignoreIndex !== undefined ? { ignoreIndex } : {}),
      });
      if (window === null) {
        const lossValue = loss.item();
        if (!Number.isFinite(lossValue)) return this.#diverged(`the loss is ${lossValue}`, bar);
        loss.backward();
        if (c.clipGradNorm > 0) {
          const norm = clipGradNorm(params, c.clipGradNorm);
          if (!Number.isFinite(norm)) return this.#diverged(`the gradient norm is ${norm}`, bar);
        }
        this.#optimizer.step();
        this.#scheduler?.step();
        p.errors += countErrors(logits, y);
        p.lossSum += lossValue * count;
        p.seen += count;
        p.batch++;
      } else {
        loss.backward();
        const norm = c.clipGradNorm > 0 ? clipGradNormOnDevice(params, c.clipGradNorm) : null;
        this.#optimizer.step();
        this.#scheduler?.step();
        window.add(loss, count, logits, y, norm);
        p.batch++;
        deviceBackend(window.device).flush(); // the step's work starts while the next is recorded
        // Or after a second: the bar's loss stays current on a slow device. When the reads
        // happen changes no figure (each step's loss is read, and summed, on its own).
        if (
          window.steps >= DEVICE_READ_EVERY || p.batch >= end ||
          performance.now() - lastRead > DEVICE_READ_MS
        ) {
          const outcome = await this.#settle(window, bar);
          if (outcome !== 0) return outcome;
          lastRead = performance.now();
        }
      }
      const now = performance.now();
      p.seconds += (now - last) / 1000;
      last = now;
      bar.update(
        Math.min(p.batch * c.batchSize, this.#train.size),
        p.seen > 0 ? { loss: (p.lossSum / p.seen).toFixed(4) } : undefined,
      );
      // Let the signal handler run. Only a timer turn of the event loop polls for signals (a
      // MessageChannel or setImmediate turn does not, or only late); it costs ~2 ms, so once per 200 ms.
      if (now - lastYield > 200) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        lastYield = performance.now();
      }
      if (this.#interrupts > 0 && p.batch < end) {
        // The checkpoint holds the sums of every step taken: a device's pending ones first.
        if (window !== null) {
          const outcome = await this.#settle(window, bar);
          if (outcome !== 0) return outcome;
        }
        bar.finish();
        await this.#save(this.#files.last);
        this.#printStopped();
        return this.#stopCode;
      }
    }
    if (window !== null) {
      const outcome = await this.#settle(window, bar);
      if (outcome !== 0) return outcome;
    }
    bar.finish();
    return 0;
  }

  /**
   * Reads a device run's pending figures into the position, in step order and with the CPU's
   * arithmetic (so the sums do not depend on when they were read, and a resumed run matches an
   * uninterrupted one); returns 0, or the exit code of a divergence in one of those steps.
   */
  async #settle(window: DeviceWindow, bar: ProgressBar): Promise<number> {
    if (window.steps === 0) return 0;
    const p = this.#state.position;
    const first = window.firstBatch;
    const { losses, counts, norms, errors } = await window.read(p.batch);
    for (let i = 0; i < losses.length; i++) {
      const late = p.batch - (first + i) > 1
        ? `; seen at step ${p.batch}: a device's figures ` +
          `are read every ${DEVICE_READ_EVERY} steps or ${DEVICE_READ_MS / 1000} s`
        : "";
      if (!Number.isFinite(losses[i])) {
        return this.#diverged(`the loss is ${losses[i]}${late}`, bar, first + i);
      }
      if (norms !== null && !Number.isFinite(norms[i])) {
        return this.#diverged(`the gradient norm is ${norms[i]}${late}`, bar, first + i);
      }
    }
    for (let i = 0; i < losses.length; i++) {
      p.lossSum += losses[i] * counts[i];
      p.seen += counts[i];
    }
    p.errors += errors;
    return 0;
  }

  /** Brings the model and the optimizer's state to the host (where checkpoints are written from). */
  async #toHost(): Promise<void> {
    await this.#model.to("cpu");
    await this.#optimizer.to("cpu");
  }

  #printStopped(): void {
    const p = this.#state.position;
    const where = p.batch === 0
      ? `after epoch ${p.epoch}`
      : `at epoch ${p.epoch + 1}, batch ${p.batch} of ${this.#train.batchesPerEpoch}`;
    this.#print(
      `stopped  ${where}; checkpoint ${this.#files.last}\nresume   deno task train --resume ${this.#files.last}`,
    );
  }

  /** Reports a divergence at batch `step` (0-based; default the current one); returns exit code 3. */
  #diverged(what: string, bar: ProgressBar, step = this.#state.position.batch): number {
    bar.finish();
    const p = this.#state.position;
    this.#print(
      `diverged at epoch ${p.epoch + 1}, step ${
        step + 1
      }: ${what}. Stopped without saving this state.\n` +
        `last good checkpoint: ${this.#files.last} (${describeEpochs(p.epoch)}); ` +
        "try a lower --lr or --clip-grad-norm",
    );
    return EXIT_DIVERGED;
  }

  /** Whether `record` beats the best epoch so far by the task's figure (error or loss). */
  #better(record: EpochRecord, best: BestEpoch): boolean {
    if (this.#task.selectBy === "error") return record.testError < best.testError;
    // Runs saved before the loss was kept in the record: the history has it.
    const bestLoss = best.testLoss ??
      this.#state.history.findLast((h) => h.epoch === best.epoch)?.testLoss;
    return typeof bestLoss !== "number" || record.testLoss < bestLoss;
  }

  /** Evaluates, records the epoch, saves checkpoints, metrics and plots, and moves to the next epoch. */
  async #finishEpoch(): Promise<void> {
    const c = this.#config;
    const p = this.#state.position;
    const test = this.#model.device === "cpu"
      ? evaluate(this.#model, this.#test, this.#task.ignoreIndex)
      : await evaluateOnDevice(this.#model, this.#test, this.#task.ignoreIndex);
    const record: EpochRecord = {
      epoch: p.epoch + 1,
      trainLoss: p.lossSum / Math.max(p.seen, 1),
      trainError: p.errors / Math.max(p.seen, 1),
      testLoss: test.loss,
      testError: test.error,
      lr: this.#optimizer.paramGroups[0].lr,
      seconds: p.seconds,
      imagesPerSecond: p.seen / Math.max(p.seconds, 1e-9),
      peakRssMiB: Math.round(peakRssMiB()),
    };
    this.#state.history.push(record);
    const improved = this.#state.best === null || this.#better(record, this.#state.best);
    if (improved) {
      this.#state.best = {
        testError: record.testError,
        testLoss: record.testLoss,
        epoch: record.epoch,
      };
    }
    // An epoch cut short by the step budget stays open, so that a resume with more --steps goes
    // on with its remaining batches, as an uninterrupted longer run would.
    const partial = p.batch > 0 && p.batch < this.#train.batchesPerEpoch;
    this.#state.position = {
      epoch: partial ? p.epoch : p.epoch + 1,
      batch: partial ? p.batch : 0,
      lossSum: 0,
      errors: 0,
      seen: 0,
      seconds: 0,
    };
    await this.#save(this.#files.last);
    if (improved) await this.#save(this.#files.best);
    await this.#files.writeMetrics(this.#state.history, `${c.model} on ${c.dataset} (${c.name})`);
    this.#print(
      `epoch ${String(record.epoch).padStart(3)}/${this.#epochs}  loss ${
        record.trainLoss.toFixed(4)
      }  ` +
        `train err ${pct(record.trainError)}  test err ${pct(record.testError)}${
          improved ? "*" : " "
        }  ` +
        `lr ${record.lr.toPrecision(3)}  ${record.seconds.toFixed(1)}s  ${
          Math.round(record.imagesPerSecond)
        } ${this.#task.unit}/s${c.steps ? `  test loss ${record.testLoss.toFixed(4)}` : ""}`,
    );
  }

  /** Saves a checkpoint of the current state (model, optimizer, schedule, generator, position, history). */
  async #save(path: string): Promise<void> {
    this.#state.rng = this.#rng.getState();
    // From the host, so the file is the one a CPU run writes; the state goes back afterwards (the
    // optimizer's by itself at its next step), the same values, so the run goes on exactly.
    const device = this.#model.device;
    if (device !== "cpu") await this.#toHost();
    try {
      await saveCheckpoint(path, {
        model: this.#model,
        optimizer: this.#optimizer,
        ...(this.#scheduler ? { scheduler: this.#scheduler } : {}),
        epoch: this.#state.position.epoch,
        ...this.#metricsEntry(),
        metadata: this.#metadata(true),
      });
    } finally {
      if (device !== "cpu") await this.#model.to(device);
    }
  }

  /** The latest epoch's record as checkpoint metrics, when there is one. */
  #metricsEntry(): { metrics?: JsonObject } {
    const latest = this.#state.history.at(-1);
    return latest ? { metrics: { ...latest } as unknown as JsonObject } : {};
  }

  /** What a checkpoint records besides tensors; the run state only where a resume needs it. */
  #metadata(withRunState: boolean): Record<string, string> {
    const c = this.#config;
    const metadata: Record<string, string> = {
      ...this.#task.metadata,
      dataset: c.dataset,
      config: JSON.stringify(c),
    };
    if (withRunState) {
      metadata.command = this.#command;
      metadata.run = JSON.stringify(this.#state);
    }
    return metadata;
  }
}

/** Keys of an epoch record that depend on the machine and the moment, not on the seed and inputs. */
export const TIMING_KEYS: readonly string[] = ["seconds", "imagesPerSecond", "peakRssMiB"];

/** An epoch record without its timings and memory figures. */
function deterministicMetrics(record: EpochRecord): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(record)) {
    if (!TIMING_KEYS.includes(key)) out[key] = value;
  }
  return out;
}

/**
 * The `run` metadata of a resume checkpoint, checked: a position inside the epoch (batch below
 * `batchesPerEpoch`), a history list, a best record or null, and a valid generator state.
 */
function parseRunState(
  where: string,
  text: string | undefined,
  batchesPerEpoch: number,
): RunState {
  const fail = (problem: string) => new CheckpointError(where, `metadata "run": ${problem}`);
  if (text === undefined) {
    throw fail("missing (was the checkpoint written by deno task train?)");
  }
  let run: unknown;
  try {
    run = JSON.parse(text);
  } catch (error) {
    throw fail(`not valid JSON (${error instanceof Error ? error.message : error})`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(run)) throw fail("expected {position, history, best, rng}");
  const p = run.position;
  if (!isObject(p)) throw fail("position must be an object");
  for (const key of ["epoch", "batch", "errors", "seen"]) {
    if (!Number.isSafeInteger(p[key]) || (p[key] as number) < 0) {
      throw fail(`position.${key} must be an integer >= 0, got ${JSON.stringify(p[key])}`);
    }
  }
  for (const key of ["lossSum", "seconds"]) {
    if (typeof p[key] !== "number" || !Number.isFinite(p[key])) {
      throw fail(`position.${key} must be a finite number, got ${JSON.stringify(p[key])}`);
    }
  }
  if ((p.batch as number) >= batchesPerEpoch) {
    throw fail(
      `position batch ${p.batch} is past the end of the epoch (${batchesPerEpoch} batches); ` +
        "the checkpoint does not belong to this configuration and data",
    );
  }
  if (!Array.isArray(run.history) || !run.history.every(isObject)) {
    throw fail("history must be a list of epoch records");
  }
  const best = run.best;
  if (
    best !== null &&
    !(isObject(best) && typeof best.testError === "number" && typeof best.epoch === "number")
  ) {
    throw fail("best must be null or {testError, epoch}");
  }
  const rng = run.rng;
  const words = isObject(rng) ? rng.s : undefined;
  if (
    !isObject(rng) || !Array.isArray(words) || words.length !== 4 ||
    !words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff) ||
    words.every((w) => w === 0) ||
    !(rng.spareNormal === null || typeof rng.spareNormal === "number")
  ) {
    throw fail("rng must be a generator state {s: four non-zero-in-total uint32, spareNormal}");
  }
  return run as unknown as RunState;
}

function describeEpochs(complete: number): string {
  return complete === 0 ? "the initial weights" : `after epoch ${complete}`;
}

function pct(fraction: number): string {
  return `${(fraction * 100).toFixed(2)}%`;
}

/** Logits [..., C] as rows [N, C] (sequence models give one row per position). */
function flatLogits(logits: Tensor): Tensor {
  return logits.ndim === 2 ? logits : logits.reshape(-1, logits.shape[logits.ndim - 1]);
}

/** Misclassified rows of `logits` against `labels` (negative labels, ignored ones, skipped). */
function countErrors(logits: Tensor, labels: Int32Array): number {
  const predicted = noGrad(() => argmax(logits, 1)).data;
  let errors = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= 0 && predicted[i] !== labels[i]) errors++;
  }
  return errors;
}

/**
 * The training figures of the steps a device run has taken since they were last read: per step
 * the mean loss and the gradient norm (device scalars, stacked into one read), and the count of
 * misclassified rows summed on the device.
 */
class DeviceWindow {
  /** The device the figures live on. */
  readonly device: Exclude<Device, "cpu">;
  /** The batch (0-based, in the epoch) of the first pending step. */
  firstBatch: number;
  #losses: Tensor[] = [];
  #counts: number[] = [];
  #norms: Tensor[] = [];
  #errors: Tensor | null = null;
  /** Rows whose label is negative (ignored): always "wrong" on the device, taken off on the host. */
  #ignored = 0;

  /** An empty window on `device` starting at batch `firstBatch`. */
  constructor(device: Exclude<Device, "cpu">, firstBatch: number) {
    this.device = device;
    this.firstBatch = firstBatch;
  }

  /** Steps pending. */
  get steps(): number {
    return this.#losses.length;
  }

  /** Records a step: its mean loss over `count` targets, its logits and labels, its norm. */
  add(loss: Tensor, count: number, logits: Tensor, labels: Int32Array, norm: Tensor | null): void {
    noGrad(() => {
      // argmax lies in [0, C), so a negative (ignored) label never matches: the rows that count
      // are the mismatches less the ignored rows, which the host counts from its own labels.
      const target = tensor<"int32">(labels, { device: this.device });
      const wrong = argmax(logits, 1).ne(target).to("float32").sum();
      // Integers below 2^24 add exactly in float32, far more than a window's rows.
      this.#errors = this.#errors === null ? wrong : this.#errors.add(wrong);
    });
    for (const label of labels) if (label < 0) this.#ignored++;
    this.#losses.push(loss.detach());
    this.#counts.push(count);
    if (norm !== null) this.#norms.push(norm);
  }

  /**
   * Waits for the pending figures and empties the window, whose next step is batch `next`: the
   * losses, target counts and norms (null without clipping) per step, and the errors in all.
   */
  async read(next: number): Promise<{
    losses: Float32Array;
    counts: number[];
    norms: Float32Array | null;
    errors: number;
  }> {
    const [losses, norms, errors] = await Promise.all([
      noGrad(() => stack(this.#losses)).read(),
      this.#norms.length > 0 ? noGrad(() => stack(this.#norms)).read() : null,
      this.#errors === null ? new Float32Array(1) : this.#errors.read(),
    ]);
    const out = {
      losses,
      counts: this.#counts,
      norms,
      errors: Math.round(errors[0]) - this.#ignored,
    };
    this.#losses = [];
    this.#counts = [];
    this.#norms = [];
    this.#errors = null;
    this.#ignored = 0;
    this.firstBatch = next;
    return out;
  }
}

/**
 * {@linkcode clipGradNorm} on a device, without reading it: the global norm as a device scalar,
 * and every gradient scaled by maxNorm / (norm + 1e-6) where the norm exceeds `maxNorm`. Returns
 * the norm before clipping (null when no parameter has a gradient); a non-finite one leaves the
 * gradients as they are, as on the CPU, and the trainer stops the run when it reads it. The
 * squares are summed in float32 (the CPU sums in float64), so a norm above ~1.8e19 is Infinity
 * here and stops a run the CPU would clip a step or two longer before its loss gives out.
 */
function clipGradNormOnDevice(params: readonly Tensor[], maxNorm: number): Tensor | null {
  return noGrad(() => {
    const withGrad = params.filter((p) => p.grad !== null);
    if (withGrad.length === 0) return null;
    let total: Tensor | null = null;
    for (const p of withGrad) {
      const squares = p.grad!.square().sum();
      total = total === null ? squares : total.add(squares);
    }
    const norm = total!.sqrt();
    // NaN > maxNorm is false: a NaN norm scales by 1, as clipGradNorm returns early.
    const factor = where(norm.gt(maxNorm), norm.add(1e-6).reciprocal().mul(maxNorm), 1);
    for (const p of withGrad) p.grad = p.grad!.mul(factor);
    return norm;
  });
}

/**
 * Mean loss and error of `model` over a loader, in evaluation mode without recording; per
 * counted target (image or character), skipping targets equal to `ignoreIndex`.
 */
export function evaluate(
  model: Module<[Tensor], Tensor>,
  loader: BatchSource,
  ignoreIndex?: number,
): { loss: number; error: number } {
  const wasTraining = model.training;
  model.eval();
  let lossSum = 0;
  let errors = 0;
  let seen = 0;
  noGrad(() => {
    for (const { x, y, count } of loader.epoch(0)) {
      const logits = flatLogits(model.call(x as Tensor));
      lossSum += crossEntropy(logits, y, {
        reduction: "sum",
        ...(ignoreIndex !== undefined ? { ignoreIndex } : {}),
      }).item();
      errors += countErrors(logits, y);
      seen += count;
    }
  });
  model.train(wasTraining);
  return { loss: lossSum / Math.max(seen, 1), error: errors / Math.max(seen, 1) };
}

/**
 * {@linkcode evaluate} for a model on a device: each batch goes there, the loss and error sums stay
 * there (float32, in batch order, so the figures are the same run after run), and are read once
 * at the end. A model on the CPU is evaluated by {@linkcode evaluate}.
 */
export async function evaluateOnDevice(
  model: Module<[Tensor], Tensor>,
  loader: BatchSource,
  ignoreIndex?: number,
): Promise<{ loss: number; error: number }> {
  const device = model.device;
  if (device === "cpu") return evaluate(model, loader, ignoreIndex);
  const wasTraining = model.training;
  model.eval();
  let lossSum: Tensor | null = null;
  let wrong: Tensor | null = null;
  let ignored = 0;
  let seen = 0;
  try {
    noGrad(() => {
      for (const { x, y, count } of loader.epoch(0)) {
        const logits = flatLogits(model.call(x.to(device) as Tensor));
        const loss = crossEntropy(logits, y, {
          reduction: "sum",
          ...(ignoreIndex !== undefined ? { ignoreIndex } : {}),
        });
        // As in training: ignored (negative) labels never match argmax; the host takes them off.
        const target = tensor<"int32">(y, { device });
        const errors = argmax(logits, 1).ne(target).to("float32").sum();
        lossSum = lossSum === null ? loss : lossSum.add(loss);
        wrong = wrong === null ? errors : wrong.add(errors);
        for (const label of y) if (label < 0) ignored++;
        seen += count;
        deviceBackend(device).flush();
      }
    });
  } finally {
    model.train(wasTraining);
  }
  const [loss, errors] = await Promise.all([
    lossSum === null ? 0 : (lossSum as Tensor).read().then((v) => v[0]),
    wrong === null ? 0 : (wrong as Tensor).read().then((v) => Math.round(v[0]) - ignored),
  ]);
  return { loss: loss / Math.max(seen, 1), error: errors / Math.max(seen, 1) };
}

/** The optimizer of a config; biases get no weight decay unless `decayBiases`. */
function makeOptimizer(c: TrainConfig, model: Module<[Tensor], Tensor>): Optimizer {
  const named = model.namedParameters();
  const decayed = named.filter(([name]) => !name.endsWith(".bias")).map(([, p]) => p);
  const undecayed = named.filter(([name]) => name.endsWith(".bias")).map(([, p]) => p);
  const groups = c.decayBiases
    ? [{ params: named.map(([, p]) => p) }]
    : [{ params: decayed }, { params: undecayed, weightDecay: 0 }];
  const beta2 = c.beta2 ?? 0.999;
  switch (c.optimizer) {
    case "sgd":
      return new SGD(groups, {
        lr: c.lr,
        momentum: c.momentum,
        nesterov: c.nesterov,
        weightDecay: c.weightDecay,
      });
    case "adam":
      return new Adam(groups, { lr: c.lr, betas: [c.momentum, beta2], weightDecay: c.weightDecay });
    case "adamw":
      return new AdamW(groups, {
        lr: c.lr,
        betas: [c.momentum, beta2],
        weightDecay: c.weightDecay,
      });
  }
}

/** The schedule of a config, stepped once per batch: optional linear warm-up, then cosine or multistep. */
function makeScheduler(
  c: TrainConfig,
  optimizer: Optimizer,
  stepsPerEpoch: number,
  epochs: number,
): LRScheduler | null {
  const total = c.steps ? c.steps : epochs * stepsPerEpoch;
  if (c.schedule === "onecycle") {
    // PyTorch's OneCycleLR defaults, momentum (β1) held: the recipe of bench/names_reference.md.
    return new OneCycleLR(optimizer, { maxLr: c.lr, totalSteps: total, cycleMomentum: false });
  }
  const warmup = Math.min(Math.round(c.warmupEpochs * stepsPerEpoch), Math.max(total - 1, 0));
  let after: LRScheduler | undefined;
  if (c.schedule === "cosine") {
    after = new CosineAnnealingLR(optimizer, Math.max(total - warmup, 1));
  }
  if (c.schedule === "multistep") {
    after = new MultiStepLR(
      optimizer,
      c.milestones.map((e) => Math.max(e * stepsPerEpoch - warmup, 1)),
      c.gamma,
    );
  }
  if (warmup > 0) return new LinearWarmup(optimizer, warmup, 0.1, after);
  return after ?? null;
}
