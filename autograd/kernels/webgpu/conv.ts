/**
 * WGSL convolution and max pooling over NCHW device storage, with the CPU kernels' semantics
 * (`autograd/kernels/conv.ts`): the same {@linkcode ConvGeometry}, bias, fused ReLU, and argmax
 * positions saved for the pooling's backward pass.
 *
 * The three convolution products are implicit GEMMs on the tiled kernel of `gemm.ts`: its loaders
 * compute the im2col element they need from the image (or the output gradient), so no column
 * matrix is ever stored, and the whole batch is one product:
 * - forward: Y[O, N·OH·OW] = W[O, C·kh·kw] · im2col(X), bias per row, then ReLU;
 * - weight gradient: dW[O, C·kh·kw] = G'[O, N·OH·OW] · im2col(X)ᵀ, split over K (the batch's
 *   pixels) when few output tiles would leave a big GPU idle;
 * - input gradient: dX[C, N·H·W] = Σ over (o, i, j) of W[o, c, i, j] · G'[n, o, oy, ox] with
 *   oy = (y + padH − i) / strideH where that divides exactly (the transposed convolution, taps
 *   that land between strided outputs read zero); a gather, so no atomics and no col2im pass.
 * G' is the output gradient masked by y > 0 when ReLU was fused, applied as it is loaded.
 *
 * Pooling is one thread per output (forward) and one per input (backward: it gathers the
 * gradients of the windows whose argmax it is, in output order, so sums match the CPU's).
 *
 * @module
 */

import type { ConvGeometry } from "../conv.ts";
import { dispatchGemm, gemmWgsl, gpuColumnSum, gpuSumSlices, hookParam, splitK } from "./gemm.ts";
import { f32Bits, type GpuStorage, LINEAR_ID_WGSL, type WebGpu, webgpu } from "./runtime.ts";

/** A device buffer and the element offset where an operand starts. */
export interface GpuRegion {
  /** The storage. */
  storage: GpuStorage;
  /** Element offset of the first element. */
  offset: number;
}

/** Operands shared by the convolution kernels: contiguous images and filters. */
export interface GpuConvOperands {
  /** Images [batch, C, H, W], contiguous from `x.offset`. */
  x: GpuRegion;
  /** Images in the batch. */
  batch: number;
  /** Filters [O, C, kh, kw], contiguous from `w.offset`. */
  w: GpuRegion;
  /** Filters (output channels). */
  outChannels: number;
  /** The window geometry. */
  g: ConvGeometry;
}

/** Arguments of {@linkcode gpuConvForward}. */
export interface GpuConvForwardArgs extends GpuConvOperands {
  /** Bias [O] (element stride `stride`), or null. */
  bias: (GpuRegion & { stride: number }) | null;
  /** Apply ReLU after the bias. */
  relu: boolean;
  /** Output [batch, O, OH, OW], contiguous from `out.offset`. */
  out: GpuRegion;
}

/** Arguments of {@linkcode gpuConvBackward}. */
export interface GpuConvBackwardArgs extends GpuConvOperands {
  /** Output gradient [batch, O, OH, OW], contiguous. */
  gy: GpuRegion;
  /** The forward output when ReLU was fused (its > 0 mask gates gy), else null. */
  y: GpuRegion | null;
  /** Input gradient [batch, C, H, W] (written, not accumulated), or null. */
  gx: GpuRegion | null;
  /** Weight gradient [O, C, kh, kw] (written), or null. */
  gw: GpuRegion | null;
  /** Bias gradient [O] (written), or null. */
  gb: GpuRegion | null;
  /** Split-K slices for the weight gradient (tests); chosen by size when omitted. */
  weightSlices?: number;
}

// Hook parameters of every convolution kernel: the geometry, then the operand offsets.
const C = 0, H = 1, W = 2, KH = 3, KW = 4, SH = 5, SW = 6, PH = 7, PW = 8, OH = 9, OW = 10, O = 11;
const OFF0 = 12, OFF1 = 13, OFF2 = 14, OFF3 = 15, EXTRA = 16;

