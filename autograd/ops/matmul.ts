/**
 * Matrix products: `matmul` (PyTorch's rules: vectors, matrices, broadcast batches) and the fused
 * `linear` (x·Wᵀ + b, the Linear layer). Transposed views go to the GEMM kernel as a layout flag,
 * never as a copy, which is what makes the backward products (G·Bᵀ, Aᵀ·G) free of transposes.
 *
 * @module
 */

import { expectDType } from "../dtype.ts";
import { kernels, type LinearOperands } from "../kernels/mod.ts";
import { broadcastShapes, formatShape, sizeOf } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { add } from "./arith.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { relu as reluOf } from "./unary.ts";
import { reduceTo } from "./reduce.ts";
import { dense, empty } from "./util.ts";
import { reshape, transpose } from "./view.ts";

/** How one matrix operand is handed to GEMM: storage, offset, layout flag and row stride. */
interface GemmOperand {
  data: Float32Array;
  offset: number;
  trans: boolean;
  ld: number;
}

/**
 * Describes the [rows × cols] matrix at `offset` with strides (s0, s1) for GEMM: row-major or
 * transposed views are used in place; any other layout (expanded, stepped) is copied first.
 */
function operand(
  data: Float32Array,
  offset: number,
  rows: number,
  cols: number,
  s0: number,
  s1: number,
): GemmOperand {
  if ((cols === 1 || s1 === 1) && (rows === 1 || s0 >= cols)) {
    return { data, offset, trans: false, ld: rows === 1 ? cols : s0 };
  }
  if ((rows === 1 || s0 === 1) && (cols === 1 || s1 >= rows)) {
    return { data, offset, trans: true, ld: cols === 1 ? rows : s1 };
  }
  const copy = new Float32Array(rows * cols);
  kernels.copyStrided([rows, cols], data, offset, [s0, s1], copy, 0, [cols, 1]);
  return { data: copy, offset: 0, trans: false, ld: cols };
}

/** C (dense, [m, n] at cOffset) = A·B (beta 0) or += A·B (beta 1) for 2-D views a [m, k], b [k, n]. */
function gemmInto(
  a: Tensor,
  aOffset: number,
  b: Tensor,
  bOffset: number,
  c: Float32Array,
  cOffset: number,
  beta: number,
): void {
  const sa = a.strides.slice(-2);
  const sb = b.strides.slice(-2);
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.ndim - 1];
  const A = operand(a.data, aOffset, m, k, sa[0], sa[1]);
  const B = operand(b.data, bOffset, k, n, sb[0], sb[1]);
  kernels.gemm(
    A.trans,
    B.trans,
    m,
    n,
    k,
    A.data,
    A.offset,
    A.ld,
    B.data,
    B.offset,
    B.ld,
    beta,
    c,
    cOffset,
    n,
  );
}

/**
 * Whether the batch dims and the row dim of `t` (all but the last) merge into one row dim of
 * stride `t.strides[-2]`, so a batch times a shared matrix is one GEMM of batch·m rows.
 */
function rowsMerge(t: Tensor): boolean {
  const nd = t.ndim;
  for (let d = nd - 3; d >= 0; d--) {
    if (t.shape[d] !== 1 && t.strides[d] !== t.strides[d + 1] * t.shape[d + 1]) return false;
  }
  return t.shape[nd - 2] === 1 || t.shape[nd - 1] === 1 || t.strides[nd - 1] === 1;
}

/**
 * The product of two tensors of at least 2 dims, [..., m, k]·[..., k, n], with the batch dims
 * broadcast as in PyTorch, computed without recording. Each matrix goes to the GEMM in place
 * (transposed views as a layout flag); a batch against a shared matrix whose rows merge runs as a
 * single GEMM.
 */
function product(a: Tensor, b: Tensor): Tensor {
  expectDType("matmul", [a, b], ["float32"]);
  const [m, k] = a.shape.slice(-2);
  const [k2, n] = b.shape.slice(-2);
  if (k !== k2) {
    throw new RangeError(
      `matmul: cannot multiply ${formatShape(a.shape)} by ${formatShape(b.shape)} ` +
        `(inner dimensions ${k} and ${k2} differ)`,
    );
  }
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), "matmul");
  const out = empty([...batch, m, n]);
  const count = sizeOf(batch);
  if (count === 0 || m === 0 || n === 0) return out;
  const bShared = b.shape.slice(0, -2).every((d) => d === 1);
  if (bShared && count > 1 && sizeOf(a.shape.slice(0, -2)) === count && rowsMerge(a)) {
    // [batch·m, k]·[k, n] in one call: the rows of every batch matrix follow each other.
    const rows = count * m;
    const A = operand(a.data, a.offset, rows, k, a.strides[a.ndim - 2], a.strides[a.ndim - 1]);
    const B = operand(b.data, b.offset, k, n, b.strides[b.ndim - 2], b.strides[b.ndim - 1]);
    gemm(A, B, rows, n, k, out.data, 0);
    return out;
  }
  const aStrides = batchStrides(a, batch);
  const bStrides = batchStrides(b, batch);
  const index = new Array<number>(batch.length).fill(0);
  let aOffset = a.offset;
  let bOffset = b.offset;
  for (let i = 0; i < count; i++) {
    gemmInto(a, aOffset, b, bOffset, out.data, i * m * n, 0);
    for (let d = batch.length - 1; d >= 0; d--) {
      index[d]++;
      aOffset += aStrides[d];
      bOffset += bStrides[d];
      if (index[d] < batch[d]) break;
      aOffset -= aStrides[d] * batch[d];
      bOffset -= bStrides[d] * batch[d];
      index[d] = 0;
    }
  }
  return out;
}

