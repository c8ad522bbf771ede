/**
 * Training recipes: the named configs of `deno task train --config NAME`, each a complete set of
 * choices (model, data, optimizer, schedule, augmentation, epochs), and how command-line flags
 * override any field.
 *
 * @module
 */

import type { DatasetName } from "../data/datasets.ts";
import type { JsonObject } from "../nn/json.ts";
import { choiceFlag, numberFlag, type ParsedArgs, UsageError } from "./common.ts";

/** Optimizers the trainer can build. */
export const optimizerNames = ["sgd", "adam", "adamw"] as const;
/** An optimizer name. */
export type OptimizerName = typeof optimizerNames[number];

/** Learning-rate schedules, stepped once per batch. */
export const scheduleNames = ["multistep", "cosine", "constant", "onecycle"] as const;
/** A schedule name. */
export type ScheduleName = typeof scheduleNames[number];

/** Every choice of a training run. */
export interface TrainConfig {
  /** Name of the recipe this run started from. */
  name: string;
  /** Registry name of the model. */
  model: "mlp" | "alexnet" | "names-gpt" | "names-mlp";
  /** Options of the model (JSON). */
  modelOptions: JsonObject;
  /** Dataset to train and test on ("names": the first-names corpus of data/names.ts). */
  dataset: DatasetName | "names";
  /** Total number of epochs. */
  epochs: number;
  /**
   * Total training steps (batches); when set (> 0) it replaces `epochs`: the run ends after this
   * many steps, in the middle of an epoch if need be, and the schedule spans them.
   */
  steps?: number;
  /** Training batch size. */
  batchSize: number;
  /** Optimizer. */
  optimizer: OptimizerName;
  /** Peak learning rate. */
  lr: number;
  /** Momentum (SGD) or β1 (Adam, AdamW). */
  momentum: number;
  /** β2 of Adam and AdamW (default 0.999). */
  beta2?: number;
  /** Nesterov momentum (SGD). */
  nesterov: boolean;
  /** Weight decay: L2 for SGD and Adam, decoupled for AdamW. */
  weightDecay: number;
  /** Decay biases too, one parameter group as PyTorch's default (default false: biases excluded). */
  decayBiases?: boolean;
  /**
   * Learning-rate schedule after warm-up; "onecycle" is PyTorch's OneCycleLR from lr/25 up to lr
   * over 30% of the steps and down to lr/25e4 (cosine), momentum not cycled.
   */
  schedule: ScheduleName;
  /** Epochs at which multistep multiplies the rate by `gamma`. */
  milestones: number[];
  /** Multistep factor. */
  gamma: number;
  /** Linear warm-up length in epochs (0: none). */
  warmupEpochs: number;
  /** Label smoothing of the cross-entropy. */
  labelSmoothing: number;
  /** Random shifts of up to this many pixels (0: no augmentation). */
  augmentShift: number;
  /** Seed of initialisation, shuffling, augmentation and dropout. */
  seed: number;
  /** Clip gradients to this global norm (0: no clipping). */
  clipGradNorm: number;
  /** Train on the first N examples only (0: all). */
  limitTrain: number;
  /** Evaluate on the first N test examples only (0: all). */
  limitTest: number;
}

const base = {
  epochs: 20,
  batchSize: 128,
  optimizer: "sgd",
  lr: 0.05,
  momentum: 0.9,
  nesterov: true,
  weightDecay: 5e-4,
  schedule: "cosine",
  milestones: [],
  gamma: 0.1,
  warmupEpochs: 1,
  labelSmoothing: 0,
  augmentShift: 2,
  seed: 1,
  clipGradNorm: 0,
  limitTrain: 0,
  limitTest: 0,
} as const satisfies Partial<TrainConfig>;

/** The named recipes. */
export const configs: Readonly<Record<string, TrainConfig>> = Object.freeze({
  "mlp": { ...base, milestones: [], name: "mlp", model: "mlp", modelOptions: {}, dataset: "mnist" },
  "alexnet": {
    ...base,
    milestones: [],
    name: "alexnet",
    model: "alexnet",
    modelOptions: { dropout: 0.25 },
    dataset: "mnist",
    epochs: 15,
  },
  "mlp-fashion": {
    ...base,
    milestones: [],
    name: "mlp-fashion",
    model: "mlp",
    modelOptions: {},
    dataset: "fashion-mnist",
    epochs: 30,
    augmentShift: 1,
    labelSmoothing: 0.1,
  },
  "alexnet-fashion": {
    ...base,
    milestones: [],
    name: "alexnet-fashion",
    model: "alexnet",
    modelOptions: { dropout: 0.5 },
    dataset: "fashion-mnist",
    epochs: 30,
    augmentShift: 1,
    labelSmoothing: 0.1,
  },
  ...namesConfigs(),
});

/**
 * The first-names recipes of bench/names_reference.md: 1,000 AdamW steps of 64 names (betas 0.9,
 * 0.99, weight decay 0.01 on every parameter) under a one-cycle schedule.
 */
