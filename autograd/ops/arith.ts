/**
 * Broadcasting binary arithmetic: add, sub, mul, div, maximum, minimum. Operands broadcast
 * NumPy-style; each gradient is summed back over the dimensions its operand was broadcast along.
 * The rules are written in differentiable ops, so they can be differentiated again.
 *
 * @module
 */

import { deviceBackend } from "../device.ts";
import { expectDType } from "../dtype.ts";
import { type BinaryKind, kernels } from "../kernels/mod.ts";
import { broadcastShapes, type Shape } from "../shape.ts";
import type { AnyTensor, Tensor, TensorLike } from "../tensor.ts";
import { where } from "./compare.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { reduceTo } from "./reduce.ts";
import { neg } from "./unary.ts";
import { empty, toTensor } from "./util.ts";

/** Strides that read `t` as if it had been broadcast to `shape` (0 on broadcast dims). */
export function broadcastStrides(t: AnyTensor, shape: Shape): number[] {
  const lead = shape.length - t.ndim;
  return shape.map((_, d) => (d < lead || t.shape[d - lead] === 1 ? 0 : t.strides[d - lead]));
}

/** out = a ∘ b with broadcasting into a new tensor `out`, straight through the kernel. */
export function elementwiseInto<T extends AnyTensor>(
  kind: BinaryKind,
  a: AnyTensor,
  b: AnyTensor,
  out: T,
): T {
  if (out.device !== "cpu") {
    deviceBackend(out.device).helpers.binaryInto(kind, a, b, out);
    return out;
  }
  kernels.binary(
    kind,
    out.shape,
    a.data,
    a.offset,
    broadcastStrides(a, out.shape),
    b.data,
    b.offset,
    broadcastStrides(b, out.shape),
    out.data,
    0,
  );
  return out;
}

/** Binary arithmetic primitives: the kernel kind and the rule (∂out/∂a·g, ∂out/∂b·g). */
type ArithKind = "add" | "sub" | "mul" | "div" | "maximum" | "minimum";

function binaryOp(
  kind: ArithKind,
  rule: (g: Tensor, a: Tensor, b: Tensor, out: Tensor) => [Tensor, Tensor],
): OpDef<[Tensor, Tensor], null, null> {
  return defineOp<[Tensor, Tensor], null, null>({
    name: kind,
    forward([a, b]) {
      expectDType(kind, [a, b], ["float32"]);
      const out = empty(broadcastShapes(a.shape, b.shape, kind));
      return { out: elementwiseInto(kind, a, b, out), saved: null };
    },
    backward(g, _saved, [a, b], _attrs, out) {
      const [ga, gb] = rule(g, a, b, out);
      return [
        a.requiresGrad ? reduceTo(ga, a.shape) : null,
        b.requiresGrad ? reduceTo(gb, b.shape) : null,
      ];
    },
  });
}

/** a + b: both gradients are the output gradient. */
export const addOp: OpDef<[Tensor, Tensor], null, null> = binaryOp("add", (g) => [g, g]);

/** a − b: d/da = 1, d/db = −1. */
export const subOp: OpDef<[Tensor, Tensor], null, null> = binaryOp("sub", (g) => [g, neg(g)]);

/** a · b: d/da = b, d/db = a. */
export const mulOp: OpDef<[Tensor, Tensor], null, null> = binaryOp(
  "mul",
  (g, a, b) => [mul(g, b), mul(g, a)],
);

/** a / b: d/da = 1/b, d/db = −a/b² = −(g/b)·out. */
export const divOp: OpDef<[Tensor, Tensor], null, null> = binaryOp("div", (g, _a, b, out) => {
  const ga = div(g, b);
  return [ga, neg(mul(ga, out))];
});

/** max(a, b): the gradient goes to the larger operand (to `a` on ties, as `where(a >= b)`). */
export const maximumOp: OpDef<[Tensor, Tensor], null, null> = binaryOp(
  "maximum",
  (g, a, b) => splitBy(a.ge(b), g),
);

/** min(a, b): the gradient goes to the smaller operand (to `a` on ties). */
export const minimumOp: OpDef<[Tensor, Tensor], null, null> = binaryOp(
  "minimum",
  (g, a, b) => splitBy(a.le(b), g),
);

/** [g where mask, g elsewhere]: the gradients of a selection between two operands. */
function splitBy(mask: Tensor<"bool">, g: Tensor): [Tensor, Tensor] {
  return [where(mask, g, 0), where(mask, 0, g)];
}

/** a + b with broadcasting. */
export function add(a: TensorLike, b: TensorLike): Tensor {
  return applyOp(addOp, [toTensor(a), toTensor(b)], null);
}

/** a − b with broadcasting. */
export function sub(a: TensorLike, b: TensorLike): Tensor {
  return applyOp(subOp, [toTensor(a), toTensor(b)], null);
}

/** a · b elementwise with broadcasting. */
export function mul(a: TensorLike, b: TensorLike): Tensor {
  return applyOp(mulOp, [toTensor(a), toTensor(b)], null);
}

/** a / b elementwise with broadcasting. */
export function div(a: TensorLike, b: TensorLike): Tensor {
  return applyOp(divOp, [toTensor(a), toTensor(b)], null);
}

/** The elementwise maximum of a and b with broadcasting (NaN if either is NaN). */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  return applyOp(maximumOp, [toTensor(a), toTensor(b)], null);
}

/** The elementwise minimum of a and b with broadcasting (NaN if either is NaN). */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  return applyOp(minimumOp, [toTensor(a), toTensor(b)], null);
}
