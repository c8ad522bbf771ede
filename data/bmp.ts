/**
 * A decoder for uncompressed Windows bitmaps (BMP), which imagescript does not read: 1-, 4- and
 * 8-bit palette images, 16-bit (5-5-5 or bit fields), 24-bit and 32-bit (plain or bit fields),
 * bottom-up or top-down. Pixels go straight to greyscale so a large bitmap costs one byte per pixel.
 * Run-length compressed bitmaps are refused with a clear error.
 *
 * @module
 */

import { DataError } from "./errors.ts";

/** A decoded bitmap in greyscale, row-major, 0 = black. */
export interface BmpGray {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width * height` luminance bytes, top row first. */
  data: Uint8Array;
}

/** True when `bytes` start like a BMP file ("BM" and room for the headers). */
export function isBmp(bytes: Uint8Array): boolean {
  return bytes.length >= 26 && bytes[0] === 0x42 && bytes[1] === 0x4d;
}

/**
 * The dimensions stated in a BMP header, without decoding the pixels.
 *
 * @param bytes The file.
 * @param source Named in errors.
 */
export function bmpSize(bytes: Uint8Array, source: string): { width: number; height: number } {
  const h = readHeader(bytes, source);
  return { width: h.width, height: h.height };
}

/**
 * Decodes an uncompressed BMP to greyscale (ITU-R BT.601 luma; alpha is ignored).
 *
 * @param bytes The file.
 * @param source Named in errors (usually the path).
 */
export function decodeBmp(bytes: Uint8Array, source: string): BmpGray {
  const h = readHeader(bytes, source);
  const { width, height, bpp } = h;
  const stride = Math.floor((bpp * width + 31) / 32) * 4;
  const end = h.pixelOffset + stride * height;
  if (end > bytes.length) {
    throw new DataError(
      `${source}: truncated BMP: ${width}×${height} at ${bpp} bits needs ${end} bytes, ` +
        `the file has ${bytes.length}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Uint8Array(width * height);
  const palette = bpp <= 8 ? readPalette(bytes, h, source) : undefined;
  const fields = bpp === 16 || bpp === 32 ? maskFields(h) : undefined;

  for (let y = 0; y < height; y++) {
    const row = h.pixelOffset + stride * (h.topDown ? y : height - 1 - y);
    const o = y * width;
    if (palette) {
      const perByte = 8 / bpp;
      const mask = (1 << bpp) - 1;
      for (let x = 0; x < width; x++) {
        const byte = bytes[row + Math.floor(x / perByte)];
        const shift = 8 - bpp * (1 + (x % perByte));
        const index = (byte >> shift) & mask;
        if (index >= palette.length) {
          throw new DataError(
            `${source}: BMP palette index ${index} at (${x}, ${y}) beyond ${palette.length} colours`,
          );
        }
        out[o + x] = palette[index];
      }
    } else if (bpp === 24) {
      for (let x = 0, p = row; x < width; x++, p += 3) {
        out[o + x] = luma(bytes[p + 2], bytes[p + 1], bytes[p]);
      }
    } else if (fields) {
      const [r, g, b] = fields;
      for (let x = 0; x < width; x++) {
        const px = bpp === 32
          ? view.getUint32(row + 4 * x, true)
          : view.getUint16(row + 2 * x, true);
        out[o + x] = luma(r.read(px), g.read(px), b.read(px));
      }
    }
  }
  return { width, height, data: out };
}

/** Integer BT.601 luma: (77 R + 150 G + 29 B) / 256, rounded. */
export function luma(r: number, g: number, b: number): number {
  return (77 * r + 150 * g + 29 * b + 128) >> 8;
}

interface BmpHeader {
  width: number;
  height: number;
  topDown: boolean;
  bpp: number;
  compression: number;
  dibSize: number;
  pixelOffset: number;
  colorsUsed: number;
  masks: [number, number, number];
}

const BI_RGB = 0;
const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;

