/**
 * RMSprop with PyTorch's update rule (torch.optim.RMSprop): a running average of squared
 * gradients, optionally centred, with optional momentum and L2 weight decay.
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

/** Hyper-parameters of an RMSprop group. */
export interface RMSpropHyper extends HyperParams {
  /** Smoothing constant α of the squared-gradient average. */
  alpha: number;
  /** ε added to the denominator. */
  eps: number;
  /** Momentum factor μ (0: none). */
  momentum: number;
  /** Normalise by the estimated variance instead of the raw second moment. */
  centered: boolean;
}

/** Options of {@linkcode RMSprop}: defaults for every group (PyTorch's). */
export interface RMSpropOptions {
  /** Learning rate (default 1e-2). */
  lr?: number;
  /** α (default 0.99). */
  alpha?: number;
  /** ε (default 1e-8). */
  eps?: number;
  /** L2 penalty λ added to the gradient (default 0). */
  weightDecay?: number;
  /** Momentum μ (default 0). */
  momentum?: number;
  /** Centred RMSprop (default false). */
  centered?: boolean;
}

/** A zeroed parameter-sized buffer in `state`, created on first use. */
function buffer(state: ParamState, name: string, size: number): Float32Array {
  return state.buffers[name] ??= kernels.allocPersistent(size);
}

/**
 * RMSprop, per parameter and step:
 *
 * ```text
 * g ← ∇ + λ·p
 * v ← α·v + (1 − α)·g²
 * centered:  ḡ ← α·ḡ + (1 − α)·g;   d ← √(v − ḡ²) + ε      else d ← √v + ε
 * μ > 0:     b ← μ·b + g/d;   p ← p − lr·b                    else p ← p − lr·g/d
 * ```
 *
 * State (PyTorch's names): `square_avg` (v), `grad_avg` (ḡ, when centred), `momentum_buffer`
 * (b, when μ > 0), and the step count. Each update rounds the state to float32, as PyTorch's
 * float32 tensors do, so a resumed run continues bitwise.
 */
export class RMSprop extends Optimizer<RMSpropHyper> {
  /**
   * Creates an RMSprop.
   *
   * @param params Tensors (e.g. `model.parameters()`), or groups `{params, lr?, alpha?, …}`.
   * @param options Defaults for every group.
   */
  constructor(params: ParamsInput<RMSpropHyper>, options: RMSpropOptions = {}) {
    super("RMSprop", params, {
      lr: options.lr ?? 1e-2,
      alpha: options.alpha ?? 0.99,
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0,
      momentum: options.momentum ?? 0,
      centered: options.centered ?? false,
    });
  }

  /** PyTorch's checks: every number finite and ≥ 0. */
  protected validate(group: ParamGroup<RMSpropHyper>): void {
    for (const key of ["lr", "alpha", "eps", "weightDecay", "momentum"] as const) {
      const value = group[key];
      if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
        throw new RangeError(`RMSprop: ${key} must be a finite number >= 0, got ${value}`);
      }
    }
    if (typeof group.centered !== "boolean") {
      throw new TypeError(`RMSprop: centered must be a boolean, got ${group.centered}`);
    }
  }

  /** One RMSprop update of `param` (see the class comment). */
  protected update(
    param: Tensor,
    grad: Tensor,
    group: ParamGroup<RMSpropHyper>,
    state: ParamState,
  ): void {
    const n = param.size;
    const { lr, alpha, eps, weightDecay, momentum, centered } = group;
    const v = buffer(state, "square_avg", n);
    const gAvg = centered ? buffer(state, "grad_avg", n) : null;
    const b = momentum > 0 ? buffer(state, "momentum_buffer", n) : null;
    state.step += 1;
    const p = param.data;
    const gs = grad.data;
    const po = param.offset;
    const go = grad.offset;
    for (let i = 0; i < n; i++) {
      const g = gs[go + i] + weightDecay * p[po + i];
      v[i] = alpha * v[i] + (1 - alpha) * g * g;
      let d: number;
      if (gAvg !== null) {
        gAvg[i] = alpha * gAvg[i] + (1 - alpha) * g;
        d = Math.sqrt(v[i] - gAvg[i] * gAvg[i]) + eps;
      } else d = Math.sqrt(v[i]) + eps;
      if (b !== null) {
        b[i] = momentum * b[i] + g / d;
        p[po + i] -= lr * b[i];
      } else p[po + i] -= lr * g / d;
    }
  }
}
