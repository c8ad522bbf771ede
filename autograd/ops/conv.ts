/**
 * 2-D convolution (NCHW, via im2col + GEMM, bias seeded into the output) and max pooling.
 *
 * Forward, per image n: col = im2col(x[n]) is [C·kh·kw, OH·OW]; y[n] = W·col with W viewed as
 * [O, C·kh·kw]. Backward: dW += dy[n]·colᵀ, dcol = Wᵀ·dy[n] folded back by col2im, db = Σ dy.
 * The columns are rebuilt in the backward pass rather than kept, so memory does not grow with the
 * batch.
 *
 * @module
 */

import { type ConvGeometry, kernels } from "../kernels/mod.ts";
import { formatShape } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { sum } from "./reduce.ts";
import { dense, empty } from "./util.ts";
import { reshape } from "./view.ts";

/** A stride or padding given once for both axes, or as [vertical, horizontal]. */
export type Pair = number | readonly [number, number];

/** Options of {@linkcode conv2d}. */
export interface Conv2dOptions {
  /** Step between windows (default 1). */
  stride?: Pair;
  /** Zero padding on each side (default 0). */
  padding?: Pair;
}

/** Options of {@linkcode maxPool2d}. */
export interface MaxPool2dOptions {
  /** Step between windows (default: the kernel size). */
  stride?: Pair;
  /** Implicit −∞ padding on each side (default 0). */
  padding?: Pair;
}

function pair(v: Pair, name: string, op: string, min: number): [number, number] {
  const p: [number, number] = typeof v === "number" ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= min)) {
    throw new RangeError(`${op}: ${name} must be integers >= ${min}, got ${v}`);
  }
  return p;
}

function geometry(
  op: string,
  x: Tensor,
  kernelH: number,
  kernelW: number,
  stride: [number, number],
  padding: [number, number],
): ConvGeometry {
  const [, channels, height, width] = x.shape;
  const outH = Math.floor((height + 2 * padding[0] - kernelH) / stride[0]) + 1;
  const outW = Math.floor((width + 2 * padding[1] - kernelW) / stride[1]) + 1;
  if (outH < 1 || outW < 1) {
    throw new RangeError(
      `${op}: a ${kernelH}×${kernelW} window with padding ${padding.join("×")} does not fit input ${
        formatShape(x.shape)
      }`,
    );
  }
  return {
    channels,
    height,
    width,
    kernelH,
    kernelW,
    strideH: stride[0],
    strideW: stride[1],
    padH: padding[0],
    padW: padding[1],
    outH,
    outW,
  };
}

/** Convolution of x [N, C, H, W] with W [O, C, kh, kw] and optional bias [O]. */
export const conv2dOp: OpDef<Tensor[], ConvGeometry, null> = defineOp<Tensor[], ConvGeometry, null>(
  {
    name: "conv2d",
    forward([input, weight, bias], g) {
      const x = dense(input);
      const w = dense(weight);
      const batch = x.shape[0];
      const outChannels = w.shape[0];
      const patch = g.channels * g.kernelH * g.kernelW;
      const pixels = g.outH * g.outW;
      const out = empty([batch, outChannels, g.outH, g.outW]);
      const col = new Float32Array(patch * pixels);
      const b = bias === undefined ? null : dense(bias);
      const imageSize = g.channels * g.height * g.width;
      for (let n = 0; n < batch; n++) {
        const o = n * outChannels * pixels;
        if (b !== null) {
          for (let c = 0; c < outChannels; c++) {
            out.data.fill(b.data[b.offset + c], o + c * pixels, o + (c + 1) * pixels);
          }
        }
        kernels.im2col(x.data, x.offset + n * imageSize, g, col, 0);
        kernels.gemm(
          false,
          false,
          outChannels,
          pixels,
          patch,
          w.data,
          w.offset,
          patch,
          col,
          0,
          pixels,
          b === null ? 0 : 1,
          out.data,
          o,
          pixels,
        );
      }
      return { out, saved: null };
    },
    backward(gradOut, _saved, [input, weight, bias], g) {
      const x = dense(input);
      const w = dense(weight);
      const gy = dense(gradOut);
      const batch = x.shape[0];
      const outChannels = w.shape[0];
      const patch = g.channels * g.kernelH * g.kernelW;
      const pixels = g.outH * g.outW;
      const imageSize = g.channels * g.height * g.width;
      const col = new Float32Array(patch * pixels);
      const gx = input.requiresGrad ? empty(x.shape) : null;
      const gw = weight.requiresGrad ? empty(w.shape) : null;
      for (let n = 0; n < batch; n++) {
        const yo = gy.offset + n * outChannels * pixels;
        if (gw !== null) {
          kernels.im2col(x.data, x.offset + n * imageSize, g, col, 0);
          kernels.gemm(
            false,
            true,
            outChannels,
            patch,
            pixels,
            gy.data,
            yo,
            pixels,
            col,
            0,
            pixels,
            n === 0 ? 0 : 1,
            gw.data,
            0,
            patch,
          );
        }
        if (gx !== null) {
          kernels.gemm(
            true,
            false,
            patch,
            pixels,
            outChannels,
            w.data,
            w.offset,
            patch,
            gy.data,
            yo,
            pixels,
            0,
            col,
            0,
            pixels,
          );
          kernels.col2im(col, 0, g, gx.data, n * imageSize);
        }
      }
      const grads: (Tensor | null)[] = [gx, gw];
      if (bias !== undefined) {
        grads.push(
          bias.requiresGrad ? sum(reshape(gy, [batch, outChannels, pixels]), [0, 2]) : null,
        );
      }
      return grads;
    },
  },
);

