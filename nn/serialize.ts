/**
 * Safetensors checkpoints: the format PyTorch users share weights in.
 *
 * Layout: 8 bytes little-endian u64 header length `N`; `N` bytes of UTF-8 JSON mapping each tensor
 * name to `{"dtype", "shape", "data_offsets": [begin, end]}` plus an optional `"__metadata__"`
 * string-to-string map; then the data section, tensors packed back to back with no holes.
 *
 * This module works on plain row-major Float32 data ({@linkcode StoredTensor}) so it does not
 * depend on the Tensor class; `Module.stateDict()` converts at the boundary. It writes F32 only,
 * and reads F32, F64, F16 and BF16 (converted to Float32). Every header field is validated before
 * any tensor memory is allocated, because checkpoint files come from strangers.
 *
 * @module
 */

import { writeFileAtomic } from "../util/atomic.ts";
import { openSequential, type SequentialFile } from "../util/read.ts";

/** One tensor as stored in a safetensors file: row-major data, `data.length` = product(shape). */
export interface StoredTensor {
  /** Dimensions; `[]` is a scalar holding one element. */
  shape: number[];
  /** Row-major values. */
  data: Float32Array;
}

/** What a safetensors file holds: tensors by name and the `__metadata__` string map. */
export interface SafetensorsContents {
  /** Tensors by name, always converted to Float32. */
  tensors: Record<string, StoredTensor>;
  /** The `__metadata__` map; empty when the file has none. */
  metadata: Record<string, string>;
}

/** A malformed or unsupported safetensors file, or unwritable input; message names file and key. */
export class SafetensorsError extends Error {
  /** The file (or other source) at fault. */
  readonly source: string;
  /** The header key at fault, when there is one. */
  readonly key: string | undefined;

  /**
   * Builds the message `source: tensor "key": problem`.
   *
   * @param source File path or description of the bytes.
   * @param key Header key at fault, or undefined for file-level problems.
   * @param problem What was expected and what was found.
   */
  constructor(source: string, key: string | undefined, problem: string) {
    super(`${source}: ${key === undefined ? "" : `${describeKey(key)}: `}${problem}`);
    this.name = "SafetensorsError";
    this.source = source;
    this.key = key;
  }
}

/**
 * Largest header accepted, in bytes. The same bound as the reference implementation: real headers
 * are kilobytes, and a bigger claim is a corrupt or hostile file.
 */
export const MAX_HEADER_BYTES = 100_000_000;

/** The reserved header key holding the free-form string map. */
const METADATA_KEY = "__metadata__";

/** Bytes per element of each dtype we can read. */
const DTYPE_BYTES: Readonly<Record<string, number>> = { F32: 4, F64: 8, F16: 2, BF16: 2 };

const utf8 = new TextEncoder();
/** Fatal so that invalid UTF-8 is an error rather than silently replaced characters. */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Bulk byte copies are only valid when the host already stores floats little-endian. */
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function describeKey(key: string): string {
  return key === METADATA_KEY ? METADATA_KEY : `tensor ${JSON.stringify(key)}`;
}

/** A short rendering of an arbitrary JSON value for "found ..." parts of messages. */
function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  const shown = text.length > 60 ? `${text.slice(0, 57)}...` : text;
  if (value === null) return "null";
  if (Array.isArray(value)) return `array ${shown}`;
  return `${typeof value} ${shown}`;
}

/**
 * Orders names by Unicode code point (= UTF-8 byte order), the order Rust and Python sort strings
 * in; JavaScript's default sort compares UTF-16 units, which differs above U+FFFF.
 */
