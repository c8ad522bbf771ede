/**
 * `deno task demo [PATH…]`: classifies image files (PNG, JPEG, GIF, BMP) with a trained model and
 * prints, per file, the predicted class, the top-3 probabilities and two times of the forward pass
 * alone at batch 1: the first pass on that image and the steady state (the median of repeated warm
 * passes), then the means and medians of both. Photos are prepared like MNIST digits (or like
 * Fashion-MNIST products for a model trained on clothes) before they reach the model.
 *
 * @module
 */

import { join, relative } from "node:path";
import { noGrad, Tensor, zeros } from "../autograd/mod.ts";
import { errorText } from "../data/errors.ts";
import { MNIST_SIZE, prepareImageFile } from "../data/image.ts";
import { normalizationFor } from "../data/loader.ts";
import { CheckpointError } from "../nn/mod.ts";
import {
  type FlagSpec,
  formatHelp,
  isUserError,
  numberFlag,
  parseFlags,
  runTask,
  SHARED_FLAGS,
} from "./common.ts";
import {
  classLabel,
  enterCallerDirectory,
  loadClassifier,
  type LoadedClassifier,
  mean,
  median,
  repoPath,
  topK,
} from "./report.ts";
import { sampleLabel } from "./samples.ts";

const FLAGS: Record<string, FlagSpec> = {
  "model": {
    type: "string",
    value: "M",
    help: "mlp (default) or alexnet for the shipped models/mnist-*.safetensors, or a checkpoint",
  },
  "warmup": {
    type: "string",
    value: "N",
    help: "untimed forward passes first, so one-off JIT cost stays out of the times (default 3)",
  },
  "repeat": {
    type: "string",
    value: "N",
    help: "warm passes per image whose median is its steady-state time (default 20; 0: none)",
  },
  "json": { type: "boolean", help: "print one JSON line per file and a summary line" },
  help: SHARED_FLAGS.help,
};

const USAGE = "Usage: deno task demo [options] [PATH…]";
const DESCRIPTION = "Classifies PNG, JPEG, GIF and BMP images: files, or the images in folders\n" +
  "(subfolders are not searched). Default PATH: data/samples/ (data/samples/fashion/ for a\n" +
  "Fashion-MNIST model). Times are of the forward pass alone at batch 1, after the warm-up:\n" +
  "the first pass on each image (caches cold after decoding it) and the steady state (the\n" +
  "median of --repeat passes more on the same input, as an application classifying a stream\n" +
  "of drawings sees it).";

const IMAGE_EXTENSIONS = /\.(png|jpe?g|gif|bmp)$/i;

/** The checkpoint `--model` names: a shipped model by name, or a path as given. */
function modelPath(flag: string): string {
  if (flag !== "mlp" && flag !== "alexnet") return flag;
  const path = repoPath("models", `mnist-${flag}.safetensors`);
  try {
    Deno.statSync(path);
  } catch {
    throw new CheckpointError(
      path,
      `the shipped ${flag} model is missing; train one with \`deno task train --config ${flag} ` +
        `--out runs/${flag}\` and copy runs/${flag}/model.safetensors there, or pass --model PATH`,
    );
  }
  return path;
}

/** What {@linkcode collectFiles} found: files to classify, and paths that gave none. */
interface Collected {
  /** Files in order: named files as given, then each folder's images sorted by name. */
  files: string[];
  /** Folders with no images (or unreadable), each reported as one error line. */
  problems: { path: string; message: string }[];
}

/**
 * The files to classify: named files as they are, folders' image files sorted by name. Symbolic
 * links inside a folder are followed (a link to an image counts as the image; a broken link or a
 * link loop is listed so that it gets its own error line); subfolders are not searched, so a link
 * to a folder cannot loop. A folder without images is one problem, and the other paths go on.
 */
async function collectFiles(paths: string[]): Promise<Collected> {
  const files: string[] = [];
  const problems: Collected["problems"] = [];
  for (const path of paths) {
    let isDirectory = false;
    try {
      isDirectory = (await Deno.stat(path)).isDirectory;
    } catch {
      // A missing file is reported on its own line with the others, like any unreadable file.
    }
    if (!isDirectory) {
      files.push(path);
      continue;
    }
    const names: string[] = [];
    try {
      for await (const entry of Deno.readDir(path)) {
        if (!IMAGE_EXTENSIONS.test(entry.name)) continue;
        if (entry.isFile) names.push(entry.name);
        else if (entry.isSymlink) {
          try {
            if ((await Deno.stat(join(path, entry.name))).isFile) names.push(entry.name);
          } catch {
            names.push(entry.name); // broken or looping: its read fails with the reason
          }
        }
      }
    } catch (error) {
      problems.push({ path, message: `cannot read the folder (${errorText(error)})` });
      continue;
    }
    if (names.length === 0) {
      problems.push({ path, message: "no images found (looked for .png .jpg .jpeg .gif .bmp)" });
      continue;
    }
    names.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
    files.push(...names.map((name) => join(path, name)));
  }
  return { files, problems };
}

/** The result for one file. */
interface Prediction {
  file: string;
  label: number;
  name: string;
  top3: { label: number; name: string; probability: number }[];
  /** The first forward pass on this image, right after decoding it. */
  firstMs: number;
  /** Median of `repeat` more passes on the same input (absent when `repeat` is 0). */
  steadyMs?: number;
  expected?: number;
}

/** Milliseconds of one forward pass at batch 1, with the logits it gave. */
function timedForward(model: LoadedClassifier["model"], x: Tensor): { ms: number; logits: Tensor } {
  const start = performance.now();
  const logits = noGrad(() => model.call(x));
  return { ms: performance.now() - start, logits };
}

