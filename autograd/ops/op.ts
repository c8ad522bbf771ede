/**
 * How a differentiable op is declared: one object holding its forward computation and its backward
 * rule side by side. The type requires both, so an op without a gradient does not compile.
 * {@linkcode applyOp} runs the forward pass and, in grad mode, records the backward rule on the tape.
 *
 * Custom ops are declared the same way (like `torch.autograd.Function`) with {@linkcode defineOp}.
 *
 * @module
 */

import { type GradSinks, record, setGradEnabled, shouldRecord } from "../tape.ts";
import type { Tensor } from "../tensor.ts";

/** One gradient per tensor input: a tensor of the input's shape, or null where none flows. */
export type InputGrads<I extends readonly Tensor[]> = { -readonly [K in keyof I]: Tensor | null };

/** What a forward pass returns: the output and whatever its backward rule needs. */
export interface ForwardResult<S> {
  /** The op's result. */
  out: Tensor;
  /** Values kept for the backward pass (only needed when `recording` was true). */
  saved: S;
}

/**
 * A differentiable op.
 *
 * @typeParam I Tuple of tensor inputs (gradients flow to these).
 * @typeParam A Non-tensor attributes (dims, strides, labels, …).
 * @typeParam S What the forward pass saves for the backward pass.
 */
export interface OpDef<I extends readonly Tensor[], A, S> {
  /** Name shown in errors and on the tape. */
  readonly name: string;
  /**
   * Computes the output. `recording` says whether the backward rule will run, so the forward pass
   * can skip saving large intermediates (im2col columns, masks) during inference.
   */
  forward(inputs: I, attrs: A, recording: boolean): ForwardResult<S>;
  /**
   * Maps the gradient of the output to the gradient of each input. Runs with recording off; may use
   * tensor ops or kernels. Must return tensors of the inputs' shapes, except where it chose to add
   * an input's gradient into `into[i]` (see {@linkcode GradSinks}) and returns null instead.
   */
  backward(
    gradOutput: Tensor,
    saved: S,
    inputs: I,
    attrs: A,
    out: Tensor,
    into: GradSinks,
  ): InputGrads<I>;
}

/** Declares an op; an identity function that gives the object its checked type. */
export function defineOp<I extends readonly Tensor[], A, S>(def: OpDef<I, A, S>): OpDef<I, A, S> {
  return def;
}

/** Runs `op` forward on `inputs` and records its backward rule when gradients are needed. */
export function applyOp<I extends readonly Tensor[], A, S>(
  op: OpDef<I, A, S>,
  inputs: I,
  attrs: A,
): Tensor {
  const recording = shouldRecord(inputs);
  // Ops used inside a forward pass (views, sums) are implementation details: never record them.
  const previous = setGradEnabled(false);
  let result: ForwardResult<S>;
  try {
    result = op.forward(inputs, attrs, recording);
  } finally {
    setGradEnabled(previous);
  }
  const { out, saved } = result;
  if (recording) {
    record(
      op.name,
      inputs,
      out,
      (gradOutput, into) => op.backward(gradOutput, saved, inputs, attrs, out, into),
    );
  }
  return out;
}