/** WGSL accessors of the geometry words (`gC()`, `gH()`, …). */
const GEOMETRY_WGSL = [
  ["gC", C],
  ["gH", H],
  ["gW", W],
  ["gKH", KH],
  ["gKW", KW],
  ["gSH", SH],
  ["gSW", SW],
  ["gPH", PH],
  ["gPW", PW],
  ["gOH", OH],
  ["gOW", OW],
  ["gO", O],
].map(([name, i]) => `fn ${name}() -> u32 { return ${hookParam(i as number)}; }`).join("\n") +
  `
fn gKHW() -> u32 { return gKH() * gKW(); }
fn gPixels() -> u32 { return gOH() * gOW(); }
`;

function geometryWords(g: ConvGeometry, outChannels: number): number[] {
  return [
    g.channels,
    g.height,
    g.width,
    g.kernelH,
    g.kernelW,
    g.strideH,
    g.strideW,
    g.padH,
    g.padW,
    g.outH,
    g.outW,
    outChannels,
  ];
}

/**
 * WGSL `im2col(n, c, i, j, oy, ox)`: the input pixel under tap (i, j) of output (oy, ox) of image
 * n, channel c; 0 in the padding. The images are bound as `x`, their offset at OFF1.
 */
const IM2COL_WGSL = `
fn im2col(n: u32, c: u32, i: u32, j: u32, oy: u32, ox: u32) -> f32 {
  let y = i32(oy * gSH() + i) - i32(gPH());
  let xx = i32(ox * gSW() + j) - i32(gPW());
  if (y < 0 || y >= i32(gH()) || xx < 0 || xx >= i32(gW())) { return 0.0; }
  return x[${hookParam(OFF1)} + ((n * gC() + c) * gH() + u32(y)) * gW() + u32(xx)];
}
`;

/** WGSL `grad(idx)`: the output gradient at flat index idx, masked by y > 0 when `masked`. */
function gradWgsl(masked: boolean): string {
  return `
fn grad(idx: u32) -> f32 {
  let v = gy[${hookParam(OFF0)} + idx];
  ${masked ? `return select(0.0, v, y[${hookParam(OFF3)} + idx] > 0.0);` : "return v;"}
}
`;
}

function forwardKernel(gpu: WebGpu, bias: boolean, relu: boolean) {
  const source = `@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
${bias ? "@group(0) @binding(3) var<storage, read> bias: array<f32>;" : ""}
@group(0) @binding(${bias ? 4 : 3}) var<storage, read_write> out: array<f32>;
${GEOMETRY_WGSL}
${IM2COL_WGSL}
fn loadA(z: u32, i: u32, p: u32) -> f32 {
  return w[${hookParam(OFF0)} + i * gC() * gKHW() + p];
}
fn loadB(z: u32, p: u32, j: u32) -> f32 {
  let c = p / gKHW();
  let r = p % gKHW();
  let n = j / gPixels();
  let pix = j % gPixels();
  return im2col(n, c, r / gKW(), r % gKW(), pix / gOW(), pix % gOW());
}
fn store(z: u32, i: u32, j: u32, acc: f32) {
  var v = acc;
  ${bias ? `v += bias[${hookParam(OFF3)} + i * ${hookParam(EXTRA)}];` : ""}
  ${relu ? "v = select(0.0, v, v > 0.0);" : ""}
  let n = j / gPixels();
  out[${hookParam(OFF2)} + (n * gO() + i) * gPixels() + j % gPixels()] = v;
}`;
  return gpu.kernel(
    `conv2dForward${bias ? "_bias" : ""}${relu ? "_relu" : ""}`,
    gemmWgsl({ source, aFast: "k", bFast: "n" }),
    bias ? 3 : 2,
    1,
  );
}

