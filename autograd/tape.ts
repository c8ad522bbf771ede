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
 * With `createGraph`, the backward rules run with recording on (they are written in differentiable
 * ops), so the gradients are themselves differentiable: {@linkcode gradients} and the functional
 * `grad` / `valueAndGrad` build on that.
 *
 * @module
 */

import { kernels } from "./kernels/mod.ts";
import { add, clone, contiguous } from "./ops/functions.ts";
import { formatShape, sameShape } from "./shape.ts";
import { type AnyTensor, Tensor } from "./tensor.ts";

/** One recorded operation. */
export interface TapeEntry {
  /** Position in execution order: later ops have larger numbers. */
  readonly seq: number;
  /** Name of the op that produced the output (as in the op table). */
  readonly op: string;
  /** The op's tensor inputs, or an empty list once the entry is freed. */
  inputs: readonly AnyTensor[];
  /**
   * Maps the gradient of the output to one gradient per input (null where none flows, or where
   * the rule added it into `into[i]` itself), or null once the entry has been used by a backward
   * pass and freed.
   */
  backward: ((gradOutput: Tensor, into: GradSinks) => readonly (Tensor | null)[]) | null;
  /** The op in differentiable ops, for a fused op (what `createGraph` differentiates instead). */
  readonly composite: ((inputs: readonly AnyTensor[]) => Tensor) | null;
  /** Whether the backward rule calls kernels and no graph of it can be built. */
  readonly onceDifferentiable: boolean;
}

/**
 * Gradient buffers a backward rule may accumulate into directly, one slot per input: `into[i]`,
 * when not null, is the `.grad` of input i, which is a leaf (given a zeroed gradient first if it
 * had none; a gradient the user replaced by a strided view is not offered). A rule that adds input
 * i's gradient into it (a GEMM with beta = 1, say) returns null for that input; returning a tensor
 * instead is always correct. This saves a temporary and a pass over it for every parameter on
 * every step. No sinks are offered under `createGraph`.
 */
export type GradSinks = readonly (Tensor | null)[];

/** Options of `backward()`. */
export interface BackwardOptions {
  /**
   * Keep the recorded graph so that `backward()` can run through it again (default: the value of
   * `createGraph`).
   */
  retainGraph?: boolean;
  /**
   * Record the backward pass itself, so the gradients are differentiable tensors (for
   * second derivatives, Hessian-vector products, gradient penalties). Default false.
   */
  createGraph?: boolean;
}

/** Options of {@linkcode gradients}. */
export interface GradientsOptions extends BackwardOptions {
  /** d(objective)/d(output); may be omitted for a one-element output (then 1). */
  gradOutput?: Tensor;
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
  return withGradMode(false, fn);
}

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const previous = setGradEnabled(enabled);
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/** What {@linkcode record} needs of an op definition. */
interface RecordedOp<A> {
  readonly name: string;
  composite?(inputs: never, attrs: A): Tensor;
  readonly onceDifferentiable?: true;
}

/** Records that `output` was computed from `inputs` by `op`, with `rule` as its backward rule. */
export function record<A>(
  op: RecordedOp<A>,
  inputs: readonly AnyTensor[],
  output: Tensor,
  rule: (gradOutput: Tensor, into: GradSinks) => readonly (Tensor | null)[],
  attrs: A,
): void {
  const composite = op.composite;
  output.requiresGrad = true;
  output.gradFn = {
    seq: nextSeq++,
    op: op.name,
    inputs,
    backward: rule,
    composite: composite === undefined
      ? null
      : (ins) => (composite as (i: readonly AnyTensor[], a: A) => Tensor)(ins, attrs),
    onceDifferentiable: op.onceDifferentiable === true,
  };
}

/** Whether an op with these inputs should be recorded now. */
export function shouldRecord(inputs: readonly AnyTensor[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t.requiresGrad) return true;
  return false;
}

/** The gradient to start from: `gradient`, or 1 for a one-element root. */
function seedOf(root: Tensor, gradient: Tensor | undefined, caller: string): Tensor {
  if (!root.requiresGrad) {
    throw new Error(
      `${caller}: this tensor does not require grad (no input of the computation had ` +
        "requiresGrad, or it was computed under noGrad())",
    );
  }
  if (gradient === undefined) {
    if (root.size !== 1) {
      throw new Error(
        `${caller}: the tensor has shape ${formatShape(root.shape)}; pass the gradient ` +
          "explicitly (without one, only a single-element tensor such as a loss can be differentiated)",
      );
    }
    const one = new Tensor(new Float32Array([1]), root.shape);
    return root.device === "cpu" ? one : one.to(root.device);
  }
  if (!sameShape(gradient.shape, root.shape)) {
    throw new RangeError(
      `${caller}: gradient shape ${formatShape(gradient.shape)} differs from the tensor's ${
        formatShape(root.shape)
      }`,
    );
  }
  return gradient;
}

