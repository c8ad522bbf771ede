/**
 * 2-D convolution (NCHW, optionally fused with ReLU), its grouped, dilated and 1-D forms, and max
 * pooling.
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
import { add } from "./arith.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { dense, empty } from "./util.ts";
import { narrow, sliceScatter, squeeze, unsqueeze } from "./view.ts";

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
  /**
   * Spacing between the kernel's taps (default 1). A dilated convolution runs as an ordinary one
   * with the kernel spread out by zeros (a slower general path: d² times the multiply-adds).
   */
  dilation?: Pair;
  /**
   * Split the channels into this many independent groups (default 1): weight [O, C/groups, kh, kw].
   * Runs as one convolution per group (a slower general path than groups = 1).
   */
  groups?: number;
}

/** Options of {@linkcode conv1d}. */
export interface Conv1dOptions {
  /** Step between windows (default 1). */
  stride?: number;
  /** Zero padding on each side (default 0). */
  padding?: number;
  /** Spacing between the kernel's taps (default 1). */
  dilation?: number;
  /** Independent channel groups (default 1). */
  groups?: number;
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
  const groups = options.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) {
    throw new RangeError(`conv2d: groups must be a positive integer, got ${groups}`);
  }
  if (
    x.ndim !== 4 || weight.ndim !== 4 || x.shape[1] !== weight.shape[1] * groups ||
    weight.shape[0] % groups !== 0
  ) {
    throw new RangeError(
      `conv2d: input ${formatShape(x.shape)} and weight ${
        formatShape(weight.shape)
      } do not match ` +
        `(expected input [N, C, H, W] and weight [O, C/groups, kh, kw] with groups = ${groups} ` +
        "dividing C and O)",
    );
  }
  if (bias !== undefined && (bias.ndim !== 1 || bias.shape[0] !== weight.shape[0])) {
    throw new RangeError(
      `conv2d: bias ${formatShape(bias.shape)} does not match weight ${formatShape(weight.shape)}`,
    );
  }
  const stride = pair(options.stride ?? 1, "stride", "conv2d", 1);
  const padding = pair(options.padding ?? 0, "padding", "conv2d", 0);
  const dilation = pair(options.dilation ?? 1, "dilation", "conv2d", 1);
  if (groups > 1 || dilation[0] > 1 || dilation[1] > 1) {
    return generalConv2d(x, weight, bias, stride, padding, dilation, groups, options.relu === true);
  }
  const g: Conv2dAttrs = geometry("conv2d", x, weight.shape[2], weight.shape[3], stride, padding);
  if (options.relu === true) g.relu = true;
  return applyOp(conv2dOp, bias === undefined ? [x, weight] : [x, weight, bias], g);
}

/**
 * The slower general path of {@linkcode conv2d} for groups > 1 or dilation > 1, built on the fast
 * one: the kernel spread out by zeros for dilation, one convolution per group placed into the
 * output's channels. Never taken for groups = 1 and dilation = 1.
 */
function generalConv2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  stride: [number, number],
  padding: [number, number],
  dilation: [number, number],
  groups: number,
  relu: boolean,
): Tensor {
  let w = weight;
  if (dilation[0] > 1 || dilation[1] > 1) {
    const [o, c, kh, kw] = w.shape;
    const dh = (kh - 1) * dilation[0] + 1;
    const dw = (kw - 1) * dilation[1] + 1;
    w = sliceScatter(
      sliceScatter(w, [o, c, dh, kw], 2, 0, dilation[0]),
      [o, c, dh, dw],
      3,
      0,
      dilation[1],
    );
  }
  if (groups === 1) return conv2d(x, w, bias, { stride, padding, relu });
  const perIn = x.shape[1] / groups;
  const perOut = w.shape[0] / groups;
  let y: Tensor | null = null;
  for (let i = 0; i < groups; i++) {
    const part = conv2d(
      narrow(x, 1, i * perIn, perIn),
      narrow(w, 0, i * perOut, perOut),
      bias === undefined ? undefined : narrow(bias, 0, i * perOut, perOut),
      { stride, padding, relu },
    );
    const [n, , oh, ow] = part.shape;
    const placed = sliceScatter(part, [n, w.shape[0], oh, ow], 1, i * perOut);
    y = y === null ? placed : add(y, placed);
  }
  return y!;
}

/**
 * 1-D convolution (PyTorch's `F.conv1d`) of `x` [N, C, L] with `weight` [O, C/groups, k] and
 * optional `bias` [O]: the 2-D convolution of [N, C, 1, L] by [O, C/groups, 1, k].
 */
export function conv1d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor,
  options: Conv1dOptions = {},
): Tensor {
  if (x.ndim !== 3 || weight.ndim !== 3) {
    throw new RangeError(
      `conv1d: input ${formatShape(x.shape)} and weight ${
        formatShape(weight.shape)
      } do not match ` +
        "(expected input [N, C, L] and weight [O, C/groups, k])",
    );
  }
  const y = conv2d(unsqueeze(x, 2), unsqueeze(weight, 2), bias, {
    stride: [1, options.stride ?? 1],
    padding: [0, options.padding ?? 0],
    dilation: [1, options.dilation ?? 1],
    groups: options.groups,
  });
  return squeeze(y, 2);
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
