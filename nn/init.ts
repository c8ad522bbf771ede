/**
 * Weight initialisers (PyTorch's `torch.nn.init`): Kaiming (He) and Xavier (Glorot), uniform and
 * normal, and the default initialisation of `Linear` and `Conv2d`. Each fills a contiguous tensor in
 * place from a seeded {@linkcode Rng} (default: the library's generator), so the same seed gives the
 * same weights on every machine. The formulas are PyTorch's; the random streams are not (another
 * generator), so the values differ from PyTorch's while their distributions match.
 *
 * @module
 */

import { defaultRng, type Rng, type Tensor } from "../autograd/mod.ts";

/** Activation a gain is computed for, with PyTorch's names. */
export type Nonlinearity = "linear" | "conv2d" | "sigmoid" | "tanh" | "relu" | "leaky_relu";

/** Whether Kaiming initialisation preserves the variance of activations (fan in) or gradients (fan out). */
export type FanMode = "fan_in" | "fan_out";

/** Options of {@linkcode kaimingUniform} and {@linkcode kaimingNormal}. */
export interface KaimingOptions {
  /** Negative slope of the leaky ReLU that follows (used with `"leaky_relu"`; default 0). */
  a?: number;
  /** `"fan_in"` (default) or `"fan_out"`. */
  mode?: FanMode;
  /** The activation after this layer (default `"leaky_relu"`, which with a = 0 is ReLU's gain √2). */
  nonlinearity?: Nonlinearity;
  /** Generator (default: the library's seeded default generator). */
  rng?: Rng;
}

/** Options of {@linkcode xavierUniform} and {@linkcode xavierNormal}. */
export interface XavierOptions {
  /** Scale factor (default 1); see {@linkcode calculateGain}. */
  gain?: number;
  /** Generator (default: the library's seeded default generator). */
  rng?: Rng;
}

/** Fan-in and fan-out of a weight tensor. */
export interface Fans {
  /** Inputs feeding one output unit: shape[1] × receptive field. */
  fanIn: number;
  /** Outputs one input unit feeds: shape[0] × receptive field. */
  fanOut: number;
}

/**
 * The recommended gain for an activation (PyTorch's `calculate_gain`): 1 for linear, conv and
 * sigmoid, 5/3 for tanh, √2 for ReLU, √(2 / (1 + a²)) for leaky ReLU with slope `a` (default 0.01).
 */
export function calculateGain(nonlinearity: Nonlinearity, a?: number): number {
  switch (nonlinearity) {
    case "linear":
    case "conv2d":
    case "sigmoid":
      return 1;
    case "tanh":
      return 5 / 3;
    case "relu":
      return Math.SQRT2;
    case "leaky_relu": {
      const slope = a ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    default:
      throw new RangeError(`calculateGain: unknown nonlinearity ${JSON.stringify(nonlinearity)}`);
  }
}

/**
 * Fan-in and fan-out of a weight of shape [out, in, ...kernel] (Linear: [out, in]; Conv2d:
 * [out, in, kh, kw]), as PyTorch computes them.
 */
export function computeFans(shape: readonly number[]): Fans {
  if (shape.length < 2) {
    throw new RangeError(
      `computeFans: a weight needs at least 2 dimensions, got [${shape.join(", ")}]`,
    );
  }
  let receptive = 1;
  for (let d = 2; d < shape.length; d++) receptive *= shape[d];
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

function checkTarget(t: Tensor, what: string): void {
  if (!t.isContiguous()) {
    throw new RangeError(`${what}: the tensor must be contiguous (shape [${t.shape.join(", ")}])`);
  }
}

/** Fills `t` in place with U(low, high) values; returns `t`. */
export function uniformInit(t: Tensor, low: number, high: number, rng: Rng = defaultRng()): Tensor {
  checkTarget(t, "uniformInit");
  if (!(low <= high)) throw new RangeError(`uniformInit: low ${low} > high ${high}`);
  const width = high - low;
  const data = t.data;
  for (let i = t.offset, end = t.offset + t.size; i < end; i++) {
    data[i] = low + width * rng.uniform();
  }
  return t;
}

/** Fills `t` in place with N(mean, std²) values; returns `t`. */
export function normalInit(t: Tensor, mean: number, std: number, rng: Rng = defaultRng()): Tensor {
  checkTarget(t, "normalInit");
  if (!(std >= 0)) throw new RangeError(`normalInit: std must be >= 0, got ${std}`);
  const data = t.data;
  for (let i = t.offset, end = t.offset + t.size; i < end; i++) data[i] = mean + std * rng.normal();
  return t;
}

/** Fills `t` in place with `value`; returns `t`. */
export function constantInit(t: Tensor, value: number): Tensor {
  checkTarget(t, "constantInit");
  t.data.fill(value, t.offset, t.offset + t.size);
  return t;
}

function kaimingStd(t: Tensor, options: KaimingOptions, what: string): number {
  const mode = options.mode ?? "fan_in";
  const fans = computeFans(t.shape);
  const fan = mode === "fan_in" ? fans.fanIn : mode === "fan_out" ? fans.fanOut : NaN;
  if (Number.isNaN(fan)) throw new RangeError(`${what}: unknown mode ${JSON.stringify(mode)}`);
  if (fan === 0) throw new RangeError(`${what}: cannot initialise a tensor with ${mode} 0`);
  return calculateGain(options.nonlinearity ?? "leaky_relu", options.a ?? 0) / Math.sqrt(fan);
}

/**
 * Kaiming (He) uniform: U(−b, b) with b = gain·√(3 / fan). Keeps the variance of activations
 * (fan_in) or of gradients (fan_out) constant through ReLU-like layers. Returns `t`.
 */
export function kaimingUniform(t: Tensor, options: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, options, "kaimingUniform");
  return uniformInit(t, -bound, bound, options.rng);
}

/** Kaiming (He) normal: N(0, std²) with std = gain / √fan. Returns `t`. */
export function kaimingNormal(t: Tensor, options: KaimingOptions = {}): Tensor {
  return normalInit(t, 0, kaimingStd(t, options, "kaimingNormal"), options.rng);
}

function xavierStd(t: Tensor, options: XavierOptions): number {
  const { fanIn, fanOut } = computeFans(t.shape);
  return (options.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut));
}

/** Xavier (Glorot) uniform: U(−b, b) with b = gain·√(6 / (fanIn + fanOut)). Returns `t`. */
export function xavierUniform(t: Tensor, options: XavierOptions = {}): Tensor {
  const bound = Math.sqrt(3) * xavierStd(t, options);
  return uniformInit(t, -bound, bound, options.rng);
}

/** Xavier (Glorot) normal: N(0, std²) with std = gain·√(2 / (fanIn + fanOut)). Returns `t`. */
export function xavierNormal(t: Tensor, options: XavierOptions = {}): Tensor {
  return normalInit(t, 0, xavierStd(t, options), options.rng);
}

/**
 * PyTorch's default initialisation of `Linear` and `Conv2d` (`reset_parameters`): the weight from
 * Kaiming uniform with a = √5, which is U(−1/√fanIn, 1/√fanIn), then the bias from
 * U(−1/√fanIn, 1/√fanIn), in that order from the same generator.
 */
export function defaultLayerInit(
  weight: Tensor,
  bias: Tensor | null,
  rng: Rng = defaultRng(),
): void {
  kaimingUniform(weight, { a: Math.sqrt(5), rng });
  if (bias !== null) {
    const { fanIn } = computeFans(weight.shape);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniformInit(bias, -bound, bound, rng);
  }
}
