/**
 * Convolution forward and backward on the WebAssembly kernels: one GEMM per pass over the whole
 * batch instead of one per image, with im2col fused into the packing of the GEMM operands (see
 * `conv_kernels.ts` for the layout).
 *
 * - Forward: x → NHWC with its padding materialised (`nchwToNhwc`), then
 *   C[N·OH·OW, O] = im2col(x)·Wᵀ (A packed straight from the padded input by `packAIdx`), then
 *   `nhwcToNchw` writes the NCHW output with the bias added and ReLU applied in the same pass.
 * - Filter gradient: dW[O, K] = gy[O, N·P]·im2col(x) (`gyRows` lays gy out by filter and sums the
 *   bias gradient on the way; `packBIdx` packs the implicit im2col matrix as B).
 * - Input gradient: dcol[N·P, K] = gy[N·P, O]·W, then `col2imIdx` adds it back into a padded NHWC
 *   image and `nhwcToNchw` crops it to NCHW.
 *
 * K runs over (kernel row, kernel column, channel) with the channel count padded to Cp (the
 * smallest count ≥ C with kw·Cp a multiple of 4; the extra channels are zero in both operands), so
 * sums run in a different order than the reference's (channel, row, column): results agree with
 * it to float32 rounding. Every element is computed by one thread in an order fixed by the
 * shapes, so results are bitwise identical for any thread count.
 *
 * Operands that already live in the wasm memory are used in place; others are copied in (one
 * `TypedArray.set` each) and outputs copied out. Scratch regions grow as needed and are reused.
 *
 * {@linkcode convKernelsOver} keeps every layout pass here and hands the three products to
 * another {@link Gemm} (the native backend's BLAS), which needs explicit operands: the implicit
 * im2col matrix is then written out row by row (`im2row`) instead of being packed, and the
 * products run on the explicit matrices in the wasm memory.
 *
 * @module
 */

import type { ConvGeometry } from "../conv.ts";
import type { Gemm } from "../gemm.ts";
import type {
  ConvBackwardArgs,
  ConvBackwardKernel,
  ConvForwardArgs,
  ConvForwardKernel,
} from "../types.ts";
import { defaultEngine, type Engine, KC_MAX, MC_BLOCK_PANELS, wasmGemm } from "./gemm.ts";
import { NR } from "./kernels.ts";
import { allocBytes, freeBytes, heapF32 } from "./memory.ts";
import { copyOut, placeIn, placeOut, region } from "./scratch.ts";

/** The batched layout of one convolution: padded NHWC sizes and the implicit im2col tables. */
interface Layout {
  /** Channels padded so that kw·Cp is a multiple of 4. */
  Cp: number;
  /** Padded input height and width. */
  Hp: number;
  Wp: number;
  /** GEMM K = kh·kw·Cp. */
  K: number;
  /** Output pixels per image. */
  P: number;
  /** GEMM M = N·P. */
  M: number;
  /** Byte offset of each output pixel's window in the padded NHWC batch (Int32, M entries). */
  rowOff: number;
  /** Byte offset of each group of four K indices within a window (Int32, K/4 entries). */
  kOff: number;
  /** Whether the NCHW input already is the padded NHWC layout (one channel, no padding). */
  direct: boolean;
}

const layouts = new Map<string, Layout>();
const MAX_LAYOUTS = 16;

function layoutOf(g: ConvGeometry, batch: number): Layout {
  const key = [
    batch,
    g.channels,
    g.height,
    g.width,
    g.kernelH,
    g.kernelW,
    g.strideH,
    g.strideW,
    g.padH,
    g.padW,
  ].join(",");
  const hit = layouts.get(key);
  if (hit !== undefined) {
    // Most recently used last.
    layouts.delete(key);
    layouts.set(key, hit);
    return hit;
  }
  if (layouts.size >= MAX_LAYOUTS) {
    const [oldKey, old] = layouts.entries().next().value!;
    layouts.delete(oldKey);
    freeBytes(old.rowOff);
    freeBytes(old.kOff);
  }
  let Cp = g.channels;
  while ((g.kernelW * Cp) % 4 !== 0) Cp++;
  const Hp = g.height + 2 * g.padH;
  const Wp = g.width + 2 * g.padW;
  const K = g.kernelH * g.kernelW * Cp;
  const P = g.outH * g.outW;
  const M = batch * P;
  // Padded by 16 bytes: packBIdx may read the entry after the last.
  const rowOff = allocBytes(4 * M + 16);
  const kOff = allocBytes(K + 16);
  const heap = heapF32();
  const rows = new Int32Array(heap.buffer, rowOff, M + 4);
  const image = Hp * Wp * Cp;
  let r = 0;
  for (let n = 0; n < batch; n++) {
    for (let oy = 0; oy < g.outH; oy++) {
      for (let ox = 0; ox < g.outW; ox++) {
        rows[r++] = 4 * (n * image + (oy * g.strideH * Wp + ox * g.strideW) * Cp);
      }
    }
  }
  rows.fill(0, M);
  const ks = new Int32Array(heap.buffer, kOff, K / 4 + 4);
  for (let q = 0; q < K / 4; q++) {
    const kk = 4 * q;
    const run = g.kernelW * Cp;
    const i = Math.floor(kk / run);
    ks[q] = 4 * (i * Wp * Cp + (kk - i * run));
  }
  ks.fill(0, K / 4);
  const layout: Layout = {
    Cp,
    Hp,
    Wp,
    K,
    P,
    M,
    rowOff,
    kOff,
    direct: Cp === 1 && g.channels === 1 && g.padH === 0 && g.padW === 0,
  };
  layouts.set(key, layout);
  return layout;
}

