/**
 * `deno task train`: trains a model on MNIST, Fashion-MNIST or the first-names corpus (configs
 * names-gpt, names-mlp) from a named recipe, with any field overridden by a flag, writing
 * checkpoints, metrics, a log and plots to a run folder.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { type DatasetName, loadDataset } from "../data/datasets.ts";
import {
  checkModelSpec,
  type Checkpoint,
  CheckpointError,
  loadCheckpoint,
} from "../nn/checkpoint.ts";
import { isJsonObject } from "../nn/json.ts";
import { StateDictError } from "../nn/module.ts";
import { isModelName } from "../nn/models/registry.ts";
import {
  applyComputeFlags,
  applyDeviceFlag,
  describeStateDictError,
  type FlagSpec,
  formatHelp,
  parseFlags,
  runTask,
  SHARED_FLAGS,
  UsageError,
} from "./common.ts";
import {
  applyOverrides,
  configNames,
  optimizerNames,
  recipe,
  scheduleNames,
  type TrainConfig,
} from "./configs.ts";
import { DataError } from "../data/errors.ts";
import type { Dataset } from "../data/datasets.ts";
import { enterCallerDirectory, repoPath } from "./report.ts";
import { RunFiles } from "./run_files.ts";
import { Trainer } from "./trainer.ts";
import { isNamesConfig, namesTask, type Task } from "./tasks.ts";

const flags: Record<string, FlagSpec> = {
  config: {
    type: "string",
    value: "NAME",
    help: `recipe: ${configNames.join(", ")} (default mlp)`,
  },
  epochs: { type: "string", value: "N", help: "number of epochs" },
  steps: {
    type: "string",
    value: "N",
    help: "total training steps (batches), replacing --epochs (names recipes: 1000)",
  },
  "batch-size": { type: "string", value: "N", help: "training batch size" },
  lr: { type: "string", value: "LR", help: "peak learning rate" },
  optimizer: { type: "string", value: "NAME", help: optimizerNames.join(" | ") },
  momentum: { type: "string", value: "M", help: "momentum (SGD) or beta1 (Adam)" },
  "weight-decay": { type: "string", value: "W", help: "weight decay (biases excluded)" },
  schedule: {
    type: "string",
    value: "NAME",
    help: `${scheduleNames.join(" | ")}, stepped every batch`,
  },
  milestones: {
    type: "string",
    value: "E1,E2",
    help: "epochs where multistep divides the rate by 10",
  },
  "warmup-epochs": {
    type: "string",
    value: "E",
    help: "linear warm-up length in epochs (0: none)",
  },
  "label-smoothing": { type: "string", value: "S", help: "label smoothing of the cross-entropy" },
  "augment-shift": {
    type: "string",
    value: "PX",
    help: "random shifts of up to PX pixels (0: none)",
  },
  dropout: { type: "string", value: "P", help: "dropout before the classifier (alexnet)" },
  seed: {
    type: "string",
    value: "N",
    help: "seed of initialisation, shuffling, augmentation, dropout",
  },
  "clip-grad-norm": {
    type: "string",
    value: "N",
    help: "clip gradients to this global norm (0: off)",
  },
  "limit-train": { type: "string", value: "N", help: "train on the first N examples only" },
  "limit-test": { type: "string", value: "N", help: "evaluate on the first N test examples only" },
  "data-dir": SHARED_FLAGS.dataDir,
  out: { type: "string", value: "DIR", help: "run folder (default runs/<config>-<time>)" },
  resume: { type: "string", value: "CKPT", help: "continue a run from its last.safetensors" },
  threads: SHARED_FLAGS.threads,
  backend: SHARED_FLAGS.backend,
  device: SHARED_FLAGS.device,
  help: SHARED_FLAGS.help,
};

/** Flags that would change what a resumed run is, rather than how long or how it goes on. */
const fixedOnResume = ["config", "batch-size", "seed", "limit-train", "augment-shift", "dropout"];

/**
 * The `config` metadata of a resume checkpoint, checked field by field (types and ranges) so that
 * a malformed one is refused with a message naming the field rather than failing deep inside.
 */