function compareCodePoints(a: string, b: string): number {
  const ai = a[Symbol.iterator]();
  const bi = b[Symbol.iterator]();
  for (;;) {
    const x = ai.next();
    const y = bi.next();
    if (x.done || y.done) return x.done ? (y.done ? 0 : -1) : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

/** Sets an own property even for names like `__proto__`, which plain assignment would swallow. */
function defineEntry<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

// ---------------------------------------------------------------------------------------------
// Writing

function encodeWithSource(
  tensors: Record<string, StoredTensor>,
  metadata: Record<string, string> | undefined,
  source: string,
): Uint8Array {
  const names = Object.keys(tensors).sort(compareCodePoints);
  const parts: string[] = [];

  const metaKeys = metadata === undefined ? [] : Object.keys(metadata).sort(compareCodePoints);
  if (metaKeys.length > 0) {
    const fields: string[] = [];
    for (const key of metaKeys) {
      const value = metadata![key];
      if (typeof value !== "string") {
        throw new SafetensorsError(
          source,
          METADATA_KEY,
          `value of ${JSON.stringify(key)} must be a string, found ${describeValue(value)}`,
        );
      }
      if (!key.isWellFormed() || !value.isWellFormed()) {
        throw new SafetensorsError(
          source,
          METADATA_KEY,
          `entry ${JSON.stringify(key)} contains a lone UTF-16 surrogate, which UTF-8 cannot hold`,
        );
      }
      fields.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
    }
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${fields.join(",")}}`);
  }

  let dataBytes = 0;
  for (const name of names) {
    const { shape, data } = tensors[name];
    if (name === METADATA_KEY) {
      throw new SafetensorsError(source, name, `"${METADATA_KEY}" is reserved, not a tensor name`);
    }
    if (!name.isWellFormed()) {
      throw new SafetensorsError(
        source,
        name,
        "name contains a lone UTF-16 surrogate, which UTF-8 cannot hold",
      );
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
      throw new SafetensorsError(
        source,
        name,
        `shape must be an array of non-negative integers, found ${describeValue(shape)}`,
      );
    }
    if (!(data instanceof Float32Array)) {
      throw new SafetensorsError(
        source,
        name,
        `data must be a Float32Array, found ${Object.prototype.toString.call(data)}`,
      );
    }
    const count = elementCount(shape);
    if (data.length !== count) {
      throw new SafetensorsError(
        source,
        name,
        `shape [${shape.join(", ")}] needs ${count} elements, but data has ${data.length}`,
      );
    }
    const begin = dataBytes;
    dataBytes += data.byteLength;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"F32","shape":[${shape.join(",")}],` +
        `"data_offsets":[${begin},${dataBytes}]}`,
    );
  }

  // Built by hand rather than JSON.stringify(object): objects enumerate integer-like keys ("0",
  // "10") before all others, which would break the sorted, offset-ordered layout.
  const json = utf8.encode(`{${parts.join(",")}}`);
  // Pad with spaces so the data section starts 8-byte aligned in the file.
  const headerBytes = Math.ceil((8 + json.length) / 8) * 8 - 8;
  if (headerBytes > MAX_HEADER_BYTES) {
    throw new SafetensorsError(
      source,
      undefined,
      `header would be ${headerBytes} bytes, over the ${MAX_HEADER_BYTES}-byte limit readers enforce`,
    );
  }

  const out = new Uint8Array(8 + headerBytes + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerBytes);

  let at = 8 + headerBytes;
  for (const name of names) {
    const data = tensors[name].data;
    if (LITTLE_ENDIAN_HOST) {
      out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    } else {
      const view = new DataView(out.buffer, at, data.byteLength);
      for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
    }
    at += data.byteLength;
  }
  return out;
}

/**
 * Serialises tensors to safetensors bytes (dtype F32). Keys are written sorted by name, data in
 * the same order, header padded with spaces to a multiple of 8: the same input always gives the
 * same bytes.
 *
 * @param tensors Tensors by name; `"__metadata__"` is reserved and refused.
 * @param metadata Optional string-to-string map stored as `__metadata__` (omitted when empty).
 * @returns The complete file contents.
 * @throws {SafetensorsError} When a shape does not match its data or a name is unusable.
 */
export function encodeSafetensors(
  tensors: Record<string, StoredTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  return encodeWithSource(tensors, metadata, "encodeSafetensors");
}

/**
 * Writes a safetensors file atomically (temporary file, fsync, rename): a crash leaves the old
 * file or the new one, never a truncated checkpoint.
 *
 * @param path Destination; its folder must exist.
 * @param tensors Tensors by name.
 * @param metadata Optional `__metadata__` string map (model name, config, metrics...).
 * @throws {SafetensorsError} When the tensors cannot be encoded.
 */
export async function saveSafetensors(
  path: string,
  tensors: Record<string, StoredTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeWithSource(tensors, metadata, path));
}

// ---------------------------------------------------------------------------------------------
// Reading

/** A validated header entry. */
interface Entry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

interface ParsedHeader {
  entries: Entry[];
  metadata: Record<string, string>;
}

/** Reads the u64 header length and checks it against the limit and the bytes available. */
function parseHeaderLength(prefix: Uint8Array, fileBytes: number, source: string): number {
  const claimed = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  // Compared as bigint: a claim near 2^64 does not survive conversion to number.
  if (claimed > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      source,
      undefined,
      `header length is ${claimed} bytes, over the limit of ${MAX_HEADER_BYTES} bytes ` +
        `(corrupt file, or not a safetensors file)`,
    );
  }
  const available = fileBytes - 8;
  if (claimed > BigInt(available)) {
    throw new SafetensorsError(
      source,
      undefined,
      `header length is ${claimed} bytes, but only ${available} bytes follow the 8-byte ` +
        `length prefix (file truncated?)`,
    );
  }
  return Number(claimed);
}

