/**
 * Scaled dot-product attention, softmax(q·kᵀ·scale + mask)·v, as a composite of batched matmuls,
 * the softmax primitive and dropout: every leading dim is folded into one batch dim, so the
 * products are two batched GEMMs whatever the number of heads.
 *
 * @module
 */

import type { Device } from "../device.ts";
import type { DType } from "../dtype.ts";
import { expectDType } from "../dtype.ts";
import type { Rng } from "../rng.ts";
import { formatShape, sameShape, sizeOf } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { add, mul } from "./arith.ts";
import { where } from "./compare.ts";
import { dropout } from "./dropout.ts";
import { matmul } from "./matmul.ts";
import { softmax } from "./softmax.ts";
import { reshape, transpose } from "./view.ts";

/** Options of {@linkcode scaledDotProductAttention}. */
export interface AttentionOptions {
  /**
   * Mask broadcastable to [..., L, S]: a bool tensor (true = may attend, as PyTorch) or a float
   * tensor added to the scores (−∞ blocks).
   */
  mask?: Tensor<"bool"> | Tensor;
  /** Let position i attend only to positions j ≤ i (PyTorch's `is_causal`); not with `mask`. */
  causal?: boolean;
  /** Dropout probability on the attention weights (default 0). */
  dropout?: number;
  /** Generator for the dropout mask (default: the library's seeded default generator). */
  rng?: Rng;
  /** Factor on q·kᵀ (default 1/√E). */
  scale?: number;
}

/** The additive causal masks by "L×S device", shared by every call (they are constants). */
const causalMasks = new Map<string, Tensor>();

/** [L, S] with 0 where j ≤ i and −∞ above the diagonal (top-left aligned, as PyTorch). */
function causalMask(L: number, S: number, device: Device): Tensor {
  const key = `${L}x${S} ${device}`;
  let mask = causalMasks.get(key);
  if (mask === undefined) {
    const data = new Float32Array(L * S);
    for (let i = 0; i < L; i++) data.fill(-Infinity, i * S + Math.min(i + 1, S), (i + 1) * S);
    mask = new Tensor(data, [L, S]).to(device);
    causalMasks.set(key, mask);
  }
  return mask;
}

/** A mask as an additive float tensor: bool masks become 0 (attend) and −∞ (blocked). */
function additive(mask: Tensor<DType>): Tensor {
  expectDType("scaledDotProductAttention mask", [mask], ["bool", "float32"]);
  return mask.dtype === "bool" ? where(mask as Tensor<"bool">, 0, -Infinity) : (mask as Tensor);
}

/** Checks q [..., L, E], k [..., S, E] (and v [..., S, Ev] when given) against each other. */
function checkShapes(op: string, q: Tensor, k: Tensor, v?: Tensor): void {
  expectDType(op, v === undefined ? [q, k] : [q, k, v], ["float32"]);
  const lead = q.shape.slice(0, -2);
  const fits = q.ndim >= 2 && k.ndim === q.ndim && sameShape(k.shape.slice(0, -2), lead) &&
    k.shape[k.ndim - 1] === q.shape[q.ndim - 1] &&
    (v === undefined ||
      (v.ndim === q.ndim && sameShape(v.shape.slice(0, -2), lead) &&
        v.shape[v.ndim - 2] === k.shape[k.ndim - 2]));
  if (!fits) {
    const shapes = `q ${formatShape(q.shape)}, k ${formatShape(k.shape)}` +
      (v === undefined ? "" : ` and v ${formatShape(v.shape)}`);
    throw new RangeError(
      `${op}: ${shapes} do not match (expected q [..., L, E], k [..., S, E]${
        v === undefined ? "" : ", v [..., S, Ev]"
      })`,
    );
  }
}

/** softmax(q·kᵀ·scale + mask) with dropout, as [batch, L, S] with the leading dims folded. */
function weightsFolded(op: string, q: Tensor, k: Tensor, options: AttentionOptions): Tensor {
  if (options.causal === true && options.mask !== undefined) {
    throw new TypeError(`${op}: give either causal or mask, not both`);
  }
  const lead = q.shape.slice(0, -2);
  const [L, E] = q.shape.slice(-2);
  const S = k.shape[k.ndim - 2];
  const batch = sizeOf(lead);
  const scale = options.scale ?? 1 / Math.sqrt(E);
  // Scale the smaller of q [L, E] and the scores [L, S].
  const q3 = reshape(q, [batch, L, E]);
  let scores = matmul(E <= S ? mul(q3, scale) : q3, transpose(reshape(k, [batch, S, E]), 1, 2));
  if (E > S) scores = mul(scores, scale);
  if (options.causal === true) scores = add(scores, causalMask(L, S, scores.device));
  else if (options.mask !== undefined) {
    const masked = add(reshape(scores, [...lead, L, S]), additive(options.mask));
    if (!sameShape(masked.shape, [...lead, L, S])) {
      throw new RangeError(
        `${op}: mask ${formatShape(options.mask.shape)} does not broadcast to the scores ${
          formatShape([...lead, L, S])
        }`,
      );
    }
    scores = reshape(masked, [batch, L, S]);
  }
  const weights = softmax(scores, -1);
  const p = options.dropout ?? 0;
  return p > 0 ? dropout(weights, p, { rng: options.rng }) : weights;
}

/**
 * The attention weights softmax(q·kᵀ·scale + mask), after dropout when `options.dropout` is set,
 * for q [..., L, E] and k [..., S, E]: [..., L, S], each row summing to 1 (before dropout). This is
 * what {@linkcode scaledDotProductAttention} multiplies v by; call it to look at the weights.
 */
export function attentionWeights(q: Tensor, k: Tensor, options: AttentionOptions = {}): Tensor {
  const op = "attentionWeights";
  checkShapes(op, q, k);
  const weights = weightsFolded(op, q, k, options);
  return reshape(weights, [...q.shape.slice(0, -1), k.shape[k.ndim - 2]]);
}

/**
 * Scaled dot-product attention (PyTorch's `F.scaled_dot_product_attention`):
 * softmax(q·kᵀ·scale + mask)·v for q [..., L, E], k [..., S, E] and v [..., S, Ev] with the same
 * leading dims (batch, heads); returns [..., L, Ev]. `causal` blocks j > i; `mask` is a bool mask
 * (true attends) or an additive float mask, broadcastable to [..., L, S]; `dropout` drops
 * attention weights. The leading dims are folded into one, so the work is two batched matmuls and
 * one softmax; the gradient follows from those ops (second derivatives included).
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: AttentionOptions = {},
): Tensor {
  const op = "scaledDotProductAttention";
  checkShapes(op, q, k, v);
  const lead = q.shape.slice(0, -2);
  const L = q.shape[q.ndim - 2];
  const [S, Ev] = v.shape.slice(-2);
  const weights = weightsFolded(op, q, k, options);
  return reshape(matmul(weights, reshape(v, [sizeOf(lead), S, Ev])), [...lead, L, Ev]);
}