/**
 * Back-propagates from `root`; see {@linkcode Tensor.backward}.
 *
 * @param root The tensor to differentiate, usually a scalar loss.
 * @param gradient d(objective)/d(root); defaults to 1 for a one-element root.
 * @param options `retainGraph` keeps the graph for another pass; `createGraph` records the pass.
 */
export function backward(root: Tensor, gradient?: Tensor, options: BackwardOptions = {}): void {
  const createGraph = options.createGraph === true;
  const seed = seedOf(root, gradient, "backward()");
  propagate(root, createGraph ? seed : seed.detach(), {
    createGraph,
    retainGraph: options.retainGraph ?? createGraph,
    targets: null,
  });
}

/**
 * The gradients of `output` with respect to `inputs` (any tensors of its graph, leaves or not), as
 * `torch.autograd.grad`: returned instead of stored in `.grad`, one per input (zeros where none
 * flows). Each is the partial derivative: paths through another of the `inputs` are not followed.
 *
 * ```ts
 * import { gradients, tensor } from "@tapegrad/tapegrad";
 *
 * const x = tensor([1, 2, 3], { requiresGrad: true });
 * const [dx] = gradients(x.pow(3).sum(), [x], { createGraph: true });
 * const [ddx] = gradients(dx.sum(), [x]);
 * console.log(ddx.toArray()); // [6, 12, 18]
 * ```
 */
export function gradients(
  output: Tensor,
  inputs: readonly Tensor[],
  options: GradientsOptions = {},
): Tensor[] {
  const createGraph = options.createGraph === true;
  const seed = seedOf(output, options.gradOutput, "gradients()");
  const targets = new Map<AnyTensor, number>();
  inputs.forEach((t, i) => targets.set(t, i));
  const found = propagate(output, createGraph ? seed : seed.detach(), {
    createGraph,
    retainGraph: options.retainGraph ?? createGraph,
    targets,
  });
  return inputs.map((t, i) => found[i] ?? zerosLike(t));
}

interface PropagateOptions {
  createGraph: boolean;
  retainGraph: boolean;
  /** Collect the gradients of these tensors (and stop at them) instead of filling leaves' `.grad`. */
  targets: Map<AnyTensor, number> | null;
}

function freedError(entry: TapeEntry): Error {
  return new Error(
    `backward(): the graph through '${entry.op}' (op #${entry.seq}) was already freed by an earlier ` +
      "backward(). Run the forward pass again, or pass { retainGraph: true } to the first backward().",
  );
}

