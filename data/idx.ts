/**
 * IDX files, the format of MNIST and Fashion-MNIST: a 4-byte magic (two zero bytes, a type code,
 * the number of dimensions), one big-endian uint32 per dimension, then the data. Files may be
 * gzipped; that is detected from the content, not the name. The data stay as `Uint8Array` views of
 * the file buffer: no per-pixel copy, no Float32 expansion of the whole set.
 *
 * @module
 */

import { type FileHandle, openFile, readFile, streamFile } from "../autograd/platform/files.ts";
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

/** Bytes of an IDX header: the magic, then one uint32 per dimension. */
function headerBytes(ndims: number): number {
  return 4 + 4 * ndims;
}

/**
 * Checks the magic of an IDX file (its first 4 bytes) against `expected` when given, else that
 * it is an unsigned-byte IDX file of 1 to 4 dimensions. Returns the number of dimensions.
 */
function checkMagic(head: Uint8Array, source: string, expected?: number): number {
  const magic = ((head[0] << 24) | (head[1] << 16) | (head[2] << 8) | head[3]) >>> 0;
  const ndims = head[3];
  if (expected !== undefined && magic !== expected) {
    const what = expected === IDX_IMAGES_MAGIC ? "an image file" : "a label file";
    throw new DataError(
      `${source}: wrong magic for ${what}: expected ${hex(expected)} (${expected}), got ` +
        `${hex(magic)} (${magic})`,
    );
  }
  if (head[0] !== 0 || head[1] !== 0 || head[2] !== TYPE_UBYTE || ndims < 1 || ndims > 4) {
    throw new DataError(
      `${source}: not an unsigned-byte IDX file: magic ${hex(magic)}, expected ` +
        `${hex(IDX_IMAGES_MAGIC)} (${IDX_IMAGES_MAGIC}, images) or ` +
        `${hex(IDX_LABELS_MAGIC)} (${IDX_LABELS_MAGIC}, labels)`,
    );
  }
  return ndims;
}

/** The dimensions in a complete header and the total size of the file they imply. */
function readDims(header: Uint8Array, ndims: number): { dims: number[]; expected: number } {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const dims: number[] = [];
  let elements = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    elements *= d;
  }
  return { dims, expected: headerBytes(ndims) + elements };
}

function sizeError(
  source: string,
  actual: number | string,
  expected: number,
  dims: number[],
  short: boolean,
): DataError {
  const header = expected - dims.reduce((a, b) => a * b, 1);
  return new DataError(
    `${source}: ${short ? "truncated" : "too long"}: expected ${expected} bytes (${header}-byte ` +
      `header + ${dims.join("×")} bytes of data), got ${actual}`,
  );
}

function gzipError(source: string, error: unknown): DataError {
  return new DataError(
    `${source}: not valid gzip data (${errorText(error)}); the file is probably truncated or ` +
      `corrupted, delete it and provide it again`,
    { cause: error },
  );
}

/**
 * Decompresses gzip data with the runtime's `DecompressionStream`, refusing output longer than
 * `maxBytes` as soon as it is exceeded (the whole output is never held beyond that bound).
 *
 * @param bytes The compressed bytes.
 * @param source Named in the error if the data are not valid gzip (truncated download, ...).
 * @param maxBytes Most output bytes accepted (default: no bound).
 */
export async function gunzip(
  bytes: Uint8Array,
  source: string,
  maxBytes = Infinity,
): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
  const out = new Accumulator();
  await inflate(stream, source, (chunk) => {
    if (out.length + chunk.length > maxBytes) {
      throw new DataError(
        `${source}: decompresses to more than ${maxBytes} bytes; stopped there`,
      );
    }
    out.push(chunk);
  });
  return out.bytes();
}

/** Feeds the decompressed chunks of a gzip stream to `take`, which may throw to stop early. */
async function inflate(
  stream: ReadableStream<Uint8Array>,
  source: string,
  take: (chunk: Uint8Array) => void,
): Promise<void> {
  const reader = (stream as ReadableStream<BufferSource>)
    .pipeThrough(new DecompressionStream("gzip")).getReader();
  try {
    while (true) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        throw gzipError(source, error);
      }
      if (result.done) return;
      take(result.value);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** A growable byte buffer: doubles as needed, never beyond the bytes pushed. */
class Accumulator {
  #buffer = new Uint8Array(1 << 16);
  length = 0;

  push(chunk: Uint8Array): void {
    if (this.length + chunk.length > this.#buffer.length) {
      let size = this.#buffer.length;
      while (size < this.length + chunk.length) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.#buffer.subarray(0, this.length));
      this.#buffer = grown;
    }
    this.#buffer.set(chunk, this.length);
    this.length += chunk.length;
  }

  bytes(): Uint8Array {
    return this.#buffer.subarray(0, this.length);
  }
}

/**
 * Parses the bytes of an uncompressed IDX file. The length must be exactly the header plus the
 * product of the dimensions: a shorter file is truncated, a longer one is not what it claims.
 *
 * @param bytes The whole file.
 * @param source Named in error messages (usually the file path).
 * @param expectedMagic When given, a file with another magic is refused before its size is read.
 */
export function parseRawIdx(bytes: Uint8Array, source: string, expectedMagic?: number): IdxArray {
  if (bytes.length < 4) {
    throw new DataError(
      `${source}: ${bytes.length} bytes is too short for an IDX file (at least 4 needed)`,
    );
  }
  const ndims = checkMagic(bytes, source, expectedMagic);
  const magic = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, false);
  const header = headerBytes(ndims);
  if (bytes.length < header) {
    throw new DataError(
      `${source}: truncated header: expected at least ${header} bytes, got ${bytes.length}`,
    );
  }
  const { dims, expected } = readDims(bytes, ndims);
  if (bytes.length !== expected) {
    throw sizeError(source, bytes.length, expected, dims, bytes.length < expected);
  }
  return { magic, dims, data: bytes.subarray(header), source };
}

