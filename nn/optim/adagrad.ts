/**
 * Adagrad with PyTorch's update rule (torch.optim.Adagrad): per-element rates scaled by the root
 * of the summed squared gradients, a decaying global rate, L2 weight decay.
 *
 * @module
 */

import type { Tensor } from "../../autograd/mod.ts";
import { kernels } from "../../autograd/kernels/mod.ts";
import {
  type HyperParams,
  Optimizer,
  type ParamGroup,
  type ParamsInput,
  type ParamState,
} from "./optimizer.ts";

/** Hyper-parameters of an Adagrad group. */
export interface AdagradHyper extends HyperParams {
  /** Decay of the rate: lr / (1 + (t − 1)·lrDecay) at step t. */
  lrDecay: number;
  /** The value the squared-gradient sum starts from. */
  initialAccumulatorValue: number;
  /** ε added to the denominator. */
  eps: number;
}

/** Options of {@linkcode Adagrad}: defaults for every group (PyTorch's). */
export interface AdagradOptions {
  /** Learning rate (default 1e-2). */
  lr?: number;
  /** Rate decay (default 0). */
  lrDecay?: number;
  /** L2 penalty λ added to the gradient (default 0). */
  weightDecay?: number;
  /** Starting value of the sum (default 0). */
  initialAccumulatorValue?: number;
  /** ε (default 1e-10). */
  eps?: number;
}

/**
 * Adagrad, per parameter at step t:
 *
 * ```text
 * g ← ∇ + λ·p
 * s ← s + g²
 * p ← p − lr/(1 + (t − 1)·lrDecay) · g / (√s + ε)
 * ```
 *
 * State (PyTorch's names): `sum` (s, starting at initialAccumulatorValue) and the step count t.
 */
export class Adagrad extends Optimizer<AdagradHyper> {
  /**
   * Creates an Adagrad.
   *
   * @param params Tensors (e.g. `model.parameters()`), or groups `{params, lr?, lrDecay?, …}`.
   * @param options Defaults for every group.
   */
  constructor(params: ParamsInput<AdagradHyper>, options: AdagradOptions = {}) {
    super("Adagrad", params, {
      lr: options.lr ?? 1e-2,
      lrDecay: options.lrDecay ?? 0,
      weightDecay: options.weightDecay ?? 0,
      initialAccumulatorValue: options.initialAccumulatorValue ?? 0,
      eps: options.eps ?? 1e-10,
    });
  }

  /** PyTorch's checks: every number finite and ≥ 0. */
  protected validate(group: ParamGroup<AdagradHyper>): void {
    for (
      const key of ["lr", "lrDecay", "weightDecay", "initialAccumulatorValue", "eps"] as const
    ) {
      const value = group[key];
      if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
        throw new RangeError(`Adagrad: ${key} must be a finite number >= 0, got ${value}`);
      }
    }
  }

  /** One Adagrad update of `param` (see the class comment). */
  protected update(
    param: Tensor,
    grad: Tensor,
    group: ParamGroup<AdagradHyper>,
    state: ParamState,
  ): void {
    const n = param.size;
    let s = state.buffers.sum;
    if (s === undefined) {
      s = state.buffers.sum = kernels.allocPersistent(n);
      s.fill(group.initialAccumulatorValue);
    }
    state.step += 1;
    const rate = group.lr / (1 + (state.step - 1) * group.lrDecay);
    const { weightDecay, eps } = group;
    const p = param.data;
    const gs = grad.data;
    const po = param.offset;
    const go = grad.offset;
    for (let i = 0; i < n; i++) {
      const g = gs[go + i] + weightDecay * p[po + i];
      s[i] += g * g;
      p[po + i] -= rate * g / (Math.sqrt(s[i]) + eps);
    }
  }
}
