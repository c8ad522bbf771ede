/**
 * The op table: every differentiable primitive, each one object with its forward pass and its
 * backward rule side by side. Tests enumerate this table, so an op added here without a gradient
 * check fails the suite.
 *
 * @module
 */

import { addOp, divOp, mulOp, subOp } from "./arith.ts";
import { conv2dOp, maxPool2dOp } from "./conv.ts";
import { dropoutOp } from "./dropout.ts";
import { linearOp, matmulOp } from "./matmul.ts";
import type { OpDef } from "./op.ts";
import { maxOp, meanOp, sumOp } from "./reduce.ts";
import { crossEntropyOp, logSoftmaxOp, nllLossOp, softmaxOp } from "./softmax.ts";
import {
  absOp,
  expOp,
  leakyReluOp,
  logOp,
  negOp,
  powOp,
  reluOp,
  sigmoidOp,
  sqrtOp,
  tanhOp,
} from "./unary.ts";
import { contiguousOp, expandOp, permuteOp, restrideOp, sliceOp, transposeOp } from "./view.ts";
import type { Tensor } from "../tensor.ts";

/** Any op of the table, whatever its inputs, attributes and saved state. */
// deno-lint-ignore no-explicit-any
export type AnyOp = OpDef<readonly Tensor[], any, any>;

/** Every differentiable op by name. */
export const opTable: Readonly<Record<string, AnyOp>> = Object.freeze({
  add: addOp,
  sub: subOp,
  mul: mulOp,
  div: divOp,
  neg: negOp,
  pow: powOp,
  exp: expOp,
  log: logOp,
  sqrt: sqrtOp,
  abs: absOp,
  relu: reluOp,
  leakyRelu: leakyReluOp,
  sigmoid: sigmoidOp,
  tanh: tanhOp,
  matmul: matmulOp,
  linear: linearOp,
  sum: sumOp,
  mean: meanOp,
  max: maxOp,
  softmax: softmaxOp,
  logSoftmax: logSoftmaxOp,
  crossEntropy: crossEntropyOp,
  nllLoss: nllLossOp,
  conv2d: conv2dOp,
  maxPool2d: maxPool2dOp,
  dropout: dropoutOp,
  reshape: restrideOp,
  transpose: transposeOp,
  permute: permuteOp,
  slice: sliceOp,
  expand: expandOp,
  contiguous: contiguousOp,
});

export * from "./functions.ts";
export { applyOp, defineOp, type ForwardResult, type InputGrads, type OpDef } from "./op.ts";