/** C [m, n] at cOffset = A·B for operands already described for GEMM. */
function gemm(
  A: GemmOperand,
  B: GemmOperand,
  m: number,
  n: number,
  k: number,
  c: Float32Array,
  cOffset: number,
): void {
  kernels.gemm(
    A.trans,
    B.trans,
    m,
    n,
    k,
    A.data,
    A.offset,
    A.ld,
    B.data,
    B.offset,
    B.ld,
    0,
    c,
    cOffset,
    n,
  );
}

/** The storage step of each batch dim of `t` broadcast to `batch` (0 where it is broadcast). */
function batchStrides(t: Tensor, batch: readonly number[]): number[] {
  const lead = batch.length - (t.ndim - 2);
  return batch.map((_, d) => (d < lead || t.shape[d - lead] === 1 ? 0 : t.strides[d - lead]));
}

/**
 * Matrix product with PyTorch's broadcasting: [..., m, k]·[..., k, n]. The gradients are the
 * products G·Bᵀ and Aᵀ·G (transposes are views, read in place by the GEMM), summed over the batch
 * dims each operand was broadcast along.
 */
export const matmulOp: OpDef<[Tensor, Tensor], null, null> = defineOp<[Tensor, Tensor], null, null>(
  {
    name: "matmul",
    forward([a, b]) {
      if (a.ndim < 2 || b.ndim < 2) {
        throw new RangeError(
          `matmul: the primitive takes operands of 2 or more dims, got ${
            formatShape(a.shape)
          } and ${formatShape(b.shape)} (use matmul(), which handles vectors)`,
        );
      }
      return { out: product(a, b), saved: null };
    },
    backward(g, _saved, [a, b]) {
      return [
        a.requiresGrad ? reduceTo(matmul(g, transpose(b, -1, -2)), a.shape) : null,
        b.requiresGrad ? sharedB(a, b, g) : null,
      ];
    },
  },
);

/**
 * The gradient of b: Aᵀ·G summed over broadcast batch dims. For a 2-D b against a batched a whose
 * rows merge, it is one GEMM [k, batch·m]·[batch·m, n] instead of a batch of products and a sum.
 */
function sharedB(a: Tensor, b: Tensor, g: Tensor): Tensor {
  if (b.ndim === 2 && a.ndim > 2) {
    const k = a.shape[a.ndim - 1];
    return matmul(transpose(reshape(a, [-1, k]), 0, 1), reshape(g, [-1, g.shape[g.ndim - 1]]));
  }
  return reduceTo(matmul(transpose(a, -1, -2), g), b.shape);
}

/** Attributes of {@linkcode linearOp}. */
export interface LinearAttrs {
  /** Apply max(·, 0) to the result (Linear + ReLU in one op). */
  relu: boolean;
}

/**
 * X and W as the Linear kernels take them: X row-major or transposed in place (copied when it is
 * neither), W contiguous.
 */
function linearOperands(input: Tensor, weight: Tensor): LinearOperands {
  const [rows, inFeatures] = input.shape;
  const X = operand(input.data, input.offset, rows, inFeatures, input.strides[0], input.strides[1]);
  const w = dense(weight);
  return {
    x: X.data,
    xOffset: X.offset,
    xTrans: X.trans,
    ldx: X.ld,
    rows,
    inFeatures,
    w: w.data,
    wOffset: w.offset,
    outFeatures: w.shape[0],
  };
}

/**
 * x·Wᵀ + b (then ReLU when `relu`) for x [N, in], W [out, in], b [out], through the
 * `linearForward` / `linearBackward` kernels. The weight and bias gradients are summed straight
 * into the parameters' existing `.grad` when the tape offers it (see `GradSinks`).
 */