async function classify(
  file: string,
  { model, dataset, classes }: LoadedClassifier,
  repeat: number,
): Promise<Prediction> {
  const { pixels } = await prepareImageFile(file, { style: dataset });
  const { mean, std } = normalizationFor(dataset);
  const input = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) input[i] = (pixels[i] / 255 - mean) / std;
  const x = new Tensor(input, [1, 1, MNIST_SIZE, MNIST_SIZE]);
  // Decoding the file has just evicted the weights from the caches, so the first pass pays for
  // reading them from memory; the repeated passes show what the model costs once it is warm.
  const { ms: firstMs, logits } = timedForward(model, x);
  const warm = Array.from({ length: repeat }, () => timedForward(model, x).ms);
  const probabilities = noGrad(() => logits.softmax(1)).toFloat32Array();
  const top3 = topK(probabilities, 3).map((r) => ({ ...r, name: classes[r.label] }));
  const expected = sampleLabel(file, dataset);
  return {
    file,
    label: top3[0].label,
    name: top3[0].name,
    top3,
    firstMs,
    ...(repeat > 0 ? { steadyMs: median(warm) } : {}),
    ...(expected !== undefined ? { expected } : {}),
  };
}

function formatPrediction(p: Prediction, classes: readonly string[], width: number): string {
  const top = p.top3.map((r) => `${r.name} ${(r.probability * 100).toFixed(1)}%`).join(", ");
  const check = p.expected === undefined
    ? ""
    : p.expected === p.label
    ? "  ok"
    : `  WRONG (file name says ${classLabel(classes, p.expected)})`;
  return `${p.file.padEnd(width)}  → ${p.name.padEnd(Math.max(...classes.map((c) => c.length)))}` +
    `  (${top})  ${p.firstMs.toFixed(2)} ms first` +
    (p.steadyMs === undefined ? "" : `, ${p.steadyMs.toFixed(3)} ms warm`) + check;
}

async function main(): Promise<number> {
  const { values, positionals } = parseFlags(Deno.args, FLAGS, true);
  if (values.help) {
    console.log(formatHelp(USAGE, DESCRIPTION, FLAGS));
    return 0;
  }
  enterCallerDirectory();
  const warmup = numberFlag(values, "warmup", { min: 0, max: 10_000, integer: true }) ?? 3;
  const repeat = numberFlag(values, "repeat", { min: 0, max: 10_000, integer: true }) ?? 20;
  const json = values.json === true;
  const loaded = await loadClassifier(modelPath((values.model as string | undefined) ?? "mlp"));
  const { model, dataset, classes } = loaded;
  const defaultDir = dataset === "mnist" ? ["data", "samples"] : ["data", "samples", "fashion"];
  const paths = positionals.length > 0
    ? positionals
    : [relative(Deno.cwd(), repoPath(...defaultDir)) || "."];
  const { files, problems } = await collectFiles(paths);

  const blank = zeros([1, 1, MNIST_SIZE, MNIST_SIZE]);
  for (let i = 0; i < warmup; i++) noGrad(() => model.call(blank));

  const width = Math.max(0, ...files.map((f) => f.length), ...problems.map((p) => p.path.length));
  const results: Prediction[] = [];
  let failed = problems.length;
  for (const { path, message } of problems) {
    if (json) console.log(JSON.stringify({ file: path, error: message }));
    else console.error(`${path}: ${message}`);
  }
  for (const file of files) {
    try {
      const p = await classify(file, loaded, repeat);
      results.push(p);
      console.log(json ? JSON.stringify(p) : formatPrediction(p, classes, width));
    } catch (error) {
      if (!isUserError(error)) throw error;
      failed++;
      // Data errors name their file first; the line already starts with it.
      const text = (error as Error).message;
      const message = text.startsWith(`${file}: `) ? text.slice(file.length + 2) : text;
      if (json) console.log(JSON.stringify({ file, error: message }));
      else console.error(`${file.padEnd(width)}  error: ${message}`);
    }
  }

  const times = results.map((r) => r.firstMs);
  const steady = results.flatMap((r) => r.steadyMs === undefined ? [] : [r.steadyMs]);
  const labelled = results.filter((r) => r.expected !== undefined);
  const correct = labelled.filter((r) => r.expected === r.label).length;
  if (json) {
    console.log(JSON.stringify({
      summary: true,
      model: loaded.modelName,
      dataset,
      files: files.length + problems.length,
      classified: results.length,
      failed,
      warmup,
      repeat,
      firstMeanMs: mean(times),
      firstMedianMs: median(times),
      ...(steady.length > 0 ? { steadyMeanMs: mean(steady), steadyMedianMs: median(steady) } : {}),
      ...(labelled.length > 0 ? { labelled: labelled.length, correct } : {}),
    }));
  } else if (results.length > 0) {
    console.log(
      `\n${results.length} of ${files.length} images classified by ${loaded.modelName} ` +
        `(${dataset}); forward pass at batch 1, decoding and preparation not included:`,
    );
    console.log(
      `  first pass per image: mean ${mean(times).toFixed(2)} ms, median ` +
        `${median(times).toFixed(2)} ms (after ${warmup} warm-up passes on a blank image; caches ` +
        `cold after decoding)`,
    );
    if (steady.length > 0) {
      console.log(
        `  steady state:         mean ${mean(steady).toFixed(3)} ms, median ` +
          `${median(steady).toFixed(3)} ms (median of ${repeat} warm passes per image)`,
      );
    }
    if (labelled.length > 0) {
      console.log(`classes stated by file names: ${correct} of ${labelled.length} correct`);
    }
  }
  if (failed > 0 && !json) {
    console.error(`${failed} of ${files.length + problems.length} files failed`);
  }
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) await runTask("demo", main);
