/**
 * Image files in, MNIST-style 28×28 inputs out.
 *
 * Decoding: PNG, JPEG and GIF (first frame) through imagescript's WebAssembly codecs, BMP through
 * {@link ./bmp.ts}. imagescript's main entry loads a native addon for its encoders and so needs
 * `--allow-ffi`; the codec modules used here need only read access to the package and env access
 * to `IMAGESCRIPT_WASM_SIMD`, and are loaded on first use.
 *
 * Preparation (MNIST's own recipe: threshold, crop, scale to 20 px, centre by mass) lives in
 * {@link ./prepare.ts}, free of runtime APIs so the browser page uses the same code; it is
 * re-exported here.
 *
 * @module
 */

import { readFile } from "../autograd/platform/files.ts";
import { bmpSize, decodeBmp, isBmp } from "./bmp.ts";
import { DataError, errorText } from "./errors.ts";
import {
  type GrayImage,
  type PreparedDigit,
  prepareDigit,
  type PrepareOptions,
  rgbaToGray,
} from "./prepare.ts";

// The preparation lives in its own module so the browser page can use it without the decoders.
export * from "./prepare.ts";

/** The file formats {@linkcode decodeImage} reads. */
export type ImageFormat = "png" | "jpeg" | "gif" | "bmp";

/** A decoded image and the format it came in. */
export interface DecodedImage extends GrayImage {
  /** The file's format. */
  format: ImageFormat;
}

/** Largest image accepted, in pixels: decoding takes about 5 bytes a pixel at the peak. */
export const MAX_IMAGE_PIXELS = 50_000_000;

/** The format of an image file from its first bytes, or `null` when it is none of the four. */
export function detectImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (
    bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e &&
    bytes[3] === 0x47 && bytes[4] === 0x0d && bytes[5] === 0x0a && bytes[6] === 0x1a &&
    bytes[7] === 0x0a
  ) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return "jpeg";
  }
  if (
    bytes.length >= 6 && bytes[0] === 0x47 && bytes[1] === 0x49 && bytes[2] === 0x46 &&
    bytes[3] === 0x38 && (bytes[4] === 0x37 || bytes[4] === 0x39) && bytes[5] === 0x61
  ) return "gif";
  if (isBmp(bytes)) return "bmp";
  return null;
}

/**
 * Decodes a PNG, JPEG, GIF (first frame) or BMP file to greyscale. Transparent pixels are laid
 * over a background opposite to the ink (white behind dark ink, black behind light ink), so a
 * drawing on a transparent canvas reads the same as one on paper.
 *
 * @param bytes The file's bytes.
 * @param source Named in errors (usually the path).
 * @throws {DataError} For unknown formats, undecodable data, or images over
 *   {@linkcode MAX_IMAGE_PIXELS}.
 */
export async function decodeImage(bytes: Uint8Array, source: string): Promise<DecodedImage> {
  const format = detectImageFormat(bytes);
  if (format === null) {
    const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, "0"));
    throw new DataError(
      bytes.length === 0
        ? `${source}: empty file, not an image`
        : `${source}: not a PNG, JPEG, GIF or BMP image (starts with ${head.join(" ")})`,
    );
  }
  const size = statedSize(bytes, format, source);
  if (size) checkSize(size.width, size.height, source);
  try {
    switch (format) {
      case "bmp":
        return { format, ...decodeBmp(bytes, source) };
      case "png": {
        const codec = await pngCodec();
        const { width, height, framebuffer } = codec.decode(bytes);
        return { format, width, height, data: rgbaToGray(framebuffer, width, height) };
      }
      case "jpeg": {
        // The decoder turns 4-component (CMYK, YCCK) JPEGs into black images; refuse them instead.
        if (jpegComponents(bytes) === 4) {
          throw new DataError(
            `${source}: CMYK JPEG is not supported (4 colour components); save it as RGB or ` +
              `greyscale`,
          );
        }
        const codec = await jpegCodec();
        const { width, height, buffer } = codec.load(bytes);
        return { format, width, height, data: rgbaToGray(buffer, width, height) };
      }
      case "gif":
        return { format, ...await decodeGif(bytes) };
    }
  } catch (error) {
    if (error instanceof DataError) throw error;
    throw new DataError(`${source}: cannot decode ${format.toUpperCase()}: ${errorText(error)}`, {
      cause: error,
    });
  }
}

/** Reads and decodes an image file; see {@linkcode decodeImage}. */
export async function readImageFile(path: string): Promise<DecodedImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new DataError(`${path}: cannot read (${errorText(error)})`, { cause: error });
  }
  return await decodeImage(bytes, path);
}

/**
 * Reads an image file and prepares it as an MNIST input; see {@linkcode prepareDigit}.
 *
 * @param path The image file.
 * @param options Preparation style.
 */
export async function prepareImageFile(
  path: string,
  options: PrepareOptions = {},
): Promise<PreparedDigit & { format: ImageFormat }> {
  const image = await readImageFile(path);
  return { format: image.format, ...prepareDigit(image, { source: path, ...options }) };
}

/**
 * Encodes a greyscale image as an 8-bit greyscale PNG (for writing sample images).
 *
 * @param gray `width * height` bytes, row-major.
 * @param width Width in pixels.
 * @param height Height in pixels.
 */
export async function encodePng(
  gray: Uint8Array,
  width: number,
  height: number,
): Promise<Uint8Array> {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new DataError(`encodePng: invalid size ${width}×${height}`);
  }
  if (gray.length !== width * height) {
    throw new DataError(
      `encodePng: ${gray.length} bytes of pixels for a ${width}×${height} image ` +
        `(${width * height} expected)`,
    );
  }
  const png = await pngEncoder();
  return png.encode(gray, { width, height, channels: 1, depth: 8, level: 6 });
}

