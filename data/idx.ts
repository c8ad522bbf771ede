/**
 * IDX files, the format of MNIST and Fashion-MNIST: a 4-byte magic (two zero bytes, a type code,
 * the number of dimensions), one big-endian uint32 per dimension, then the data. Files may be
 * gzipped; that is detected from the content, not the name. The data stay as `Uint8Array` views of
 * the file buffer: no per-pixel copy, no Float32 expansion of the whole set.
 *
 * @module
 */

import { DataError, errorText } from "./errors.ts";

/** Magic number of an unsigned-byte IDX file with 3 dimensions (images `[n, rows, cols]`). */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** Magic number of an unsigned-byte IDX file with 1 dimension (labels `[n]`). */
export const IDX_LABELS_MAGIC = 0x00000801;

/** The only IDX element type used by the MNIST family: unsigned byte. */
const TYPE_UBYTE = 0x08;

/** A parsed IDX file. */
export interface IdxArray {
  /** The 32-bit magic number, e.g. 2051 for images. */
  magic: number;
  /** The dimensions, outermost first. */
  dims: number[];
  /** The elements, row-major; a view into the (decompressed) file buffer. */
  data: Uint8Array;
  /** Where the bytes came from, used in error messages. */
  source: string;
}

/** A set of greyscale images: `pixels[i * rows * cols + r * cols + c]`, 0 = black. */
export interface IdxImages {
  /** Number of images. */
  count: number;
  /** Height of every image. */
  rows: number;
  /** Width of every image. */
  cols: number;
  /** All pixels, image after image, row-major. */
  pixels: Uint8Array;
}

/** True when `bytes` start with the gzip signature 0x1f 0x8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decompresses gzip data with the runtime's `DecompressionStream`.
 *
 * @param bytes The compressed bytes.
 * @param source Named in the error if the data are not valid gzip (truncated download, ...).
 */
export async function gunzip(bytes: Uint8Array, source: string): Promise<Uint8Array> {
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
      .pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (error) {
    throw new DataError(
      `${source}: not valid gzip data (${errorText(error)}); the file is probably truncated or ` +
        `corrupted, delete it and provide it again`,
      { cause: error },
    );
  }
}

/**
 * Parses the bytes of an uncompressed IDX file. The length must be exactly the header plus the
 * product of the dimensions: a shorter file is truncated, a longer one is not what it claims.
 *
 * @param bytes The whole file.
 * @param source Named in error messages (usually the file path).
 */
export function parseRawIdx(bytes: Uint8Array, source: string): IdxArray {
  if (bytes.length < 4) {
    throw new DataError(
      `${source}: ${bytes.length} bytes is too short for an IDX file (at least 4 needed)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const ndims = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== TYPE_UBYTE || ndims < 1 || ndims > 4) {
    throw new DataError(
      `${source}: not an unsigned-byte IDX file: magic ${hex(magic)}, expected ` +
        `${hex(IDX_IMAGES_MAGIC)} (${IDX_IMAGES_MAGIC}, images) or ` +
        `${hex(IDX_LABELS_MAGIC)} (${IDX_LABELS_MAGIC}, labels)`,
    );
  }
  const header = 4 + 4 * ndims;
  if (bytes.length < header) {
    throw new DataError(
      `${source}: truncated header: expected at least ${header} bytes, got ${bytes.length}`,
    );
  }
  const dims: number[] = [];
  let elements = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    elements *= d;
  }
  const expected = header + elements;
  if (bytes.length !== expected) {
    const what = bytes.length < expected ? "truncated" : "too long";
    throw new DataError(
      `${source}: ${what}: expected ${expected} bytes (${header}-byte header + ` +
        `${dims.join("×")} bytes of data), got ${bytes.length}`,
    );
  }
  return { magic, dims, data: bytes.subarray(header), source };
}

/**
 * Parses an IDX file, raw or gzipped.
 *
 * @param bytes The file's bytes.
 * @param source Named in error messages (usually the file path).
 */
export async function parseIdx(bytes: Uint8Array, source: string): Promise<IdxArray> {
  const raw = isGzip(bytes) ? await gunzip(bytes, source) : bytes;
  return parseRawIdx(raw, source);
}

/** Reads and parses an IDX file (raw or gzipped) from disk. */
export async function readIdxFile(path: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw new DataError(`${path}: cannot read (${errorText(error)})`, { cause: error });
  }
  return await parseIdx(bytes, path);
}

/**
 * Interprets a parsed IDX file as images `[n, rows, cols]` (magic 2051).
 *
 * @param idx The parsed file.
 */
export function idxToImages(idx: IdxArray): IdxImages {
  if (idx.magic !== IDX_IMAGES_MAGIC) {
    throw new DataError(
      `${idx.source}: wrong magic for an image file: expected ${hex(IDX_IMAGES_MAGIC)} ` +
        `(${IDX_IMAGES_MAGIC}), got ${hex(idx.magic)} (${idx.magic})`,
    );
  }
  const [count, rows, cols] = idx.dims;
  return { count, rows, cols, pixels: idx.data };
}

/**
 * Interprets a parsed IDX file as labels `[n]` (magic 2049).
 *
 * @param idx The parsed file.
 */
export function idxToLabels(idx: IdxArray): Uint8Array {
  if (idx.magic !== IDX_LABELS_MAGIC) {
    throw new DataError(
      `${idx.source}: wrong magic for a label file: expected ${hex(IDX_LABELS_MAGIC)} ` +
        `(${IDX_LABELS_MAGIC}), got ${hex(idx.magic)} (${idx.magic})`,
    );
  }
  return idx.data;
}

/** Reads an image file (raw or gzipped IDX, magic 2051). */
export async function readImages(path: string): Promise<IdxImages> {
  return idxToImages(await readIdxFile(path));
}

/** Reads a label file (raw or gzipped IDX, magic 2049). */
export async function readLabels(path: string): Promise<Uint8Array> {
  return idxToLabels(await readIdxFile(path));
}

/**
 * Checks that images and labels belong together: the same count, and every label below
 * `numClasses`.
 *
 * @param images The images of a split.
 * @param labels The labels of the same split.
 * @param numClasses The number of classes; labels must lie in `[0, numClasses)`.
 * @param source Names the split in errors, e.g. the two file paths.
 */
export function checkSplit(
  images: IdxImages,
  labels: Uint8Array,
  numClasses: number,
  source: string,
): void {
  if (images.count !== labels.length) {
    throw new DataError(
      `${source}: ${images.count} images but ${labels.length} labels; the files do not belong ` +
        `to the same split`,
    );
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= numClasses) {
      throw new DataError(
        `${source}: label ${labels[i]} at index ${i} is out of range (${numClasses} classes)`,
      );
    }
  }
}

/** `0x00000803` style. */
function hex(n: number): string {
  return "0x" + (n >>> 0).toString(16).padStart(8, "0");
}
