/**
 * Image files in, MNIST-style 28×28 inputs out.
 *
 * Decoding: PNG, JPEG and GIF (first frame) through imagescript's WebAssembly codecs, BMP through
 * {@link ./bmp.ts}. imagescript's main entry loads a native addon for its encoders and so needs
 * `--allow-ffi`; the codec modules used here need only read access to the package and env access
 * to `IMAGESCRIPT_WASM_SIMD`, and are loaded on first use.
 *
 * Preparation follows MNIST's own recipe: greyscale, white ink on black, noise thresholded away,
 * cropped to the ink, scaled (area-averaging) so the longer side is 20 px, then placed in a 28×28
 * frame so the centre of mass sits at pixel (14, 14), where MNIST's training digits have it.
 *
 * @module
 */

import { bmpSize, decodeBmp, isBmp, luma } from "./bmp.ts";
import { DataError, errorText } from "./errors.ts";

/** A greyscale image, row-major, one byte per pixel, 0 = black. */
export interface GrayImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width * height` bytes, top row first. */
  data: Uint8Array;
}

/** The file formats {@linkcode decodeImage} reads. */
export type ImageFormat = "png" | "jpeg" | "gif" | "bmp";

/** A decoded image and the format it came in. */
export interface DecodedImage extends GrayImage {
  /** The file's format. */
  format: ImageFormat;
}

/** Largest image accepted, in pixels: decoding takes about 5 bytes a pixel at the peak. */
export const MAX_IMAGE_PIXELS = 50_000_000;

/** Side of the MNIST frame. */
export const MNIST_SIZE = 28;

/** Options of {@linkcode prepareDigit}. */
export interface PrepareOptions {
  /**
   * `"mnist"` (default): the ink's longer side becomes 20 px, centred by mass.
   * `"fashion-mnist"`: the object's longer side becomes 28 px, centred by its bounding box, as
   * Zalando prepared their product photos.
   */
  style?: "mnist" | "fashion-mnist";
  /** Keep a 28×28 image that already looks like MNIST (dark background) as is (default true). */
  passThrough?: boolean;
  /** Named in errors. */
  source?: string;
}

/** What {@linkcode prepareDigit} did. */
export interface PrepareInfo {
  /** Size of the input image. */
  width: number;
  /** Size of the input image. */
  height: number;
  /** True when the input was already MNIST-like and is returned unchanged. */
  passThrough: boolean;
  /** True when the background was light and the image was inverted. */
  inverted: boolean;
  /** Background level (after inversion) estimated from the border. */
  background: number;
  /** Pixels at or below this level (after inversion) counted as background. */
  threshold: number;
  /** The ink's bounding box in the input image. */
  box: { x: number; y: number; width: number; height: number };
  /** Size of the ink after scaling. */
  scaled: { width: number; height: number };
  /** Where the scaled ink's top-left corner went in the 28×28 frame. */
  offset: { x: number; y: number };
}

/** A prepared 28×28 input and how it was made. */
export interface PreparedDigit {
  /** 784 bytes, row-major, white (255) ink on black (0), like MNIST. */
  pixels: Uint8Array;
  /** The steps taken. */
  info: PrepareInfo;
}

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
    bytes = await Deno.readFile(path);
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
 * Turns a greyscale image into a 28×28 MNIST-style input (white ink on black).
 *
 * A 28×28 image with a dark border is taken as already prepared. Otherwise: invert when the border
 * is light; zero everything at or below an Otsu threshold (paper texture, shadows) and stretch the
 * rest so the body of the strokes reaches 255; crop to the ink; scale with area averaging so the
 * longer side is 20 px (28 for `style: "fashion-mnist"`); place in the frame with the centre of
 * mass at (14, 14), moved only as far as keeps all ink inside the frame.
 *
 * @param image The greyscale image, any size from 1×1.
 * @param options Style, pass-through, source name for errors.
 * @throws {DataError} When the image has no ink (uniform, or contrast too low to tell).
 */
export function prepareDigit(image: GrayImage, options: PrepareOptions = {}): PreparedDigit {
  const { width, height, data } = image;
  const source = options.source ?? "image";
  if (width <= 0 || height <= 0 || data.length !== width * height) {
    throw new DataError(
      `${source}: invalid image ${width}×${height} with ${data.length} bytes of pixels`,
    );
  }
  const style = options.style ?? "mnist";
  const borderMedian = median(borderHistogram(image));

  if (
    (options.passThrough ?? true) && width === MNIST_SIZE && height === MNIST_SIZE &&
    borderMedian <= 32 && maxOf(data) >= 128
  ) {
    return {
      pixels: data.slice(),
      info: {
        width,
        height,
        passThrough: true,
        inverted: false,
        background: borderMedian,
        threshold: 0,
        box: { x: 0, y: 0, width, height },
        scaled: { width, height },
        offset: { x: 0, y: 0 },
      },
    };
  }

  const inverted = borderMedian > 127;
  const background = inverted ? 255 - borderMedian : borderMedian;
  const hist = new Float64Array(256);
  for (let i = 0; i < data.length; i++) hist[inverted ? 255 - data[i] : data[i]]++;
  let top = 255;
  while (top > 0 && hist[top] === 0) top--;
  // Below this contrast there is nothing a reader would call ink: blank paper, a flat colour.
  if (top - background < 48) {
    throw new DataError(
      `${source}: no ink found: the image is nearly uniform (background ${background}, ` +
        `brightest ink ${top} after ${inverted ? "inverting" : "no inversion"})`,
    );
  }
  const threshold = Math.max(otsu(hist), background + Math.round((top - background) * 0.2));
  // Stretch so the body of the stroke saturates, as in MNIST; a stray bright speck or a JPEG
  // overshoot must not set the scale, hence a percentile of the ink rather than its maximum.
  const inkTop = Math.max(threshold + 1, percentileAbove(hist, threshold, 0.9));
  const scale = 255 / (inkTop - background);

  // Bounding box of pixels above the threshold.
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const v = inverted ? 255 - data[row + x] : data[row + x];
      if (v > threshold) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) throw new DataError(`${source}: no ink found above the threshold ${threshold}`);
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1;

  const boxSide = style === "mnist" ? 20 : MNIST_SIZE;
  const sw = bw >= bh ? boxSide : Math.max(1, Math.round((bw * boxSide) / bh));
  const sh = bh >= bw ? boxSide : Math.max(1, Math.round((bh * boxSide) / bw));

  // Ink levels of the crop, lazily: the crop of a photo can be large, so it is never copied.
  const level = (x: number, y: number): number => {
    const raw = data[(y0 + y) * width + x0 + x];
    const v = inverted ? 255 - raw : raw;
    return v > threshold ? Math.min(255, (v - background) * scale) : 0;
  };
  const scaled = resampleArea(level, bw, bh, sw, sh);

  let ox: number, oy: number;
  if (style === "mnist") {
    let mass = 0, mx = 0, my = 0;
    for (let y = 0; y < sh; y++) {
      for (let x = 0; x < sw; x++) {
        const v = scaled[y * sw + x];
        mass += v;
        mx += v * x;
        my += v * y;
      }
    }
    const center = MNIST_SIZE / 2;
    ox = mass > 0 ? Math.round(center - mx / mass) : Math.floor((MNIST_SIZE - sw) / 2);
    oy = mass > 0 ? Math.round(center - my / mass) : Math.floor((MNIST_SIZE - sh) / 2);
    ox = Math.min(Math.max(ox, 0), MNIST_SIZE - sw);
    oy = Math.min(Math.max(oy, 0), MNIST_SIZE - sh);
  } else {
    ox = Math.floor((MNIST_SIZE - sw) / 2);
    oy = Math.floor((MNIST_SIZE - sh) / 2);
  }

  const pixels = new Uint8Array(MNIST_SIZE * MNIST_SIZE);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < sw; x++) {
      pixels[(oy + y) * MNIST_SIZE + ox + x] = Math.round(scaled[y * sw + x]);
    }
  }
  return {
    pixels,
    info: {
      width,
      height,
      passThrough: false,
      inverted,
      background,
      threshold,
      box: { x: x0, y: y0, width: bw, height: bh },
      scaled: { width: sw, height: sh },
      offset: { x: ox, y: oy },
    },
  };
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
// Resampling and statistics

/**
 * Area-averaging resample (box filter with fractional coverage), separable: every output pixel is
 * the mean of the input area it covers. Downscaling this way antialiases instead of dropping
 * pixels; the input is read once per pass through `at`, so nothing of its size is allocated.
 */
function resampleArea(
  at: (x: number, y: number) => number,
  sw: number,
  sh: number,
  dw: number,
  dh: number,
): Float32Array {
  const wx = areaWeights(sw, dw);
  const wy = areaWeights(sh, dh);
  // Horizontal pass: sh rows of dw values.
  const mid = new Float32Array(sh * dw);
  for (let y = 0; y < sh; y++) {
    for (let i = 0; i < dw; i++) {
      const { start, weights } = wx[i];
      let acc = 0;
      for (let k = 0; k < weights.length; k++) acc += weights[k] * at(start + k, y);
      mid[y * dw + i] = acc;
    }
  }
  const out = new Float32Array(dh * dw);
  for (let j = 0; j < dh; j++) {
    const { start, weights } = wy[j];
    for (let k = 0; k < weights.length; k++) {
      const w = weights[k];
      const row = (start + k) * dw;
      for (let i = 0; i < dw; i++) out[j * dw + i] += w * mid[row + i];
    }
  }
  return out;
}

/** For each output index, the first input index and normalised coverage weights. */
function areaWeights(src: number, dst: number): { start: number; weights: Float64Array }[] {
  const ratio = src / dst;
  const result = [];
  for (let i = 0; i < dst; i++) {
    const a = i * ratio, b = (i + 1) * ratio;
    const start = Math.floor(a);
    const end = Math.min(src, Math.ceil(b));
    const weights = new Float64Array(end - start);
    for (let k = start; k < end; k++) {
      weights[k - start] = (Math.min(b, k + 1) - Math.max(a, k)) / ratio;
    }
    result.push({ start, weights });
  }
  return result;
}

/** Histogram of the outer ring (about 2% of the shorter side, at least 1 px). */
function borderHistogram(image: GrayImage): Float64Array {
  const { width, height, data } = image;
  const ring = Math.max(1, Math.floor(Math.min(width, height) / 50));
  const hist = new Float64Array(256);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    if (y < ring || y >= height - ring) {
      for (let x = 0; x < width; x++) hist[data[row + x]]++;
    } else {
      for (let x = 0; x < Math.min(ring, width); x++) hist[data[row + x]]++;
      for (let x = Math.max(ring, width - ring); x < width; x++) hist[data[row + x]]++;
    }
  }
  return hist;
}

function median(hist: Float64Array): number {
  let total = 0;
  for (let i = 0; i < 256; i++) total += hist[i];
  let seen = 0;
  for (let i = 0; i < 256; i++) {
    seen += hist[i];
    if (seen * 2 >= total) return i;
  }
  return 255;
}

/** The level below which `fraction` of the pixels brighter than `floor` lie. */
function percentileAbove(hist: Float64Array, floor: number, fraction: number): number {
  let total = 0;
  for (let i = floor + 1; i < 256; i++) total += hist[i];
  let seen = 0;
  for (let i = floor + 1; i < 256; i++) {
    seen += hist[i];
    if (seen >= fraction * total) return i;
  }
  return 255;
}

/** Otsu's threshold: the level that maximises the between-class variance. */
function otsu(hist: Float64Array): number {
  let total = 0, sum = 0;
  for (let i = 0; i < 256; i++) {
    total += hist[i];
    sum += i * hist[i];
  }
  let wB = 0, sumB = 0, best = 0, bestVar = -1;
  for (let t = 0; t < 256; t++) {
    wB += hist[t];
    if (wB === 0) continue;
    const wF = total - wB;
    if (wF === 0) break;
    sumB += t * hist[t];
    const mB = sumB / wB, mF = (sum - sumB) / wF;
    const between = wB * wF * (mB - mF) * (mB - mF);
    if (between > bestVar) {
      bestVar = between;
      best = t;
    }
  }
  return best;
}

function maxOf(data: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < data.length; i++) if (data[i] > m) m = data[i];
  return m;
}

// ---------------------------------------------------------------------------------------------
// Decoding helpers

/**
 * RGBA to greyscale. Transparent areas get a backdrop opposite to the visible pixels' mean
 * luminance, so dark strokes on a transparent canvas end up on white and light strokes on black.
 */
function rgbaToGray(rgba: Uint8Array, width: number, height: number): Uint8Array {
  const n = width * height;
  const out = new Uint8Array(n);
  let translucent = false;
  let weighted = 0, alphaSum = 0;
  for (let i = 0, p = 0; i < n; i++, p += 4) {
    const l = luma(rgba[p], rgba[p + 1], rgba[p + 2]);
    out[i] = l;
    const a = rgba[p + 3];
    if (a !== 255) translucent = true;
    weighted += l * a;
    alphaSum += a;
  }
  if (!translucent) return out;
  const backdrop = alphaSum > 0 && weighted / alphaSum >= 128 ? 0 : 255;
  for (let i = 0, p = 3; i < n; i++, p += 4) {
    const a = rgba[p];
    out[i] = Math.round((out[i] * a + backdrop * (255 - a)) / 255);
  }
  return out;
}

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
// used here.
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
  const mod = await import("imagescript/wasm/node/png.js");
  return await (mod.default as unknown as WasmModule<PngDecoder>).init();
}

async function jpegCodec(): Promise<JpegDecoder> {
  const mod = await import("imagescript/wasm/node/jpeg.js");
  return await (mod.default as unknown as WasmModule<JpegDecoder>).init();
}

async function gifCodec(): Promise<GifCodec> {
  const mod = await import("imagescript/wasm/node/gif.js");
  return await (mod.default as unknown as WasmModule<GifCodec>).init();
}

async function pngEncoder(): Promise<PngEncoder> {
  const mod = await import("imagescript/png/node.js");
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
