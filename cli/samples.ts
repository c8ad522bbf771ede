/**
 * `deno task samples`: writes the first few test images of each class as 28×28 greyscale PNGs
 * (white ink on black, exactly the dataset's bytes) for `deno task demo` to classify. File names
 * carry the class and the test index, e.g. `digit-7-test-0.png` or `ankle-boot-9-test-0.png`.
 * Running it again rewrites nothing that is already identical.
 *
 * @module
 */

import { basename, join, relative } from "node:path";
import { type DatasetName, DATASETS, loadSplit } from "../data/datasets.ts";
import { encodePng } from "../data/image.ts";
import { FileWriteError, writeFileAtomic } from "../util/atomic.ts";
import {
  choiceFlag,
  type FlagSpec,
  formatHelp,
  numberFlag,
  parseFlags,
  runTask,
  SHARED_FLAGS,
} from "./common.ts";
import { enterCallerDirectory, repoPath } from "./report.ts";

const FLAGS: Record<string, FlagSpec> = {
  "dataset": { type: "string", value: "NAME", help: "mnist (default) or fashion-mnist" },
  "per-class": { type: "string", value: "N", help: "images per class (default 2)" },
  "out": {
    type: "string",
    value: "DIR",
    help: "output folder (default data/samples/, or data/samples/fashion/ for Fashion-MNIST)",
  },
  "data-dir": SHARED_FLAGS.dataDir,
  help: SHARED_FLAGS.help,
};

const USAGE = "Usage: deno task samples [options]";
const DESCRIPTION = "Writes the first N test images of each class as 28×28 PNGs for the demo.";

/** The file name of a sample: class slug (or "digit"), label and test index. */
export function sampleName(dataset: DatasetName, label: number, index: number): string {
  const kind = dataset === "mnist"
    ? "digit"
    : DATASETS[dataset].classes[label].toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return `${kind}-${label}-test-${index}.png`;
}

/**
 * The class a sample file's name states, when it is named as {@linkcode sampleName} names
 * samples of `dataset` (a Fashion sample does not state a digit); otherwise undefined.
 */
export function sampleLabel(path: string, dataset: DatasetName): number | undefined {
  const name = basename(path);
  const match = /-(\d+)-test-(\d+)\.png$/.exec(name);
  if (!match) return undefined;
  const label = Number(match[1]);
  if (label >= DATASETS[dataset].classes.length) return undefined;
  return sampleName(dataset, label, Number(match[2])) === name ? label : undefined;
}

/** The test indices of the first `perClass` examples of each class, by class. */
export function firstOfEachClass(
  labels: Uint8Array,
  classes: number,
  perClass: number,
): number[][] {
  const picked: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0, left = classes * perClass; i < labels.length && left > 0; i++) {
    const bucket = picked[labels[i]];
    if (bucket.length < perClass) {
      bucket.push(i);
      left--;
    }
  }
  return picked;
}

async function sameBytes(path: string, bytes: Uint8Array): Promise<boolean> {
  try {
    const old = await Deno.readFile(path);
    return old.length === bytes.length && old.every((b, i) => b === bytes[i]);
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  const { values } = parseFlags(Deno.args, FLAGS);
  if (values.help) {
    console.log(formatHelp(USAGE, DESCRIPTION, FLAGS));
    return 0;
  }
  enterCallerDirectory();
  const dataset = choiceFlag(values, "dataset", Object.keys(DATASETS) as DatasetName[]) ??
    "mnist";
  const perClass = numberFlag(values, "per-class", { min: 1, max: 1000, integer: true }) ?? 2;
  const out = (values.out as string | undefined) ??
    (dataset === "mnist" ? repoPath("data", "samples") : repoPath("data", "samples", "fashion"));

  const test = await loadSplit(dataset, "test", {
    dataDir: values["data-dir"] as string | undefined,
    baseDir: repoPath(),
    progress: Deno.stderr, // a download's progress bar (the library draws none by default)
  });
  console.log(`data: ${test.source.description}`);
  try {
    await Deno.mkdir(out, { recursive: true });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists || error instanceof Deno.errors.NotADirectory) {
      throw new FileWriteError(out, new Error(`--out ${out} is a file, not a folder`));
    }
    throw new FileWriteError(out, error);
  }
  const { rows, cols, pixels } = test.images;
  const plane = rows * cols;
  let written = 0, unchanged = 0;
  for (
    const [label, indices] of firstOfEachClass(test.labels, test.classes.length, perClass).entries()
  ) {
    for (const index of indices) {
      const png = await encodePng(pixels.subarray(index * plane, (index + 1) * plane), cols, rows);
      const path = join(out, sampleName(dataset, label, index));
      if (await sameBytes(path, png)) {
        unchanged++;
      } else {
        await writeFileAtomic(path, png);
        written++;
      }
    }
  }
  console.log(
    `${DATASETS[dataset].title} test samples in ${
      relative(Deno.cwd(), out) || "."
    }: ${written} written, ${unchanged} unchanged`,
  );
  return 0;
}

if (import.meta.main) await runTask("samples", main);