/**
 * Decompresses and parses a gzipped IDX stream. The header is read first; the output is then
 * bounded by the size it declares: decompression stops as soon as the data exceed it, so a small
 * file that inflates to gigabytes (a gzip bomb) costs no more memory than its header claims, and
 * the buffer grows with the data actually inflated rather than with the claim.
 */
async function parseGzipIdx(
  stream: ReadableStream<Uint8Array>,
  source: string,
  expectedMagic?: number,
): Promise<IdxArray> {
  const out = new Accumulator();
  let limit = Infinity;
  let dims: number[] = [];
  let checkedMagic = false;
  await inflate(stream, source, (chunk) => {
    if (out.length + chunk.length > limit) {
      throw sizeError(source, `more (decompression stopped there)`, limit, dims, false);
    }
    out.push(chunk);
    if (!checkedMagic && out.length >= 4) {
      checkMagic(out.bytes(), source, expectedMagic);
      checkedMagic = true;
    }
    if (limit === Infinity && checkedMagic) {
      const ndims = out.bytes()[3];
      if (out.length >= headerBytes(ndims)) {
        ({ dims, expected: limit } = readDims(out.bytes(), ndims));
        if (out.length > limit) {
          throw sizeError(source, `more (decompression stopped there)`, limit, dims, false);
        }
      }
    }
  });
  return parseRawIdx(out.bytes(), source, expectedMagic);
}

/**
 * Parses an IDX file, raw or gzipped. Gzipped data are inflated no further than the size the
 * header declares.
 *
 * @param bytes The file's bytes.
 * @param source Named in error messages (usually the file path).
 * @param expectedMagic When given, a file with another magic is refused as such.
 */
export async function parseIdx(
  bytes: Uint8Array,
  source: string,
  expectedMagic?: number,
): Promise<IdxArray> {
  if (!isGzip(bytes)) return parseRawIdx(bytes, source, expectedMagic);
  return await parseGzipIdx(
    new Blob([bytes as Uint8Array<ArrayBuffer>]).stream(),
    source,
    expectedMagic,
  );
}

/** `head`, then the chunks of `rest`; cancelling the result cancels `rest`. */
function prepend(head: Uint8Array, rest: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = rest.getReader();
  let first = head.length > 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (first) {
        first = false;
        controller.enqueue(head);
        return;
      }
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

/**
 * Reads and parses an IDX file (raw or gzipped) from disk (Deno, Node). A gzipped file is streamed from disk
 * through the decompressor (bounded as in {@linkcode parseIdx}); a raw file's size is compared
 * with its header before the data are read.
 *
 * @param path The file.
 * @param expectedMagic When given, a file with another magic is refused as such.
 */
export async function readIdxFile(path: string, expectedMagic?: number): Promise<IdxArray> {
  let file: FileHandle;
  try {
    file = await openFile(path, "read");
  } catch (error) {
    throw new DataError(`${path}: cannot read (${errorText(error)})`, { cause: error });
  }
  let closed = false;
  try {
    const head = new Uint8Array(24);
    let got = 0;
    while (got < head.length) {
      const n = await file.read(head.subarray(got));
      if (n === null) break;
      got += n;
    }
    const start = head.subarray(0, got);
    if (isGzip(start)) {
      // The header bytes already read go first, then the rest of the file, in one stream.
      const rest = streamFile(file);
      closed = true; // the stream closes the file when it ends or is cancelled
      return await parseGzipIdx(prepend(start.slice(), rest), path, expectedMagic);
    }
    const size = await file.size();
    if (got >= 4) {
      const ndims = checkMagic(start, path, expectedMagic);
      if (got >= headerBytes(ndims)) {
        const { dims, expected } = readDims(start, ndims);
        if (size !== expected) throw sizeError(path, size, expected, dims, size < expected);
      }
    }
    file.close();
    closed = true;
    return parseRawIdx(await readFile(path), path, expectedMagic);
  } catch (error) {
    if (error instanceof DataError) throw error;
    throw new DataError(`${path}: cannot read (${errorText(error)})`, { cause: error });
  } finally {
    if (!closed) file.close();
  }
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
  return idxToImages(await readIdxFile(path, IDX_IMAGES_MAGIC));
}

/** Reads a label file (raw or gzipped IDX, magic 2049). */
export async function readLabels(path: string): Promise<Uint8Array> {
  return idxToLabels(await readIdxFile(path, IDX_LABELS_MAGIC));
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
