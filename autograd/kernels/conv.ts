/**
 * Convolution and pooling kernels over NCHW Float32Array data: im2col / col2im (which turn a
 * convolution into one GEMM per image) and max pooling with saved argmax positions.
 *
 * @module
 */

import { gemmReference } from "./gemm.ts";
import type {
  Col2imKernel,
  ConvBackwardKernel,
  ConvForwardKernel,
  Im2colKernel,
  MaxPoolBackwardKernel,
  MaxPoolForwardKernel,
} from "./types.ts";

/** Geometry of a 2-D convolution or pooling window over one image. */
export interface ConvGeometry {
  /** Input channels. */
  channels: number;
  /** Input height. */
  height: number;
  /** Input width. */
  width: number;
  /** Kernel height. */
  kernelH: number;
  /** Kernel width. */
  kernelW: number;
  /** Vertical stride. */
  strideH: number;
  /** Horizontal stride. */
  strideW: number;
  /** Zero padding above and below. */
  padH: number;
  /** Zero padding left and right. */
  padW: number;
  /** Output height: floor((height + 2·padH − kernelH) / strideH) + 1. */
  outH: number;
  /** Output width: floor((width + 2·padW − kernelW) / strideW) + 1. */
  outW: number;
}

/**
 * Unfolds one image [C, H, W] at `xOffset` into columns [C·kh·kw, outH·outW] at `colOffset`:
 * row (c, i, j) holds the input pixel under kernel tap (i, j) for every output position, 0 where
 * the tap falls in the padding.
 */
export const im2col: Im2colKernel = (x, xOffset, g, col, colOffset) => {
  const { channels, height, width, kernelH, kernelW, strideH, strideW, padH, padW, outH, outW } = g;
  const ld = outH * outW;
  let row = colOffset;
  for (let c = 0; c < channels; c++) {
    const plane = xOffset + c * height * width;
    for (let i = 0; i < kernelH; i++) {
      for (let j = 0; j < kernelW; j++, row += ld) {
        let dst = row;
        for (let oy = 0; oy < outH; oy++) {
          const y = oy * strideH - padH + i;
          if (y < 0 || y >= height) {
            col.fill(0, dst, dst + outW);
            dst += outW;
            continue;
          }
          const rowStart = plane + y * width;
          for (let ox = 0; ox < outW; ox++) {
            const xx = ox * strideW - padW + j;
            col[dst++] = xx >= 0 && xx < width ? x[rowStart + xx] : 0;
          }
        }
      }
    }
  }
};

/**
 * The adjoint of {@linkcode im2col}: adds columns [C·kh·kw, outH·outW] back into an image [C, H, W]
 * (which the caller zeroes first), summing where windows overlap.
 */
export const col2im: Col2imKernel = (col, colOffset, g, x, xOffset) => {
  const { channels, height, width, kernelH, kernelW, strideH, strideW, padH, padW, outH, outW } = g;
  const ld = outH * outW;
  let row = colOffset;
  for (let c = 0; c < channels; c++) {
    const plane = xOffset + c * height * width;
    for (let i = 0; i < kernelH; i++) {
      for (let j = 0; j < kernelW; j++, row += ld) {
        let src = row;
        for (let oy = 0; oy < outH; oy++) {
          const y = oy * strideH - padH + i;
          if (y < 0 || y >= height) {
            src += outW;
            continue;
          }
          const rowStart = plane + y * width;
          for (let ox = 0; ox < outW; ox++, src++) {
            const xx = ox * strideW - padW + j;
            if (xx >= 0 && xx < width) x[rowStart + xx] += col[src];
          }
        }
      }
    }
  }
};

/**
 * Max pooling over `planes` independent [H, W] planes (N·C of them), writing the maximum of each
 * window and the flat index (within its plane) of the element that won, for the backward pass.
 * Padding never wins: it acts as −∞.
 */
export const maxPoolForward: MaxPoolForwardKernel = (x, planes, g, out, argmax) => {
  const { height, width, kernelH, kernelW, strideH, strideW, padH, padW, outH, outW } = g;
  let o = 0;
  for (let p = 0; p < planes; p++) {
    const base = p * height * width;
    for (let oy = 0; oy < outH; oy++) {
      const y0 = Math.max(oy * strideH - padH, 0);
      const y1 = Math.min(oy * strideH - padH + kernelH, height);
      for (let ox = 0; ox < outW; ox++, o++) {
        const x0 = Math.max(ox * strideW - padW, 0);
        const x1 = Math.min(ox * strideW - padW + kernelW, width);
        let best = -Infinity;
        let bestIndex = -1;
        for (let y = y0; y < y1; y++) {
          for (let xx = x0; xx < x1; xx++) {
            const v = x[base + y * width + xx];
            // `!(v <= best)` also lets a NaN win, so NaN propagates as in PyTorch.
            if (!(v <= best)) {
              best = v;
              bestIndex = y * width + xx;
            }
          }
        }
        out[o] = best;
        argmax[o] = bestIndex;
      }
    }
  }
};

