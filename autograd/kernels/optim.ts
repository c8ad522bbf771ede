/**
 * Optimizer update loops: plain functions over Float32Array offsets that update parameters and
 * their state buffers in place, with no allocation inside the loops. `nn/optim/` calls the
 * installed ones (`kernels.sgdStep`, `kernels.adamStep`: WebAssembly by default, bitwise equal to
 * these reference loops) once per parameter tensor per step.
 *
 * The arithmetic follows PyTorch's single-tensor implementations (torch.optim, `foreach=False`)
 * step by step, storing every buffer in float32 at the same points PyTorch's float32 tensors do.
 * SGD computes in float32 throughout, operation by operation; Adam evaluates each expression in
 * float64 and rounds where it stores, so it agrees with PyTorch to float32 rounding of the
 * intermediate expressions.
 *
 * @module
 */

import type { AdamStepKernel, SgdStepKernel } from "./types.ts";

/**
 * One SGD step for `n` elements (torch.optim.SGD):
 *
 * ```text
 * g ← grad + λ·p                          (weight decay λ)
 * b ← g                on the first step, else b ← μ·b + (1 − τ)·g   (momentum μ > 0, dampening τ)
 * g ← g + μ·b  (nesterov)   or   g ← b
 * p ← p − lr·g
 * ```
 *
 * Everything is float32, as in PyTorch's float32 tensors: the hyperparameters are rounded to
 * float32 first, and every product and sum is rounded to float32 (`Math.fround`). That makes the
 * WebAssembly loop (four lanes of f32x4 arithmetic) and the WebGPU shader the same operations,
 * and it is about 2.5 times faster than computing in float64 and converting on every element.
 * PyTorch's vectorised loops fuse each `add(…, alpha)` into one multiply-add; here the product and
 * the sum round separately, so the two agree to within an ulp of the last operation, not bit for
 * bit.
 *
 * @param param Parameter storage, updated in place.
 * @param paramOffset Index of the first element in `param`.
 * @param grad Gradient storage (read only).
 * @param gradOffset Index of the first element in `grad`.
 * @param n Number of elements.
 * @param lr Learning rate.
 * @param weightDecay L2 penalty λ added to the gradient.
 * @param momentum Momentum factor μ (0: plain SGD, `buffer` is ignored).
 * @param dampening Dampening τ of the momentum.
 * @param nesterov Use Nesterov momentum.
 * @param buffer Momentum buffer of `n` elements (index 0 is the first element), or null when μ = 0.
 * @param firstStep True when `buffer` has not been initialised yet (it is set to g).
 */
export const sgdStepReference: SgdStepKernel = (
  param,
  paramOffset,
  grad,
  gradOffset,
  n,
  lr,
  weightDecay,
  momentum,
  dampening,
  nesterov,
  buffer,
  firstStep,
) => {
  const f = Math.fround;
  const [rate, decay, mu, keep] = sgdHyperparameters(lr, weightDecay, momentum, dampening);
  const useBuffer = momentum !== 0 && buffer !== null;
  for (let i = 0; i < n; i++) {
    const p = param[paramOffset + i];
    let g = grad[gradOffset + i];
    if (weightDecay !== 0) g = f(g + f(decay * p));
    let direction = g;
    if (useBuffer) {
      const b = firstStep ? g : f(f(mu * buffer[i]) + f(keep * g));
      buffer[i] = b;
      if (nesterov) direction = f(g + f(mu * b));
      else direction = b;
    }
    // A sum of two float32 values in float64 rounds to the float32 sum when it is stored.
    param[paramOffset + i] = p - f(rate * direction);
  }
};

/**
 * SGD's hyperparameters as the float32 values the update computes with:
 * [lr, weightDecay, momentum, 1 − dampening].
 */
export function sgdHyperparameters(
  lr: number,
  weightDecay: number,
  momentum: number,
  dampening: number,
): [number, number, number, number] {
  const f = Math.fround;
  return [f(lr), f(weightDecay), f(momentum), f(1 - dampening)];
}

/**
 * One Adam or AdamW step for `n` elements (torch.optim.Adam / AdamW, amsgrad off):
 *
 * ```text
 * p ← p·(1 − lr·λ)                         (AdamW: decoupled decay)   or   g ← g + λ·p   (Adam: L2)
 * m ← β₁·m + (1 − β₁)·g
 * v ← β₂·v + (1 − β₂)·g²
 * p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
 * ```
 *
 * @param param Parameter storage, updated in place.
 * @param paramOffset Index of the first element in `param`.
 * @param grad Gradient storage (read only).
 * @param gradOffset Index of the first element in `grad`.
 * @param n Number of elements.
 * @param expAvg First-moment buffer m (n elements from index 0), updated in place.
 * @param expAvgSq Second-moment buffer v (n elements from index 0), updated in place.
 * @param step The step count t after this step (1 on the first step).
 * @param lr Learning rate.
 * @param beta1 Decay β₁ of the first moment.
 * @param beta2 Decay β₂ of the second moment.
 * @param eps ε added to the denominator.
 * @param weightDecay λ: an L2 term in the gradient (Adam) or a decoupled decay (AdamW).
 * @param decoupled True for AdamW's decoupled weight decay.
 */
export const adamStepReference: AdamStepKernel = (
  param,
  paramOffset,
  grad,
  gradOffset,
  n,
  expAvg,
  expAvgSq,
  step,
  lr,
  beta1,
  beta2,
  eps,
  weightDecay,
  decoupled,
) => {
  const biasCorrection1 = 1 - beta1 ** step;
  const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** step);
  const stepSize = lr / biasCorrection1;
  const decay = decoupled ? 1 - lr * weightDecay : 1;
  const l2 = decoupled ? 0 : weightDecay;
  const keep1 = 1 - beta1;
  const keep2 = 1 - beta2;
  for (let i = 0; i < n; i++) {
    let p = param[paramOffset + i];
    if (decay !== 1) p = Math.fround(p * decay);
    const g = l2 === 0 ? grad[gradOffset + i] : Math.fround(grad[gradOffset + i] + l2 * p);
    expAvg[i] = beta1 * expAvg[i] + keep1 * g;
    expAvgSq[i] = beta2 * expAvgSq[i] + keep2 * g * g;
    const denominator = Math.fround(Math.sqrt(expAvgSq[i]) / biasCorrection2Sqrt + eps);
    param[paramOffset + i] = p - stepSize * (expAvg[i] / denominator);
  }
};

/** Σ x[i]² for i < n, accumulated in float64 (for gradient norms). */
export function sumOfSquares(x: Float32Array, offset: number, n: number): number {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const v = x[offset + i];
    total += v * v;
  }
  return total;
}