/**
 * Records the convolution of {@linkcode GpuConvForwardArgs}: out = W ⊛ x (+ bias) (then ReLU),
 * one implicit GEMM over the whole batch.
 */
export function gpuConvForward(a: GpuConvForwardArgs): void {
  const gpu = webgpu();
  const { g, batch, outChannels } = a;
  const patch = g.channels * g.kernelH * g.kernelW;
  const storages = [a.w.storage, a.x.storage];
  if (a.bias !== null) storages.push(a.bias.storage);
  storages.push(a.out.storage);
  dispatchGemm(
    gpu,
    forwardKernel(gpu, a.bias !== null, a.relu),
    storages,
    outChannels,
    batch * g.outH * g.outW,
    patch,
    [
      ...geometryWords(g, outChannels),
      a.w.offset,
      a.x.offset,
      a.out.offset,
      a.bias?.offset ?? 0,
      a.bias?.stride ?? 0,
    ],
  );
}

function inputGradKernel(gpu: WebGpu, masked: boolean) {
  const source = `@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
${masked ? "@group(0) @binding(3) var<storage, read> y: array<f32>;" : ""}
@group(0) @binding(${masked ? 4 : 3}) var<storage, read_write> gx: array<f32>;
${GEOMETRY_WGSL}
${gradWgsl(masked)}
fn loadA(z: u32, i: u32, p: u32) -> f32 {
  return w[${hookParam(OFF1)} + ((p / gKHW()) * gC() + i) * gKHW() + p % gKHW()];
}
fn loadB(z: u32, p: u32, j: u32) -> f32 {
  let o = p / gKHW();
  let r = p % gKHW();
  let hw = gH() * gW();
  let n = j / hw;
  let rem = j % hw;
  // Output (oy, ox) reads this pixel through tap (i, j) when oy·stride = y + pad − i.
  let ny = i32(rem / gW() + gPH()) - i32(r / gKW());
  let nx = i32(rem % gW() + gPW()) - i32(r % gKW());
  if (ny < 0 || nx < 0) { return 0.0; }
  if (u32(ny) % gSH() != 0u || u32(nx) % gSW() != 0u) { return 0.0; }
  let oy = u32(ny) / gSH();
  let ox = u32(nx) / gSW();
  if (oy >= gOH() || ox >= gOW()) { return 0.0; }
  return grad((n * gO() + o) * gPixels() + oy * gOW() + ox);
}
fn store(z: u32, i: u32, j: u32, v: f32) {
  let hw = gH() * gW();
  gx[${hookParam(OFF2)} + ((j / hw) * gC() + i) * hw + j % hw] = v;
}`;
  return gpu.kernel(
    `conv2dInputGrad${masked ? "_masked" : ""}`,
    gemmWgsl({ source, aFast: "k", bFast: "n" }),
    masked ? 3 : 2,
    1,
  );
}

function weightGradKernel(gpu: WebGpu, masked: boolean) {
  const source = `@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
${masked ? "@group(0) @binding(3) var<storage, read> y: array<f32>;" : ""}
@group(0) @binding(${masked ? 4 : 3}) var<storage, read_write> dst: array<f32>;
${GEOMETRY_WGSL}
${IM2COL_WGSL}
${gradWgsl(masked)}
fn loadA(z: u32, i: u32, p: u32) -> f32 {
  return grad(((p / gPixels()) * gO() + i) * gPixels() + p % gPixels());
}
fn loadB(z: u32, p: u32, j: u32) -> f32 {
  let r = j % gKHW();
  let pix = p % gPixels();
  return im2col(p / gPixels(), j / gKHW(), r / gKW(), r % gKW(), pix / gOW(), pix % gOW());
}
fn store(z: u32, i: u32, j: u32, v: f32) {
  // z is the K slice: slices are side by side and summed afterwards.
  let taps = gC() * gKHW();
  dst[${hookParam(OFF2)} + (z * gO() + i) * taps + j] = v;
}`;
  return gpu.kernel(
    `conv2dWeightGrad${masked ? "_masked" : ""}`,
    gemmWgsl({ source, aFast: "k", bFast: "k" }),
    masked ? 3 : 2,
    1,
  );
}