function parseResumeConfig(path: string, checkpoint: Checkpoint): TrainConfig {
  const fail = (problem: string) => new CheckpointError(path, `metadata "config": ${problem}`);
  let raw: unknown;
  try {
    raw = JSON.parse(checkpoint.metadata.config!);
  } catch (error) {
    throw fail(`not valid JSON (${error instanceof Error ? error.message : error})`);
  }
  if (!isJsonObject(raw)) throw fail("expected a JSON object of the run's recipe");
  const c = raw as Record<string, unknown>;
  const field = (key: string, ok: (v: unknown) => boolean, expected: string) => {
    if (!Object.hasOwn(c, key)) throw fail(`field "${key}" is missing (expected ${expected})`);
    if (!ok(c[key])) {
      throw fail(`field "${key}" must be ${expected}, got ${JSON.stringify(c[key])?.slice(0, 80)}`);
    }
  };
  const int = (min: number, max = Number.MAX_SAFE_INTEGER) => (v: unknown) =>
    Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
  const num = (min: number, max = Infinity, maxOpen = false) => (v: unknown) =>
    typeof v === "number" && Number.isFinite(v) && v >= min && (maxOpen ? v < max : v <= max);
  const oneOf = (names: readonly string[]) => (v: unknown) =>
    typeof v === "string" && names.includes(v);
  field("name", (v) => typeof v === "string", "a string");
  field("model", (v) => typeof v === "string" && isModelName(v), "a registered model name");
  field("modelOptions", (v) => isJsonObject(v), "a JSON object");
  field("dataset", (v) => typeof v === "string", "a dataset name");
  field("epochs", int(1), "an integer >= 1");
  field("batchSize", int(1, 1 << 20), "an integer in 1..1048576");
  field("optimizer", oneOf(optimizerNames), `one of ${optimizerNames.join(", ")}`);
  field("lr", num(0), "a number >= 0");
  field("momentum", num(0, 1, true), "a number in [0, 1)");
  field("nesterov", (v) => typeof v === "boolean", "true or false");
  field("weightDecay", num(0), "a number >= 0");
  field("schedule", oneOf(scheduleNames), `one of ${scheduleNames.join(", ")}`);
  field(
    "milestones",
    (v) => Array.isArray(v) && v.every(int(1)),
    "a list of epochs (integers >= 1)",
  );
  field("gamma", num(0), "a number >= 0");
  field("warmupEpochs", num(0), "a number >= 0");
  field("labelSmoothing", num(0, 1, true), "a number in [0, 1)");
  field("augmentShift", int(0, 8), "an integer in 0..8");
  field("seed", int(Number.MIN_SAFE_INTEGER), "a safe integer");
  field("clipGradNorm", num(0), "a number >= 0");
  field("limitTrain", int(0), "an integer >= 0");
  field("limitTest", int(0), "an integer >= 0");
  // Fields later recipes added; absent in older checkpoints.
  const optional = (key: string, ok: (v: unknown) => boolean, expected: string) => {
    if (Object.hasOwn(c, key)) field(key, ok, expected);
  };
  optional("steps", int(0), "an integer >= 0");
  optional("beta2", num(0, 1, true), "a number in [0, 1)");
  optional("decayBiases", (v) => typeof v === "boolean", "true or false");
  const config = raw as unknown as TrainConfig;
  try {
    // The weights are compared with the shapes the config implies before the model is built.
    checkModelSpec(
      path,
      { name: config.model, options: config.modelOptions },
      checkpoint.modelState,
    );
  } catch (error) {
    if (!(error instanceof StateDictError)) throw error;
    throw new CheckpointError(
      path,
      `the weights do not fit the ${config.model} its config names. ${
        describeStateDictError(error)
      }`,
    );
  }
  return config;
}

/** Refuses datasets the models cannot use: images other than 28×28, or an empty split. */
function checkDataset(data: Dataset, config: TrainConfig): void {
  for (const split of [data.train, data.test]) {
    const { rows, cols, count } = split.images;
    const where = `${data.source.dir} (${split.split} split)`;
    if (rows !== 28 || cols !== 28) {
      throw new DataError(
        `${where}: images are ${rows}×${cols}; the ${config.model} model needs 28×28 images`,
      );
    }
    if (count === 0) throw new DataError(`${where}: holds no images`);
  }
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "").replace("T", "-");
}

async function main(): Promise<number> {
  enterCallerDirectory();
  const { values } = parseFlags(Deno.args, flags);
  if (values.help) {
    console.log(formatHelp(
      "Usage: deno task train [--config NAME] [options]",
      "Trains a model and writes last/best checkpoints, metrics.jsonl, config.json, train.log and\n" +
        "curves.svg/png to the run folder. Ctrl-C saves a checkpoint; --resume continues from it.",
      flags,
    ));
    return 0;
  }
  applyComputeFlags(values, "train");
  const device = await applyDeviceFlag(values);
  const command = ["deno task train", ...Deno.args].join(" ");

  let config: TrainConfig;
  let resume;
  let dir: string;
  if (values.resume !== undefined) {
    const path = String(values.resume);
    const given = fixedOnResume.filter((f) => values[f] !== undefined);
    if (given.length > 0) {
      throw new UsageError(
        `--resume continues a run as it was; it cannot change ${
          given.map((f) => `--${f}`).join(", ")
        }`,
      );
    }
    resume = await loadCheckpoint(path);
    if (resume.metadata.config === undefined || resume.metadata.run === undefined) {
      throw new CheckpointError(
        path,
        "not a training checkpoint of deno task train (no config or run state); it cannot be resumed",
      );
    }
    config = applyOverrides(parseResumeConfig(path, resume), values);
    dir = values.out !== undefined ? String(values.out) : dirname(path);
  } else {
    config = applyOverrides(
      recipe(values.config !== undefined ? String(values.config) : "mlp"),
      values,
    );
    dir = values.out !== undefined
      ? String(values.out)
      : join("runs", `${config.name}-${timestamp()}`);
  }
  const files = new RunFiles(dir);
  let data: Dataset | undefined;
  let task: Task | undefined;
  if (isNamesConfig(config)) task = await namesTask(config);
  else {
    data = await loadDataset(config.dataset as DatasetName, {
      baseDir: repoPath(),
      progress: Deno.stderr, // a download's progress bar (the library draws none by default)
      ...(values["data-dir"] !== undefined ? { dataDir: String(values["data-dir"]) } : {}),
    });
    checkDataset(data, config);
  }
  let trainer: Trainer;
  try {
    trainer = new Trainer({
      config,
      ...(task ? { task } : { data }),
      files,
      command,
      device,
      ...(resume ? { resume, resumePath: String(values.resume) } : {}),
    });
  } catch (error) {
    if (!(error instanceof StateDictError)) throw error;
    throw new CheckpointError(
      String(values.resume),
      `the weights do not fit the ${config.model} its config names. ${
        describeStateDictError(error)
      }`,
    );
  }
  const { exitCode } = await trainer.run();
  return exitCode;
}

if (import.meta.main) runTask("train", main);