/** Parses and validates the JSON header against a data section of `dataBytes` bytes. */
function parseHeader(header: Uint8Array, dataBytes: number, source: string): ParsedHeader {
  if (header.length === 0 || header[0] !== 0x7b) {
    const found = header.length === 0
      ? "an empty header"
      : `byte 0x${header[0].toString(16).padStart(2, "0")}`;
    throw new SafetensorsError(
      source,
      undefined,
      `header must start with "{" (0x7b), found ${found}`,
    );
  }
  let text: string;
  try {
    text = strictUtf8.decode(header);
  } catch {
    throw new SafetensorsError(source, undefined, "header is not valid UTF-8");
  }
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new SafetensorsError(source, undefined, `header is not valid JSON: ${detail}`);
  }
  if (!isPlainObject(root)) {
    throw new SafetensorsError(
      source,
      undefined,
      `header must be a JSON object, found ${describeValue(root)}`,
    );
  }

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const name of Object.keys(root)) {
    const value = root[name];
    if (name === METADATA_KEY) {
      if (!isPlainObject(value)) {
        throw new SafetensorsError(
          source,
          name,
          `must be an object of strings, found ${describeValue(value)}`,
        );
      }
      for (const key of Object.keys(value).sort(compareCodePoints)) {
        const item = value[key];
        if (typeof item !== "string") {
          throw new SafetensorsError(
            source,
            name,
            `value of ${JSON.stringify(key)} must be a string, found ${describeValue(item)}`,
          );
        }
        defineEntry(metadata, key, item);
      }
      continue;
    }
    entries.push(parseEntry(name, value, dataBytes, source));
  }

  checkCoverage(entries, dataBytes, source);
  entries.sort((a, b) => compareCodePoints(a.name, b.name));
  return { entries, metadata };
}

function parseEntry(name: string, value: unknown, dataBytes: number, source: string): Entry {
  if (!isPlainObject(value)) {
    throw new SafetensorsError(
      source,
      name,
      `expected an object {"dtype", "shape", "data_offsets"}, found ${describeValue(value)}`,
    );
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    throw new SafetensorsError(
      source,
      name,
      `unsupported dtype ${
        typeof dtype === "string" ? JSON.stringify(dtype) : describeValue(dtype)
      }: expected one of ` +
        `${Object.keys(DTYPE_BYTES).join(", ")}`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    throw new SafetensorsError(
      source,
      name,
      `shape must be an array of non-negative integers, found ${describeValue(shape)}`,
    );
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)
  ) {
    throw new SafetensorsError(
      source,
      name,
      `data_offsets must be [begin, end] of non-negative integers, found ${describeValue(offsets)}`,
    );
  }
  const [begin, end] = offsets as number[];
  if (begin > end) {
    throw new SafetensorsError(
      source,
      name,
      `data_offsets [${begin}, ${end}] must have begin <= end`,
    );
  }
  if (end > dataBytes) {
    throw new SafetensorsError(
      source,
      name,
      `data_offsets [${begin}, ${end}] end past the data section, which has only ` +
        `${dataBytes} bytes (file truncated?)`,
    );
  }
  const needed = elementCount(shape) * DTYPE_BYTES[dtype];
  if (needed !== end - begin) {
    throw new SafetensorsError(
      source,
      name,
      `shape [${shape.join(", ")}] of ${dtype} needs ${needed} bytes, but data_offsets ` +
        `[${begin}, ${end}] span ${end - begin}`,
    );
  }
  return { name, dtype, shape: [...shape], begin, end };
}

/** The spec forbids holes and overlaps: sorted by offset, entries must tile [0, dataBytes). */
function checkCoverage(entries: Entry[], dataBytes: number, source: string): void {
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: Entry | undefined;
  for (const entry of byOffset) {
    if (entry.begin < cursor) {
      throw new SafetensorsError(
        source,
        entry.name,
        `data_offsets [${entry.begin}, ${entry.end}] overlap ${describeKey(previous!.name)} ` +
          `at [${previous!.begin}, ${previous!.end}]; expected begin ${cursor}`,
      );
    }
    if (entry.begin > cursor) {
      throw new SafetensorsError(
        source,
        entry.name,
        `data_offsets [${entry.begin}, ${entry.end}] leave a gap: bytes [${cursor}, ` +
          `${entry.begin}) belong to no tensor; expected begin ${cursor}`,
      );
    }
    cursor = entry.end;
    previous = entry;
  }
  if (cursor !== dataBytes) {
    throw new SafetensorsError(
      source,
      undefined,
      `data section has ${dataBytes} bytes but the tensors cover only the first ${cursor} ` +
        `(trailing bytes belong to no tensor)`,
    );
  }
}

function halfToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  let fraction = h & 0x3ff;
  if (exponent === 0x1f) return sign | 0x7f800000 | (fraction << 13);
  if (exponent !== 0) return sign | ((exponent + 112) << 23) | (fraction << 13);
  if (fraction === 0) return sign;
  // Subnormal half: normalise, since every half subnormal is a normal float32.
  let shift = -1;
  do {
    fraction <<= 1;
    shift += 1;
  } while ((fraction & 0x400) === 0);
  return sign | ((112 - shift) << 23) | ((fraction & 0x3ff) << 13);
}

/** Copies one tensor out of the data section, converting to Float32. */
function readTensor(entry: Entry, data: Uint8Array): Float32Array {
  const count = elementCount(entry.shape);
  const out = new Float32Array(count);
  const length = entry.end - entry.begin;
  if (entry.dtype === "F32" && LITTLE_ENDIAN_HOST) {
    // Byte copy into the fresh, aligned buffer: works whatever the source alignment.
    new Uint8Array(out.buffer).set(data.subarray(entry.begin, entry.end));
    return out;
  }
  const view = new DataView(data.buffer, data.byteOffset + entry.begin, length);
  switch (entry.dtype) {
    case "F32":
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case "F64":
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    case "F16": {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = halfToFloatBits(view.getUint16(i * 2, true));
      break;
    }
    case "BF16": {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      break;
    }
  }
  return out;
}

function readTensors(header: ParsedHeader, data: Uint8Array): SafetensorsContents {
  const tensors: Record<string, StoredTensor> = {};
  for (const entry of header.entries) {
    defineEntry(tensors, entry.name, { shape: entry.shape, data: readTensor(entry, data) });
  }
  return { tensors, metadata: header.metadata };
}

/**
 * Parses safetensors bytes, validating the whole header before allocating tensor memory.
 * Data may sit at any alignment in `bytes`; every returned tensor owns a fresh Float32Array.
 *
 * @param bytes The complete file contents.
 * @param source Name used in error messages (usually the file path).
 * @returns Tensors (F32/F64/F16/BF16 converted to Float32) and metadata.
 * @throws {SafetensorsError} On any deviation from the format, naming the key at fault.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  source = "<safetensors bytes>",
): SafetensorsContents {
  if (bytes.length < 8) {
    throw new SafetensorsError(
      source,
      undefined,
      `expected at least 8 bytes (the header length), found ${bytes.length}`,
    );
  }
  const headerBytes = parseHeaderLength(bytes.subarray(0, 8), bytes.length, source);
  const dataStart = 8 + headerBytes;
  const header = parseHeader(
    bytes.subarray(8, dataStart),
    bytes.length - dataStart,
    source,
  );
  return readTensors(header, bytes.subarray(dataStart));
}

/** Reads exactly `length` bytes from the current position, or explains the short file. */
async function readExactly(
  file: SequentialFile,
  length: number,
  what: string,
  source: string,
): Promise<Uint8Array> {
  const bytes = await file.read(length);
  if (bytes.length < length) {
    throw new SafetensorsError(
      source,
      undefined,
      `file ended after ${bytes.length} of the ${length} bytes of the ${what} ` +
        `(file changed while reading?)`,
    );
  }
  return bytes;
}

/**
 * Reads a safetensors file. The 8-byte length prefix is read and checked against the file size
 * first, then the header is read and validated, and only then is the data section allocated, so
 * a corrupt or hostile length cannot trigger a huge allocation.
 *
 * @param path File to read.
 * @returns Tensors (converted to Float32) and metadata.
 * @throws {SafetensorsError} On any deviation from the format, naming the file and key.
 */
export async function loadSafetensors(path: string): Promise<SafetensorsContents> {
  const file = await openSequential(path);
  try {
    return await readSafetensorsFile(file, path);
  } finally {
    file.close();
  }
}

async function readSafetensorsFile(
  file: SequentialFile,
  path: string,
): Promise<SafetensorsContents> {
  const size = file.size;
  if (size < 8) {
    throw new SafetensorsError(
      path,
      undefined,
      `expected at least 8 bytes (the header length), found ${size}`,
    );
  }
  const prefix = await readExactly(file, 8, "header length", path);
  const headerBytes = parseHeaderLength(prefix, size, path);
  const dataBytes = size - 8 - headerBytes;
  const header = parseHeader(await readExactly(file, headerBytes, "header", path), dataBytes, path);
  const data = await readExactly(file, dataBytes, "data section", path);
  return readTensors(header, data);
}
