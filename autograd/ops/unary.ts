/**
 * Elementwise unary ops: neg, pow (scalar exponent), exp, log, sqrt, abs, relu, leakyRelu, sigmoid,
 * tanh. Each forward is one kernel call over contiguous data. Each derivative is written twice on
 * purpose and tested to agree: the `unaryBackward` kernel (one fused pass, used by a first-order
 * backward) and {@linkcode derivative} in differentiable ops (used under `createGraph`, so second
 * derivatives work).
 *
 * @module
 */

import { expectDType } from "../dtype.ts";
import { kernels, type UnaryKind } from "../kernels/mod.ts";
import { isGradEnabled } from "../tape.ts";
import type { Tensor } from "../tensor.ts";
import { add, mul, sub } from "./arith.ts";
import { div } from "./arith.ts";
import { gt, lt, where } from "./compare.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { dense, empty } from "./util.ts";

/**
 * g · f′(x) for each unary kind, in differentiable ops, from the input `x`, the output `y` and the
 * parameter `p` (the exponent of pow, the slope of leakyRelu).
 */
export const derivative: {
  readonly [K in UnaryKind]: (g: Tensor, x: Tensor, y: Tensor, p: number) => Tensor;
} = {
  neg: (g) => neg(g),
  exp: (g, _x, y) => mul(g, y),
  log: (g, x) => div(g, x),
  sqrt: (g, _x, y) => div(mul(g, 0.5), y),
  abs: (g, x) => where(gt(x, 0), g, where(lt(x, 0), neg(g), 0)),
  relu: (g, x) => where(gt(x, 0), g, 0),
  leakyRelu: (g, x, _y, p) => where(gt(x, 0), g, mul(g, p)),
  sigmoid: (g, _x, y) => mul(g, mul(y, sub(1, y))),
  tanh: (g, _x, y) => mul(g, sub(1, mul(y, y))),
  pow: (g, x, _y, p) => (p === 2 ? mul(g, add(x, x)) : mul(g, mul(pow(x, p - 1), p))),
};

/** Attributes of a unary op: the exponent of pow, the negative slope of leakyRelu, else 0. */
export interface UnaryAttrs {
  /** Exponent (pow) or slope (leakyRelu). */
  param: number;
}

function unaryOp(kind: UnaryKind): OpDef<[Tensor], UnaryAttrs, Tensor> {
  return defineOp<[Tensor], UnaryAttrs, Tensor>({
    name: kind,
    forward([x], { param }) {
      expectDType(kind, [x], ["float32"]);
      const input = dense(x);
      const out = empty(x.shape);
      kernels.unary(kind, input.data, input.offset, out.data, 0, x.size, param);
      return { out, saved: input };
    },
    backward(g, input, [x], { param }, out) {
      if (isGradEnabled()) return [derivative[kind](g, x, out, param)];
      const gd = dense(g);
      const gx = empty(g.shape);
      // Kernels index from 0: hand them offset-free views.
      const n = g.size;
      kernels.unaryBackward(
        kind,
        gd.data.subarray(gd.offset, gd.offset + n),
        input.data.subarray(input.offset, input.offset + n),
        out.data,
        gx.data,
        n,
        param,
      );
      return [gx];
    },
  });
}

/** −x. */
export const negOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOp("neg");
/** x^p for a scalar p: d/dx = p·x^(p−1). */
export const powOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOp("pow");
/** e^x: d/dx = e^x. */
export const expOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOp("exp");
/** ln x: d/dx = 1/x. */
export const logOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOp("log");
/** √x: d/dx = 1/(2√x). */
export const sqrtOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOp("sqrt");
/** |x|: d/dx = sign(x) (0 at 0). */
export const absOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOp("abs");
/** max(x, 0): d/dx = 1 for x > 0, else 0. */
export const reluOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOp("relu");
/** x for x > 0, slope·x otherwise. */
export const leakyReluOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOp("leakyRelu");
/** 1/(1 + e^−x): d/dx = σ(1 − σ). */
export const sigmoidOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOp("sigmoid");
/** tanh x: d/dx = 1 − tanh². */
export const tanhOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOp("tanh");

const none: UnaryAttrs = { param: 0 };

/** −x. */
export function neg(x: Tensor): Tensor {
  return applyOp(negOp, [x], none);
}

/** x^exponent elementwise (scalar exponent). */
export function pow(x: Tensor, exponent: number): Tensor {
  return applyOp(powOp, [x], { param: exponent });
}

/** e^x elementwise. */
export function exp(x: Tensor): Tensor {
  return applyOp(expOp, [x], none);
}

/** Natural logarithm elementwise. */
export function log(x: Tensor): Tensor {
  return applyOp(logOp, [x], none);
}

/** Square root elementwise. */
export function sqrt(x: Tensor): Tensor {
  return applyOp(sqrtOp, [x], none);
}

/** |x| elementwise. */
export function abs(x: Tensor): Tensor {
  return applyOp(absOp, [x], none);
}

/** max(x, 0) elementwise. */
export function relu(x: Tensor): Tensor {
  return applyOp(reluOp, [x], none);
}

/** x where positive, slope·x elsewhere (default slope 0.01, as PyTorch). */
export function leakyRelu(x: Tensor, slope = 0.01): Tensor {
  return applyOp(leakyReluOp, [x], { param: slope });
}

/** Logistic sigmoid elementwise. */
export function sigmoid(x: Tensor): Tensor {
  return applyOp(sigmoidOp, [x], none);
}

/** Hyperbolic tangent elementwise. */
export function tanh(x: Tensor): Tensor {
  return applyOp(tanhOp, [x], none);
}