/** K block length for the conv GEMMs: equal blocks of at most KC_MAX, each a multiple of 4. */
function blockK4(k: number): number {
  const blocks = Math.ceil(k / KC_MAX);
  return Math.ceil(Math.ceil(k / blocks) / 4) * 4;
}

/** Equal K blocks of at most KC_MAX (any length). */
function blockKAny(k: number): number {
  const blocks = Math.ceil(k / KC_MAX);
  return Math.ceil(k / blocks);
}

/** A view of `n` floats at byte address `ptr` of the wasm memory (an operand of a {@link Gemm}). */
function view(ptr: number, n: number): Float32Array {
  return heapF32().subarray(ptr >> 2, (ptr >> 2) + n);
}

/** The implicit im2col matrix [M, K] of the padded input at `xPad`, written out in scratch. */
function explicitRows(xPad: number, L: Layout): number {
  const rows = region("im2row", 4 * L.M * L.K);
  defaultEngine().job("im2row", 4 * L.M * L.K, L.M, (chunk, ctr) => [
    xPad,
    L.rowOff,
    L.kOff,
    L.K,
    rows,
    4 * L.K,
    L.M,
    chunk,
    ctr,
  ]);
  return rows;
}

/** Lays x out as padded NHWC; returns its address. */
function paddedInput(
  a: { x: Float32Array; xOffset: number; batch: number; g: ConvGeometry },
  L: Layout,
): number {
  const { g, batch: N } = a;
  const xPtr = placeIn("x", a.x, a.xOffset, N * g.channels * g.height * g.width);
  if (L.direct) return xPtr;
  const xPad = region("xPad", 4 * N * L.Hp * L.Wp * L.Cp);
  const e = defaultEngine();
  e.job("nchwToNhwc", 4 * N * L.Hp * L.Wp * L.Cp, N, (chunk, ctr) => [
    xPtr,
    xPad,
    0,
    g.channels,
    g.height,
    g.width,
    L.Cp,
    L.Hp,
    L.Wp,
    g.padH,
    g.padW,
    N,
    chunk,
    ctr,
  ]);
  return xPad;
}

/** The filters reordered to [O, kh, kw, Cp] (zeros in the padded channels) in scratch. */
function reorderedFilters(
  w: Float32Array,
  wOffset: number,
  O: number,
  g: ConvGeometry,
  L: Layout,
): number {
  // Each filter [C, kh·kw] transposed to [kh·kw, Cp]: the layout pass, one filter per image.
  const taps = g.kernelH * g.kernelW;
  const src = placeIn("wIn", w, wOffset, O * g.channels * taps);
  const ptr = region("w", 4 * O * L.K);
  defaultEngine().job("nchwToNhwc", O * L.K, O, (chunk, ctr) => [
    src,
    ptr,
    0,
    g.channels,
    1,
    taps,
    L.Cp,
    1,
    taps,
    0,
    0,
    O,
    chunk,
    ctr,
  ]);
  return ptr;
}

/** Largest scratch buffer (in floats) one chunk of images may need: 32 MiB. */
const CHUNK_FLOATS = 1 << 23;

/**
 * The same limit when the products go to another GEMM (explicit operands): 2 MiB, so the im2col
 * matrix `im2row` writes is still in the cache when BLAS reads it. With the whole batch at once
 * (AlexNet's conv2 writes 7 MiB at batch 128) BLAS read it back from memory: chunks of 2 MiB made
 * the native AlexNet step 9% faster and its forward pass 11% (1 and 8 MiB gained less, the
 * packed wasm path nothing: it writes no such matrix).
 */