export const linearOp: OpDef<Tensor[], LinearAttrs, null> = defineOp<Tensor[], LinearAttrs, null>({
  name: "linear",
  forward([input, weight, bias], { relu }) {
    const operands = linearOperands(input, weight);
    const b = bias === undefined ? null : dense(bias);
    const out = empty([operands.rows, operands.outFeatures]);
    kernels.linearForward({
      ...operands,
      bias: b === null ? null : b.data,
      biasOffset: b === null ? 0 : b.offset,
      relu,
      out: out.data,
      outOffset: 0,
    });
    return { out, saved: null };
  },
  backward(g, _saved, [input, weight, bias], { relu }, out, into) {
    const gy = dense(g);
    const gx = input.requiresGrad ? empty(input.shape) : null;
    // The kernel accumulates: into the parameter's own gradient, or into fresh zeros.
    const gw = into[1] ?? (weight.requiresGrad ? empty(weight.shape) : null);
    const gb = bias === undefined
      ? null
      : into[2] ?? (bias.requiresGrad ? empty(bias.shape) : null);
    kernels.linearBackward({
      ...linearOperands(input, weight),
      gy: gy.data,
      gyOffset: gy.offset,
      y: relu ? out.data : null,
      yOffset: 0,
      gx: gx === null ? null : gx.data,
      gxOffset: 0,
      gw: gw === null ? null : gw.data,
      gwOffset: gw === null ? 0 : gw.offset,
      gb: gb === null ? null : gb.data,
      gbOffset: gb === null ? 0 : gb.offset,
    });
    const grads = [gx, into[1] ? null : gw];
    if (bias !== undefined) grads.push(into[2] ? null : gb);
    return grads;
  },
  composite([input, weight, bias], { relu }) {
    const product = matmul(input, transpose(weight, 0, 1));
    const y = bias === undefined ? product : add(product, bias);
    return relu ? reluOf(y) : y;
  },
});

/** Options of {@linkcode linear}. */
export interface LinearOpOptions {
  /**
   * Apply ReLU to the result in the same op (default false): `linear(x, w, b, { relu: true })`
   * equals `relu(linear(x, w, b))` but keeps the output in the kernel's memory for the bias and
   * the ReLU, and masks the gradient there, instead of a pass (and copies) of its own each way.
   */
  relu?: boolean;
}

/**
 * Matrix product with PyTorch's `matmul` rules: 1-D·1-D is the dot product (a scalar); a 1-D
 * first operand is a row [1, k] and a 1-D second operand a column [k, 1], the added dim removed
 * from the result; otherwise [..., m, k]·[..., k, n] with the batch dims broadcast
 * ([2, 1, 4, 5]·[3, 5, 6] is [2, 3, 4, 6]).
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) {
    throw new RangeError(
      `matmul: both operands need at least 1 dim, got ${formatShape(a.shape)} and ${
        formatShape(b.shape)
      }`,
    );
  }
  if (a.ndim >= 2 && b.ndim >= 2) return applyOp(matmulOp, [a, b], null);
  const a2 = a.ndim === 1 ? reshape(a, [1, a.shape[0]]) : a;
  const b2 = b.ndim === 1 ? reshape(b, [b.shape[0], 1]) : b;
  const y = applyOp<[Tensor, Tensor], null, null>(matmulOp, [a2, b2], null);
  const shape = y.shape.slice(0, -2);
  if (a.ndim !== 1) shape.push(y.shape[y.ndim - 2]);
  if (b.ndim !== 1) shape.push(y.shape[y.ndim - 1]);
  return reshape(y, shape);
}

/**
 * The Linear layer's map y = x·Wᵀ + b. x is [N, in] or [..., in] (leading dims are flattened and
 * restored), W is [out, in] as in PyTorch, b is [out].
 */
export function linear(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor,
  options: LinearOpOptions = {},
): Tensor {
  const inFeatures = weight.shape[1];
  if (weight.ndim !== 2 || x.ndim < 1 || x.shape[x.ndim - 1] !== inFeatures) {
    throw new RangeError(
      `linear: input ${formatShape(x.shape)} does not match weight ${formatShape(weight.shape)} ` +
        "(expected input [..., in] and weight [out, in])",
    );
  }
  if (bias !== undefined && (bias.ndim !== 1 || bias.shape[0] !== weight.shape[0])) {
    throw new RangeError(
      `linear: bias ${formatShape(bias.shape)} does not match weight ${formatShape(weight.shape)}`,
    );
  }
  const lead = x.shape.slice(0, -1);
  const x2 = x.ndim === 2 ? x : reshape(x, [-1, inFeatures]);
  const inputs = bias === undefined ? [x2, weight] : [x2, weight, bias];
  const y = applyOp(linearOp, inputs, { relu: options.relu === true });
  return x.ndim === 2 ? y : reshape(y, [...lead, weight.shape[0]]);
}
