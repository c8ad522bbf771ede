/**
 * Normalisation: `layerNorm` (a fused primitive: one pass forward, the standard closed-form
 * backward, checked against its composite), and the composites `batchNorm` and `groupNorm`.
 *
 * @module
 */

import { expectDType } from "../dtype.ts";
import { formatShape, sizeOf } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { add, mul, sub } from "./arith.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { mean } from "./reduce.ts";
import { pow } from "./unary.ts";
import { empty, flatData } from "./util.ts";
import { reshape } from "./view.ts";

/** Attributes of {@linkcode layerNormOp}: rows × n elements, normalised per row. */
interface LayerNormAttrs {
  /** Number of rows (the product of the leading dims). */
  rows: number;
  /** Elements per row (the product of the normalised dims). */
  n: number;
  eps: number;
  /** Whether inputs[1] is a weight. */
  weight: boolean;
  /** Whether the next input is a bias. */
  bias: boolean;
}

/** What the forward pass keeps: each row's mean and 1/√(var + ε). */
interface LayerNormSaved {
  mean: Float32Array;
  rstd: Float32Array;
}

/** (x − mean)·rstd over the last dims given as `dims` (negative, counting from the end). */
function normalized(x: Tensor, dims: number[], eps: number): Tensor {
  const centered = sub(x, mean(x, dims, true));
  const variance = mean(mul(centered, centered), dims, true);
  return mul(centered, pow(add(variance, eps), -0.5));
}

/** Splits a layerNorm input list [x, weight?, bias?] by the attributes. */
function affineOf(inputs: readonly Tensor[], attrs: LayerNormAttrs) {
  return {
    weight: attrs.weight ? inputs[1] : undefined,
    bias: attrs.bias ? inputs[attrs.weight ? 2 : 1] : undefined,
  };
}

/**
 * Layer normalisation over the last dims of x, fused: the forward pass computes each row's mean and
 * 1/√(var + ε) and writes (x − mean)·rstd·w + b in one sweep; the backward pass is the closed form
 * dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = g·w. Its composite (mean, sub, mul, pow) is what
 * `createGraph` differentiates and what the tests compare it with.
 */
export const layerNormOp: OpDef<Tensor[], LayerNormAttrs, LayerNormSaved> = defineOp<
  Tensor[],
  LayerNormAttrs,
  LayerNormSaved
>({
  name: "layerNorm",
  forward(inputs, attrs) {
    const { rows, n, eps } = attrs;
    const x = flatData(inputs[0]);
    const affine = affineOf(inputs, attrs);
    const w = affine.weight === undefined ? null : flatData(affine.weight);
    const b = affine.bias === undefined ? null : flatData(affine.bias);
    const out = empty(inputs[0].shape);
    const y = out.data;
    const meanOf = new Float32Array(rows);
    const rstdOf = new Float32Array(rows);
    for (let r = 0, base = 0; r < rows; r++, base += n) {
      let s = 0;
      for (let i = 0; i < n; i++) s += x[base + i];
      const m = s / n;
      let q = 0;
      for (let i = 0; i < n; i++) {
        const d = x[base + i] - m;
        q += d * d;
      }
      const rstd = 1 / Math.sqrt(q / n + eps);
      meanOf[r] = m;
      rstdOf[r] = rstd;
      for (let i = 0; i < n; i++) {
        let v = (x[base + i] - m) * rstd;
        if (w !== null) v *= w[i];
        if (b !== null) v += b[i];
        y[base + i] = v;
      }
    }
    return { out, saved: { mean: meanOf, rstd: rstdOf } };
  },
  backward(gradOut, saved, inputs, attrs) {
    const { rows, n } = attrs;
    const affine = affineOf(inputs, attrs);
    const x = flatData(inputs[0]);
    const g = flatData(gradOut);
    const w = affine.weight === undefined ? null : flatData(affine.weight);
    const gx = inputs[0].requiresGrad ? empty(inputs[0].shape) : null;
    const gw = affine.weight?.requiresGrad ? new Float64Array(n) : null;
    const gb = affine.bias?.requiresGrad ? new Float64Array(n) : null;
    for (let r = 0, base = 0; r < rows; r++, base += n) {
      const m = saved.mean[r];
      const rstd = saved.rstd[r];
      let sumG = 0;
      let sumGX = 0;
      for (let i = 0; i < n; i++) {
        const xhat = (x[base + i] - m) * rstd;
        const gi = g[base + i];
        const gh = w === null ? gi : gi * w[i];
        sumG += gh;
        sumGX += gh * xhat;
        if (gw !== null) gw[i] += gi * xhat;
        if (gb !== null) gb[i] += gi;
      }
      if (gx === null) continue;
      const meanG = sumG / n;
      const meanGX = sumGX / n;
      for (let i = 0; i < n; i++) {
        const xhat = (x[base + i] - m) * rstd;
        const gh = w === null ? g[base + i] : g[base + i] * w[i];
        gx.data[base + i] = rstd * (gh - meanG - xhat * meanGX);
      }
    }
    const toTensor = (v: Float64Array | null, like: Tensor | undefined) =>
      v === null || like === undefined ? null : new Tensor(Float32Array.from(v), like.shape);
    const grads: (Tensor | null)[] = [gx];
    if (attrs.weight) grads.push(toTensor(gw, affine.weight));
    if (attrs.bias) grads.push(toTensor(gb, affine.bias));
    return grads;
  },
  composite(inputs, attrs) {
    const x = inputs[0];
    const { weight, bias } = affineOf(inputs, attrs);
    const rows = reshape(x, [attrs.rows, attrs.n]);
    let y = reshape(normalized(rows, [-1], attrs.eps), x.shape);
    if (weight !== undefined) y = mul(y, weight);
    if (bias !== undefined) y = add(y, bias);
    return y;
  },
});

