/**
 * Elementwise unary ops: neg, pow (scalar exponent), exp, log, sqrt, abs, relu, leakyRelu, sigmoid,
 * tanh, erf, gelu, log1p, expm1, sin, cos, and sign, floor, round (zero gradient, as PyTorch). The
 * public functions of the later kinds live in `math.ts` and `activations.ts`. Each forward is one kernel call over contiguous data. Each derivative is written twice on
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
  erf: (g, x) => mul(g, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI))),
  gelu: (g, x, _y, p) => mul(g, p === 0 ? geluExactDerivative(x) : geluTanhDerivative(x)),
  log1p: (g, x) => div(g, add(x, 1)),
  expm1: (g, _x, y) => mul(g, add(y, 1)),
  sin: (g, x) => mul(g, applyOp(cosOp, [x], none)),
  cos: (g, x) => neg(mul(g, applyOp(sinOp, [x], none))),
  sign: (g) => mul(g, 0),
  floor: (g) => mul(g, 0),
  round: (g) => mul(g, 0),
};

/** Φ(x) + x·φ(x) in differentiable ops, with Φ(x) = (1 + erf(x/√2))/2. */
function geluExactDerivative(x: Tensor): Tensor {
  const cdf = mul(add(applyOp(erfOp, [mul(x, Math.SQRT1_2)], none), 1), 0.5);
  const pdf = mul(exp(mul(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
  return add(cdf, mul(x, pdf));
}

/** The derivative of the tanh GELU in differentiable ops (see `geluTanhGrad` in the kernels). */
function geluTanhDerivative(x: Tensor): Tensor {
  const k = Math.sqrt(2 / Math.PI);
  const x2 = mul(x, x);
  const t = tanh(mul(mul(x, add(mul(x2, 0.044715), 1)), k));
  const inner = mul(add(mul(x2, 3 * 0.044715), 1), k);
  return add(mul(add(t, 1), 0.5), mul(mul(mul(x, 0.5), sub(1, mul(t, t))), inner));
}

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

/**
 * Every unary primitive by kind, one op per kind of {@linkcode derivative} (whose type lists every
 * `UnaryKind`): the primitive table takes them all from here.
 */
export const unaryOps: { readonly [K in UnaryKind]: OpDef<[Tensor], UnaryAttrs, Tensor> } = Object
  .fromEntries(
    (Object.keys(derivative) as UnaryKind[]).map((kind) => [kind, unaryOp(kind)]),
  ) as { readonly [K in UnaryKind]: OpDef<[Tensor], UnaryAttrs, Tensor> };

/** −x. */
export const negOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.neg;
/** x^p for a scalar p: d/dx = p·x^(p−1). */
export const powOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.pow;
/** e^x: d/dx = e^x. */
export const expOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.exp;
/** ln x: d/dx = 1/x. */
export const logOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.log;
/** √x: d/dx = 1/(2√x). */
export const sqrtOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.sqrt;
/** |x|: d/dx = sign(x) (0 at 0). */
export const absOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.abs;
/** max(x, 0): d/dx = 1 for x > 0, else 0. */
export const reluOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.relu;
/** x for x > 0, slope·x otherwise. */
export const leakyReluOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.leakyRelu;
/** 1/(1 + e^−x): d/dx = σ(1 − σ). */
export const sigmoidOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.sigmoid;
/** tanh x: d/dx = 1 − tanh². */
export const tanhOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.tanh;

/** erf(x): d/dx = (2/√π)·e^(−x²). */
export const erfOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.erf;
/** GELU, exact (param 0) or tanh-approximated (param 1): d/dx = Φ(x) + x·φ(x) for the exact one. */
export const geluOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.gelu;
/** ln(1 + x), accurate near 0: d/dx = 1/(1 + x). */
export const log1pOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.log1p;
/** e^x − 1, accurate near 0: d/dx = e^x. */
export const expm1Op: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.expm1;
/** sin x: d/dx = cos x. */
export const sinOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.sin;
/** cos x: d/dx = −sin x. */
export const cosOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.cos;
/** The sign (−1, 0, 1; NaN stays NaN): zero gradient. */
export const signOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.sign;
/** ⌊x⌋: zero gradient. */
export const floorOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.floor;
/** x rounded to the nearest integer, halves to even (PyTorch's `round`): zero gradient. */
export const roundOp: OpDef<[Tensor], UnaryAttrs, Tensor> = unaryOps.round;

/** The attributes of a unary op without a parameter. */
export const none: UnaryAttrs = { param: 0 };

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
