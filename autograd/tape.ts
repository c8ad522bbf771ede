/**
 * The tape: how operations are recorded and how `backward()` replays them in reverse.
 *
 * While grad mode is on, every op whose inputs require grad records one {@linkcode TapeEntry}: its
 * name, its inputs, a sequence number (its position in execution order) and a closure holding the
 * backward rule with what the forward pass saved for it. The entry hangs off the op's output
 * (`tensor.gradFn`), so a graph nobody references any more is garbage collected like any other
 * object: there is no global list that could grow without bound when a result is never
 * back-propagated (a validation loss computed with grad on, say).
 *
 * `backward()` gathers the entries reachable from the loss, walks them once in reverse execution
 * order (sequence numbers descending), hands each the gradient of its output, accumulates input
 * gradients (summing when a tensor was used more than once), stores the result in `.grad` of leaves
 * (a rule may add straight into a leaf's `.grad`: see {@linkcode GradSinks}), and frees each entry
 * as it goes, so a second `backward()` through the same graph is an error.
 *
 * @module
 */

import { kernels } from "./kernels/mod.ts";
import { add, contiguous } from "./ops/functions.ts";
import { formatShape, sameShape } from "./shape.ts";
import { Tensor } from "./tensor.ts";

/** One recorded operation. */
export interface TapeEntry {
  /** Position in execution order: later ops have larger numbers. */
  readonly seq: number;
  /** Name of the op that produced the output (as in the op table). */
  readonly op: string;
  /** The op's tensor inputs, or an empty list once the entry is freed. */
  inputs: readonly Tensor[];
  /**
   * Maps the gradient of the output to one gradient per input (null where none flows, or where
   * the rule added it into `into[i]` itself), or null once the entry has been used by a backward
   * pass and freed.
   */
  backward: ((gradOutput: Tensor, into: GradSinks) => readonly (Tensor | null)[]) | null;
}

/**
 * Gradient buffers a backward rule may accumulate into directly, one slot per input: `into[i]`,
 * when not null, is the `.grad` of input i, which is a leaf (given a zeroed gradient first if it
 * had none; a gradient the user replaced by a strided view is not offered). A rule that adds input
 * i's gradient into it (a GEMM with beta = 1, say) returns null for that input; returning a tensor
 * instead is always correct. This saves a temporary and a pass over it for every parameter on
 * every step.
 */
export type GradSinks = readonly (Tensor | null)[];

/** Options of `backward()`. */
export interface BackwardOptions {
  /** Keep the recorded graph so that `backward()` can run through it again (default false). */
  retainGraph?: boolean;
}

let gradEnabled = true;
let nextSeq = 0;

/** Whether ops are being recorded (grad mode). */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Turns recording on or off; returns the previous setting. Prefer {@linkcode noGrad}. */
export function setGradEnabled(enabled: boolean): boolean {
  const previous = gradEnabled;
  gradEnabled = enabled;
  return previous;
}

/**
 * Runs `fn` with recording off (inference, metrics, optimizer updates) and returns its result.
 * Meant for synchronous work: an async `fn` would only be covered until its first `await`.
 */