/**
 * Records the gradients of {@linkcode GpuConvBackwardArgs} that are asked for: dX and dW by
 * implicit GEMMs, db by a column sum over the batch's pixels, all from gy masked by y > 0 when
 * ReLU was fused.
 */
export function gpuConvBackward(a: GpuConvBackwardArgs): void {
  const gpu = webgpu();
  const { g, batch, outChannels } = a;
  const patch = g.channels * g.kernelH * g.kernelW;
  const pixels = g.outH * g.outW;
  const masked = a.y !== null;
  const geometry = geometryWords(g, outChannels);
  const yOffset = a.y?.offset ?? 0;
  if (a.gx !== null) {
    const storages = [a.w.storage, a.gy.storage];
    if (a.y !== null) storages.push(a.y.storage);
    storages.push(a.gx.storage);
    dispatchGemm(
      gpu,
      inputGradKernel(gpu, masked),
      storages,
      g.channels,
      batch * g.height * g.width,
      outChannels * g.kernelH * g.kernelW,
      [...geometry, a.gy.offset, a.w.offset, a.gx.offset, yOffset],
    );
  }
  if (a.gw !== null) {
    const k = batch * pixels;
    const slice = splitK(outChannels, patch, k, a.weightSlices);
    const slices = slice === 0 ? 1 : Math.ceil(k / slice);
    const dst = slices === 1
      ? a.gw
      : { storage: gpu.alloc("float32", slices * outChannels * patch), offset: 0 };
    const storages = [a.gy.storage, a.x.storage];
    if (a.y !== null) storages.push(a.y.storage);
    storages.push(dst.storage);
    dispatchGemm(
      gpu,
      weightGradKernel(gpu, masked),
      storages,
      outChannels,
      patch,
      k,
      [...geometry, a.gy.offset, a.x.offset, dst.offset, yOffset],
      slices,
      slice,
    );
    if (slices > 1) {
      gpuSumSlices(dst.storage, slices, outChannels * patch, a.gw.storage, a.gw.offset);
    }
  }
  if (a.gb !== null) {
    const layout = (offset: number) => ({
      offset,
      inner: pixels,
      outerStride: outChannels * pixels,
      innerStride: 1,
      colStride: pixels,
    });
    gpuColumnSum(
      { storage: a.gy.storage, ...layout(a.gy.offset) },
      batch * pixels,
      outChannels,
      a.y === null ? null : { storage: a.y.storage, ...layout(a.y.offset) },
      a.gb.storage,
      a.gb.offset,
    );
  }
}

/** Parameter words of a pooling kernel: count, geometry, an offset, −∞. */
function poolWords(count: number, g: ConvGeometry, offset: number): number[] {
  return [
    count,
    g.height,
    g.width,
    g.kernelH,
    g.kernelW,
    g.strideH,
    g.strideW,
    g.padH,
    g.padW,
    g.outH,
    g.outW,
    offset,
    // −∞ travels as a parameter: WGSL has no infinite literal.
    f32Bits(-Infinity),
  ];
}

const POOL_WGSL = `
fn pH() -> u32 { return pu(1u); }
fn pW() -> u32 { return pu(2u); }
fn pKH() -> i32 { return pi(3u); }
fn pKW() -> i32 { return pi(4u); }
fn pSH() -> u32 { return pu(5u); }
fn pSW() -> u32 { return pu(6u); }
fn pPH() -> u32 { return pu(7u); }
fn pPW() -> u32 { return pu(8u); }
fn pOH() -> u32 { return pu(9u); }
fn pOW() -> u32 { return pu(10u); }
${LINEAR_ID_WGSL}
`;

