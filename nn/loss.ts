/**
 * Loss functions, in functional form and as modules. `crossEntropy` and `nllLoss` are the fused
 * autograd ops themselves (re-exported, so the root module can export both folders without a name
 * clash); `mseLoss` is a composite of primitives.
 *
 * @module
 */

import {
  type ClassificationLossOptions,
  crossEntropy,
  formatShape,
  nllLoss,
  type Reduction,
  type Tensor,
} from "../autograd/mod.ts";
import { Module } from "./module.ts";

export { crossEntropy, nllLoss };

/** Options of {@linkcode mseLoss}. */
export interface MseLossOptions {
  /** "mean" (default) over every element, or "sum". */
  reduction?: Reduction;
}

/**
 * Mean squared error: mean((input − target)²) over all elements (or the sum). Unlike PyTorch, which
 * broadcasts with a warning, the shapes must be equal: a silent broadcast is almost always a bug.
 */
export function mseLoss(input: Tensor, target: Tensor, options: MseLossOptions = {}): Tensor {
  if (
    input.ndim !== target.ndim || input.shape.some((d, i) => d !== target.shape[i])
  ) {
    throw new RangeError(
      `mseLoss: input ${formatShape(input.shape)} and target ${
        formatShape(target.shape)
      } must have the same shape`,
    );
  }
  const diff = input.sub(target);
  const squared = diff.mul(diff);
  return (options.reduction ?? "mean") === "sum" ? squared.sum() : squared.mean();
}

/** Cross-entropy between logits [N, C] and integer labels, as a module (`nn.CrossEntropyLoss`). */
export class CrossEntropyLoss extends Module<[Tensor, Int32Array], Tensor> {
  /** "mean" or "sum" over the batch. */
  readonly reduction: Reduction;
  /** Label smoothing ε in [0, 1). */
  readonly labelSmoothing: number;

  /**
   * Creates a CrossEntropyLoss.
   *
   * @param options `reduction` (default "mean") and `labelSmoothing` (default 0).
   */
  constructor(options: ClassificationLossOptions = {}) {
    super();
    this.reduction = options.reduction ?? "mean";
    this.labelSmoothing = options.labelSmoothing ?? 0;
  }

  /** The loss of `logits` [N, C] against `labels` [N]. */
  forward(logits: Tensor, labels: Int32Array): Tensor {
    return crossEntropy(logits, labels, {
      reduction: this.reduction,
      labelSmoothing: this.labelSmoothing,
    });
  }

  /** `reduction=…, labelSmoothing=…`. */
  override extraRepr(): string {
    return `reduction=${this.reduction}, labelSmoothing=${this.labelSmoothing}`;
  }
}

/** Mean squared error as a module (`nn.MSELoss`). */
export class MSELoss extends Module<[Tensor, Tensor], Tensor> {
  /** "mean" or "sum". */
  readonly reduction: Reduction;

  /**
   * Creates a MSELoss.
   *
   * @param options `reduction` (default "mean").
   */
  constructor(options: MseLossOptions = {}) {
    super();
    this.reduction = options.reduction ?? "mean";
  }

  /** The loss of `input` against `target` (same shape). */
  forward(input: Tensor, target: Tensor): Tensor {
    return mseLoss(input, target, { reduction: this.reduction });
  }

  /** `reduction=…`. */
  override extraRepr(): string {
    return `reduction=${this.reduction}`;
  }
}
