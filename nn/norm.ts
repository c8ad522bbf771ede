/**
 * Normalisation layers with PyTorch's names, layouts and defaults: {@linkcode LayerNorm},
 * {@linkcode BatchNorm1d}, {@linkcode BatchNorm2d} and {@linkcode GroupNorm}. Batch norm keeps its
 * running statistics as buffers under PyTorch's names (`running_mean`, `running_var`,
 * `num_batches_tracked`), so its state dict loads in PyTorch and back.
 *
 * @module
 */

import {
  batchNorm,
  formatShape,
  groupNorm,
  layerNorm,
  ones,
  type Tensor,
  tensor,
  zeros,
} from "../autograd/mod.ts";
import { Module } from "./module.ts";
import { Parameter } from "./parameter.ts";

function checkSize(value: number, name: string, layer: string): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${layer}: ${name} must be a positive integer, got ${value}`);
  }
}

/** A parameter of `shape` filled with `value`. */
function filled(shape: readonly number[], value: number): Parameter {
  const p = Parameter.zeros(shape);
  p.data.fill(value);
  return p;
}

/** Options of {@linkcode LayerNorm}. */
export interface LayerNormOptions {
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /** Learn a per-element weight (ones) and bias (zeros) (default true). */
  elementwiseAffine?: boolean;
  /** Learn the bias when `elementwiseAffine` (default true). */
  bias?: boolean;
}

/**
 * Layer normalisation over the last dims (PyTorch's `nn.LayerNorm`): `weight` (ones) and `bias`
 * (zeros) have `normalizedShape`. Runs the fused `layerNorm` op.
 */
export class LayerNorm extends Module {
  /** The normalised trailing dims. */
  readonly normalizedShape: readonly number[];
  /** Added to the variance. */
  readonly eps: number;
  /** The scale, or null without `elementwiseAffine`. */
  weight: Parameter | null;
  /** The shift, or null. */
  bias: Parameter | null;

  /**
   * Creates a LayerNorm.
   *
   * @param normalizedShape The trailing dims to normalise over (a number means the last one).
   * @param options `eps`, `elementwiseAffine` and `bias`.
   */
  constructor(normalizedShape: number | readonly number[], options: LayerNormOptions = {}) {
    super();
    const shape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
    shape.forEach((d) => checkSize(d, "normalizedShape", "LayerNorm"));
    this.normalizedShape = Object.freeze(shape);
    this.eps = options.eps ?? 1e-5;
    const affine = options.elementwiseAffine ?? true;
    this.weight = affine ? filled(shape, 1) : null;
    this.bias = affine && options.bias !== false ? filled(shape, 0) : null;
  }

  /** Normalises `x` [..., *normalizedShape]. */
  forward(x: Tensor): Tensor {
    return layerNorm(
      x,
      this.normalizedShape,
      this.weight ?? undefined,
      this.bias ?? undefined,
      this.eps,
    );
  }

  /** Shape, eps and affine, as PyTorch shows them. */
  override extraRepr(): string {
    return `[${this.normalizedShape}], eps=${this.eps}, elementwiseAffine=${this.weight !== null}`;
  }
}

/** Options of the batch-norm layers. */
export interface BatchNormLayerOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /**
   * Weight of each batch in the running statistics (default 0.1); null for a cumulative average
   * (1 / num_batches_tracked), as PyTorch's `momentum=None`.
   */
  momentum?: number | null;
  /** Learn a per-channel weight (ones) and bias (zeros) (default true). */
  affine?: boolean;
  /**
   * Keep running statistics for evaluation (default true); without them the batch's statistics
   * are used in both modes and there are no buffers.
   */
  trackRunningStats?: boolean;
}

/**
 * Batch normalisation over the channel dim 1, shared by {@linkcode BatchNorm1d} and
 * {@linkcode BatchNorm2d}. In training mode it normalises with the batch's statistics and updates
 * the running ones; after `eval()` it uses the running ones.
 */
export abstract class BatchNormBase extends Module {
  /** Channels C. */
  readonly numFeatures: number;
  /** Added to the variance. */
  readonly eps: number;
  /** Running-statistics momentum (null: cumulative average). */
  readonly momentum: number | null;
  /** The scale [C], or null without `affine`. */
  weight: Parameter | null;
  /** The shift [C], or null. */
  bias: Parameter | null;
  /** Running mean [C] (a buffer; PyTorch's name), or null without `trackRunningStats`. */
  declare readonly running_mean: Tensor | null;
  /** Running (unbiased) variance [C] (a buffer), or null. */
  declare readonly running_var: Tensor | null;
  /** Number of training batches seen, an int32 scalar (a buffer), or null. */
  declare readonly num_batches_tracked: Tensor<"int32"> | null;

  /**
   * Creates the layer.
   *
   * @param numFeatures Channels C.
   * @param options `eps`, `momentum`, `affine`, `trackRunningStats`.
   */
  constructor(numFeatures: number, options: BatchNormLayerOptions = {}) {
    super();
    checkSize(numFeatures, "numFeatures", this.constructor.name);
    this.numFeatures = numFeatures;
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum === undefined ? 0.1 : options.momentum;
    const affine = options.affine ?? true;
    this.weight = affine ? filled([numFeatures], 1) : null;
    this.bias = affine ? filled([numFeatures], 0) : null;
    if (options.trackRunningStats ?? true) {
      this.registerBuffer("running_mean", zeros([numFeatures]));
      this.registerBuffer("running_var", ones([numFeatures]));
      this.registerBuffer("num_batches_tracked", tensor(0, { dtype: "int32" }));
    } else {
      for (const name of ["running_mean", "running_var", "num_batches_tracked"]) {
        Object.defineProperty(this, name, { value: null, enumerable: false, writable: true });
      }
    }
  }

  /** Throws unless `x` has a shape this layer takes (names the layer and the shape). */
  protected abstract checkInput(x: Tensor): void;

  /** Normalises `x` per channel. */
  forward(x: Tensor): Tensor {
    this.checkInput(x);
    if (x.shape[1] !== this.numFeatures) {
      throw new RangeError(
        `${this.constructor.name}: expected ${this.numFeatures} channels in dim 1, got input ${
          formatShape(x.shape)
        }`,
      );
    }
    let momentum = this.momentum ?? 0;
    const tracked = this.num_batches_tracked;
    if (this.training && tracked !== null) {
      tracked.data[tracked.offset] += 1;
      if (this.momentum === null) momentum = 1 / tracked.data[tracked.offset];
    }
    // Without running statistics the batch's are used in evaluation too, as in PyTorch.
    return batchNorm(x, this.running_mean, this.running_var, this.weight, this.bias, {
      training: this.training || this.running_mean === null,
      momentum,
      eps: this.eps,
    });
  }

  /** Features, eps, momentum, affine and tracking, as PyTorch shows them. */
  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${
      this.weight !== null
    }, trackRunningStats=${this.running_mean !== null}`;
  }
}

