/**
 * 2-D convolution (NCHW, optionally fused with ReLU) and max pooling.
 *
 * The convolution hands the whole batch to the `convForward` / `convBackward` kernels: the
 * reference runs im2col + GEMM per image; the WebAssembly kernels run one GEMM per pass over the
 * batch with im2col fused into the operand packing. Nothing batch-sized is kept between the
 * passes: the backward pass rebuilds what it needs from the saved input.
 *
 * @module
 */

import { type ConvGeometry, type ConvOperands, kernels } from "../kernels/mod.ts";
import { formatShape } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { dense, empty } from "./util.ts";

/** A stride or padding given once for both axes, or as [vertical, horizontal]. */
export type Pair = number | readonly [number, number];

/** Options of {@linkcode conv2d}. */
export interface Conv2dOptions {
  /** Step between windows (default 1). */
  stride?: Pair;
  /** Zero padding on each side (default 0). */
  padding?: Pair;
  /**
   * Apply ReLU to the result in the same op (default false): `conv2d(x, w, b, { relu: true })`
   * equals `relu(conv2d(x, w, b))` but saves a pass over the output forward and backward.
   */
  relu?: boolean;
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

/** Images and filters as the convolution kernels take them (contiguous; copied when not). */
function convOperands(input: Tensor, weight: Tensor, g: ConvGeometry): ConvOperands {
  const x = dense(input);
  const w = dense(weight);
  return {
    x: x.data,
    xOffset: x.offset,
    batch: x.shape[0],
    w: w.data,
    wOffset: w.offset,
    outChannels: w.shape[0],
    g,
  };
}

/** Attributes of {@linkcode conv2dOp}: the geometry, and whether ReLU is fused after the bias. */
export interface Conv2dAttrs extends ConvGeometry {
  /** Apply max(·, 0) to the result (conv + bias + ReLU in one op). */
  relu?: boolean;
}

/**
 * Convolution of x [N, C, H, W] with W [O, C, kh, kw] and optional bias [O], optionally followed
 * by ReLU. The whole batch goes to the `convForward` / `convBackward` kernels at once.
 */
export const conv2dOp: OpDef<Tensor[], Conv2dAttrs, null> = defineOp<Tensor[], Conv2dAttrs, null>(
  {
    name: "conv2d",
    onceDifferentiable: true,
    forward([input, weight, bias], g) {
      const operands = convOperands(input, weight, g);
      const b = bias === undefined ? null : dense(bias);
      const out = empty([operands.batch, operands.outChannels, g.outH, g.outW]);
      kernels.convForward({
        ...operands,
        bias: b === null ? null : b.data,
        biasOffset: b === null ? 0 : b.offset,
        relu: g.relu === true,
        out: out.data,
        outOffset: 0,
      });
      return { out, saved: null };
    },
    backward(gradOut, _saved, [input, weight, bias], g, out) {
      const gy = dense(gradOut);
      const gx = input.requiresGrad ? empty(input.shape) : null;
      const gw = weight.requiresGrad ? empty(weight.shape) : null;
      const gb = bias !== undefined && bias.requiresGrad ? empty(bias.shape) : null;
      kernels.convBackward({
        ...convOperands(input, weight, g),
        gy: gy.data,
        gyOffset: gy.offset,
        y: g.relu === true ? out.data : null,
        yOffset: 0,
        gx: gx === null ? null : gx.data,
        gxOffset: 0,
        gw: gw === null ? null : gw.data,
        gwOffset: 0,
        gb: gb === null ? null : gb.data,
        gbOffset: 0,
      });
      const grads: (Tensor | null)[] = [gx, gw];
      if (bias !== undefined) grads.push(gb);
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
  onceDifferentiable: true,
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
  const g: Conv2dAttrs = geometry("conv2d", x, weight.shape[2], weight.shape[3], stride, padding);
  if (options.relu === true) g.relu = true;
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
