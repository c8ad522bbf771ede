/**
 * What `eval` and `demo` share: loading a checkpoint's model with the dataset it was trained on,
 * the repository paths of shipped files, and the reports they print (per-class accuracy, a
 * confusion matrix, top-k probabilities, aligned tables).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { noGrad, type Tensor, zeros } from "../autograd/mod.ts";
import { type DatasetName, DATASETS } from "../data/datasets.ts";
import {
  type Checkpoint,
  CheckpointError,
  createModel,
  isModelName,
  loadCheckpoint,
  type ModelOptions,
  type Module,
  restoreCheckpoint,
  StateDictError,
} from "../nn/mod.ts";
import { checkModelSpec } from "../nn/checkpoint.ts";
import { describeStateDictError } from "./common.ts";

/**
 * Reads the checkpoint at `path`, first telling a missing file or a folder apart from a bad one.
 *
 * @throws {CheckpointError} When the path is missing, not a file, or not a valid checkpoint.
 */
export async function readCheckpointFile(path: string): Promise<Checkpoint> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new CheckpointError(path, "no such file");
    throw error;
  }
  if (!info.isFile) throw new CheckpointError(path, "not a file");
  return await loadCheckpoint(path);
}

/** An absolute path under the repository root, so tasks find shipped files from any directory. */
export function repoPath(...segments: string[]): string {
  return fileURLToPath(new URL(`../${segments.join("/")}`, import.meta.url));
}

/**
 * Moves into the folder the user typed the command in. `deno task` runs tasks in the folder of
 * deno.json and passes the caller's folder as INIT_CWD; without this, relative paths given from a
 * subfolder would be looked up in the repository root.
 */
export function enterCallerDirectory(): void {
  const dir = Deno.env.get("INIT_CWD");
  if (dir && dir !== Deno.cwd()) Deno.chdir(dir);
}

/** A model ready for inference, with what its checkpoint says about it. */
export interface LoadedClassifier {
  /** The model, in eval mode. */
  model: Module<[Tensor], Tensor>;
  /** Everything the file held. */
  checkpoint: Checkpoint;
  /** Registry name of the architecture ("mlp", "alexnet"). */
  modelName: string;
  /** The dataset the model was trained on (metadata `dataset`; "mnist" when absent). */
  dataset: DatasetName;
  /** Class names by output index. */
  classes: readonly string[];
}

/** The dataset a checkpoint records (its `dataset` metadata), "mnist" when it records none. */
export function checkpointDataset(path: string, metadata: Record<string, string>): DatasetName {
  const name = metadata.dataset ?? "mnist";
  if (!Object.hasOwn(DATASETS, name)) {
    throw new CheckpointError(
      path,
      `metadata "dataset" is ${JSON.stringify(name)}; known: ${Object.keys(DATASETS).join(", ")}`,
    );
  }
  return name as DatasetName;
}

/**
 * Loads a checkpoint and rebuilds its model from the metadata, with every way the file can be
 * wrong reported as a {@linkcode CheckpointError} or `StateDictError` naming the file (no stack
 * trace in the tasks). The model is put in eval mode and probed once at batch 1 so that a model
 * whose outputs do not match the dataset's classes fails here, not halfway through a run.
 *
 * @param path The checkpoint file.
 * @param dataset Overrides the dataset recorded in the file.
 */
export async function loadClassifier(
  path: string,
  dataset?: DatasetName,
): Promise<LoadedClassifier> {
  const checkpoint = await readCheckpointFile(path);
  const spec = checkpoint.spec;
  if (spec === undefined) {
    throw new CheckpointError(path, 'the file does not record its model ("model" metadata)');
  }
  if (!isModelName(spec.name)) {
    throw new CheckpointError(path, `unknown model ${JSON.stringify(spec.name)} in the metadata`);
  }
  const doesNotFit = (error: StateDictError) =>
    new CheckpointError(
      path,
      `the weights do not fit the model the file names (${spec.name} ${
        JSON.stringify(spec.options)
      }); was it saved from another architecture?\n${describeStateDictError(error)}`,
    );
  let model: Module<[Tensor], Tensor>;
  try {
    // Options and the shapes they imply are checked against the file before anything is built.
    checkModelSpec(path, spec, checkpoint.modelState);
    model = createModel(spec.name, spec.options as ModelOptions);
  } catch (error) {
    if (error instanceof StateDictError) throw doesNotFit(error);
    if (!(error instanceof RangeError)) throw error;
    throw new CheckpointError(path, `metadata "model_options" rejected: ${error.message}`);
  }
  try {
    restoreCheckpoint(checkpoint, { model }, path);
  } catch (error) {
    if (!(error instanceof StateDictError)) throw error;
    throw doesNotFit(error);
  }
  model.eval();
  const name = dataset ?? checkpointDataset(path, checkpoint.metadata);
  const classes = DATASETS[name].classes;
  const outputs = noGrad(() => model.call(zeros([1, 1, 28, 28]))).shape;
  if (outputs.length !== 2 || outputs[1] !== classes.length) {
    throw new CheckpointError(
      path,
      `the model gives outputs [${outputs.join(", ")}] but ${DATASETS[name].title} has ` +
        `${classes.length} classes`,
    );
  }
  return { model, checkpoint, modelName: spec.name, dataset: name, classes };
}