function namesConfigs(): Record<"names-gpt" | "names-mlp", TrainConfig> {
  const names = {
    ...base,
    milestones: [],
    modelOptions: {},
    dataset: "names",
    epochs: 9,
    steps: 1000,
    batchSize: 64,
    optimizer: "adamw",
    momentum: 0.9,
    beta2: 0.99,
    nesterov: false,
    weightDecay: 0.01,
    decayBiases: true,
    schedule: "onecycle",
    warmupEpochs: 0,
    augmentShift: 0,
  } as const;
  return {
    "names-gpt": { ...names, milestones: [], name: "names-gpt", model: "names-gpt", lr: 3e-3 },
    "names-mlp": { ...names, milestones: [], name: "names-mlp", model: "names-mlp", lr: 1e-2 },
  };
}

/** Names of the recipes, in the order they are listed. */
export const configNames: readonly string[] = Object.keys(configs);

/** The recipe called `name`, or a usage error listing the valid names. */
export function recipe(name: string): TrainConfig {
  if (!Object.hasOwn(configs, name)) {
    throw new UsageError(`unknown config "${name}"; valid configs: ${configNames.join(", ")}`);
  }
  return structuredClone(configs[name]);
}

/** Applies the flags that override recipe fields (only those given). */
export function applyOverrides(config: TrainConfig, values: ParsedArgs["values"]): TrainConfig {
  const out = {
    ...config,
    milestones: [...config.milestones],
    modelOptions: { ...config.modelOptions },
  };
  const set = <K extends keyof TrainConfig>(key: K, value: TrainConfig[K] | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  set("epochs", numberFlag(values, "epochs", { min: 1, integer: true }));
  set("steps", numberFlag(values, "steps", { min: 1, integer: true }));
  // --epochs alone on a steps recipe means epochs.
  if (values["epochs"] !== undefined && values["steps"] === undefined && out.steps) out.steps = 0;
  set("batchSize", numberFlag(values, "batch-size", { min: 1, integer: true }));
  set("lr", numberFlag(values, "lr", { min: 0 }));
  set("optimizer", choiceFlag(values, "optimizer", optimizerNames));
  set("momentum", numberFlag(values, "momentum", { min: 0, max: 0.9999 }));
  set("weightDecay", numberFlag(values, "weight-decay", { min: 0 }));
  set("schedule", choiceFlag(values, "schedule", scheduleNames));
  set("warmupEpochs", numberFlag(values, "warmup-epochs", { min: 0 }));
  set("labelSmoothing", numberFlag(values, "label-smoothing", { min: 0, max: 0.99 }));
  set("augmentShift", numberFlag(values, "augment-shift", { min: 0, max: 8, integer: true }));
  set("seed", numberFlag(values, "seed", { integer: true }));
  set("clipGradNorm", numberFlag(values, "clip-grad-norm", { min: 0 }));
  set("limitTrain", numberFlag(values, "limit-train", { min: 1, integer: true }));
  set("limitTest", numberFlag(values, "limit-test", { min: 1, integer: true }));
  if (values["milestones"] !== undefined) {
    const parts = String(values["milestones"]).split(",").map((s) => s.trim()).filter((s) =>
      s !== ""
    );
    const numbers = parts.map(Number);
    if (!numbers.every((n) => Number.isInteger(n) && n > 0)) {
      throw new UsageError(
        `--milestones must be comma-separated epochs such as 10,15; got "${values["milestones"]}"`,
      );
    }
    out.milestones = numbers;
  }
  if (values["dropout"] !== undefined) {
    if (out.model !== "alexnet") {
      throw new UsageError(`--dropout applies to alexnet, not ${out.model}`);
    }
    out.modelOptions.dropout = numberFlag(values, "dropout", { min: 0, max: 0.99 })!;
  }
  if (out.nesterov && out.momentum === 0) out.nesterov = false;
  if (out.schedule === "multistep" && out.milestones.length === 0) {
    throw new UsageError("--schedule multistep needs --milestones (epochs, e.g. 10,15)");
  }
  return out;
}

/** One line summarising a config, for logs. */
export function describeConfig(c: TrainConfig): string {
  const schedule = c.schedule === "multistep"
    ? `multistep ${c.milestones.join(",")} ×${c.gamma}`
    : c.schedule;
  return `${c.name}: ${c.model}${
    Object.keys(c.modelOptions).length ? ` ${JSON.stringify(c.modelOptions)}` : ""
  } on ${c.dataset}, ` +
    `${
      c.steps ? `${c.steps} steps` : `${c.epochs} epochs`
    }, batch ${c.batchSize}, ${c.optimizer} lr ${c.lr} momentum ${c.momentum}` +
    `${c.beta2 !== undefined && c.optimizer !== "sgd" ? ` beta2 ${c.beta2}` : ""}` +
    `${c.nesterov ? " nesterov" : ""}, weight decay ${c.weightDecay}${
      c.decayBiases ? " (biases too)" : ""
    }, ${schedule}` +
    `${c.warmupEpochs ? `, warm-up ${c.warmupEpochs} epoch(s)` : ""}` +
    `${c.labelSmoothing ? `, label smoothing ${c.labelSmoothing}` : ""}` +
    `${c.augmentShift ? `, shifts ±${c.augmentShift}px` : ""}, seed ${c.seed}` +
    `${c.clipGradNorm ? `, clip ${c.clipGradNorm}` : ""}`;
}
