/**
 * Average-pooling layers (PyTorch's `nn.AvgPool2d` and `nn.AdaptiveAvgPool2d`); they hold no
 * parameters.
 *
 * @module
 */

import {
  adaptiveAvgPool2d,
  avgPool2d,
  type AvgPool2dOptions,
  type Pair,
  type Tensor,
} from "../autograd/mod.ts";
import { Module } from "./module.ts";

/** Average pooling over each channel plane of [N, C, H, W] (or [C, H, W]). */
export class AvgPool2d extends Module {
  /** Window size. */
  readonly kernelSize: Pair;
  /** Stride, padding, ceilMode, countIncludePad and divisorOverride. */
  readonly options: Readonly<AvgPool2dOptions>;

  /**
   * Creates an AvgPool2d (checked on the first call).
   *
   * @param kernelSize Window size, one number or [kh, kw].
   * @param options `stride` (default: the window), `padding`, `ceilMode`, `countIncludePad`
   *   (default true) and `divisorOverride`.
   */
  constructor(kernelSize: Pair, options: AvgPool2dOptions = {}) {
    super();
    this.kernelSize = kernelSize;
    this.options = Object.freeze({ ...options });
  }

  /** The pooled tensor. */
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, this.options);
  }

  /** Kernel and options. */
  override extraRepr(): string {
    return `kernelSize=${this.kernelSize}, ${JSON.stringify(this.options)}`;
  }
}

/** Adaptive average pooling to a fixed output size, whatever the input's (e.g. 1 for a global pool). */
export class AdaptiveAvgPool2d extends Module {
  /** Output [OH, OW] (a number for both; null keeps the input's size). */
  readonly outputSize: number | readonly [number | null, number | null];

  /**
   * Creates an AdaptiveAvgPool2d.
   *
   * @param outputSize Output size, one number or [OH, OW].
   */
  constructor(outputSize: number | readonly [number | null, number | null]) {
    super();
    this.outputSize = outputSize;
  }

  /** The pooled tensor [N, C, OH, OW]. */
  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }

  /** The output size. */
  override extraRepr(): string {
    return `outputSize=${this.outputSize}`;
  }
}
