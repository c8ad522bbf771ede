/**
 * `deno task eval --ckpt PATH`: the test error of a checkpoint, with per-class accuracy and the
 * confusion matrix. The model and the dataset come from the checkpoint's metadata; flags override
 * the dataset, the data folder, the split and the number of images.
 *
 * @module
 */

import { deviceBackend } from "../autograd/device.ts";
import { cat, crossEntropy, noGrad, type Tensor } from "../autograd/mod.ts";
import { type DatasetName, DATASETS, loadSplit, type Split } from "../data/datasets.ts";
import { DataLoader, normalizationFor } from "../data/loader.ts";
import { ProgressBar } from "../data/progress.ts";
import {
  applyComputeFlags,
  applyDeviceFlag,
  choiceFlag,
  describeBackend,
  describeDevice,
  type DeviceChoice,
  type FlagSpec,
  formatHelp,
  numberFlag,
  parseFlags,
  runTask,
  SHARED_FLAGS,
  UsageError,
} from "./common.ts";
import {
  ConfusionMatrix,
  enterCallerDirectory,
  formatConfusion,
  formatPerClass,
  loadClassifier,
  percent,
  repoPath,
} from "./report.ts";
import { evaluateNames, isNamesCheckpoint, loadNamesModel } from "./names.ts";

const FLAGS: Record<string, FlagSpec> = {
  "ckpt": { type: "string", value: "PATH", help: "checkpoint to evaluate (required)" },
  "dataset": {
    type: "string",
    value: "NAME",
    help: "mnist or fashion-mnist (default: the one the checkpoint records)",
  },
  "data-dir": SHARED_FLAGS.dataDir,
  "split": {
    type: "string",
    value: "SPLIT",
    help: "test (default) or train; names checkpoints: validation (default) or train",
  },
  "batch-size": { type: "string", value: "N", help: "images per forward pass (default 500)" },
  "limit": { type: "string", value: "N", help: "evaluate only the first N images" },
  "json": { type: "boolean", help: "print one JSON object instead of the report" },
  threads: SHARED_FLAGS.threads,
  backend: SHARED_FLAGS.backend,
  device: SHARED_FLAGS.device,
  help: SHARED_FLAGS.help,
};

const USAGE = "Usage: deno task eval --ckpt PATH [options]";
const DESCRIPTION = "Evaluates a checkpoint: error, loss, per-class accuracy, confusion matrix.\n" +
  "The model is rebuilt from the checkpoint's metadata; evaluation runs without gradients,\n" +
  "in eval mode, over the split in order.";

