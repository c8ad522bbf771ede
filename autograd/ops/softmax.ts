/**
 * Softmax and log-softmax along a dimension, and the losses built on them: cross-entropy fused with
 * log-softmax (one pass, exact gradient p − q) and the negative log-likelihood of log-probabilities.
 *
 * @module
 */

import { kernels } from "../kernels/mod.ts";
import { formatShape, normalizeDim, sizeOf } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { dense, empty } from "./util.ts";

/** How per-sample losses are combined. */
export type Reduction = "mean" | "sum";

interface AxisAttrs {
  outer: number;
  n: number;
  inner: number;
}

function axisAttrs(x: Tensor, dim: number, op: string): AxisAttrs {
  const d = normalizeDim(dim, x.ndim, op);
  return { outer: sizeOf(x.shape.slice(0, d)), n: x.shape[d], inner: sizeOf(x.shape.slice(d + 1)) };
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
    backward(g, _saved, _inputs, { outer, n, inner }, out) {
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
  labels: Int32Array;
  smoothing: number;
  reduction: Reduction;
}

/** Checks [rows, classes] scores against integer labels; `op` names the caller. */
function checkLabels(scores: Tensor, labels: Int32Array, op: string): void {
  if (scores.ndim !== 2) {
    throw new RangeError(
      `${op}: expected scores of shape [N, C], got ${formatShape(scores.shape)}`,
    );
  }
  const [rows, classes] = scores.shape;
  if (labels.length !== rows) {
    throw new RangeError(
      `${op}: ${labels.length} labels for scores of shape ${formatShape(scores.shape)}`,
    );
  }
  for (let i = 0; i < rows; i++) {
    const label = labels[i];
    if (label < 0 || label >= classes) {
      throw new RangeError(`${op}: label ${label} at position ${i} is outside 0..${classes - 1}`);
    }
  }
}

/** Softmax cross-entropy fused with log-softmax: saves the probabilities, gradient (p − q)/N. */
export const crossEntropyOp: OpDef<[Tensor], LossAttrs, Float32Array> = defineOp<
  [Tensor],
  LossAttrs,
  Float32Array
>({
  name: "crossEntropy",
  forward([logits], { labels, smoothing, reduction }) {
    const [rows, classes] = logits.shape;
    const x = dense(logits);
    const probs = new Float32Array(rows * classes);
    const total = kernels.crossEntropyForward(
      x.data.subarray(x.offset),
      labels,
      rows,
      classes,
      smoothing,
      probs,
    );
    const value = reduction === "mean" ? total / Math.max(rows, 1) : total;
    return { out: new Tensor(new Float32Array([value]), []), saved: probs };
  },
  backward(g, probs, [logits], { labels, smoothing, reduction }) {
    const [rows, classes] = logits.shape;
    const gx = empty(logits.shape);
    const scale = g.item() / (reduction === "mean" ? Math.max(rows, 1) : 1);
    kernels.crossEntropyBackward(probs, labels, rows, classes, smoothing, scale, gx.data);
    return [gx];
  },
});

/** Negative log-likelihood of log-probabilities [N, C]: −Σ logp[i, y_i] (mean or sum). */
export const nllLossOp: OpDef<[Tensor], LossAttrs, null> = defineOp<[Tensor], LossAttrs, null>({
  name: "nllLoss",
  forward([logp], { labels, reduction }) {
    const rows = logp.shape[0];
    let total = 0;
    for (let r = 0; r < rows; r++) {
      total -= logp.data[logp.offset + r * logp.strides[0] + labels[r] * logp.strides[1]];
    }
    const value = reduction === "mean" ? total / Math.max(rows, 1) : total;
    return { out: new Tensor(new Float32Array([value]), []), saved: null };
  },
  backward(g, _saved, [logp], { labels, reduction }) {
    const [rows, classes] = logp.shape;
    const gx = empty(logp.shape);
    const scale = g.item() / (reduction === "mean" ? Math.max(rows, 1) : 1);
    for (let r = 0; r < rows; r++) gx.data[r * classes + labels[r]] = -scale;
    return [gx];
  },
});

/** Options of the classification losses. */
export interface ClassificationLossOptions {
  /** "mean" (default) over the batch, or "sum". */
  reduction?: Reduction;
  /** Label smoothing ε in [0, 1): the target becomes (1 − ε)·onehot + ε/C (crossEntropy only). */
  labelSmoothing?: number;
}

/**
 * Cross-entropy between logits [N, C] and integer class labels, fused with log-softmax: stable for
 * any logits, one pass forward, exact gradient (softmax − target)/N.
 */
export function crossEntropy(
  logits: Tensor,
  labels: Int32Array,
  options: ClassificationLossOptions = {},
): Tensor {
  checkLabels(logits, labels, "crossEntropy");
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing < 1)) {
    throw new RangeError(`crossEntropy: labelSmoothing must be in [0, 1), got ${smoothing}`);
  }
  return applyOp(crossEntropyOp, [logits], {
    labels,
    smoothing,
    reduction: options.reduction ?? "mean",
  });
}

/** Negative log-likelihood of log-probabilities [N, C] (e.g. from logSoftmax) at the labels. */
export function nllLoss(
  logProbs: Tensor,
  labels: Int32Array,
  options: ClassificationLossOptions = {},
): Tensor {
  checkLabels(logProbs, labels, "nllLoss");
  return applyOp(nllLossOp, [logProbs], {
    labels,
    smoothing: 0,
    reduction: options.reduction ?? "mean",
  });
}
