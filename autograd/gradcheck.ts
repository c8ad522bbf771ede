/**
 * Gradient checking: compares the gradients `backward()` computes with central finite differences.
 *
 * The output is reduced to a scalar with fixed random weights, L = Σ rᵢ·outᵢ (summed in float64),
 * so a single backward pass checks every output at once and a transposed or mis-scaled gradient
 * cannot hide behind a symmetric all-ones reduction. Each input element x is moved to the nearest
 * float32 values above and below x ± ε, and the derivative is (L₊ − L₋) / (the actual distance
 * between them), which removes the rounding of x ± ε from the estimate.
 *
 * Tolerances. With float32 forward passes the finite difference carries noise of about
 * 6e-8·|L| / ε plus a truncation error of order ε²·|f‴|. The defaults (ε = 1e-3, atol = 1e-3,
 * rtol = 1e-2) pass correct gradients of smooth ops on inputs of order 1 with a wide margin, while a
 * wrong sign, a missing broadcast reduction, a factor of 2 or a gradient routed to the wrong element
 * (an off-by-one in padding) are errors of order 1 and fail. Choose inputs away from kinks (relu at
 * 0, ties in max) by more than ε: there the derivative does not exist.
 *
 * @module
 */

import { Rng } from "./rng.ts";
import { isGradEnabled, noGrad } from "./tape.ts";
import { Tensor } from "./tensor.ts";

/** Options of {@linkcode gradcheck}. */
export interface GradcheckOptions {
  /** Finite-difference step (default 1e-3). */
  eps?: number;
  /** Absolute tolerance (default 1e-3). */
  atol?: number;
  /** Relative tolerance, times |numeric| (default 1e-2). */
  rtol?: number;
  /** Seed of the random output weights (default 0). */
  seed?: number;
}

/** One gradient entry that differs beyond tolerance. */
export interface GradcheckMismatch {
  /** Position of the input in the `inputs` list. */
  input: number;
  /** Row-major index of the element within that input. */
  index: number;
  /** The gradient backward() computed. */
  analytic: number;
  /** The finite-difference estimate. */
  numeric: number;
}

/** Outcome of a gradient check. */
export interface GradcheckResult {
  /** True when every checked element is within tolerance. */
  ok: boolean;
  /** Largest |analytic − numeric| seen. */
  maxAbsError: number;
  /** Number of input elements checked. */
  checked: number;
  /** The elements out of tolerance (at most 20 kept). */
  mismatches: GradcheckMismatch[];
  /** A human-readable summary, naming the first mismatches. */
  report: string;
}

/**
 * Checks the gradients of `fn` with respect to every input with `requiresGrad` against central finite
 * differences. Inputs must be contiguous leaves; `fn` must be deterministic (seed any dropout inside).
 *
 * @example
 * ```ts
 * import { gradcheck, tensor } from "@tapegrad/tapegrad";
 *
 * const x = tensor([0.5, -1, 2], { requiresGrad: true });
 * const result = gradcheck((t) => t.tanh().mul(t).sum(), [x]);
 * console.log(result.ok, result.checked); // true 3
 * if (!result.ok) throw new Error(result.report);
 * ```
 */
export function gradcheck(
  fn: (...inputs: Tensor[]) => Tensor,
  inputs: Tensor[],
  options: GradcheckOptions = {},
): GradcheckResult {
  const eps = options.eps ?? 1e-3;
  const atol = options.atol ?? 1e-3;
  const rtol = options.rtol ?? 1e-2;
  if (!isGradEnabled()) throw new Error("gradcheck: grad mode is off (called inside noGrad?)");
  inputs.forEach((t, i) => {
    if (!t.isLeaf || !t.isContiguous()) {
      throw new Error(`gradcheck: input ${i} must be a contiguous leaf tensor`);
    }
  });

  // Analytic gradients of L = Σ r·out.
  for (const t of inputs) t.grad = null;
  const out = fn(...inputs);
  const rng = new Rng(options.seed ?? 0);
  const weights = new Float32Array(out.size);
  for (let i = 0; i < weights.length; i++) weights[i] = rng.normal();
  out.backward(new Tensor(weights, out.shape));
  const analytic = inputs.map((
    t,
  ) => (t.requiresGrad ? t.grad?.toFloat32Array() ?? new Float32Array(t.size) : null));

  const objective = (): number =>
    noGrad(() => {
      const values = fn(...inputs).toFloat32Array();
      let total = 0;
      for (let i = 0; i < values.length; i++) total += values[i] * weights[i];
      return total;
    });

  const mismatches: GradcheckMismatch[] = [];
  let maxAbsError = 0;
  let checked = 0;
  let failures = 0;
  inputs.forEach((t, input) => {
    const grads = analytic[input];
    if (grads === null) return;
    const data = t.data;
    for (let index = 0; index < t.size; index++) {
      const at = t.offset + index;
      const original = data[at];
      data[at] = original + eps;
      const up = data[at];
      const lossUp = objective();
      data[at] = original - eps;
      const down = data[at];
      const lossDown = objective();
      data[at] = original;
      const numeric = (lossUp - lossDown) / (up - down);
      const error = Math.abs(grads[index] - numeric);
      checked++;
      if (!(error <= maxAbsError)) maxAbsError = error;
      if (!(error <= atol + rtol * Math.abs(numeric))) {
        failures++;
        if (mismatches.length < 20) {
          mismatches.push({ input, index, analytic: grads[index], numeric });
        }
      }
    }
  });
  const ok = failures === 0;
  const report = ok
    ? `gradcheck: ${checked} elements within atol ${atol} + rtol ${rtol} (max error ${
      maxAbsError.toExponential(2)
    })`
    : `gradcheck: ${failures} of ${checked} elements differ (atol ${atol}, rtol ${rtol}); first: ` +
      mismatches.slice(0, 5).map((m) =>
        `input ${m.input}[${m.index}] analytic ${m.analytic.toPrecision(6)} vs numeric ${
          m.numeric.toPrecision(6)
        }`
      ).join("; ");
  return { ok, maxAbsError, checked, mismatches, report };
}