const EXPLICIT_CHUNK_FLOATS = 1 << 19;

/**
 * How many images one pass handles: all of them unless the biggest scratch buffer (the im2col
 * matrix or panels, M·K floats) would pass the chunk limit (see above), so a huge batch does not
 * exhaust the memory and, on the explicit path, the matrix stays in the cache.
 */
function imagesPerChunk(g: ConvGeometry, O: number, gemm: Gemm | null): number {
  let Cp = g.channels;
  while ((g.kernelW * Cp) % 4 !== 0) Cp++;
  const P = g.outH * g.outW;
  const perImage = Math.max(
    P * g.kernelH * g.kernelW * Cp + 8 * P,
    (g.height + 2 * g.padH) * (g.width + 2 * g.padW) * Cp,
    O * P,
  );
  const limit = gemm === null ? CHUNK_FLOATS : EXPLICIT_CHUNK_FLOATS;
  return Math.max(1, Math.floor(limit / perImage));
}

/**
 * The WebAssembly convolution forward pass (see the module comment), over chunks of images when
 * the batch is very large (each image's output is computed the same way either way).
 */
export function wasmConvForward(a: ConvForwardArgs): void {
  convForward(a, null);
}

/**
 * The convolutions with their products on `gemm` over explicit operands in the wasm memory (see
 * the module comment); every layout pass stays on the wasm kernels. The native backend's.
 */
export function convKernelsOver(
  gemm: Gemm,
): { convForward: ConvForwardKernel; convBackward: ConvBackwardKernel } {
  return {
    convForward: (a) => convForward(a, gemm),
    convBackward: (a) => convBackward(a, gemm),
  };
}

/** The forward pass in chunks of images; products packed here (`gemm` null) or on `gemm`. */
function convForward(a: ConvForwardArgs, gemm: Gemm | null): void {
  const { g, batch: N, outChannels: O } = a;
  const step = imagesPerChunk(g, O, gemm);
  if (N <= step) {
    forwardChunk(a, gemm);
    return;
  }
  const inImage = g.channels * g.height * g.width;
  const outImage = O * g.outH * g.outW;
  for (let n0 = 0; n0 < N; n0 += step) {
    forwardChunk({
      ...a,
      batch: Math.min(step, N - n0),
      xOffset: a.xOffset + n0 * inImage,
      outOffset: a.outOffset + n0 * outImage,
    }, gemm);
  }
}

function forwardChunk(a: ConvForwardArgs, gemm: Gemm | null): void {
  const { g, batch: N, outChannels: O } = a;
  const L = layoutOf(g, N);
  if (N === 0 || O === 0) return;
  const e = defaultEngine();
  const xPad = paddedInput(a, L);
  const wr = reorderedFilters(a.w, a.wOffset, O, g, L);
  const cBuf = region("c", 4 * L.M * O);
  if (gemm === null) packedForward(e, xPad, wr, cBuf, L, O);
  else {
    const rows = view(explicitRows(xPad, L), L.M * L.K);
    gemm(
      false,
      true,
      L.M,
      O,
      L.K,
      rows,
      0,
      L.K,
      view(wr, O * L.K),
      0,
      L.K,
      0,
      view(cBuf, L.M * O),
      0,
      O,
    );
  }
  const total = N * O * L.P;
  const outPtr = placeOut("out", a.out, a.outOffset, total);
  const biasPtr = a.bias === null ? 0 : placeIn("bias", a.bias, a.biasOffset, O);
  // Without padding an image is one long row of pixels: fewer leftover pixels per row.
  e.job("nhwcToNchw", 4 * total, N, (chunk, ctr) => [
    cBuf,
    outPtr,
    biasPtr,
    a.relu ? 1 : 0,
    O,
    1,
    L.P,
    O,
    1,
    L.P,
    0,
    0,
    N,
    chunk,
    ctr,
  ]);
  copyOut(outPtr, a.out, a.outOffset, total);
}

/** C[M, O] = im2col(x)·Wᵀ on the packed wasm path: A packed straight from the padded input. */
function packedForward(e: Engine, xPad: number, wr: number, cBuf: number, L: Layout, O: number) {
  const MR = e.config.mr;
  const kc = blockK4(L.K);
  const mp = Math.ceil(L.M / MR);
  const np = Math.ceil(O / NR);
  const aPack = region("aPack", 4 * mp * MR * L.K);
  const bPack = region("bPack", 4 * np * NR * L.K);
  e.job("packAB", O * L.K, np, (chunk, ctr) => [
    0,
    0,
    0,
    0,
    0,
    wr,
    4 * L.K,
    1,
    bPack,
    O,
    L.K,
    kc,
    chunk,
    ctr,
  ]);
  e.job("packAIdx", 4 * L.M * L.K, mp, (chunk, ctr) => [
    xPad,
    L.rowOff,
    L.kOff,
    aPack,
    L.M,
    L.K,
    kc,
    chunk,
    ctr,
  ]);
  computePacked(e, aPack, bPack, cBuf, L.M, O, L.K, kc, 0);
}

