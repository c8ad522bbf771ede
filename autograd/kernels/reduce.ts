/**
 * Reduction kernels over contiguous data viewed as [outer, n, inner] (the reduced axis in the
 * middle): sum, max, softmax / log-softmax and the fused softmax cross-entropy.
 *
 * Sums accumulate in float64 so that a mean over 60,000 values keeps its float32 precision.
 *
 * @module
 */

import type {
  ArgReduceKernel,
  AxisReduceKernel,
  CrossEntropyBackwardKernel,
  CrossEntropyForwardKernel,
  SoftmaxBackwardKernel,
  SoftmaxKernel,
} from "./types.ts";

/** out[o, i] = Σ_k x[o, k, i] over contiguous [outer, n, inner] data. */
export const sumAxis: AxisReduceKernel = (x, xo, outer, n, inner, out, oo) => {
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      let acc = 0;
      const base = xo + o * n;
      for (let k = 0; k < n; k++) acc += x[base + k];
      out[oo + o] = acc;
    }
    return;
  }
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    for (let k = 0; k < n; k++) {
      const row = xo + (o * n + k) * inner;
      for (let i = 0; i < inner; i++) acc[i] += x[row + i];
    }
    const dst = oo + o * inner;
    for (let i = 0; i < inner; i++) out[dst + i] = acc[i];
  }
};

/** out[o, i] = max_k x[o, k, i] over contiguous [outer, n, inner] data (NaN wins, −∞ when n = 0). */
export const maxAxis: AxisReduceKernel = (x, xo, outer, n, inner, out, oo) => {
  for (let o = 0; o < outer; o++) {
    const dst = oo + o * inner;
    out.fill(-Infinity, dst, dst + inner);
    for (let k = 0; k < n; k++) {
      const row = xo + (o * n + k) * inner;
      for (let i = 0; i < inner; i++) {
        const v = x[row + i];
        const best = out[dst + i];
        // A NaN, once taken, stays (best !== best): NaN wins, as in PyTorch's amax.
        if (!(v <= best) && best === best) out[dst + i] = v;
      }
    }
  }
};

/** out[o, i] = the first k where x[o, k, i] is largest, over contiguous [outer, n, inner] data. */
export const argmaxAxis: ArgReduceKernel = (x, xo, outer, n, inner, out, oo) => {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = xo + o * n * inner + i;
      let best = -Infinity;
      let bestK = 0;
      for (let k = 0; k < n; k++) {
        const v = x[base + k * inner];
        if (v > best || (v !== v && best === best)) {
          best = v;
          bestK = k;
        }
      }
      out[oo + o * inner + i] = bestK;
    }
  }
};

/**
 * Softmax (or log-softmax when `log`) along the middle axis of contiguous [outer, n, inner] data.
 * The maximum is subtracted first, so large logits cannot overflow exp.
 */
export const softmaxAxis: SoftmaxKernel = (x, outer, n, inner, out, log) => {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let max = -Infinity;
      for (let k = 0; k < n; k++) {
        const v = x[base + k * inner];
        if (v > max) max = v;
      }
      let total = 0;
      if (log) {
        for (let k = 0; k < n; k++) total += Math.exp(x[base + k * inner] - max);
        const logTotal = Math.log(total) + max;
        for (let k = 0; k < n; k++) out[base + k * inner] = x[base + k * inner] - logTotal;
      } else {
        // One exp per element: keep the exponentials in `out`, then scale them.
        for (let k = 0; k < n; k++) {
          const e = Math.exp(x[base + k * inner] - max);
          out[base + k * inner] = e;
          total += e;
        }
        const inv = 1 / total;
        for (let k = 0; k < n; k++) out[base + k * inner] *= inv;
      }
    }
  }
};

/**
 * Gradient of softmax / log-softmax from its output y: softmax gx = y·(gy − Σ gy·y);
 * log-softmax gx = gy − exp(y)·Σ gy.
 */
export const softmaxAxisBackward: SoftmaxBackwardKernel = (gy, y, outer, n, inner, gx, log) => {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let dot = 0;
      if (log) { for (let k = 0; k < n; k++) dot += gy[base + k * inner]; }
      else for (let k = 0; k < n; k++) dot += gy[base + k * inner] * y[base + k * inner];
      if (log) {
        for (let k = 0; k < n; k++) {
          const j = base + k * inner;
          gx[j] = gy[j] - Math.exp(y[j]) * dot;
        }
      } else {
        for (let k = 0; k < n; k++) {
          const j = base + k * inner;
          gx[j] = y[j] * (gy[j] - dot);
        }
      }
    }
  }
};

/**
 * Softmax cross-entropy of logits [rows, classes] against integer labels, with optional label
 * smoothing ε (target = (1 − ε)·onehot + ε/classes). Writes the softmax probabilities to `probs`
 * (kept for the backward pass) and returns the SUM of the per-row losses. A row whose label is
 * negative is ignored: it adds nothing to the loss and gets a zero gradient.
 */
export const crossEntropyForward: CrossEntropyForwardKernel = (
  logits,
  labels,
  rows,
  classes,
  smoothing,
  probs,
) => {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    if (label < 0) continue;
    const base = r * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) if (logits[base + c] > max) max = logits[base + c];
    let sumExp = 0;
    for (let c = 0; c < classes; c++) sumExp += Math.exp(logits[base + c] - max);
    const logZ = Math.log(sumExp) + max;
    const inv = 1 / sumExp;
    let meanLogit = 0;
    for (let c = 0; c < classes; c++) {
      probs[base + c] = Math.exp(logits[base + c] - max) * inv;
      meanLogit += logits[base + c];
    }
    meanLogit /= classes;
    // −Σ q·log p with log p = logit − logZ.
    total += (1 - smoothing) * (logZ - logits[base + label]) + smoothing * (logZ - meanLogit);
  }
  return total;
};

/** Gradient of {@linkcode crossEntropyForward} times `scale`: gx = scale·(p − q). */
export const crossEntropyBackward: CrossEntropyBackwardKernel = (
  probs,
  labels,
  rows,
  classes,
  smoothing,
  scale,
  gx,
) => {
  const uniform = smoothing / classes;
  for (let r = 0; r < rows; r++) {
    const base = r * classes;
    if (labels[r] < 0) {
      gx.fill(0, base, base + classes);
      continue;
    }
    for (let c = 0; c < classes; c++) gx[base + c] = scale * (probs[base + c] - uniform);
    gx[base + labels[r]] -= scale * (1 - smoothing);
  }
};
