/**
 * Convolution and pooling kernels over NCHW Float32Array data: im2col / col2im (which turn a
 * convolution into one GEMM per image) and max pooling with saved argmax positions.
 *
 * @module
 */

import type {
  Col2imKernel,
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
  let dst = colOffset;
  for (let c = 0; c < channels; c++) {
    const plane = xOffset + c * height * width;
    for (let i = 0; i < kernelH; i++) {
      for (let j = 0; j < kernelW; j++) {
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
  let src = colOffset;
  for (let c = 0; c < channels; c++) {
    const plane = xOffset + c * height * width;
    for (let i = 0; i < kernelH; i++) {
      for (let j = 0; j < kernelW; j++) {
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
