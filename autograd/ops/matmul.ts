/**
 * Matrix products: `matmul` (2-D, and batched 3-D with broadcasting of a 2-D operand) and the fused
 * `linear` (x·Wᵀ + b, the Linear layer). Transposed views go to the GEMM kernel as a layout flag,
 * never as a copy, which is what makes the backward products (G·Bᵀ, Aᵀ·G) free of transposes.
 *
 * @module
 */

import { expectDType } from "../dtype.ts";
import { kernels, type LinearOperands } from "../kernels/mod.ts";
import { formatShape } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { add } from "./arith.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { relu as reluOf } from "./unary.ts";
import { sum } from "./reduce.ts";
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

/** The product of two 2-D or 3-D tensors, computed without recording. */
function product(a: Tensor, b: Tensor): Tensor {
  expectDType("matmul", [a, b], ["float32"]);
  const [m, k] = a.shape.slice(-2);
  const [k2, n] = b.shape.slice(-2);
  if (a.ndim < 2 || b.ndim < 2 || a.ndim > 3 || b.ndim > 3 || k !== k2) {
    throw new RangeError(
      `matmul: cannot multiply ${formatShape(a.shape)} by ${formatShape(b.shape)} ` +
        "(expected [m, k]·[k, n] or batched [B, m, k]·[B, k, n])",
    );
  }
  const batchA = a.ndim === 3 ? a.shape[0] : 1;
  const batchB = b.ndim === 3 ? b.shape[0] : 1;
  if (a.ndim === 3 && b.ndim === 3 && batchA !== batchB && batchA !== 1 && batchB !== 1) {
    throw new RangeError(
      `matmul: batch sizes differ: ${formatShape(a.shape)} · ${formatShape(b.shape)}`,
    );
  }
  const batch = Math.max(batchA, batchB);
  const out = empty(a.ndim === 3 || b.ndim === 3 ? [batch, m, n] : [m, n]);
  const strideA = a.ndim === 3 && batchA > 1 ? a.strides[0] : 0;
  const strideB = b.ndim === 3 && batchB > 1 ? b.strides[0] : 0;
  for (let i = 0; i < batch; i++) {
    gemmInto(a, a.offset + i * strideA, b, b.offset + i * strideB, out.data, i * m * n, 0);
  }
  return out;
}

/** Sums a batched gradient down to a 2-D operand's shape when that operand was broadcast. */
function unbatch(g: Tensor, like: Tensor): Tensor {
  return g.ndim === like.ndim ? g : sum(g, 0);
}

/** Matrix product with batching. */
export const matmulOp: OpDef<[Tensor, Tensor], null, null> = defineOp<[Tensor, Tensor], null, null>(
  {
    name: "matmul",
    forward([a, b]) {
      return { out: product(a, b), saved: null };
    },
    backward(g, _saved, [a, b]) {
      return [
        a.requiresGrad ? unbatch(matmul(g, transpose(b, -1, -2)), a) : null,
        b.requiresGrad ? unbatch(matmul(transpose(a, -1, -2), g), b) : null,
      ];
    },
  },
);

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

/** Matrix product: [m, k]·[k, n], or batched [B, m, k]·[B, k, n] (a 2-D side is shared by the batch). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  return applyOp(matmulOp, [a, b], null);
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
