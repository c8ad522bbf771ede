/**
 * How a differentiable op is declared: one object holding its forward computation and its backward
 * rule side by side. The type requires both, so an op without a gradient does not compile.
 * {@linkcode applyOp} runs the forward pass and, in grad mode, records the backward rule on the tape.
 *
 * Backward rules are written in differentiable ops (`mul`, `where`, `sum`, …), so they can be
 * recorded themselves and gradients of gradients work (`backward({ createGraph: true })`,
 * `grad(grad(f))`). A fused op whose rule calls kernels directly gives its `composite` definition
 * instead: the same function written in differentiable ops, which the tape differentiates when a
 * graph of the gradient is asked for, and which the tests compare the fused path with.
 *
 * Custom ops are declared the same way (like `torch.autograd.Function`) with {@linkcode defineOp}.
 *
 * @module
 */

import { type Device, deviceBackend, type DeviceOp } from "../device.ts";
import { type GradSinks, record, setGradEnabled, shouldRecord } from "../tape.ts";
import type { AnyTensor, Tensor } from "../tensor.ts";
import { onDevice } from "./util.ts";

/** One gradient per tensor input: a tensor of the input's shape, or null where none flows. */
export type InputGrads<I extends readonly AnyTensor[]> = {
  -readonly [K in keyof I]: Tensor | null;
};

/** What a forward pass returns: the output and whatever its backward rule needs. */
export interface ForwardResult<S, O extends AnyTensor = Tensor> {
  /** The op's result. */
  out: O;
  /** Values kept for the backward pass (only needed when `recording` was true). */
  saved: S;
}

/**
 * A differentiable op.
 *
 * @typeParam I Tuple of tensor inputs (gradients flow to the float32 ones).
 * @typeParam A Non-tensor attributes (dims, strides, labels, …).
 * @typeParam S What the forward pass saves for the backward pass.
 */
export interface OpDef<I extends readonly AnyTensor[], A, S> {
  /** Name shown in errors and on the tape. */
  readonly name: string;
  /**
   * Computes the output. `recording` says whether the backward rule will run, so the forward pass
   * can skip saving large intermediates (im2col columns, masks) during inference.
   */
  forward(inputs: I, attrs: A, recording: boolean): ForwardResult<S, AnyTensor>;
  /**
   * Maps the gradient of the output to the gradient of each input. Runs with recording off for a
   * first-order `backward()`, and with recording on under `createGraph`, so it must be written in
   * differentiable ops unless the op gives a `composite`. Must return tensors of the inputs'
   * shapes, except where it chose to add an input's gradient into `into[i]` (see
   * {@linkcode GradSinks}) and returns null instead.
   */
  backward(
    gradOutput: Tensor,
    saved: S,
    inputs: I,
    attrs: A,
    out: Tensor,
    into: GradSinks,
  ): InputGrads<I>;
  /**
   * For a fused op whose `backward` calls kernels: the op written in differentiable ops. The tape
   * differentiates it when a graph of the gradient is needed; tests check the fused op against it.
   */
  composite?(inputs: I, attrs: A): Tensor;
  /**
   * Set on an op whose backward calls kernels and that has no composite: a graph of its gradient
   * cannot be built, and `createGraph` says so by the op's name instead of returning a wrong answer.
   */
  readonly onceDifferentiable?: true;
}

/** Declares an op; an identity function that gives the object its checked type. */
export function defineOp<I extends readonly AnyTensor[], A, S>(
  def: OpDef<I, A, S>,
): OpDef<I, A, S> {
  return def;
}

/** Sees each op a caller applies: its name, tensor inputs, attributes and output. */
export type OpTracer = (
  op: string,
  inputs: readonly AnyTensor[],
  attrs: unknown,
  out: AnyTensor,
) => void;

let tracer: OpTracer | null = null;
/** How many forward passes are running; ops inside one are its implementation, not traced. */
let forwardDepth = 0;

