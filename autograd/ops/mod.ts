/**
 * The primitive table: every differentiable primitive, each one object with its forward pass and
 * its backward rule side by side. The table's type is mapped over {@linkcode Primitive}, so a
 * primitive named there without an entry (or an entry without a backward rule) does not compile,
 * and the tests enumerate the table, so an entry without a gradient check fails the suite. The
 * unary primitives come in one piece from `unaryOps`, one per `UnaryKind`. Everything else
 * (`silu`, `batchNorm`, `maskedFill`, `stack`, …) is a composite of these and gets its backward
 * for free.
 *
 * @module
 */

import { addOp, divOp, maximumOp, minimumOp, mulOp, subOp } from "./arith.ts";
import { whereOp } from "./compare.ts";
import { conv2dOp, maxPool2dOp } from "./conv.ts";
import { dropoutOp } from "./dropout.ts";
import { gatherOp, scatterAddOp } from "./index.ts";
import { catOp } from "./join.ts";
import { linearOp, matmulOp } from "./matmul.ts";
import { layerNormOp } from "./norm.ts";
import type { OpDef } from "./op.ts";
import { maxOp, meanOp, sumOp } from "./reduce.ts";
import { cumsumOp, prodOp } from "./stats.ts";
import { crossEntropyOp, logSoftmaxOp, nllLossOp, softmaxOp } from "./softmax.ts";
import { unaryOps } from "./unary.ts";
import type { UnaryKind } from "../kernels/mod.ts";
import {
  contiguousOp,
  expandOp,
  permuteOp,
  restrideOp,
  sliceOp,
  sliceScatterOp,
  transposeOp,
} from "./view.ts";
import type { AnyTensor } from "../tensor.ts";

/** Any op of the table, whatever its inputs, attributes and saved state. */
// deno-lint-ignore no-explicit-any
export type AnyOp = OpDef<readonly AnyTensor[], any, any>;

/** The names of the differentiable primitives: the closed set every backend implements. */
export type Primitive =
  | UnaryKind
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "maximum"
  | "minimum"
  | "where"
  | "matmul"
  | "linear"
  | "layerNorm"
  | "sum"
  | "mean"
  | "max"
  | "cumsum"
  | "prod"
  | "softmax"
  | "logSoftmax"
  | "crossEntropy"
  | "nllLoss"
  | "conv2d"
  | "maxPool2d"
  | "dropout"
  | "reshape"
  | "transpose"
  | "permute"
  | "slice"
  | "sliceScatter"
  | "expand"
  | "contiguous"
  | "gather"
  | "scatterAdd"
  | "cat";

/** Every primitive by name: forward and backward side by side. */
export const opTable: { readonly [P in Primitive]: AnyOp } = Object.freeze({
  ...unaryOps,
  add: addOp,
  sub: subOp,
  mul: mulOp,
  div: divOp,
  maximum: maximumOp,
  minimum: minimumOp,
  where: whereOp,
  matmul: matmulOp,
  linear: linearOp,
  layerNorm: layerNormOp,
  sum: sumOp,
  mean: meanOp,
  max: maxOp,
  cumsum: cumsumOp,
  prod: prodOp,
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
  sliceScatter: sliceScatterOp,
  expand: expandOp,
  contiguous: contiguousOp,
  gather: gatherOp,
  scatterAdd: scatterAddOp,
  cat: catOp,
});

export * from "./functions.ts";
export { applyOp, defineOp, type ForwardResult, type InputGrads, type OpDef } from "./op.ts";