/**
 * Max pooling of `planes` [H, W] planes of `x` (contiguous from `x.offset`) into `out` (contiguous
 * [planes, OH, OW], from offset 0) and the flat index within its plane of each window's winner
 * into `argmax` (int32, same layout). Padding never wins; a NaN does (it propagates).
 */
export function gpuMaxPoolForward(
  x: GpuRegion,
  planes: number,
  g: ConvGeometry,
  out: GpuStorage,
  argmax: GpuStorage,
): void {
  const gpu = webgpu();
  const kernel = gpu.kernel(
    "maxPool2dForward",
    `${POOL_WGSL}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<i32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let o = linearId(gid, groups);
  if (o >= pu(0u)) { return; }
  let pixels = pOH() * pOW();
  let plane = o / pixels;
  let pix = o % pixels;
  let top = i32((pix / pOW()) * pSH()) - i32(pPH());
  let left = i32((pix % pOW()) * pSW()) - i32(pPW());
  let y0 = max(top, 0);
  let y1 = min(top + pKH(), i32(pH()));
  let x0 = max(left, 0);
  let x1 = min(left + pKW(), i32(pW()));
  let base = pu(11u) + plane * pH() * pW();
  var best = pf(12u);
  var bestIndex = -1;
  for (var yy = y0; yy < y1; yy++) {
    for (var xx = x0; xx < x1; xx++) {
      let at = yy * i32(pW()) + xx;
      let v = x[base + u32(at)];
      // !(v <= best) also lets a NaN win, so NaN propagates as on the CPU.
      if (!(v <= best)) {
        best = v;
        bestIndex = at;
      }
    }
  }
  out[o] = best;
  argmax[o] = bestIndex;
}`,
    1,
    2,
  );
  const n = planes * g.outH * g.outW;
  gpu.dispatch1d(kernel, [x.storage, out, argmax], poolWords(n, g, x.offset), n);
}

/**
 * The gradient of max pooling: gx (contiguous [planes, H, W], written) gathers, for each input
 * element, the gradients gy (contiguous from `gy.offset`) of the windows whose argmax it is.
 */
export function gpuMaxPoolBackward(
  gy: GpuRegion,
  argmax: GpuStorage,
  planes: number,
  g: ConvGeometry,
  gx: GpuStorage,
): void {
  const gpu = webgpu();
  const kernel = gpu.kernel(
    "maxPool2dBackward",
    `${POOL_WGSL}
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read> argmax: array<i32>;
@group(0) @binding(3) var<storage, read_write> gx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = linearId(gid, groups);
  if (i >= pu(0u)) { return; }
  let hw = pH() * pW();
  let plane = i / hw;
  let rem = i % hw;
  // The windows holding row y are those with oy·stride − pad ≤ y < oy·stride − pad + kh.
  let ty = i32(rem / pW() + pPH());
  let tx = i32(rem % pW() + pPW());
  let lowY = ty - pKH() + 1;
  let lowX = tx - pKW() + 1;
  let oy0 = select(0u, (u32(lowY) + pSH() - 1u) / pSH(), lowY > 0);
  let ox0 = select(0u, (u32(lowX) + pSW() - 1u) / pSW(), lowX > 0);
  let oy1 = min(pOH(), u32(ty) / pSH() + 1u);
  let ox1 = min(pOW(), u32(tx) / pSW() + 1u);
  let base = plane * pOH() * pOW();
  var s = 0.0;
  for (var oy = oy0; oy < oy1; oy++) {
    for (var ox = ox0; ox < ox1; ox++) {
      let o = base + oy * pOW() + ox;
      if (argmax[o] == i32(rem)) { s += gy[pu(11u) + o]; }
    }
  }
  gx[i] = s;
}`,
    2,
    1,
  );
  const n = planes * g.height * g.width;
  gpu.dispatch1d(kernel, [gy.storage, argmax, gx], poolWords(n, g, gy.offset), n);
}
