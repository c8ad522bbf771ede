/**
 * Adam and AdamW with PyTorch's update rules (torch.optim.Adam / AdamW, amsgrad off): bias-corrected
 * moment estimates; Adam adds weight decay to the gradient (L2), AdamW decays the weights directly.
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

/** Hyper-parameters of an Adam / AdamW group. */
export interface AdamHyper extends HyperParams {
  /** Decay rates [β₁, β₂] of the first and second moment estimates. */
  betas: [number, number];
  /** ε added to the denominator for stability. */
  eps: number;
}

/** Options of {@linkcode Adam} and {@linkcode AdamW}: defaults for every group. */
export interface AdamOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  /** [β₁, β₂] (default [0.9, 0.999]). */
  betas?: [number, number];
  /** ε (default 1e-8). */
  eps?: number;
  /** Weight decay λ (default 0 for Adam, 1e-2 for AdamW). */
  weightDecay?: number;
  /**
   * Decay the weights directly (p ← p·(1 − lr·λ)) instead of adding λ·p to the gradient: AdamW's
   * rule (default false for Adam; AdamW always sets it).
   */
  decoupledWeightDecay?: boolean;
}

/**
 * Adam, per parameter at step t:
 *
 * ```text
 * g ← ∇ + λ·p                   (AdamW instead: p ← p·(1 − lr·λ))
 * m ← β₁·m + (1 − β₁)·g
 * v ← β₂·v + (1 − β₂)·g²
 * p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
 * ```
 *
 * State: `exp_avg` (m) and `exp_avg_sq` (v) per parameter, and its step count t.
 *
 * @example A classifier of three points
 * ```ts
 * import { Adam, crossEntropy, Linear, tensor } from "@tapegrad/tapegrad";
 *
 * const model = new Linear(2, 3);
 * const optimizer = new Adam(model.parameters(), { lr: 0.1 });
 * const x = tensor([[1, 0], [0, 1], [1, 1]]);
 * const labels = new Int32Array([0, 1, 2]);
 * for (let step = 0; step < 50; step++) {
 *   optimizer.zeroGrad();
 *   crossEntropy(model.call(x), labels).backward();
 *   optimizer.step();
 * }
 * console.log(crossEntropy(model.call(x), labels).item() < 0.1); // true
 * ```
 */
export class Adam extends Optimizer<AdamHyper> {
  /** Whether weight decay is decoupled (AdamW) or an L2 term (Adam). */
  readonly decoupledWeightDecay: boolean;

  /**
   * Creates a Adam.
   *
   * @param params Tensors (e.g. `model.parameters()`), or groups `{params, lr?, betas?, …}`.
   * @param options Defaults for every group.
   */
  constructor(params: ParamsInput<AdamHyper>, options: AdamOptions = {}) {
    const decoupled = options.decoupledWeightDecay ?? false;
    const betas = options.betas ?? [0.9, 0.999];
    super(decoupled ? "AdamW" : "Adam", params, {
      lr: options.lr ?? 1e-3,
      betas: [betas[0], betas[1]],
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0,
    });
    this.decoupledWeightDecay = decoupled;
  }

  /** PyTorch's checks: lr, ε, λ ≥ 0 and 0 ≤ β < 1. */
  protected validate(group: ParamGroup<AdamHyper>): void {
    for (const key of ["lr", "eps", "weightDecay"] as const) {
      const value = group[key];
      if (typeof value !== "number" || !(value >= 0) || !Number.isFinite(value)) {
        throw new RangeError(`${this.type}: ${key} must be a finite number >= 0, got ${value}`);
      }
    }
    const betas = group.betas;
    if (
      !Array.isArray(betas) || betas.length !== 2 ||
      !betas.every((b) => typeof b === "number" && b >= 0 && b < 1)
    ) {
      throw new RangeError(`${this.type}: betas must be two numbers in [0, 1), got ${betas}`);
    }
  }

  /** One Adam/AdamW update of `param` (see the class comment). */
  protected update(
    param: Tensor,
    grad: Tensor,
    group: ParamGroup<AdamHyper>,
    state: ParamState,
  ): void {
    if (param.device !== "cpu") {
      const backend = backendOf(param);
      const m = deviceStateBuffer(backend, state, "exp_avg", param.size).buffer;
      const v = deviceStateBuffer(backend, state, "exp_avg_sq", param.size).buffer;
      state.step += 1;
      backend.optimizers.adamStep(
        param,
        grad,
        m,
        v,
        state.step,
        group.lr,
        group.betas[0],
        group.betas[1],
        group.eps,
        group.weightDecay,
        this.decoupledWeightDecay,
      );
      return;
    }
    let expAvg = state.buffers.exp_avg;
    let expAvgSq = state.buffers.exp_avg_sq;
    if (expAvg === undefined || expAvgSq === undefined) {
      expAvg = state.buffers.exp_avg = kernels.allocPersistent(param.size);
      expAvgSq = state.buffers.exp_avg_sq = kernels.allocPersistent(param.size);
    }
    state.step += 1;
    kernels.adamStep(
      param.data,
      param.offset,
      grad.data,
      grad.offset,
      param.size,
      expAvg,
      expAvgSq,
      state.step,
      group.lr,
      group.betas[0],
      group.betas[1],
      group.eps,
      group.weightDecay,
      this.decoupledWeightDecay,
    );
  }
}

/** Options of {@linkcode AdamW}. */
export type AdamWOptions = Omit<AdamOptions, "decoupledWeightDecay">;

/**
 * AdamW (Loshchilov & Hutter): Adam with decoupled weight decay p ← p·(1 − lr·λ) applied before the
 * Adam update, λ defaulting to 1e-2 as in PyTorch.
 */
export class AdamW extends Adam {
  /**
   * Creates a AdamW.
   *
   * @param params Tensors or parameter groups.
   * @param options Defaults for every group (weightDecay default 1e-2).
   */
  constructor(params: ParamsInput<AdamHyper>, options: AdamWOptions = {}) {
    super(params, {
      ...options,
      weightDecay: options.weightDecay ?? 1e-2,
      decoupledWeightDecay: true,
    });
  }
}