/**
 * Installs `next` (or none) as the observer of the ops applied outside any forward pass, and
 * returns the previous one. Exporters (ONNX) run a model once under a tracer to read its graph.
 */
export function setOpTracer(next: OpTracer | null): OpTracer | null {
  const previous = tracer;
  tracer = next;
  return previous;
}

/** Runs `op` forward on `inputs` and records its backward rule when gradients are needed. */
export function applyOp<I extends readonly AnyTensor[], A, S, O extends AnyTensor = Tensor>(
  op: OpDef<I, A, S>,
  inputs: I,
  attrs: A,
): O {
  let device: Device = "cpu";
  for (let i = 0; i < inputs.length; i++) {
    if (inputs[i].device !== "cpu") {
      device = inputs[i].device;
      break;
    }
  }
  if (device !== "cpu") return applyOnDevice(op, inputs, attrs, device);
  const recording = shouldRecord(inputs);
  // Ops used inside a forward pass (views, sums) are implementation details: never record them.
  const previous = setGradEnabled(false);
  let result: ForwardResult<S, AnyTensor>;
  forwardDepth++;
  try {
    result = op.forward(inputs, attrs, recording);
  } finally {
    forwardDepth--;
    setGradEnabled(previous);
  }
  const { out, saved } = result;
  if (tracer !== null && forwardDepth === 0) tracer(op.name, inputs, attrs, out);
  if (recording && out.dtype === "float32") {
    const output = out as Tensor;
    record(
      op,
      inputs,
      output,
      (gradOutput, into) => op.backward(gradOutput, saved, inputs, attrs, output, into),
      attrs,
    );
  }
  return out as O;
}

/**
 * {@linkcode applyOp} for inputs on a device: the device's forward (and backward where it gives
 * one) replace the op's own; an op the device does not list runs its own definition, which works
 * when it only builds views or calls other ops. Host reads inside it are reported by op name.
 */
function applyOnDevice<I extends readonly AnyTensor[], A, S, O extends AnyTensor>(
  op: OpDef<I, A, S>,
  given: I,
  attrs: A,
  device: Device,
): O {
  const inputs = given.some((t) => t.device !== device)
    ? given.map((t) => onDevice(op.name, t, device)) as unknown as I
    : given;
  const impl = (deviceBackend(device as Exclude<Device, "cpu">).ops as Record<
    string,
    DeviceOp | undefined
  >)[op.name];
  const recording = shouldRecord(inputs);
  const previous = setGradEnabled(false);
  let result: ForwardResult<unknown, AnyTensor>;
  forwardDepth++;
  try {
    result = impl !== undefined
      ? impl.forward(inputs, attrs, recording)
      : op.forward(inputs, attrs, recording);
  } catch (error) {
    throw onDeviceError(op.name, device, error);
  } finally {
    forwardDepth--;
    setGradEnabled(previous);
  }
  const { out, saved } = result;
  if (tracer !== null && forwardDepth === 0) tracer(op.name, inputs, attrs, out);
  if (recording && out.dtype === "float32") {
    const output = out as Tensor;
    const rule = impl?.backward;
    record(
      op,
      inputs,
      output,
      (gradOutput, into) => {
        try {
          return rule !== undefined
            ? rule(gradOutput, saved, inputs, attrs, output, into) as InputGrads<I>
            : op.backward(gradOutput, saved as S, inputs, attrs, output, into);
        } catch (error) {
          throw onDeviceError(`${op.name} backward`, device, error);
        }
      },
      attrs,
    );
  }
  return out as O;
}

/** An op that read host memory on a device says which op it was. */
function onDeviceError(op: string, device: Device, error: unknown): unknown {
  if (error instanceof Error && / lives on /.test(error.message) && !error.message.startsWith(op)) {
    return new Error(`${op}: not implemented on ${device} yet (${error.message})`, {
      cause: error,
    });
  }
  return error;
}