export function noGrad<T>(fn: () => T): T {
  const previous = setGradEnabled(false);
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/** Records that `output` was computed from `inputs` by op `op`, with `rule` as its backward rule. */
export function record(
  op: string,
  inputs: readonly Tensor[],
  output: Tensor,
  rule: (gradOutput: Tensor, into: GradSinks) => readonly (Tensor | null)[],
): void {
  output.requiresGrad = true;
  output.gradFn = { seq: nextSeq++, op, inputs, backward: rule };
}

/** Whether an op with these inputs should be recorded now. */
export function shouldRecord(inputs: readonly Tensor[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t.requiresGrad) return true;
  return false;
}

/**
 * Back-propagates from `root`; see {@linkcode Tensor.backward}.
 *
 * @param root The tensor to differentiate, usually a scalar loss.
 * @param gradient d(objective)/d(root); defaults to 1 for a one-element root.
 * @param options `retainGraph: true` keeps the graph for another pass.
 */
export function backward(root: Tensor, gradient?: Tensor, options: BackwardOptions = {}): void {
  if (!root.requiresGrad) {
    throw new Error(
      "backward(): this tensor does not require grad (no input of the computation had requiresGrad, " +
        "or it was computed under noGrad())",
    );
  }
  let seed: Tensor;
  if (gradient === undefined) {
    if (root.size !== 1) {
      throw new Error(
        `backward(): the tensor has shape ${
          formatShape(root.shape)
        }; pass the gradient explicitly ` +
          "(backward() without one is only for a single-element tensor such as a loss)",
      );
    }
    seed = new Tensor(new Float32Array([1]), root.shape);
  } else {
    if (!sameShape(gradient.shape, root.shape)) {
      throw new RangeError(
        `backward(): gradient shape ${formatShape(gradient.shape)} differs from the tensor's ${
          formatShape(root.shape)
        }`,
      );
    }
    seed = gradient.detach();
  }
  const previous = setGradEnabled(false);
  try {
    if (root.gradFn === null) accumulateLeaf(root, seed);
    else run(root.gradFn, seed, options.retainGraph === true);
  } finally {
    gradEnabled = previous;
  }
}

function freedError(entry: TapeEntry): Error {
  return new Error(
    `backward(): the graph through '${entry.op}' (op #${entry.seq}) was already freed by an earlier ` +
      "backward(). Run the forward pass again, or pass { retainGraph: true } to the first backward().",
  );
}

function run(rootEntry: TapeEntry, seed: Tensor, retainGraph: boolean): void {
  // Gather the reachable entries, then order them like the tape: latest first.
  const entries: TapeEntry[] = [];
  const seen = new Set<TapeEntry>([rootEntry]);
  const stack = [rootEntry];
  while (stack.length > 0) {
    const entry = stack.pop()!;
    if (entry.backward === null) throw freedError(entry);
    entries.push(entry);
    for (const input of entry.inputs) {
      const fn = input.gradFn;
      if (fn !== null && input.requiresGrad && !seen.has(fn)) {
        seen.add(fn);
        stack.push(fn);
      }
    }
  }
  entries.sort((a, b) => b.seq - a.seq);

  const pending = new Map<TapeEntry, Tensor>([[rootEntry, seed]]);
  for (const entry of entries) {
    const gradOutput = pending.get(entry);
    pending.delete(entry);
    const rule = entry.backward!;
    const inputs = entry.inputs;
    if (!retainGraph) {
      entry.backward = null;
      entry.inputs = [];
    }
    if (gradOutput === undefined) continue; // no gradient reached this op (only non-differentiable paths)
    const gradInputs = rule(gradOutput, sinksOf(inputs));
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i];
      const g = gradInputs[i];
      if (g === null || g === undefined || !input.requiresGrad) continue;
      if (!sameShape(g.shape, input.shape)) {
        throw new Error(
          `backward of '${entry.op}': gradient for input ${i} has shape ${formatShape(g.shape)}, ` +
            `but the input has shape ${formatShape(input.shape)} (a bug in the op's backward rule)`,
        );
      }
      if (input.gradFn === null) {
        accumulateLeaf(input, g);
      } else {
        const before = pending.get(input.gradFn);
        pending.set(input.gradFn, before === undefined ? g : add(before, g));
      }
    }
  }
}

/**
 * The {@linkcode GradSinks} of an entry's inputs: the leaves' gradients, which take `+=`. A leaf
 * that has no gradient yet gets a zeroed one here, so the first backward pass sums in the same
 * order as every later one (a fresh product and `0 + product` can differ in the sign of a zero).
 */
function sinksOf(inputs: readonly Tensor[]): GradSinks {
  let sinks: (Tensor | null)[] | null = null;
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i];
    if (input.gradFn !== null || !input.requiresGrad) continue;
    input.grad ??= new Tensor(kernels.allocPersistent(input.size), input.shape);
    const grad = input.grad;
    if (!grad.isContiguous() || !sameShape(grad.shape, input.shape)) continue;
    sinks ??= new Array<Tensor | null>(inputs.length).fill(null);
    sinks[i] = grad;
  }
  return sinks ?? NO_SINKS;
}

const NO_SINKS: GradSinks = [];

/** Adds `g` into `leaf.grad`, which is always a contiguous tensor owned by the leaf. */
function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  const grad = leaf.grad;
  if (grad !== null && grad.isContiguous() && sameShape(grad.shape, leaf.shape)) {
    const source = g.isContiguous() ? g : contiguous(g);
    kernels.addInto(grad.data, grad.offset, source.data, source.offset, grad.size);
    return;
  }
  if (grad !== null) {
    leaf.grad = contiguous(add(grad, g));
    return;
  }
  // A private copy: `g` may be shared with other inputs' gradients or be a view of another tensor.
  // It lives as long as its leaf (a parameter, usually), so it takes persistent storage.
  const own = new Tensor(kernels.allocPersistent(g.size), g.shape);
  kernels.copyStrided(g.shape, g.data, g.offset, g.strides, own.data, 0, own.strides);
  leaf.grad = own;
}