/**
 * C [m, n] (row-major, contiguous) = A·B (+ C when `beta` is 1) from operands already packed by
 * the convolution's packing jobs, split like the GEMM's packed path: by M panels when there are
 * enough of them (each thread's A panels stay its own), else by N panels.
 */
function computePacked(
  e: Engine,
  aPack: number,
  bPack: number,
  c: number,
  m: number,
  n: number,
  k: number,
  kc: number,
  beta: number,
): void {
  const mp = Math.ceil(m / e.config.mr);
  const np = Math.ceil(n / NR);
  const T = e.threadsFor(m * n * k);
  const byRows = mp >= np || np < 2 * T;
  e.job("compute", m * n * k, byRows ? mp : np, (chunk, ctr) => [
    aPack,
    bPack,
    c,
    4 * n,
    m,
    n,
    k,
    kc,
    MC_BLOCK_PANELS,
    byRows ? 1 : 0,
    byRows ? Math.min(chunk, MC_BLOCK_PANELS) : chunk,
    ctr,
    beta,
  ]);
}

/** dW[O, K] = gy[O, N·P]·im2col(x) (+ dW when `beta` is 1) on the packed wasm path. */
function packedFilterGradient(
  e: Engine,
  rows: number,
  xPad: number,
  dw: number,
  L: Layout,
  O: number,
  beta: number,
): void {
  const MR = e.config.mr;
  const kc = blockKAny(L.M);
  const mp = Math.ceil(O / MR);
  const np = Math.ceil(L.K / NR);
  const aPack = region("aPack", 4 * mp * MR * L.M);
  const bPack = region("bPack", 4 * np * NR * L.M);
  e.job("packAB", O * L.M, mp, (chunk, ctr) => [
    rows,
    4 * L.M,
    1,
    aPack,
    O,
    0,
    0,
    0,
    0,
    0,
    L.M,
    kc,
    chunk,
    ctr,
  ]);
  e.job("packBIdx", 4 * L.K * L.M, np, (chunk, ctr) => [
    xPad,
    L.rowOff,
    L.kOff,
    bPack,
    L.K,
    L.M,
    kc,
    chunk,
    ctr,
  ]);
  computePacked(e, aPack, bPack, dw, O, L.K, L.M, kc, beta);
}

/**
 * The WebAssembly convolution backward pass (see the module comment). A very large batch runs in
 * chunks of images: the filter gradient then accumulates chunk after chunk, and the bias gradient
 * adds the chunks' sums in float64.
 */
export function wasmConvBackward(a: ConvBackwardArgs): void {
  convBackward(a, null);
}

/** The backward pass in chunks of images; products packed here (`gemm` null) or on `gemm`. */
function convBackward(a: ConvBackwardArgs, gemm: Gemm | null): void {
  const { g, batch: N, outChannels: O } = a;
  const step = imagesPerChunk(g, O, gemm);
  if (N <= step) {
    backwardChunk(a, true, true, gemm);
    return;
  }
  const inImage = g.channels * g.height * g.width;
  const outImage = O * g.outH * g.outW;
  const biasSums = a.gb === null ? null : new Float64Array(O);
  const chunkBias = a.gb === null ? null : new Float32Array(O);
  for (let n0 = 0; n0 < N; n0 += step) {
    backwardChunk(
      {
        ...a,
        batch: Math.min(step, N - n0),
        xOffset: a.xOffset + n0 * inImage,
        gyOffset: a.gyOffset + n0 * outImage,
        yOffset: a.yOffset + n0 * outImage,
        gxOffset: a.gxOffset + n0 * inImage,
        gb: chunkBias,
        gbOffset: 0,
      },
      n0 === 0,
      n0 + step >= N,
      gemm,
    );
    if (biasSums !== null) { for (let o = 0; o < O; o++) biasSums[o] += chunkBias![o]; }
  }
  if (biasSums !== null) { for (let o = 0; o < O; o++) a.gb![a.gbOffset + o] = biasSums[o]; }
}