function checkAffine(op: string, x: Tensor, t: Tensor | undefined, name: string, shape: number[]) {
  if (t === undefined) return;
  expectDType(op, [t], ["float32"]);
  if (t.ndim !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new RangeError(
      `${op}: ${name} ${formatShape(t.shape)} does not match ${formatShape(shape)} for input ${
        formatShape(x.shape)
      }`,
    );
  }
}

/**
 * Layer normalisation (PyTorch's `F.layer_norm`): normalises `x` over its last dims, which must
 * equal `normalizedShape` (a number means one dim), to zero mean and unit (biased) variance, then
 * scales by `weight` and shifts by `bias` (both of `normalizedShape`, optional).
 */
export function layerNorm(
  x: Tensor,
  normalizedShape: number | readonly number[],
  weight?: Tensor,
  bias?: Tensor,
  eps = 1e-5,
): Tensor {
  expectDType("layerNorm", [x], ["float32"]);
  const shape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
  const k = shape.length;
  if (k === 0 || k > x.ndim || shape.some((d, i) => d !== x.shape[x.ndim - k + i])) {
    throw new RangeError(
      `layerNorm: normalizedShape ${formatShape(shape)} is not the end of input shape ${
        formatShape(x.shape)
      }`,
    );
  }
  checkAffine("layerNorm", x, weight, "weight", shape);
  checkAffine("layerNorm", x, bias, "bias", shape);
  const n = sizeOf(shape);
  const inputs = [x];
  if (weight !== undefined) inputs.push(weight);
  if (bias !== undefined) inputs.push(bias);
  return applyOp(layerNormOp, inputs, {
    rows: sizeOf(x.shape) / Math.max(n, 1),
    n,
    eps,
    weight: weight !== undefined,
    bias: bias !== undefined,
  });
}

/** Reshapes a per-channel [C] tensor to [C, 1, …] so it broadcasts over [N, C, *]. */
function perChannel(t: Tensor, ndim: number): Tensor {
  return ndim <= 2 ? t : reshape(t, [t.shape[0], ...new Array<number>(ndim - 2).fill(1)]);
}

/** Checks a per-channel [C] tensor (or its absence) for an op over x [N, C, *]. */
function checkChannels(op: string, x: Tensor, t: Tensor | null | undefined, name: string): void {
  if (t === null || t === undefined) return;
  expectDType(op, [t], ["float32"]);
  if (t.ndim !== 1 || t.shape[0] !== x.shape[1]) {
    throw new RangeError(
      `${op}: ${name} ${formatShape(t.shape)} does not match the ${x.shape[1]} channels of input ${
        formatShape(x.shape)
      } (expected [${x.shape[1]}])`,
    );
  }
}

/** Options of {@linkcode batchNorm}. */
export interface BatchNormOptions {
  /**
   * Normalise with the batch's statistics and update the running ones (true), or normalise with
   * the running statistics (false, the default, as PyTorch's `F.batch_norm`).
   */
  training?: boolean;
  /** Weight of the new batch in the running statistics: r ← (1 − m)·r + m·batch (default 0.1). */
  momentum?: number;
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
}

