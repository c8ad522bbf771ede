/**
 * Safetensors checkpoints: the format PyTorch users share weights in.
 *
 * Layout: 8 bytes little-endian u64 header length `N`; `N` bytes of UTF-8 JSON mapping each tensor
 * name to `{"dtype", "shape", "data_offsets": [begin, end]}` plus an optional `"__metadata__"`
 * string-to-string map; then the data section, tensors packed back to back with no holes.
 *
 * This module works on plain row-major typed arrays ({@linkcode StoredTensor}) so it does not
 * depend on the Tensor class; `Module.stateDict()` converts at the boundary. It reads every dtype
 * of the specification but the sub-byte ones into the three element types tapegrad has: floats
 * (F64, F32, F16, BF16, F8_E4M3, F8_E5M2, F8_E8M0) into a Float32Array, integers (I64 … U8) into an
 * Int32Array when every value fits (else an error naming the tensor), BOOL into a Uint8Array of 0
 * and 1. It writes Float32Array data as F32 (or F64, F16, BF16 on request), Int32Array as I32 (or
 * another integer dtype such as PyTorch's I64, range-checked) and Uint8Array as BOOL. Every
 * header field is validated before any tensor memory is allocated, because checkpoint files come
 * from strangers.
 *
 * @module
 */

import { writeFileAtomic } from "../util/atomic.ts";
import { openSequential, type SequentialFile } from "../util/read.ts";

/**
 * The element types of the safetensors specification this module reads (all but the sub-byte
 * F4/F6 formats and complex numbers, which have no tapegrad equivalent).
 */
export type SafetensorsDType =
  | "BOOL"
  | "U8"
  | "I8"
  | "I16"
  | "U16"
  | "I32"
  | "U32"
  | "I64"
  | "U64"
  | "F16"
  | "BF16"
  | "F32"
  | "F64"
  | "F8_E4M3"
  | "F8_E5M2"
  | "F8_E8M0";

/** Row-major element storage: float32, int32, or bool (0/1 bytes), as tapegrad tensors hold. */
export type StoredData = Float32Array | Int32Array | Uint8Array;

/** One tensor as stored in a safetensors file: row-major data, `data.length` = product(shape). */
export interface StoredTensor<A extends StoredData = StoredData> {
  /** Dimensions; `[]` is a scalar holding one element. */
  shape: number[];
  /** Row-major values. */
  data: A;
  /**
   * The dtype in the file. When reading: the dtype the file stored (the data is converted to its
   * tapegrad element type). When writing: the dtype to write, which must suit the data (floats:
   * F32, F64, F16, BF16; integers: any integer dtype whose range holds every value; bool: BOOL);
   * absent means F32, I32 or BOOL.
   */
  dtype?: SafetensorsDType;
}

/** What a safetensors file holds: tensors by name and the `__metadata__` string map. */
export interface SafetensorsContents {
  /** Tensors by name, converted to Float32Array, Int32Array or Uint8Array (see the module doc). */
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
const DTYPE_BYTES: Readonly<Record<SafetensorsDType, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  U16: 2,
  I32: 4,
  U32: 4,
  I64: 8,
  U64: 8,
  F16: 2,
  BF16: 2,
  F32: 4,
  F64: 8,
  F8_E4M3: 1,
  F8_E5M2: 1,
  F8_E8M0: 1,
};

/** The range of each integer dtype, for the checks on writing. */
const INTEGER_RANGE: Readonly<Partial<Record<SafetensorsDType, readonly [number, number]>>> = {
  U8: [0, 255],
  I8: [-128, 127],
  I16: [-32768, 32767],
  U16: [0, 65535],
  I32: [-(2 ** 31), 2 ** 31 - 1],
  U32: [0, 2 ** 32 - 1],
  I64: [-(2 ** 63), 2 ** 63],
  U64: [0, 2 ** 64],
};

/** The dtypes each kind of data may be written as. */
const WRITABLE: Readonly<Record<string, readonly SafetensorsDType[]>> = {
  Float32Array: ["F32", "F64", "F16", "BF16"],
  Int32Array: ["I32", "I64", "I16", "I8", "U8", "U16", "U32", "U64"],
  Uint8Array: ["BOOL"],
};

/** The dtype written when a tensor names none. */
function defaultDType(data: StoredData): SafetensorsDType {
  return data instanceof Float32Array ? "F32" : data instanceof Int32Array ? "I32" : "BOOL";
}