async function main(): Promise<number> {
  const { values } = parseFlags(Deno.args, FLAGS);
  if (values.help) {
    console.log(formatHelp(USAGE, DESCRIPTION, FLAGS));
    return 0;
  }
  enterCallerDirectory();
  const backend = applyComputeFlags(values, "eval");
  const path = values.ckpt;
  if (typeof path !== "string" || path === "") throw new UsageError("--ckpt PATH is required");
  const device = await applyDeviceFlag(values);
  if (await isNamesCheckpoint(path)) {
    const limit = numberFlag(values, "limit", { min: 1, integer: true });
    return await evalNames(path, values, limit, values.json === true, device);
  }
  const datasetFlag = choiceFlag(values, "dataset", Object.keys(DATASETS) as DatasetName[]);
  const split: Split = choiceFlag(values, "split", ["test", "train"] as const) ?? "test";
  const batchSize = numberFlag(values, "batch-size", { min: 1, integer: true }) ?? 500;
  const limit = numberFlag(values, "limit", { min: 1, integer: true });
  const json = values.json === true;

  const { model, checkpoint, modelName, dataset, classes } = await loadClassifier(
    path,
    datasetFlag,
  );
  const data = await loadSplit(dataset, split, {
    dataDir: values["data-dir"] as string | undefined,
    baseDir: repoPath(),
    progress: Deno.stderr, // a download's progress bar (the library draws none by default)
  });
  const loader = new DataLoader(data.images, data.labels, {
    batchSize,
    shuffle: false,
    normalization: normalizationFor(dataset),
    limit,
  });
  if (!json) {
    const epoch = checkpoint.epoch === undefined ? "" : `, epoch ${checkpoint.epoch}`;
    console.log(
      `checkpoint: ${path} (${modelName}${epoch}, trained on ${
        checkpoint.metadata.dataset ?? "mnist"
      })`,
    );
    console.log(`data: ${data.source.description}, ${split} split, ${loader.size} images`);
    console.log(`kernels: ${describeBackend(backend)}`);
    console.log(`device: ${describeDevice(device)}`);
  }
  await model.to(device.device);

  const matrix = new ConfusionMatrix(classes);
  let lossSum = 0;
  const bar = json
    ? null
    : new ProgressBar(loader.size, { label: "evaluating", writer: Deno.stderr });
  const start = performance.now();
  if (device.device === "cpu") {
    for (const { x, y } of loader.epoch(0)) {
      noGrad(() => {
        const logits = model.call(x);
        lossSum += crossEntropy(logits, y, { reduction: "sum" }).item();
        matrix.add(y, logits.argmax(1).toFloat32Array());
      });
      bar?.tick(y.length);
    }
  } else {
    // On a device nothing waits until the end: the loss sum and every batch's predictions stay
    // there and come back in one read each (the bar counts batches submitted, not finished).
    const on = device.device;
    let sum: Tensor | null = null;
    const predicted: Tensor<"int32">[] = [];
    const labels: Int32Array[] = [];
    for (const { x, y } of loader.epoch(0)) {
      noGrad(() => {
        const logits = model.call(x.to(on));
        const loss = crossEntropy(logits, y, { reduction: "sum" });
        sum = sum === null ? loss : sum.add(loss);
        predicted.push(logits.argmax(1));
      });
      labels.push(y);
      deviceBackend(on).flush();
      bar?.tick(y.length);
    }
    if (sum !== null) {
      const [total, classes] = await Promise.all([
        (sum as Tensor).read(),
        noGrad(() => cat(predicted)).read(),
      ]);
      lossSum = total[0];
      let at = 0;
      for (const y of labels) {
        matrix.add(y, classes.subarray(at, at + y.length));
        at += y.length;
      }
    }
  }
  const seconds = (performance.now() - start) / 1000;
  bar?.finish();

  const count = matrix.total;
  const accuracy = matrix.correct / count;
  const loss = lossSum / count;
  if (json) {
    console.log(JSON.stringify({
      checkpoint: path,
      model: modelName,
      dataset,
      split,
      count,
      error: 1 - accuracy,
      accuracy,
      loss,
      perClass: matrix.perClass(),
      confusion: matrix.rows(),
      seconds,
      imagesPerSecond: count / seconds,
      backend: backend.backend,
      device: device.device,
    }));
    return 0;
  }
  const wrong = count - matrix.correct;
  console.log(
    `\n${split} error: ${percent(1 - accuracy)} (accuracy ${percent(accuracy)}, ` +
      `${wrong} wrong of ${count})`,
  );
  console.log(`loss: ${loss.toFixed(4)} (mean cross-entropy)`);
  console.log(`\nper-class accuracy:\n${formatPerClass(matrix)}`);
  console.log(`\nconfusion matrix (rows: true class, columns: predicted class):`);
  console.log(formatConfusion(matrix));
  console.log(
    `\nevaluated ${count} images in ${seconds.toFixed(2)} s ` +
      `(${Math.round(count / seconds)} images/s, batch ${batchSize})`,
  );
  return 0;
}

/** `deno task eval` of a names checkpoint: the loss in nats (and bits) per character. */
async function evalNames(
  path: string,
  values: Record<string, unknown>,
  limit: number | undefined,
  json: boolean,
  device: DeviceChoice,
): Promise<number> {
  if (values.dataset !== undefined || values["data-dir"] !== undefined) {
    throw new UsageError("--dataset and --data-dir do not apply to a names checkpoint");
  }
  const split = choiceFlag(
    values as Record<string, string>,
    "split",
    ["validation", "test", "train"] as const,
  );
  const which = split === "train" ? "train" : "validation";
  const loaded = await loadNamesModel(path);
  await loaded.model.to(device.device);
  const start = performance.now();
  const result = await evaluateNames(loaded, which, limit);
  const seconds = (performance.now() - start) / 1000;
  if (json) {
    console.log(
      JSON.stringify({
        checkpoint: path,
        model: loaded.modelName,
        split: which,
        ...result,
        seconds,
      }),
    );
    return 0;
  }
  const epoch = loaded.checkpoint.epoch === undefined ? "" : `, epoch ${loaded.checkpoint.epoch}`;
  console.log(`checkpoint: ${path} (${loaded.modelName}${epoch}, trained on names)`);
  console.log(
    `data: first names, ${which} split, ${result.names} names, ${result.characters} characters`,
  );
  console.log(`kernels: ${describeBackend()}`);
  console.log(`device: ${describeDevice(device)}`);
  console.log(
    `\n${which} loss: ${result.loss.toFixed(4)} nats per character ` +
      `(${result.bitsPerChar.toFixed(4)} bits; next-character error ${percent(result.error)})`,
  );
  console.log(`evaluated in ${seconds.toFixed(2)} s`);
  return 0;
}

if (import.meta.main) await runTask("eval", main);
