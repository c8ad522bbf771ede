/**
 * `deno task train`: trains a model on MNIST or Fashion-MNIST from a named recipe, with any field
 * overridden by a flag, writing checkpoints, metrics, a log and plots to a run folder.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { setThreads } from "../autograd/kernels/mod.ts";
import { loadDataset } from "../data/datasets.ts";
import { CheckpointError, loadCheckpoint } from "../nn/checkpoint.ts";
import { StateDictError } from "../nn/module.ts";
import {
  type FlagSpec,
  formatHelp,
  numberFlag,
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
import { enterCallerDirectory, repoPath } from "./report.ts";
import { RunFiles } from "./run_files.ts";
import { Trainer } from "./trainer.ts";

const flags: Record<string, FlagSpec> = {
  config: {
    type: "string",
    value: "NAME",
    help: `recipe: ${configNames.join(", ")} (default mlp)`,
  },
  epochs: { type: "string", value: "N", help: "number of epochs" },
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
  threads: {
    type: "string",
    value: "N",
    help: "compute threads (default: all cores; or TAPEGRAD_THREADS)",
  },
  help: SHARED_FLAGS.help,
};

/** Flags that would change what a resumed run is, rather than how long or how it goes on. */
const fixedOnResume = ["config", "batch-size", "seed", "limit-train", "augment-shift", "dropout"];

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
  const threads = numberFlag(values, "threads", { min: 1, max: 64, integer: true });
  if (threads !== undefined) setThreads(threads);
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
    config = applyOverrides(JSON.parse(resume.metadata.config) as TrainConfig, values);
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
  const data = await loadDataset(config.dataset, {
    baseDir: repoPath(),
    ...(values["data-dir"] !== undefined ? { dataDir: String(values["data-dir"]) } : {}),
  });
  let trainer: Trainer;
  try {
    trainer = new Trainer({ config, data, files, command, ...(resume ? { resume } : {}) });
  } catch (error) {
    if (!(error instanceof StateDictError)) throw error;
    throw new CheckpointError(
      String(values.resume),
      `the weights do not fit the ${config.model} its config names. ${error.message}`,
    );
  }
  const { exitCode } = await trainer.run();
  return exitCode;
}

if (import.meta.main) runTask("train", main);