/** Runs the backward pass from `root`; returns the targets' gradients (empty without targets). */
function propagate(root: Tensor, seed: Tensor, options: PropagateOptions): (Tensor | null)[] {
  const { createGraph, retainGraph, targets } = options;
  const found: (Tensor | null)[] = [];
  const rootTarget = targets?.get(root);
  if (rootTarget !== undefined) {
    found[rootTarget] = seed;
    return found;
  }
  withGradMode(createGraph, () => {
    if (root.gradFn === null) {
      if (targets === null) accumulateLeaf(root, seed, createGraph);
      return;
    }
    // Gather the reachable entries (not past a target), then order them like the tape: latest first.
    const rootEntry = root.gradFn;
    const entries: TapeEntry[] = [];
    const seen = new Set<TapeEntry>([rootEntry]);
    const stack = [rootEntry];
    while (stack.length > 0) {
      const entry = stack.pop()!;
      if (entry.backward === null) throw freedError(entry);
      entries.push(entry);
      for (const input of entry.inputs) {
        const fn = input.gradFn;
        if (fn !== null && input.requiresGrad && !seen.has(fn) && !targets?.has(input)) {
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
      const gradInputs = createGraph
        ? differentiableRule(entry, rule, inputs, gradOutput)
        : rule(gradOutput, targets === null ? sinksOf(inputs) : NO_SINKS);
      for (let i = 0; i < inputs.length; i++) {
        const input = inputs[i];
        const g = gradInputs[i];
        if (g === null || g === undefined || !input.requiresGrad) continue;
        if (!sameShape(g.shape, input.shape)) {
          throw new Error(
            `backward of '${entry.op}': gradient for input ${i} has shape ${
              formatShape(g.shape)
            }, but the input has shape ${
              formatShape(input.shape)
            } (a bug in the op's backward rule)`,
          );
        }
        const target = targets?.get(input);
        if (target !== undefined) {
          const before = found[target];
          found[target] = before == null ? g : add(before, g);
        } else if (input.gradFn !== null) {
          const before = pending.get(input.gradFn);
          pending.set(input.gradFn, before === undefined ? g : add(before, g));
        } else if (targets === null) {
          accumulateLeaf(input as Tensor, g, createGraph);
        }
      }
    }
  });
  return found;
}

/**
 * An entry's input gradients as a graph of their own: the rule itself (written in differentiable
 * ops), or for a fused op the gradient of its composite definition.
 */
function differentiableRule(
  entry: TapeEntry,
  rule: NonNullable<TapeEntry["backward"]>,
  inputs: readonly AnyTensor[],
  gradOutput: Tensor,
): readonly (Tensor | null)[] {
  if (entry.composite !== null) {
    const differentiable = inputs.filter((t) => t.requiresGrad) as Tensor[];
    const replayed = entry.composite(inputs);
    const grads = gradients(replayed, differentiable, { gradOutput, createGraph: true });
    return inputs.map((t) => {
      const k = differentiable.indexOf(t as Tensor);
      return k < 0 ? null : grads[k];
    });
  }
  if (entry.onceDifferentiable) {
    // First-order values are right; only differentiating them again is not possible. Each
    // gradient is handed on behind a recorded barrier that says so by name if a later backward
    // pass reaches it, so a first-order use under createGraph (grad of a conv net) still works.
    const grads = withGradMode(false, () => rule(gradOutput, NO_SINKS));
    const sources = [gradOutput, ...inputs].filter((t) => t.requiresGrad);
    return grads.map((g) => (g === null || sources.length === 0 ? g : barrier(g, sources, entry)));
  }
  return rule(gradOutput, NO_SINKS);
}

/** `g` behind an op whose backward refuses, naming the fused op `entry` that produced `g`. */
function barrier(g: Tensor, sources: readonly AnyTensor[], entry: TapeEntry): Tensor {
  const out = g.detach();
  record({ name: `${entry.op} gradient` }, sources, out, () => {
    throw new Error(
      `backward(): the gradient of '${entry.op}' was computed by a fused kernel and cannot be ` +
        "differentiated again (the op has no composite definition); build the model from " +
        "differentiable ops for higher-order gradients",
    );
  }, null);
  return out;
}

/**
 * The {@linkcode GradSinks} of an entry's inputs: the leaves' gradients, which take `+=`. A leaf
 * that has no gradient yet gets a zeroed one here, so the first backward pass sums in the same
 * order as every later one (a fresh product and `0 + product` can differ in the sign of a zero).
 */
function sinksOf(inputs: readonly AnyTensor[]): GradSinks {
  let sinks: (Tensor | null)[] | null = null;
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i];
    // On a device, rules return their gradients and the tape adds them (see accumulateLeaf).
    if (input.gradFn !== null || !input.requiresGrad || input.device !== "cpu") continue;
    input.grad ??= new Tensor(kernels.allocPersistent(input.size), input.shape);
    const grad = input.grad;
    if (!grad.isContiguous() || !sameShape(grad.shape, input.shape)) continue;
    sinks ??= new Array<Tensor | null>(inputs.length).fill(null);
    sinks[i] = grad;
  }
  return sinks ?? NO_SINKS;
}

const NO_SINKS: GradSinks = [];

/**
 * Adds `g` into `leaf.grad`, which is always a contiguous tensor owned by the leaf; under
 * `createGraph` the sum is a recorded op instead, so the gradient stays differentiable.
 */
function accumulateLeaf(leaf: Tensor, g: Tensor, createGraph: boolean): void {
  const grad = leaf.grad;
  if (createGraph) {
    leaf.grad = grad === null ? g : add(grad, g);
    return;
  }
  if (leaf.device !== "cpu") {
    // The device's own add and copy, recorded nowhere (grad mode is off here).
    leaf.grad = grad === null ? clone(g) : add(grad, g);
    return;
  }
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

/** Zeros of `t`'s shape on `t`'s device (the gradient of an input the output does not reach). */
function zerosLike(t: AnyTensor): Tensor {
  const zeros = new Tensor(new Float32Array(t.size), t.shape);
  return t.device === "cpu" ? zeros : zeros.to(t.device);
}