/** Per-class result of a {@linkcode ConfusionMatrix}. */
export interface ClassResult {
  /** Class index. */
  label: number;
  /** Class name. */
  name: string;
  /** Examples of this class. */
  count: number;
  /** Of those, how many were predicted correctly. */
  correct: number;
  /** `correct / count` (NaN when the class has no examples). */
  accuracy: number;
}

/** Counts of (true class, predicted class) pairs. */
export class ConfusionMatrix {
  /** Class names by index. */
  readonly classes: readonly string[];
  /** `counts[t * n + p]`: examples of class t predicted as p. */
  readonly counts: Float64Array;

  /** Creates an empty matrix over `classes`. */
  constructor(classes: readonly string[]) {
    this.classes = classes;
    this.counts = new Float64Array(classes.length * classes.length);
  }

  /** Adds one batch of true labels and predictions. */
  add(labels: ArrayLike<number>, predicted: ArrayLike<number>): void {
    const n = this.classes.length;
    for (let i = 0; i < labels.length; i++) this.counts[labels[i] * n + predicted[i]]++;
  }

  /** Examples counted. */
  get total(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }

  /** Examples on the diagonal. */
  get correct(): number {
    const n = this.classes.length;
    let sum = 0;
    for (let c = 0; c < n; c++) sum += this.counts[c * n + c];
    return sum;
  }

  /** The matrix as rows (true class) of columns (predicted class). */
  rows(): number[][] {
    const n = this.classes.length;
    return this.classes.map((_, t) => Array.from(this.counts.subarray(t * n, (t + 1) * n)));
  }

  /** Accuracy of each class. */
  perClass(): ClassResult[] {
    return this.rows().map((row, label) => {
      const count = row.reduce((a, b) => a + b, 0);
      const correct = row[label];
      return { label, name: this.classes[label], count, correct, accuracy: correct / count };
    });
  }
}

/** `fraction` as a percentage with `digits` decimals, e.g. "98.12%"; "-" for NaN. */
export function percent(fraction: number, digits = 2): string {
  return Number.isNaN(fraction) ? "-" : `${(fraction * 100).toFixed(digits)}%`;
}

/** Rows of cells as aligned columns: the first left-aligned (names), the others right-aligned. */
export function formatTable(rows: readonly (readonly string[])[], indent = "  "): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => widths[i] = Math.max(widths[i] ?? 0, cell.length));
  }
  return rows.map((row) =>
    indent + row.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))
      .join("  ").trimEnd()
  ).join("\n");
}

/** The label shown for class `label`: "7" for digits, "0 T-shirt/top" for named classes. */
export function classLabel(classes: readonly string[], label: number): string {
  return classes[label] === String(label) ? String(label) : `${label} ${classes[label]}`;
}

/** A per-class accuracy table: class, accuracy, correct, count. */
export function formatPerClass(matrix: ConfusionMatrix): string {
  const rows = matrix.perClass().map((r) => [
    classLabel(matrix.classes, r.label),
    percent(r.accuracy),
    String(r.correct),
    String(r.count),
  ]);
  return formatTable([["class", "accuracy", "correct", "count"], ...rows]);
}

/** The confusion matrix, rows = true class (with names), columns = predicted class index. */
export function formatConfusion(matrix: ConfusionMatrix): string {
  const header = ["true \\ predicted", ...matrix.classes.map((_, i) => String(i))];
  const rows = matrix.rows().map((row, t) => [
    classLabel(matrix.classes, t),
    ...row.map(String),
  ]);
  return formatTable([header, ...rows]);
}

/** One of the most probable classes. */
export interface Ranked {
  /** Class index. */
  label: number;
  /** Its probability. */
  probability: number;
}

/** The `k` largest entries of `probabilities`, most probable first (ties: lower index first). */
export function topK(probabilities: ArrayLike<number>, k: number): Ranked[] {
  return Array.from(probabilities, (probability, label) => ({ label, probability }))
    .sort((a, b) => b.probability - a.probability || a.label - b.label)
    .slice(0, k);
}

/** The median of `values` (mean of the middle two for an even count; NaN when empty). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The arithmetic mean of `values` (NaN when empty). */
export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}