/** Max pooling over each channel plane; the argmax of every window is kept for the backward pass. */
export const maxPool2dOp: OpDef<[Tensor], ConvGeometry, Int32Array> = defineOp<
  [Tensor],
  ConvGeometry,
  Int32Array
>({
  name: "maxPool2d",
  forward([input], g) {
    const x = dense(input);
    const [batch, channels] = x.shape;
    const out = empty([batch, channels, g.outH, g.outW]);
    const argmax = new Int32Array(out.size);
    kernels.maxPoolForward(x.data.subarray(x.offset), batch * channels, g, out.data, argmax);
    return { out, saved: argmax };
  },
  backward(gradOut, argmax, [input], g) {
    const gy = dense(gradOut);
    const gx = empty(input.shape);
    kernels.maxPoolBackward(
      gy.data.subarray(gy.offset),
      argmax,
      input.shape[0] * input.shape[1],
      g,
      gx.data,
    );
    return [gx];
  },
});

/**
 * 2-D convolution (cross-correlation, as in PyTorch) of `x` [N, C, H, W] with `weight`
 * [O, C, kh, kw] and optional `bias` [O]; output [N, O, OH, OW] with OH = ⌊(H + 2p − kh)/s⌋ + 1.
 */
export function conv2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor,
  options: Conv2dOptions = {},
): Tensor {
  if (x.ndim !== 4 || weight.ndim !== 4 || x.shape[1] !== weight.shape[1]) {
    throw new RangeError(
      `conv2d: input ${formatShape(x.shape)} and weight ${
        formatShape(weight.shape)
      } do not match ` +
        "(expected input [N, C, H, W] and weight [O, C, kh, kw])",
    );
  }
  if (bias !== undefined && (bias.ndim !== 1 || bias.shape[0] !== weight.shape[0])) {
    throw new RangeError(
      `conv2d: bias ${formatShape(bias.shape)} does not match weight ${formatShape(weight.shape)}`,
    );
  }
  const stride = pair(options.stride ?? 1, "stride", "conv2d", 1);
  const padding = pair(options.padding ?? 0, "padding", "conv2d", 0);
  const g = geometry("conv2d", x, weight.shape[2], weight.shape[3], stride, padding);
  return applyOp(conv2dOp, bias === undefined ? [x, weight] : [x, weight, bias], g);
}

/** Max pooling of `x` [N, C, H, W] with a `kernelSize` window (stride defaults to the window). */
export function maxPool2d(x: Tensor, kernelSize: Pair, options: MaxPool2dOptions = {}): Tensor {
  if (x.ndim !== 4) {
    throw new RangeError(`maxPool2d: expected input [N, C, H, W], got ${formatShape(x.shape)}`);
  }
  const kernel = pair(kernelSize, "kernelSize", "maxPool2d", 1);
  const stride = pair(options.stride ?? kernel, "stride", "maxPool2d", 1);
  const padding = pair(options.padding ?? 0, "padding", "maxPool2d", 0);
  if (padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1]) {
    throw new RangeError(
      `maxPool2d: padding ${padding.join("×")} must be at most half the window ${kernel.join("×")}`,
    );
  }
  return applyOp(maxPool2dOp, [x], geometry("maxPool2d", x, kernel[0], kernel[1], stride, padding));
}
