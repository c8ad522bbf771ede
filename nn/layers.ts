/**
 * The standard layers, with PyTorch's parameter names and layouts so that state dicts move between
 * the two: `Linear` (weight [out, in]), `Conv2d` (weight [out, in, kh, kw]), activations,
 * `Flatten`, `Dropout`, `MaxPool2d` and the `Sequential` container (children named "0", "1", …).
 *
 * @module
 */

import {
  conv1d,
  conv2d,
  defaultRng,
  dropout,
  flatten,
  leakyRelu,
  linear,
  type LinearOpOptions,
  maxPool2d,
  type Pair,
  relu,
  type Rng,
  type Tensor,
} from "../autograd/mod.ts";
import { defaultLayerInit } from "./init.ts";
import { Module } from "./module.ts";
import { Parameter } from "./parameter.ts";

/** A layer that maps one tensor to one tensor (what `Sequential` chains). */
export type Layer = Module<[Tensor], Tensor>;

function toPair(v: Pair, name: string, layer: string, min: number): [number, number] {
  const p: [number, number] = typeof v === "number" ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= min)) {
    throw new RangeError(`${layer}: ${name} must be integers >= ${min}, got ${v}`);
  }
  return p;
}

function checkSize(value: number, name: string, layer: string): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${layer}: ${name} must be a positive integer, got ${value}`);
  }
}

/** Options of {@linkcode Linear}. */
export interface LinearOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
  /** Generator for the initial weights (default: the library's seeded default generator). */
  rng?: Rng;
}

/**
 * Fully connected layer y = x·Wᵀ + b, with W [outFeatures, inFeatures] and b [outFeatures]
 * (PyTorch's `nn.Linear`, same names, layout and default initialisation). Input [..., inFeatures].
 *
 * @example
 * ```ts
 * import { Linear, tensor } from "@tapegrad/tapegrad";
 *
 * const layer = new Linear(3, 2); // weight [2, 3], bias [2]
 * const y = layer.call(tensor([[1, 0, -1], [0.5, 0.5, 0.5]]));
 * console.log(y.shape); // [2, 2]
 * y.sum().backward();
 * console.log(layer.weight.grad?.shape); // [2, 3]
 * ```
 */
export class Linear extends Module {
  /** Size of each input sample. */
  readonly inFeatures: number;
  /** Size of each output sample. */
  readonly outFeatures: number;
  /** The weight, [outFeatures, inFeatures]. */
  weight: Parameter;
  /** The bias, [outFeatures], or null without one. */
  bias: Parameter | null;

  /**
   * Creates a Linear.
   *
   * @param inFeatures Input size.
   * @param outFeatures Output size.
   * @param options `bias` (default true) and `rng`.
   */
  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    checkSize(inFeatures, "inFeatures", "Linear");
    checkSize(outFeatures, "outFeatures", "Linear");
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.weight = Parameter.zeros([outFeatures, inFeatures]);
    this.bias = options.bias === false ? null : Parameter.zeros([outFeatures]);
    defaultLayerInit(this.weight, this.bias, options.rng ?? defaultRng());
  }

  /** x·Wᵀ + b through the fused `linear` op; `{ relu: true }` fuses a ReLU into it. */
  forward(x: Tensor, options: LinearOpOptions = {}): Tensor {
    return linear(x, this.weight, this.bias ?? undefined, options);
  }

  /** `inFeatures=…, outFeatures=…, bias=…`. */
  override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${
      this.bias !== null
    }`;
  }
}

/** Options of {@linkcode Conv2d}. */
export interface Conv2dLayerOptions {
  /** Step between windows (default 1). */
  stride?: Pair;
  /** Zero padding on each side (default 0). */
  padding?: Pair;
  /** Spacing between the kernel's taps (default 1). */
  dilation?: Pair;
  /** Independent channel groups (default 1); weight [outChannels, inChannels/groups, kh, kw]. */
  groups?: number;
  /** Learn a per-channel bias (default true). */
  bias?: boolean;
  /** Generator for the initial weights (default: the library's seeded default generator). */
  rng?: Rng;
}