// ---------------------------------------------------------------------------------------------
// Decoding helpers

/** Refuses images whose pixel buffers would not fit comfortably in memory. */
function checkSize(width: number, height: number, source: string): void {
  if (width <= 0 || height <= 0) {
    throw new DataError(`${source}: image has an empty size ${width}×${height}`);
  }
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new DataError(
      `${source}: image too large: ${width}×${height} is ${(width * height / 1e6).toFixed(1)} ` +
        `megapixels, the limit is ${MAX_IMAGE_PIXELS / 1e6}; scale it down first`,
    );
  }
}

/** The size a file's header states, read before any pixel buffer is allocated. */
function statedSize(
  bytes: Uint8Array,
  format: ImageFormat,
  source: string,
): { width: number; height: number } | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (format) {
    case "png":
      if (bytes.length < 24) throw new DataError(`${source}: truncated PNG header`);
      return { width: view.getUint32(16, false), height: view.getUint32(20, false) };
    case "gif":
      if (bytes.length < 10) throw new DataError(`${source}: truncated GIF header`);
      return { width: view.getUint16(6, true), height: view.getUint16(8, true) };
    case "bmp":
      return bmpSize(bytes, source);
    case "jpeg":
      return jpegSize(bytes, view);
  }
}

/**
 * The number of colour components of a JPEG's first frame (1 grey, 3 YCbCr, 4 CMYK or YCCK), or
 * null when no frame header is found.
 */
export function jpegComponents(bytes: Uint8Array): number | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return jpegSize(bytes, view)?.components ?? null;
}

/** Walks JPEG segments to the first start-of-frame marker. */
function jpegSize(
  bytes: Uint8Array,
  view: DataView,
): { width: number; height: number; components: number } | null {
  let p = 2;
  while (p + 9 < bytes.length) {
    if (bytes[p] !== 0xff) return null;
    const marker = bytes[p + 1];
    if (marker === 0xff) {
      p++;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      p += 2;
      continue;
    }
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
      marker !== 0xcc;
    if (isSof) {
      return {
        height: view.getUint16(p + 5, false),
        width: view.getUint16(p + 7, false),
        components: bytes[p + 9],
      };
    }
    p += 2 + view.getUint16(p + 2, false);
  }
  return null;
}

// imagescript's codec modules are CommonJS without type declarations; these describe the parts
// used here. They are imported by full npm: specifiers (the version kept in step with deno.json)
// so that they resolve when this module is imported from a registry URL, where no import map
// applies.
interface PngDecoder {
  decode(data: Uint8Array): { width: number; height: number; framebuffer: Uint8Array };
}
interface JpegDecoder {
  load(data: Uint8Array): { width: number; height: number; buffer: Uint8Array };
}
interface GifFrame {
  x: number;
  y: number;
  width: number;
  height: number;
  buffer: Uint8Array;
}
interface GifDecoder {
  width: number;
  height: number;
  frame(): GifFrame | null;
  free(): void;
}
interface GifCodec {
  Decoder: new (data: Uint8Array, limit?: number) => GifDecoder;
}
interface WasmModule<T> {
  init(): Promise<T>;
}
interface PngEncoder {
  encode(
    data: Uint8Array,
    options: { width: number; height: number; channels: number; depth: number; level: number },
  ): Uint8Array;
}

async function pngCodec(): Promise<PngDecoder> {
  const mod = await import("npm:imagescript@1.3.1/wasm/node/png.js");
  return await (mod.default as unknown as WasmModule<PngDecoder>).init();
}

async function jpegCodec(): Promise<JpegDecoder> {
  const mod = await import("npm:imagescript@1.3.1/wasm/node/jpeg.js");
  return await (mod.default as unknown as WasmModule<JpegDecoder>).init();
}

async function gifCodec(): Promise<GifCodec> {
  const mod = await import("npm:imagescript@1.3.1/wasm/node/gif.js");
  return await (mod.default as unknown as WasmModule<GifCodec>).init();
}

async function pngEncoder(): Promise<PngEncoder> {
  const mod = await import("npm:imagescript@1.3.1/png/node.js");
  return mod.default as unknown as PngEncoder;
}

/** The first frame of a GIF, placed on its logical screen (uncovered parts transparent). */
async function decodeGif(bytes: Uint8Array): Promise<GrayImage> {
  const codec = await gifCodec();
  const decoder = new codec.Decoder(bytes);
  const { width, height } = decoder;
  // frame() frees the decoder itself when it fails, so free only after success.
  const frame = decoder.frame();
  decoder.free();
  if (!frame) throw new Error("no frames");
  const canvas = new Uint8Array(width * height * 4);
  for (let y = 0; y < frame.height; y++) {
    const ty = frame.y + y;
    if (ty < 0 || ty >= height) continue;
    for (let x = 0; x < frame.width; x++) {
      const tx = frame.x + x;
      if (tx < 0 || tx >= width) continue;
      const s = (y * frame.width + x) * 4, d = (ty * width + tx) * 4;
      canvas[d] = frame.buffer[s];
      canvas[d + 1] = frame.buffer[s + 1];
      canvas[d + 2] = frame.buffer[s + 2];
      canvas[d + 3] = frame.buffer[s + 3];
    }
  }
  return { width, height, data: rgbaToGray(canvas, width, height) };
}