/** The specification's dtypes this module knowingly does not read, for a precise message. */
const UNSUPPORTED_DTYPES: Readonly<Record<string, string>> = {
  F4: "4-bit floats are packed two per byte",
  F6_E2M3: "6-bit floats are packed across bytes",
  F6_E3M2: "6-bit floats are packed across bytes",
  C64: "complex numbers have no tapegrad dtype",
};

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
  const dtypes: SafetensorsDType[] = [];
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
    const kind = Object.prototype.toString.call(data).slice(8, -1);
    if (
      !(data instanceof Float32Array || data instanceof Int32Array || data instanceof Uint8Array)
    ) {
      throw new SafetensorsError(
        source,
        name,
        `data must be a Float32Array, Int32Array or Uint8Array, found ${kind}`,
      );
    }
    const dtype = tensors[name].dtype ?? defaultDType(data);
    if (!WRITABLE[kind].includes(dtype)) {
      throw new SafetensorsError(
        source,
        name,
        `${kind} data cannot be written as ${JSON.stringify(dtype)}: expected one of ` +
          WRITABLE[kind].join(", "),
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
    checkIntegerRange(data, dtype, name, source);
    const begin = dataBytes;
    dataBytes += count * DTYPE_BYTES[dtype];
    dtypes.push(dtype);
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${shape.join(",")}],` +
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
  names.forEach((name, k) => {
    at += writeElements(out, at, tensors[name].data, dtypes[k]);
  });
  return out;
}

/** Throws naming the tensor when an integer does not fit the dtype it is to be written as. */
function checkIntegerRange(
  data: StoredData,
  dtype: SafetensorsDType,
  name: string,
  source: string,
): void {
  const range = INTEGER_RANGE[dtype];
  if (range === undefined || dtype === "I32" || dtype === "I64") return;
  const [min, max] = range;
  for (let i = 0; i < data.length; i++) {
    if (data[i] < min || data[i] > max) {
      throw new SafetensorsError(
        source,
        name,
        `element ${i} is ${data[i]}, outside the range of ${dtype} [${min}, ${max}]`,
      );
    }
  }
}

/** Writes `data` as `dtype`, little-endian, at `at`; returns the bytes written. */
function writeElements(
  out: Uint8Array,
  at: number,
  data: StoredData,
  dtype: SafetensorsDType,
): number {
  const bytes = data.length * DTYPE_BYTES[dtype];
  if (LITTLE_ENDIAN_HOST && (dtype === "F32" || dtype === "I32" || dtype === "BOOL")) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    return bytes;
  }
  const view = new DataView(out.buffer, at, bytes);
  const n = data.length;
  switch (dtype) {
    case "F32":
      for (let i = 0; i < n; i++) view.setFloat32(i * 4, data[i], true);
      break;
    case "F64":
      for (let i = 0; i < n; i++) view.setFloat64(i * 8, data[i], true);
      break;
    case "F16":
      for (let i = 0; i < n; i++) view.setUint16(i * 2, floatToHalf(data[i]), true);
      break;
    case "BF16": {
      const bits = new Uint32Array(Float32Array.from(data).buffer);
      for (let i = 0; i < n; i++) view.setUint16(i * 2, floatBitsToBfloat(bits[i]), true);
      break;
    }
    case "I32":
      for (let i = 0; i < n; i++) view.setInt32(i * 4, data[i], true);
      break;
    case "I64":
    case "U64":
      // int32 values sign-extend into the low and high words (U64 holds only non-negative ones).
      for (let i = 0; i < n; i++) {
        view.setInt32(i * 8, data[i], true);
        view.setInt32(i * 8 + 4, data[i] < 0 ? -1 : 0, true);
      }
      break;
    case "U32":
      for (let i = 0; i < n; i++) view.setUint32(i * 4, data[i], true);
      break;
    case "I16":
      for (let i = 0; i < n; i++) view.setInt16(i * 2, data[i], true);
      break;
    case "U16":
      for (let i = 0; i < n; i++) view.setUint16(i * 2, data[i], true);
      break;
    case "I8":
      for (let i = 0; i < n; i++) view.setInt8(i, data[i]);
      break;
    case "U8":
    case "BOOL":
      for (let i = 0; i < n; i++) view.setUint8(i, data[i]);
      break;
    default:
      throw new Error(`unreachable: cannot write ${dtype}`);
  }
  return bytes;
}

/** float32 → IEEE half, rounding to nearest even; overflow gives ±Infinity, NaN stays NaN. */
function floatToHalf(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  // Unbiased exponent e: half normals have e in [-14, 15], subnormals reach 2^-24.
  const e = exponent - 127;
  if (e > 15) return sign | 0x7c00;
  if (e >= -14) {
    // Normal: keep 10 mantissa bits, round the 13 dropped ones to nearest even.
    let h = ((e + 15) << 10) | (mantissa >>> 13);
    const rest = mantissa & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1; // may carry into Infinity
    return sign | h;
  }
  if (e < -25) return sign; // below half the smallest subnormal: rounds to zero
  // Subnormal: the value is (1.mantissa) · 2^e = m · 2^-24 with m = full >> shift.
  const full = mantissa | 0x800000;
  const shift = -e - 14 + 13; // 14..24
  let h = full >>> shift;
  const rest = full & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && (h & 1) === 1)) h += 1;
  return sign | h;
}

/** float32 bits → bfloat16 (the top half), rounding to nearest even; NaN stays a quiet NaN. */
function floatBitsToBfloat(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/**
 * Serialises tensors to safetensors bytes (F32, I32 or BOOL unless a tensor names its `dtype`). Keys are written sorted by name, data in
 * the same order, header padded with spaces to a multiple of 8: the same input always gives the
 * same bytes.
 *
 * @param tensors Tensors by name; `"__metadata__"` is reserved and refused.
 * @param metadata Optional string-to-string map stored as `__metadata__` (omitted when empty).
 * @returns The complete file contents.
 * @throws {SafetensorsError} When a shape does not match its data, a name is unusable, or a
 *   dtype does not suit the data (an integer outside its range, floats as integers).
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
  dtype: SafetensorsDType;
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
  if (typeof dtype === "string" && Object.hasOwn(UNSUPPORTED_DTYPES, dtype)) {
    throw new SafetensorsError(
      source,
      name,
      `dtype ${JSON.stringify(dtype)} is not supported: ${UNSUPPORTED_DTYPES[dtype]}`,
    );
  }
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
  const needed = elementCount(shape) * DTYPE_BYTES[dtype as SafetensorsDType];
  if (needed !== end - begin) {
    throw new SafetensorsError(
      source,
      name,
      `shape [${shape.join(", ")}] of ${dtype} needs ${needed} bytes, but data_offsets ` +
        `[${begin}, ${end}] span ${end - begin}`,
    );
  }
  return { name, dtype: dtype as SafetensorsDType, shape: [...shape], begin, end };
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

/** Decodes one byte of an 8-bit float with `mantissaBits` and exponent `bias` (E4M3, E5M2). */
function float8(byte: number, mantissaBits: number, bias: number, ieeeSpecials: boolean): number {
  const sign = byte & 0x80 ? -1 : 1;
  const exponentMask = 0x7f >> mantissaBits;
  const exponent = (byte >> mantissaBits) & exponentMask;
  const mantissa = byte & ((1 << mantissaBits) - 1);
  if (ieeeSpecials && exponent === exponentMask) {
    // E5M2 is IEEE-like: an all-ones exponent is Infinity (mantissa 0) or NaN.
    return mantissa === 0 ? sign * Infinity : NaN;
  }
  // E4M3 ("fn": finite) has no infinities; only S.1111.111 is NaN.
  if (!ieeeSpecials && exponent === exponentMask && mantissa === (1 << mantissaBits) - 1) {
    return NaN;
  }
  const scale = 1 << mantissaBits;
  if (exponent === 0) return sign * (mantissa / scale) * 2 ** (1 - bias);
  return sign * (1 + mantissa / scale) * 2 ** (exponent - bias);
}

/** The 256 values of each 8-bit float format, computed once: decoding is then a table lookup. */
const FLOAT8_TABLES: Readonly<Record<"F8_E4M3" | "F8_E5M2" | "F8_E8M0", Float32Array>> = {
  F8_E4M3: Float32Array.from({ length: 256 }, (_, b) => float8(b, 3, 7, false)),
  F8_E5M2: Float32Array.from({ length: 256 }, (_, b) => float8(b, 2, 15, true)),
  // E8M0 is an unsigned power of two (microscaling block scales): 2^(b − 127), 0xFF is NaN.
  F8_E8M0: Float32Array.from({ length: 256 }, (_, b) => (b === 255 ? NaN : 2 ** (b - 127))),
};

/** Where an integer tensor holds a value int32 cannot. */
function outOfInt32(entry: Entry, source: string, index: number, value: bigint | number) {
  return new SafetensorsError(
    source,
    entry.name,
    `${entry.dtype} element ${index} is ${value}, outside int32 [-2147483648, 2147483647], the ` +
      `integer dtype tapegrad reads integers into`,
  );
}

/** Copies one tensor out of the data section into its tapegrad element type (see module doc). */
function readTensor(entry: Entry, data: Uint8Array, source: string): StoredData {
  const count = elementCount(entry.shape);
  const length = entry.end - entry.begin;
  const bytes = data.subarray(entry.begin, entry.end);
  const dtype = entry.dtype;
  if (LITTLE_ENDIAN_HOST && (dtype === "F32" || dtype === "I32")) {
    // Byte copy into the fresh, aligned buffer: works whatever the source alignment.
    const out = dtype === "F32" ? new Float32Array(count) : new Int32Array(count);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const view = new DataView(data.buffer, data.byteOffset + entry.begin, length);
  switch (dtype) {
    case "F32":
    case "F64":
    case "F16":
    case "BF16":
    case "F8_E4M3":
    case "F8_E5M2":
    case "F8_E8M0": {
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      if (dtype === "F32") {
        for (let i = 0; i < count; i++) {
          out[i] = view.getFloat32(i * 4, true);
        }
      } else if (dtype === "F64") {
        for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      } else if (dtype === "F16") {
        for (let i = 0; i < count; i++) bits[i] = halfToFloatBits(view.getUint16(i * 2, true));
      } else if (dtype === "BF16") {
        for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      } else {
        const table = FLOAT8_TABLES[dtype];
        for (let i = 0; i < count; i++) out[i] = table[bytes[i]];
      }
      return out;
    }
    case "BOOL": {
      for (let i = 0; i < count; i++) {
        if (bytes[i] > 1) {
          throw new SafetensorsError(
            source,
            entry.name,
            `BOOL element ${i} is the byte ${bytes[i]}; a bool is stored as 0 or 1`,
          );
        }
      }
      return bytes.slice();
    }
    case "I64":
    case "U64": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const low = view.getInt32(i * 8, true);
        const high = view.getInt32(i * 8 + 4, true);
        // It fits int32 exactly when the high word is the sign extension of the low one (for
        // U64 the value must also be below 2^31: high 0, low non-negative).
        if (high !== (low < 0 ? -1 : 0) || (dtype === "U64" && high !== 0)) {
          const value = dtype === "I64"
            ? view.getBigInt64(i * 8, true)
            : view.getBigUint64(i * 8, true);
          throw outOfInt32(entry, source, i, value);
        }
        out[i] = low;
      }
      return out;
    }
    case "U32": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const value = view.getUint32(i * 4, true);
        if (value > 0x7fffffff) throw outOfInt32(entry, source, i, value);
        out[i] = value;
      }
      return out;
    }
    case "I32":
    case "I16":
    case "U16":
    case "I8":
    case "U8": {
      const out = new Int32Array(count);
      if (dtype === "I32") { for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true); }
      else if (dtype === "I16") {
        for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true);
      } else if (dtype === "U16") {
        for (let i = 0; i < count; i++) out[i] = view.getUint16(i * 2, true);
      } else if (dtype === "I8") { for (let i = 0; i < count; i++) out[i] = view.getInt8(i); }
      else out.set(bytes);
      return out;
    }
  }
}

function readTensors(
  header: ParsedHeader,
  data: Uint8Array,
  source: string,
): SafetensorsContents {
  const tensors: Record<string, StoredTensor> = {};
  for (const entry of header.entries) {
    defineEntry(tensors, entry.name, {
      shape: entry.shape,
      data: readTensor(entry, data, source),
      dtype: entry.dtype,
    });
  }
  return { tensors, metadata: header.metadata };
}

/**
 * Parses safetensors bytes, validating the whole header before allocating tensor memory.
 * Data may sit at any alignment in `bytes`; every returned tensor owns fresh storage.
 *
 * @param bytes The complete file contents.
 * @param source Name used in error messages (usually the file path).
 * @returns Tensors (floats as Float32Array, integers as Int32Array, BOOL as Uint8Array) and
 *   metadata.
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
  return readTensors(header, bytes.subarray(dataStart), source);
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
 * @returns Tensors (floats as Float32Array, integers as Int32Array, BOOL as Uint8Array) and
 *   metadata.
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
  return readTensors(header, data, path);
}
