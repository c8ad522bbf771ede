/**
 * What every platform test asserts about a {@linkcode StepsReport}: the loss falls at every step,
 * the known gradients are right, safetensors bytes round-trip, a second thread computed when two
 * were asked for, and the losses equal this Deno process's own run of the same steps.
 *
 * @module
 */

import assert from "node:assert/strict";
import { platformSteps, type StepsOptions, type StepsReport } from "./platform_steps.ts";

/** Options of {@linkcode checkSteps}. */
export interface CheckOptions {
  /** Threads asked for; with 2, a worker must have taken part in some job. */
  threads: number;
  /** Losses of the same steps in Deno, to compare with. */
  reference: number[];
  /**
   * Largest relative difference allowed from `reference`: float32 rounding (a few ulp) when the
   * same kernels ran, more for the TypeScript kernels, whose sums run in another order.
   */
  tolerance?: number;
}

/** The same steps in this Deno process, on the wasm kernels, as the reference losses. */
export async function denoReference(options: StepsOptions = {}): Promise<StepsReport> {
  return await platformSteps({ threads: 2, ...options });
}

/** Asserts everything the module documentation lists; `label` names the platform in messages. */
export function checkSteps(report: StepsReport, label: string, options: CheckOptions): void {
  const { losses } = report;
  assert.ok(losses.length >= 2, `${label}: ${losses.length} losses`);
  for (let i = 1; i < losses.length; i++) {
    assert.ok(losses[i] < losses[i - 1], `${label}: the loss rose at step ${i}: ${losses}`);
  }
  assert.deepEqual(report.squareGrad, [1, -2], `${label}: d sum(w²)/dw at [0.5, -1]`);
  assert.ok(
    report.matmulGradError < 1e-5,
    `${label}: d sum(x·Wᵀ)/dW is off by ${report.matmulGradError} (relative)`,
  );
  assert.ok(report.bytesRoundTrip, `${label}: safetensors bytes did not round-trip`);
  assert.equal(report.threads, options.threads, `${label}: threads`);
  if (options.threads > 1) {
    assert.ok(report.joinedJobs > 0, `${label}: no worker thread took part in any job`);
  }
  // float32 has a 24-bit significand: 4 ulp of slack by default.
  const tolerance = options.tolerance ?? 4 * 2 ** -24;
  for (let i = 0; i < losses.length; i++) {
    const want = options.reference[i];
    assert.ok(
      Math.abs(losses[i] - want) <= tolerance * Math.abs(want),
      `${label}: loss ${i} is ${losses[i]}, Deno gives ${want} (relative tolerance ${tolerance})`,
    );
  }
}
