/**
 * Softmax and log-softmax along a dimension, and the losses built on them: cross-entropy fused with
 * log-softmax (one pass, exact gradient p − q) and the negative log-likelihood of log-probabilities.
 *
 * @module
 */

import { expectDType } from "../dtype.ts";
import { kernels } from "../kernels/mod.ts";
import { formatShape, normalizeDim, sizeOf } from "../shape.ts";
import { isGradEnabled } from "../tape.ts";
import { Tensor } from "../tensor.ts";
import { mul, sub } from "./arith.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { sum } from "./reduce.ts";
import { exp } from "./unary.ts";
import { dense, empty } from "./util.ts";

/** How per-sample losses are combined. */
export type Reduction = "mean" | "sum";

interface AxisAttrs {
  dim: number;
  outer: number;
  n: number;
  inner: number;
}

function axisAttrs(x: Tensor, dim: number, op: string): AxisAttrs {
  expectDType(op, [x], ["float32"]);
  const d = normalizeDim(dim, x.ndim, op);
  return {
    dim: d,
    outer: sizeOf(x.shape.slice(0, d)),
    n: x.shape[d],
    inner: sizeOf(x.shape.slice(d + 1)),
  };
}

/**
 * The gradients of softmax and log-softmax from the output y, in differentiable ops (used under
 * `createGraph`; the `softmaxAxisBackward` kernel computes the same in one pass otherwise).
 */
function softmaxDerivative(g: Tensor, y: Tensor, dim: number, log: boolean): Tensor {
  return log ? sub(g, mul(exp(y), sum(g, dim, true))) : mul(y, sub(g, sum(mul(g, y), dim, true)));
}

function softmaxLike(log: boolean): OpDef<[Tensor], AxisAttrs, null> {
  return defineOp<[Tensor], AxisAttrs, null>({
    name: log ? "logSoftmax" : "softmax",
    forward([x], { outer, n, inner }) {
      const input = dense(x);
      const out = empty(x.shape);
      kernels.softmaxAxis(input.data.subarray(input.offset), outer, n, inner, out.data, log);
      return { out, saved: null };
    },
    backward(g, _saved, _inputs, { dim, outer, n, inner }, out) {
      if (isGradEnabled()) return [softmaxDerivative(g, out, dim, log)];
      const gd = dense(g);
      const gx = empty(g.shape);
      kernels.softmaxAxisBackward(
        gd.data.subarray(gd.offset),
        out.data,
        outer,
        n,
        inner,
        gx.data,
        log,
      );
      return [gx];
    },
  });
}

/** Softmax along an axis: e^x / Σ e^x, with the maximum subtracted first. */
export const softmaxOp: OpDef<[Tensor], AxisAttrs, null> = softmaxLike(false);
/** Log-softmax along an axis: x − log Σ e^x, computed stably. */
export const logSoftmaxOp: OpDef<[Tensor], AxisAttrs, null> = softmaxLike(true);

/** Softmax of `x` along `dim` (default last). */
export function softmax(x: Tensor, dim = -1): Tensor {
  return applyOp(softmaxOp, [x], axisAttrs(x, dim, "softmax"));
}

/** Log-softmax of `x` along `dim` (default last). */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  return applyOp(logSoftmaxOp, [x], axisAttrs(x, dim, "logSoftmax"));
}

interface LossAttrs {
  /**
   * One label per row; a negative label marks an ignored row. On a device, the int32 device
   * tensor of labels as given (typed as the host array: only the device op reads it).
   */
  labels: Int32Array;
  smoothing: number;
  reduction: Reduction;
  /** The number of rows that are not ignored (what "mean" divides by); −1 for device labels. */
  counted: number;
  /** Device labels: the label of ignored rows. */
  ignoreIndex?: number;
}

/** Integer class labels: an int32 tensor or an Int32Array. */
export type Labels = Tensor<"int32"> | Int32Array;

/**
 * Checks [rows, classes] scores against integer labels and returns them as the kernels take them
 * (rows labelled `ignoreIndex` become −1); `op` names the caller.
 */
function kernelLabels(scores: Tensor, labels: Labels, ignoreIndex: number, op: string): Int32Array {
  expectDType(op, [scores], ["float32"]);
  if (scores.ndim !== 2) {
    throw new RangeError(
      `${op}: expected scores of shape [N, C], got ${formatShape(scores.shape)}`,
    );
  }
  let values: Int32Array;
  if (labels instanceof Int32Array) values = labels;
  else {
    expectDType(`${op} labels`, [labels], ["int32"]);
    if (labels.ndim !== 1) {
      throw new RangeError(`${op}: expected labels of shape [N], got ${formatShape(labels.shape)}`);
    }
    values = labels.values();
  }
  const [rows, classes] = scores.shape;
  if (values.length !== rows) {
    throw new RangeError(
      `${op}: ${values.length} labels for scores of shape ${formatShape(scores.shape)}`,
    );
  }
  let out = values;
  for (let i = 0; i < rows; i++) {
    const label = values[i];
    if (label === ignoreIndex) {
      if (out === values) out = Int32Array.from(values);
      out[i] = -1;
    } else if (label < 0 || label >= classes) {
      throw new RangeError(`${op}: label ${label} at position ${i} is outside 0..${classes - 1}`);
    }
  }
  return out;
}

/** 1 / (the rows counted) for "mean", 1 for "sum". */
function lossScale({ reduction, counted }: LossAttrs): number {
  return reduction === "mean" ? 1 / Math.max(counted, 1) : 1;
}

