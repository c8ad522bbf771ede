/**
 * MNIST-style preparation of a greyscale image, in plain TypeScript with no runtime APIs, so the
 * same code prepares a file for `deno task demo` and a drawing in the browser page of
 * `deno task serve`.
 *
 * The recipe is MNIST's own: greyscale, white ink on black, noise thresholded away, cropped to the
 * ink, scaled (area-averaging) so the longer side is 20 px, then placed in a 28×28 frame so the
 * centre of mass sits at pixel (14, 14), where MNIST's training digits have it.
 *
 * @module
 */

import { luma } from "./bmp.ts";
import { DataError } from "./errors.ts";

/** A greyscale image, row-major, one byte per pixel, 0 = black. */
export interface GrayImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width * height` bytes, top row first. */
  data: Uint8Array;
}

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

/**
 * RGBA to greyscale. Transparent areas get a backdrop opposite to the visible pixels' mean
 * luminance, so dark strokes on a transparent canvas end up on white and light strokes on black.
 *
 * @param rgba `width * height * 4` bytes, red, green, blue, alpha, row-major.
 * @param width Width in pixels.
 * @param height Height in pixels.
 */
export function rgbaToGray(rgba: Uint8Array, width: number, height: number): Uint8Array {
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