function checkGroups(groups: number, inChannels: number, outChannels: number, layer: string) {
  checkSize(groups, "groups", layer);
  if (inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw new RangeError(
      `${layer}: groups ${groups} must divide inChannels ${inChannels} and outChannels ${outChannels}`,
    );
  }
}

/**
 * 2-D convolution over [N, inChannels, H, W] with weight [outChannels, inChannels/groups, kh, kw]
 * and bias [outChannels] (PyTorch's `nn.Conv2d`: same names, layout and default initialisation).
 *
 * @example
 * ```ts
 * import { Conv2d, zeros } from "@tapegrad/tapegrad";
 *
 * // 1 channel in, 8 filters of 3×3; padding 1 keeps 28×28.
 * const conv = new Conv2d(1, 8, 3, { padding: 1 });
 * console.log(conv.call(zeros([4, 1, 28, 28])).shape); // [4, 8, 28, 28]
 * ```
 */
export class Conv2d extends Module {
  /** Channels of the input. */
  readonly inChannels: number;
  /** Channels of the output (number of filters). */
  readonly outChannels: number;
  /** Window size [kh, kw]. */
  readonly kernelSize: readonly [number, number];
  /** Step between windows [vertical, horizontal]. */
  readonly stride: readonly [number, number];
  /** Zero padding [vertical, horizontal]. */
  readonly padding: readonly [number, number];
  /** Spacing between taps [vertical, horizontal]. */
  readonly dilation: readonly [number, number];
  /** Independent channel groups. */
  readonly groups: number;
  /** The filters, [outChannels, inChannels/groups, kh, kw]. */
  weight: Parameter;
  /** The bias, [outChannels], or null without one. */
  bias: Parameter | null;

  /**
   * Creates a Conv2d.
   *
   * @param inChannels Input channels.
   * @param outChannels Output channels.
   * @param kernelSize Window size, one number or [kh, kw].
   * @param options `stride`, `padding`, `bias` (default true) and `rng`.
   */
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: Pair,
    options: Conv2dLayerOptions = {},
  ) {
    super();
    checkSize(inChannels, "inChannels", "Conv2d");
    checkSize(outChannels, "outChannels", "Conv2d");
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = toPair(kernelSize, "kernelSize", "Conv2d", 1);
    this.stride = toPair(options.stride ?? 1, "stride", "Conv2d", 1);
    this.padding = toPair(options.padding ?? 0, "padding", "Conv2d", 0);
    this.dilation = toPair(options.dilation ?? 1, "dilation", "Conv2d", 1);
    this.groups = options.groups ?? 1;
    checkGroups(this.groups, inChannels, outChannels, "Conv2d");
    const [kh, kw] = this.kernelSize;
    this.weight = Parameter.zeros([outChannels, inChannels / this.groups, kh, kw]);
    this.bias = options.bias === false ? null : Parameter.zeros([outChannels]);
    defaultLayerInit(this.weight, this.bias, options.rng ?? defaultRng());
  }

  /** The convolution, [N, C, H, W] → [N, outChannels, OH, OW]. */
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias ?? undefined, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }

  /** Channels, kernel, stride, padding and bias, as PyTorch shows them. */
  override extraRepr(): string {
    const general = (this.dilation.some((d) => d !== 1) ? `, dilation=[${this.dilation}]` : "") +
      (this.groups !== 1 ? `, groups=${this.groups}` : "");
    return `${this.inChannels}, ${this.outChannels}, kernelSize=[${this.kernelSize}], stride=[${this.stride}], padding=[${this.padding}]${general}, bias=${
      this.bias !== null
    }`;
  }
}

/** Options of {@linkcode Conv1d}. */
export interface Conv1dLayerOptions {
  /** Step between windows (default 1). */
  stride?: number;
  /** Zero padding on each side (default 0). */
  padding?: number;
  /** Spacing between the kernel's taps (default 1). */
  dilation?: number;
  /** Independent channel groups (default 1); weight [outChannels, inChannels/groups, k]. */
  groups?: number;
  /** Learn a per-channel bias (default true). */
  bias?: boolean;
  /** Generator for the initial weights (default: the library's seeded default generator). */
  rng?: Rng;
}