/** Routes each pooled gradient back to the input element that won its window (adds into `gx`). */
export const maxPoolBackward: MaxPoolBackwardKernel = (gy, argmax, planes, g, gx) => {
  const perPlaneIn = g.height * g.width;
  const perPlaneOut = g.outH * g.outW;
  for (let p = 0; p < planes; p++) {
    const inBase = p * perPlaneIn;
    const outBase = p * perPlaneOut;
    for (let o = 0; o < perPlaneOut; o++) {
      const index = argmax[outBase + o];
      if (index >= 0) gx[inBase + index] += gy[outBase + o];
    }
  }
};

/**
 * Reference convolution: per image, im2col then one GEMM (W [O, C·kh·kw] · col), the bias seeded
 * into the output first, ReLU applied after when fused. Uses the reference im2col and GEMM
 * directly, so it stays the definition of correct whatever kernels are installed.
 */
export const convForwardReference: ConvForwardKernel = (a) => {
  const { g, batch, outChannels: O } = a;
  const patch = g.channels * g.kernelH * g.kernelW;
  const pixels = g.outH * g.outW;
  const imageSize = g.channels * g.height * g.width;
  const col = new Float32Array(patch * pixels);
  for (let n = 0; n < batch; n++) {
    const o = a.outOffset + n * O * pixels;
    if (a.bias !== null) {
      for (let c = 0; c < O; c++) {
        a.out.fill(a.bias[a.biasOffset + c], o + c * pixels, o + (c + 1) * pixels);
      }
    }
    im2col(a.x, a.xOffset + n * imageSize, g, col, 0);
    gemmReference(
      false,
      false,
      O,
      pixels,
      patch,
      a.w,
      a.wOffset,
      patch,
      col,
      0,
      pixels,
      a.bias === null ? 0 : 1,
      a.out,
      o,
      pixels,
    );
  }
  if (a.relu) {
    const end = a.outOffset + batch * O * pixels;
    for (let i = a.outOffset; i < end; i++) if (!(a.out[i] > 0)) a.out[i] = 0;
  }
};

/**
 * Reference convolution gradients: gy is masked by y > 0 when ReLU was fused; then per image
 * dW += gy[n]·colᵀ, dcol = Wᵀ·gy[n] folded back by col2im, and db = Σ gy over images and pixels
 * (accumulated in float64).
 */
export const convBackwardReference: ConvBackwardKernel = (a) => {
  const { g, batch, outChannels: O } = a;
  const patch = g.channels * g.kernelH * g.kernelW;
  const pixels = g.outH * g.outW;
  const imageSize = g.channels * g.height * g.width;
  const total = batch * O * pixels;
  let gy = a.gy;
  let gyOffset = a.gyOffset;
  if (a.y !== null) {
    gy = new Float32Array(total);
    for (let i = 0; i < total; i++) {
      gy[i] = a.y[a.yOffset + i] > 0 ? a.gy[a.gyOffset + i] : 0;
    }
    gyOffset = 0;
  }
  const col = new Float32Array(patch * pixels);
  if (a.gx !== null) a.gx.fill(0, a.gxOffset, a.gxOffset + batch * imageSize);
  for (let n = 0; n < batch; n++) {
    const yo = gyOffset + n * O * pixels;
    if (a.gw !== null) {
      im2col(a.x, a.xOffset + n * imageSize, g, col, 0);
      gemmReference(
        false,
        true,
        O,
        patch,
        pixels,
        gy,
        yo,
        pixels,
        col,
        0,
        pixels,
        n === 0 ? 0 : 1,
        a.gw,
        a.gwOffset,
        patch,
      );
    }
    if (a.gx !== null) {
      gemmReference(
        true,
        false,
        patch,
        pixels,
        O,
        a.w,
        a.wOffset,
        patch,
        gy,
        yo,
        pixels,
        0,
        col,
        0,
        pixels,
      );
      col2im(col, 0, g, a.gx, a.gxOffset + n * imageSize);
    }
  }
  if (a.gw !== null && batch === 0) a.gw.fill(0, a.gwOffset, a.gwOffset + O * patch);
  if (a.gb !== null) {
    for (let c = 0; c < O; c++) {
      let s = 0;
      for (let n = 0; n < batch; n++) {
        const base = gyOffset + (n * O + c) * pixels;
        for (let p = 0; p < pixels; p++) s += gy[base + p];
      }
      a.gb[a.gbOffset + c] = s;
    }
  }
};
