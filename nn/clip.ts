/**
 * Gradient clipping by global norm, like `torch.nn.utils.clip_grad_norm_`, and by value, like
 * `torch.nn.utils.clip_grad_value_`.
 *
 * @module
 */

import { clamp, noGrad, type Tensor } from "../autograd/mod.ts";
import { kernels } from "../autograd/kernels/mod.ts";
import { sumOfSquares } from "../autograd/kernels/optim.ts";

/** The L2 norm of all gradients of `params` taken together (parameters without `.grad` count as 0). */
export function gradNorm(params: readonly Tensor[]): number {
  let total = 0;
  for (const p of params) {
    const g = p.grad;
    if (g === null) continue;
    const dense = g.isContiguous() ? g : g.contiguous();
    total += sumOfSquares(dense.data, dense.offset, dense.size);
  }
  return Math.sqrt(total);
}

/**
 * Scales all gradients in place so that their global L2 norm is at most `maxNorm`, and returns the
 * norm before clipping (NaN or Infinity when a gradient is not finite: the caller should stop).
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  const norm = gradNorm(params);
  if (!Number.isFinite(norm) || norm <= maxNorm) return norm;
  const factor = maxNorm / (norm + 1e-6);
  for (const p of params) {
    const g = p.grad;
    if (g === null) continue;
    // Leaf gradients are contiguous and owned by their leaf (the tape guarantees it): scale in place.
    if (g.isContiguous()) kernels.scale(g.data, g.offset, factor, g.data, g.offset, g.size);
    else p.grad = noGrad(() => g.mul(factor));
  }
  return norm;
}

/**
 * Clamps every gradient of `params` in place to [−clipValue, clipValue] (PyTorch's
 * `clip_grad_value_`); NaN stays NaN. Parameters without `.grad` are skipped.
 */
export function clipGradValue(params: readonly Tensor[], clipValue: number): void {
  if (!(clipValue >= 0) || !Number.isFinite(clipValue)) {
    throw new RangeError(`clipGradValue: clipValue must be a finite number >= 0, got ${clipValue}`);
  }
  for (const p of params) {
    const g = p.grad;
    if (g === null) continue;
    if (!g.isContiguous()) {
      p.grad = noGrad(() => clamp(g, -clipValue, clipValue));
      continue;
    }
    const data = g.data;
    const end = g.offset + g.size;
    for (let i = g.offset; i < end; i++) {
      const v = data[i];
      if (v > clipValue) data[i] = clipValue;
      else if (v < -clipValue) data[i] = -clipValue;
    }
  }
}
