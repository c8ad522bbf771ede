/**
 * Data for tapegrad: IDX files (raw or gzip), the MNIST and Fashion-MNIST datasets with their
 * sources (a folder, the built-in copies, a checksummed download), a batching loader that
 * normalises bytes on the fly, image decoding and MNIST-style preparation, the first-names
 * corpus for character-level models (split, vocabulary, MLP and transformer encodings), and a
 * progress bar.
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
