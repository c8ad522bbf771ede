/**
 * Optimizer update loops: plain functions over Float32Array offsets that update parameters and
 * their state buffers in place, with no allocation inside the loops. `nn/optim/` calls the
 * installed ones (`kernels.sgdStep`, `kernels.adamStep`: WebAssembly by default, bitwise equal to
 * these reference loops) once per parameter tensor per step.
 *
 * The arithmetic follows PyTorch's single-tensor implementations (torch.optim, `foreach=False`)
 * step by step, storing every buffer in float32 at the same points PyTorch's float32 tensors do, so
 * results agree with PyTorch to float32 rounding of the intermediate expressions.
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
  if (momentum === 0 || buffer === null) {
    for (let i = 0; i < n; i++) {
      const p = param[paramOffset + i];
      // fround: PyTorch materialises grad + λ·p as a float32 tensor before the update.
      const g = weightDecay === 0
        ? grad[gradOffset + i]
        : Math.fround(grad[gradOffset + i] + weightDecay * p);
      param[paramOffset + i] = p - lr * g;
    }
    return;
  }
  const keep = 1 - dampening;
  for (let i = 0; i < n; i++) {
    const p = param[paramOffset + i];
    const g = weightDecay === 0
      ? grad[gradOffset + i]
      : Math.fround(grad[gradOffset + i] + weightDecay * p);
    buffer[i] = firstStep ? g : momentum * buffer[i] + keep * g;
    // Read back the stored (float32) buffer, as PyTorch does when it uses the tensor.
    const direction = nesterov ? Math.fround(g + momentum * buffer[i]) : buffer[i];
    param[paramOffset + i] = p - lr * direction;
  }
};

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
