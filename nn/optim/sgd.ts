/**
 * Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay, with
 * PyTorch's update rule (torch.optim.SGD).
 *
 * @module
 */

import type { Tensor } from "../../autograd/mod.ts";
import { kernels } from "../../autograd/kernels/mod.ts";
import {
  backendOf,
  deviceStateBuffer,
  type HyperParams,
  Optimizer,
  type ParamGroup,
  type ParamsInput,
  type ParamState,
} from "./optimizer.ts";

/** Hyper-parameters of an SGD group. */
export interface SGDHyper extends HyperParams {
  /** Momentum factor μ (0: none). */
  momentum: number;
  /** Dampening τ of the momentum. */
  dampening: number;
  /** Use Nesterov momentum (needs μ > 0 and τ = 0). */
  nesterov: boolean;
}

/** Options of {@linkcode SGD}: defaults for every group. */
export interface SGDOptions {
  /** Learning rate (default 1e-3, as in PyTorch). */
  lr?: number;
  /** Momentum factor μ (default 0). */
  momentum?: number;
  /** Dampening τ (default 0). */
  dampening?: number;
  /** Nesterov momentum (default false). */
  nesterov?: boolean;
  /** L2 penalty λ added to the gradient (default 0). */
  weightDecay?: number;
}

/**
 * SGD, per parameter and step:
 *
 * ```text
 * g ← ∇ + λ·p
 * if μ ≠ 0:  b ← g on the first step, else b ← μ·b + (1 − τ)·g;   g ← g + μ·b (nesterov) or b
 * p ← p − lr·g
 * ```
 *
 * State: `momentum_buffer` per parameter (when μ ≠ 0).
 *
 * @example Fit w so that w·x ≈ 2x
 * ```ts
 * import { mseLoss, SGD, tensor } from "@tapegrad/tapegrad";
 *
 * const w = tensor([0], { requiresGrad: true });
 * const x = tensor([1, 2, 3]), target = tensor([2, 4, 6]);
 * const optimizer = new SGD([w], { lr: 0.05 });
 * for (let step = 0; step < 50; step++) {
 *   optimizer.zeroGrad();
 *   mseLoss(w.mul(x), target).backward();
 *   optimizer.step();
 * }
 * console.log(w.item().toFixed(3)); // 2.000
 * ```
 */
export class SGD extends Optimizer<SGDHyper> {
  /**
   * Creates a SGD.
   *
   * @param params Tensors (e.g. `model.parameters()`), or groups `{params, lr?, momentum?, …}`.
   * @param options Defaults for every group.
   */
  constructor(params: ParamsInput<SGDHyper>, options: SGDOptions = {}) {
    super("SGD", params, {
      lr: options.lr ?? 1e-3,
      momentum: options.momentum ?? 0,
      dampening: options.dampening ?? 0,
      nesterov: options.nesterov ?? false,
      weightDecay: options.weightDecay ?? 0,
    });
  }

  /** PyTorch's checks: non-negative values, and Nesterov only with momentum and no dampening. */
  protected validate(group: ParamGroup<SGDHyper>): void {
    for (const key of ["lr", "momentum", "dampening", "weightDecay"] as const) {
      const value = group[key];
      if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
        throw new RangeError(`SGD: ${key} must be a finite number >= 0, got ${value}`);
      }
    }
    if (typeof group.nesterov !== "boolean") {
      throw new TypeError(`SGD: nesterov must be a boolean, got ${group.nesterov}`);
    }
    if (group.nesterov && (group.momentum <= 0 || group.dampening !== 0)) {
      throw new RangeError(
        `SGD: nesterov momentum needs momentum > 0 and dampening 0 (got momentum ${group.momentum}, dampening ${group.dampening})`,
      );
    }
  }

  /** One SGD update of `param` (see the class comment). */
  protected update(
    param: Tensor,
    grad: Tensor,
    group: ParamGroup<SGDHyper>,
    state: ParamState,
  ): void {
    if (param.device !== "cpu") {
      const backend = backendOf(param);
      const momentum = group.momentum === 0
        ? null
        : deviceStateBuffer(backend, state, "momentum_buffer", param.size);
      state.step += 1;
      backend.optimizers.sgdStep(
        param,
        grad,
        group.lr,
        group.weightDecay,
        group.momentum,
        group.dampening,
        group.nesterov,
        momentum?.buffer ?? null,
        momentum?.created ?? false,
      );
      return;
    }
    let buffer: Float32Array | null = null;
    let firstStep = false;
    if (group.momentum !== 0) {
      buffer = state.buffers.momentum_buffer ?? null;
      if (buffer === null) {
        buffer = kernels.allocPersistent(param.size);
        state.buffers.momentum_buffer = buffer;
        firstStep = true;
      }
    }
    state.step += 1;
    kernels.sgdStep(
      param.data,
      param.offset,
      grad.data,
      grad.offset,
      param.size,
      group.lr,
      group.weightDecay,
      group.momentum,
      group.dampening,
      group.nesterov,
      buffer,
      firstStep,
    );
  }
}