/**
 * One chunk of the backward pass. The filter gradient accumulates in scratch from the `first`
 * chunk (which overwrites it) and is written out after the `last`.
 */
function backwardChunk(
  a: ConvBackwardArgs,
  first: boolean,
  last: boolean,
  gemm: Gemm | null,
): void {
  const { g, batch: N, outChannels: O } = a;
  const L = layoutOf(g, N);
  const e = defaultEngine();
  const C = g.channels;
  const total = N * O * L.P;
  if (N === 0) {
    if (a.gw !== null) a.gw.fill(0, a.gwOffset, a.gwOffset + O * C * g.kernelH * g.kernelW);
    if (a.gb !== null) a.gb.fill(0, a.gbOffset, a.gbOffset + O);
    return;
  }
  const gyPtr = placeIn("gy", a.gy, a.gyOffset, total);
  const maskPtr = a.y === null ? 0 : placeIn("y", a.y, a.yOffset, total);

  if (a.gw !== null || a.gb !== null) {
    const rows = region("gyRows", 4 * total);
    const gbPtr = a.gb === null ? 0 : placeOut("gb", a.gb, a.gbOffset, O);
    e.job("gyRows", 2 * total, O, (chunk, ctr) => [
      gyPtr,
      rows,
      maskPtr,
      gbPtr,
      O,
      L.P,
      N,
      chunk,
      ctr,
    ]);
    if (a.gb !== null) copyOut(gbPtr, a.gb, a.gbOffset, O);
    if (a.gw !== null) {
      const xPad = paddedInput(a, L);
      const dw = region("dw", 4 * O * L.K);
      const beta = first ? 0 : 1;
      if (gemm === null) packedFilterGradient(e, rows, xPad, dw, L, O, beta);
      else {
        const x = view(explicitRows(xPad, L), L.M * L.K);
        gemm(
          false,
          false,
          O,
          L.K,
          L.M,
          view(rows, total),
          0,
          L.M,
          x,
          0,
          L.K,
          beta,
          view(dw, O * L.K),
          0,
          L.K,
        );
      }
      // Back to [O, C, kh, kw], dropping the padded channels.
      const taps = g.kernelH * g.kernelW;
      if (last) {
        const gwPtr = placeOut("gw", a.gw, a.gwOffset, O * C * taps);
        e.job("nhwcToNchw", O * L.K, O, (chunk, ctr) => [
          dw,
          gwPtr,
          0,
          0,
          C,
          1,
          taps,
          L.Cp,
          1,
          taps,
          0,
          0,
          O,
          chunk,
          ctr,
        ]);
        copyOut(gwPtr, a.gw, a.gwOffset, O * C * taps);
      }
    }
  }

  if (a.gx !== null) {
    const gyT = region("gyT", 4 * total);
    e.job("nchwToNhwc", 4 * total, N, (chunk, ctr) => [
      gyPtr,
      gyT,
      maskPtr,
      O,
      1,
      L.P,
      O,
      1,
      L.P,
      0,
      0,
      N,
      chunk,
      ctr,
    ]);
    const wr = reorderedFilters(a.w, a.wOffset, O, g, L);
    const dcol = region("dcol", 4 * L.M * L.K);
    const heap = heapF32();
    (gemm ?? wasmGemm)(
      false,
      false,
      L.M,
      L.K,
      O,
      heap.subarray(gyT >> 2, (gyT >> 2) + total),
      0,
      O,
      heap.subarray(wr >> 2, (wr >> 2) + O * L.K),
      0,
      L.K,
      0,
      heap.subarray(dcol >> 2, (dcol >> 2) + L.M * L.K),
      0,
      L.K,
    );
    const imageFloats = L.Hp * L.Wp * L.Cp;
    const dxPad = region("dxPad", 4 * N * imageFloats);
    e.job("col2imIdx", 4 * L.M * L.K, N, (chunk, ctr) => [
      dcol,
      4 * L.K,
      dxPad,
      L.rowOff,
      L.kOff,
      L.K,
      L.P,
      4 * imageFloats,
      N,
      chunk,
      ctr,
    ]);
    const n = N * C * g.height * g.width;
    const gxPtr = placeOut("gx", a.gx, a.gxOffset, n);
    e.job("nhwcToNchw", 4 * n, N, (chunk, ctr) => [
      dxPad,
      gxPtr,
      0,
      0,
      C,
      g.height,
      g.width,
      L.Cp,
      L.Hp,
      L.Wp,
      g.padH,
      g.padW,
      N,
      chunk,
      ctr,
    ]);
    copyOut(gxPtr, a.gx, a.gxOffset, n);
  }
}