/** Batch normalisation of [N, C] or [N, C, L] (PyTorch's `nn.BatchNorm1d`). */
export class BatchNorm1d extends BatchNormBase {
  /** Accepts [N, C] and [N, C, L]. */
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 2 && x.ndim !== 3) {
      throw new RangeError(
        `BatchNorm1d: expected input [N, C] or [N, C, L], got ${formatShape(x.shape)}`,
      );
    }
  }
}

/** Batch normalisation of [N, C, H, W] (PyTorch's `nn.BatchNorm2d`). */
export class BatchNorm2d extends BatchNormBase {
  /** Accepts [N, C, H, W]. */
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 4) {
      throw new RangeError(`BatchNorm2d: expected input [N, C, H, W], got ${formatShape(x.shape)}`);
    }
  }
}

/** Options of {@linkcode GroupNorm}. */
export interface GroupNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learn a per-channel weight (ones) and bias (zeros) (default true). */
  affine?: boolean;
}

/** Group normalisation of [N, C, *] (PyTorch's `nn.GroupNorm`): weight and bias [C]. */
export class GroupNorm extends Module {
  /** Groups the channels are split into. */
  readonly numGroups: number;
  /** Channels C. */
  readonly numChannels: number;
  /** Added to the variance. */
  readonly eps: number;
  /** The scale [C], or null without `affine`. */
  weight: Parameter | null;
  /** The shift [C], or null. */
  bias: Parameter | null;

  /**
   * Creates a GroupNorm.
   *
   * @param numGroups Groups (must divide `numChannels`).
   * @param numChannels Channels C.
   * @param options `eps` and `affine`.
   */
  constructor(numGroups: number, numChannels: number, options: GroupNormOptions = {}) {
    super();
    checkSize(numGroups, "numGroups", "GroupNorm");
    checkSize(numChannels, "numChannels", "GroupNorm");
    if (numChannels % numGroups !== 0) {
      throw new RangeError(
        `GroupNorm: numChannels ${numChannels} is not divisible by numGroups ${numGroups}`,
      );
    }
    this.numGroups = numGroups;
    this.numChannels = numChannels;
    this.eps = options.eps ?? 1e-5;
    const affine = options.affine ?? true;
    this.weight = affine ? filled([numChannels], 1) : null;
    this.bias = affine ? filled([numChannels], 0) : null;
  }

  /** Normalises `x` [N, C, *]. */
  forward(x: Tensor): Tensor {
    return groupNorm(x, this.numGroups, this.weight, this.bias, this.eps);
  }

  /** Groups, channels, eps and affine, as PyTorch shows them. */
  override extraRepr(): string {
    return `${this.numGroups}, ${this.numChannels}, eps=${this.eps}, affine=${
      this.weight !== null
    }`;
  }
}