/** The target distribution q of each counted row, (1 − ε)·onehot + ε/C, times the loss scale. */
function targets(shape: readonly number[], attrs: LossAttrs): Tensor {
  const [rows, classes] = shape;
  const q = empty(shape);
  const scale = lossScale(attrs);
  for (let r = 0; r < rows; r++) {
    const label = attrs.labels[r];
    if (label < 0) continue;
    q.data.fill((scale * attrs.smoothing) / classes, r * classes, (r + 1) * classes);
    q.data[r * classes + label] += scale * (1 - attrs.smoothing);
  }
  return q;
}

/**
 * Softmax cross-entropy fused with log-softmax: saves the probabilities, gradient (p − q)/N. Its
 * composite, −Σ q·logSoftmax(x), is what second derivatives differentiate.
 */
export const crossEntropyOp: OpDef<[Tensor], LossAttrs, Float32Array> = defineOp<
  [Tensor],
  LossAttrs,
  Float32Array
>({
  name: "crossEntropy",
  forward([logits], attrs) {
    const [rows, classes] = logits.shape;
    const x = dense(logits);
    const probs = new Float32Array(rows * classes);
    const total = kernels.crossEntropyForward(
      x.data.subarray(x.offset),
      attrs.labels,
      rows,
      classes,
      attrs.smoothing,
      probs,
    );
    return { out: new Tensor(new Float32Array([total * lossScale(attrs)]), []), saved: probs };
  },
  backward(g, probs, [logits], attrs) {
    const [rows, classes] = logits.shape;
    const gx = empty(logits.shape);
    const scale = g.item() * lossScale(attrs);
    kernels.crossEntropyBackward(
      probs,
      attrs.labels,
      rows,
      classes,
      attrs.smoothing,
      scale,
      gx.data,
    );
    return [gx];
  },
  composite([logits], attrs) {
    return sum(mul(logSoftmax(logits, 1), targets(logits.shape, attrs))).neg();
  },
});

/**
 * Negative log-likelihood of log-probabilities [N, C]: −Σ logp[i, y_i] (mean or sum). Its gradient
 * is −q·g, linear in the output gradient and so differentiable again as it is.
 */
export const nllLossOp: OpDef<[Tensor], LossAttrs, null> = defineOp<[Tensor], LossAttrs, null>({
  name: "nllLoss",
  forward([logp], attrs) {
    const rows = logp.shape[0];
    let total = 0;
    for (let r = 0; r < rows; r++) {
      const label = attrs.labels[r];
      if (label >= 0) {
        total -= logp.data[logp.offset + r * logp.strides[0] + label * logp.strides[1]];
      }
    }
    return { out: new Tensor(new Float32Array([total * lossScale(attrs)]), []), saved: null };
  },
  backward(g, _saved, [logp], attrs) {
    return [mul(g, targets(logp.shape, attrs)).neg()];
  },
});

/** Options of the classification losses. */
export interface ClassificationLossOptions {
  /** "mean" (default) over the rows that are not ignored, or "sum". */
  reduction?: Reduction;
  /** Label smoothing ε in [0, 1): the target becomes (1 − ε)·onehot + ε/C (crossEntropy only). */
  labelSmoothing?: number;
  /** Rows with this label add nothing to the loss or its gradient (default −100, as PyTorch). */
  ignoreIndex?: number;
}

function lossAttrs(
  scores: Tensor,
  labels: Labels,
  options: ClassificationLossOptions,
  smoothing: number,
  op: string,
): LossAttrs {
  if (scores.device !== "cpu" && !(labels instanceof Int32Array)) {
    // Device labels stay there: the device op ignores rows by `ignoreIndex` and counts the
    // others itself. Checking them here would mean a read, i.e. a wait in every step (a label
    // out of range gives a NaN loss on the device instead of an error).
    expectDType(`${op} labels`, [labels], ["int32"]);
    if (scores.ndim !== 2 || labels.ndim !== 1 || labels.shape[0] !== scores.shape[0]) {
      throw new RangeError(
        `${op}: expected scores [N, C] and labels [N], got ${formatShape(scores.shape)} and ${
          formatShape(labels.shape)
        }`,
      );
    }
    const device = labels.device === "cpu" ? labels.to(scores.device) : labels;
    return {
      labels: device as unknown as Int32Array,
      ignoreIndex: options.ignoreIndex ?? -100,
      smoothing: options.labelSmoothing ?? 0,
      reduction: options.reduction ?? "mean",
      counted: -1,
    };
  }
  const values = kernelLabels(scores, labels, options.ignoreIndex ?? -100, op);
  let counted = 0;
  for (const label of values) if (label >= 0) counted++;
  return { labels: values, smoothing, reduction: options.reduction ?? "mean", counted };
}

/**
 * Cross-entropy between logits [N, C] and integer class labels (an int32 tensor or an
 * Int32Array), fused with log-softmax: stable for any logits, one pass forward, exact gradient
 * (softmax − target)/N.
 */
export function crossEntropy(
  logits: Tensor,
  labels: Labels,
  options: ClassificationLossOptions = {},
): Tensor {
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing < 1)) {
    throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1), got ${smoothing}`);
  }
  return applyOp(
    crossEntropyOp,
    [logits],
    lossAttrs(logits, labels, options, smoothing, "crossEntropy"),
  );
}

/** Negative log-likelihood of log-probabilities [N, C] (e.g. from logSoftmax) at the labels. */
export function nllLoss(
  logProbs: Tensor,
  labels: Labels,
  options: ClassificationLossOptions = {},
): Tensor {
  return applyOp(nllLossOp, [logProbs], lossAttrs(logProbs, labels, options, 0, "nllLoss"));
}