/** r ← (1 − m)·r + m·v elementwise, in place, for a 1-D running statistic. */
function blendInto(running: Tensor, values: Float32Array, momentum: number): void {
  const step = running.strides[0];
  for (let c = 0; c < values.length; c++) {
    const at = running.offset + c * step;
    running.data[at] = (1 - momentum) * running.data[at] + momentum * values[c];
  }
}

/**
 * Batch normalisation (PyTorch's `F.batch_norm`) of x [N, C] or [N, C, *] per channel. In training
 * it uses the batch's mean and biased variance over every dim but 1 and updates `runningMean` and
 * `runningVar` in place (with the unbiased variance, as PyTorch) when given; in evaluation it uses
 * them. `weight` and `bias` are [C] (optional). A composite: its gradient follows from its ops.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight?: Tensor | null,
  bias?: Tensor | null,
  options: BatchNormOptions = {},
): Tensor {
  expectDType("batchNorm", [x], ["float32"]);
  if (x.ndim < 2) {
    throw new RangeError(
      `batchNorm: expected input [N, C] or [N, C, *], got ${formatShape(x.shape)}`,
    );
  }
  checkChannels("batchNorm", x, runningMean, "runningMean");
  checkChannels("batchNorm", x, runningVar, "runningVar");
  checkChannels("batchNorm", x, weight, "weight");
  checkChannels("batchNorm", x, bias, "bias");
  const training = options.training ?? false;
  const momentum = options.momentum ?? 0.1;
  const eps = options.eps ?? 1e-5;
  let y: Tensor;
  if (training) {
    const dims = [0, ...Array.from({ length: x.ndim - 2 }, (_, i) => i + 2)];
    const count = sizeOf(x.shape) / x.shape[1];
    if (count < 2) {
      throw new RangeError(
        `batchNorm: expected more than 1 value per channel when training, got input ${
          formatShape(x.shape)
        }`,
      );
    }
    const batchMean = mean(x, dims, true);
    const centered = sub(x, batchMean);
    const variance = mean(mul(centered, centered), dims, true);
    y = mul(centered, pow(add(variance, eps), -0.5));
    if (runningMean !== null) blendInto(runningMean, batchMean.toFloat32Array(), momentum);
    if (runningVar !== null) {
      const unbiased = variance.toFloat32Array().map((v) => (v * count) / (count - 1));
      blendInto(runningVar, unbiased, momentum);
    }
  } else {
    if (runningMean === null || runningVar === null) {
      throw new TypeError("batchNorm: runningMean and runningVar are needed when not training");
    }
    const scale = pow(add(perChannel(runningVar, x.ndim), eps), -0.5);
    y = mul(sub(x, perChannel(runningMean, x.ndim)), scale);
  }
  if (weight != null) y = mul(y, perChannel(weight, x.ndim));
  if (bias != null) y = add(y, perChannel(bias, x.ndim));
  return y;
}

/**
 * Group normalisation (PyTorch's `F.group_norm`): the C channels of x [N, C, *] are split into
 * `numGroups` groups, each normalised over its channels and positions (through the fused
 * `layerNorm`), then scaled and shifted per channel by `weight` and `bias` [C] (optional).
 */
export function groupNorm(
  x: Tensor,
  numGroups: number,
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  expectDType("groupNorm", [x], ["float32"]);
  if (x.ndim < 2 || !Number.isInteger(numGroups) || numGroups < 1 || x.shape[1] % numGroups !== 0) {
    throw new RangeError(
      `groupNorm: input ${formatShape(x.shape)} (expected [N, C, *]) cannot be split into ` +
        `${numGroups} groups of channels`,
    );
  }
  checkChannels("groupNorm", x, weight, "weight");
  checkChannels("groupNorm", x, bias, "bias");
  const n = x.shape[0];
  const perGroup = sizeOf(x.shape) / Math.max(n * numGroups, 1);
  const grouped = layerNorm(
    reshape(x, [n, numGroups, perGroup]),
    perGroup,
    undefined,
    undefined,
    eps,
  );
  let y = reshape(grouped, x.shape);
  if (weight != null) y = mul(y, perChannel(weight, x.ndim));
  if (bias != null) y = add(y, perChannel(bias, x.ndim));
  return y;
}