/**
 * 1-D convolution over [N, inChannels, L] with weight [outChannels, inChannels/groups, k] and bias
 * [outChannels] (PyTorch's `nn.Conv1d`: same names, layout and default initialisation).
 */
export class Conv1d extends Module {
  /** Channels of the input. */
  readonly inChannels: number;
  /** Channels of the output. */
  readonly outChannels: number;
  /** Window length. */
  readonly kernelSize: number;
  /** Step between windows. */
  readonly stride: number;
  /** Zero padding on each side. */
  readonly padding: number;
  /** Spacing between taps. */
  readonly dilation: number;
  /** Independent channel groups. */
  readonly groups: number;
  /** The filters, [outChannels, inChannels/groups, k]. */
  weight: Parameter;
  /** The bias, [outChannels], or null without one. */
  bias: Parameter | null;

  /**
   * Creates a Conv1d.
   *
   * @param inChannels Input channels.
   * @param outChannels Output channels.
   * @param kernelSize Window length.
   * @param options `stride`, `padding`, `dilation`, `groups`, `bias` (default true) and `rng`.
   */
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    options: Conv1dLayerOptions = {},
  ) {
    super();
    checkSize(inChannels, "inChannels", "Conv1d");
    checkSize(outChannels, "outChannels", "Conv1d");
    checkSize(kernelSize, "kernelSize", "Conv1d");
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = kernelSize;
    this.stride = toPair(options.stride ?? 1, "stride", "Conv1d", 1)[0];
    this.padding = toPair(options.padding ?? 0, "padding", "Conv1d", 0)[0];
    this.dilation = toPair(options.dilation ?? 1, "dilation", "Conv1d", 1)[0];
    this.groups = options.groups ?? 1;
    checkGroups(this.groups, inChannels, outChannels, "Conv1d");
    this.weight = Parameter.zeros([outChannels, inChannels / this.groups, kernelSize]);
    this.bias = options.bias === false ? null : Parameter.zeros([outChannels]);
    defaultLayerInit(this.weight, this.bias, options.rng ?? defaultRng());
  }

  /** The convolution, [N, C, L] → [N, outChannels, OL]. */
  forward(x: Tensor): Tensor {
    return conv1d(x, this.weight, this.bias ?? undefined, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }

  /** Channels, kernel, stride, padding, dilation, groups and bias. */
  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernelSize=${this.kernelSize}, stride=${this.stride}, padding=${this.padding}, dilation=${this.dilation}, groups=${this.groups}, bias=${
      this.bias !== null
    }`;
  }
}

/** max(x, 0) elementwise. */
export class ReLU extends Module {
  /** Applies the rectifier. */
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** x for x > 0, slope·x otherwise. */
export class LeakyReLU extends Module {
  /** Slope for negative inputs. */
  readonly negativeSlope: number;

  /**
   * Creates a LeakyReLU.
   *
   * @param negativeSlope Slope for negative inputs (default 0.01, as in PyTorch).
   */
  constructor(negativeSlope = 0.01) {
    super();
    this.negativeSlope = negativeSlope;
  }

  /** Applies the leaky rectifier. */
  forward(x: Tensor): Tensor {
    return leakyRelu(x, this.negativeSlope);
  }

  /** `negativeSlope=…`. */
  override extraRepr(): string {
    return `negativeSlope=${this.negativeSlope}`;
  }
}

/** Merges dimensions startDim..endDim into one ([N, C, H, W] → [N, C·H·W] by default). */
export class Flatten extends Module {
  /** First dimension merged (default 1: keep the batch). */
  readonly startDim: number;
  /** Last dimension merged (default −1). */
  readonly endDim: number;

  /**
   * Creates a Flatten.
   *
   * @param startDim First dimension merged (default 1).
   * @param endDim Last dimension merged (default −1).
   */
  constructor(startDim = 1, endDim = -1) {
    super();
    this.startDim = startDim;
    this.endDim = endDim;
  }

  /** The flattened view (a copy only when the input's layout needs one). */
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }

  /** `startDim=…, endDim=…`. */
  override extraRepr(): string {
    return `startDim=${this.startDim}, endDim=${this.endDim}`;
  }
}

/** Options of {@linkcode Dropout}. */
export interface DropoutLayerOptions {
  /** Generator of the masks (default: the library's seeded default generator). */
  rng?: Rng;
}

/**
 * Inverted dropout: in training mode zeroes each element with probability p and scales the rest by
 * 1/(1 − p); in evaluation mode (`eval()`) it is the identity.
 */
export class Dropout extends Module {
  /** Drop probability. */
  readonly p: number;
  readonly #rng: Rng | undefined;

  /**
   * Creates a Dropout.
   *
   * @param p Drop probability in [0, 1) (default 0.5).
   * @param options `rng` for the masks.
   */
  constructor(p = 0.5, options: DropoutLayerOptions = {}) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
    this.p = p;
    this.#rng = options.rng;
  }

  /** Applies a fresh mask in training mode; returns `x` unchanged in evaluation mode. */
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training, rng: this.#rng ?? defaultRng() });
  }

  /** `p=…`. */
  override extraRepr(): string {
    return `p=${this.p}`;
  }
}

/** Options of {@linkcode MaxPool2d}. */
export interface MaxPool2dLayerOptions {
  /** Step between windows (default: the kernel size). */
  stride?: Pair;
  /** Implicit −∞ padding on each side (default 0). */
  padding?: Pair;
}

/** Max pooling over each channel plane of [N, C, H, W]. */
export class MaxPool2d extends Module {
  /** Window size [kh, kw]. */
  readonly kernelSize: readonly [number, number];
  /** Step between windows. */
  readonly stride: readonly [number, number];
  /** Padding on each side. */
  readonly padding: readonly [number, number];

  /**
   * Creates a MaxPool2d.
   *
   * @param kernelSize Window size, one number or [kh, kw].
   * @param options `stride` (default: the window) and `padding`.
   */
  constructor(kernelSize: Pair, options: MaxPool2dLayerOptions = {}) {
    super();
    this.kernelSize = toPair(kernelSize, "kernelSize", "MaxPool2d", 1);
    this.stride = toPair(options.stride ?? this.kernelSize, "stride", "MaxPool2d", 1);
    this.padding = toPair(options.padding ?? 0, "padding", "MaxPool2d", 0);
  }

  /** The pooled tensor [N, C, OH, OW]. */
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding });
  }

  /** Kernel, stride and padding. */
  override extraRepr(): string {
    return `kernelSize=[${this.kernelSize}], stride=[${this.stride}], padding=[${this.padding}]`;
  }
}

/**
 * Runs its layers one after the other. Children are named "0", "1", … as in PyTorch's
 * `nn.Sequential`, so parameters are `0.weight`, `2.bias`, ….
 */
export class Sequential extends Module {
  /**
   * Creates a Sequential.
   *
   * @param layers The layers, in order.
   */
  constructor(...layers: Layer[]) {
    super();
    layers.forEach((layer, i) => this.#set(i, layer));
  }

  #set(index: number, layer: Layer): void {
    if (!(layer instanceof Module)) {
      throw new TypeError(`Sequential: item ${index} is not a Module`);
    }
    Object.defineProperty(this, String(index), {
      value: layer,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }

  /** Number of layers. */
  get length(): number {
    return this.children().length;
  }

  /** The layer at `index` (negative counts from the end). */
  at(index: number): Layer {
    const layers = this.children() as Layer[];
    const layer = layers.at(index);
    if (layer === undefined) {
      throw new RangeError(`Sequential.at: index ${index} is outside 0..${layers.length - 1}`);
    }
    return layer;
  }

  /** Adds a layer at the end; returns this. */
  append(layer: Layer): this {
    this.#set(this.length, layer);
    return this;
  }

  /** Each layer's output feeds the next. */
  forward(x: Tensor): Tensor {
    let y = x;
    for (const layer of this.children() as Layer[]) y = layer.call(y);
    return y;
  }
}