function readHeader(bytes: Uint8Array, source: string): BmpHeader {
  if (!isBmp(bytes)) throw new DataError(`${source}: not a BMP file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pixelOffset = view.getUint32(10, true);
  const dibSize = view.getUint32(14, true);
  let width: number, rawHeight: number, bpp: number, compression = BI_RGB, colorsUsed = 0;
  if (dibSize === 12) {
    width = view.getUint16(18, true);
    rawHeight = view.getUint16(20, true);
    bpp = view.getUint16(24, true);
  } else if (dibSize >= 40 && bytes.length >= 14 + 40) {
    width = view.getInt32(18, true);
    rawHeight = view.getInt32(22, true);
    bpp = view.getUint16(28, true);
    compression = view.getUint32(30, true);
    colorsUsed = view.getUint32(46, true);
  } else {
    throw new DataError(`${source}: unsupported BMP header (${dibSize} bytes)`);
  }
  const height = Math.abs(rawHeight);
  if (width <= 0 || height === 0) {
    throw new DataError(`${source}: BMP has an empty or negative size ${width}×${rawHeight}`);
  }
  if (![1, 4, 8, 16, 24, 32].includes(bpp)) {
    throw new DataError(`${source}: unsupported BMP depth ${bpp} bits per pixel`);
  }
  const fieldsOk = (compression === BI_BITFIELDS || compression === BI_ALPHABITFIELDS) &&
    (bpp === 16 || bpp === 32);
  if (compression !== BI_RGB && !fieldsOk) {
    const name = ({ 1: "RLE8", 2: "RLE4", 4: "JPEG", 5: "PNG" } as Record<number, string>)[
      compression
    ];
    throw new DataError(
      `${source}: compressed BMP (${name ?? `method ${compression}`}) is not supported; ` +
        `save it uncompressed or as PNG`,
    );
  }
  let masks: [number, number, number];
  if (fieldsOk) {
    if (bytes.length < 14 + 40 + 12) throw new DataError(`${source}: truncated BMP bit fields`);
    // Masks follow a 40-byte header, and sit at the same place inside the larger V2-V5 headers.
    masks = [view.getUint32(54, true), view.getUint32(58, true), view.getUint32(62, true)];
  } else if (bpp === 16) {
    masks = [0x7c00, 0x03e0, 0x001f];
  } else {
    masks = [0x00ff0000, 0x0000ff00, 0x000000ff];
  }
  return {
    width,
    height,
    topDown: rawHeight < 0,
    bpp,
    compression,
    dibSize,
    pixelOffset,
    colorsUsed,
    masks,
  };
}

/** The palette, already converted to luma. */
function readPalette(bytes: Uint8Array, h: BmpHeader, source: string): Uint8Array {
  const entrySize = h.dibSize === 12 ? 3 : 4;
  let start = 14 + h.dibSize;
  if (h.dibSize === 40 && h.compression === BI_BITFIELDS) start += 12;
  if (h.dibSize === 40 && h.compression === BI_ALPHABITFIELDS) start += 16;
  const count = h.colorsUsed > 0 ? Math.min(h.colorsUsed, 1 << h.bpp) : 1 << h.bpp;
  if (start + count * entrySize > bytes.length) {
    throw new DataError(`${source}: truncated BMP palette (${count} colours)`);
  }
  const palette = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const p = start + i * entrySize;
    palette[i] = luma(bytes[p + 2], bytes[p + 1], bytes[p]);
  }
  return palette;
}

interface Field {
  read(px: number): number;
}

/** Extractors that scale each masked channel to 0..255. */
function maskFields(h: BmpHeader): [Field, Field, Field] {
  const make = (mask: number): Field => {
    if (mask === 0) return { read: () => 0 };
    let shift = 0;
    while (((mask >>> shift) & 1) === 0) shift++;
    const max = mask >>> shift;
    return { read: (px: number) => Math.round((((px & mask) >>> shift) * 255) / max) };
  };
  return [make(h.masks[0]), make(h.masks[1]), make(h.masks[2])];
}
