/**
 * Broadcasting binary arithmetic: add, sub, mul, div. Operands broadcast NumPy-style; each gradient
 * is summed back over the dimensions its operand was broadcast along.
 *
 * @module
 */

import { type BinaryKind, kernels } from "../kernels/mod.ts";
import { broadcastShapes, type Shape } from "../shape.ts";
import type { Tensor, TensorLike } from "../tensor.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { reduceTo } from "./reduce.ts";
import { empty, scaled, toTensor } from "./util.ts";

/** Strides that read `t` as if it had been broadcast to `shape` (0 on broadcast dims). */
export function broadcastStrides(t: Tensor, shape: Shape): number[] {
  const lead = shape.length - t.ndim;
  return shape.map((_, d) => (d < lead || t.shape[d - lead] === 1 ? 0 : t.strides[d - lead]));
}

/** out = a ∘ b with broadcasting, straight through the kernel (no recording). */
export function elementwise(kind: BinaryKind, a: Tensor, b: Tensor, op: string): Tensor {
  const shape = broadcastShapes(a.shape, b.shape, op);
  const out = empty(shape);
  kernels.binary(
    kind,
    shape,
    a.data,
    a.offset,
    broadcastStrides(a, shape),
    b.data,
    b.offset,
    broadcastStrides(b, shape),
    out.data,
    0,
  );
  return out;
}

function binaryOp(
  kind: BinaryKind,
  backward: (g: Tensor, a: Tensor, b: Tensor, out: Tensor) => [Tensor, Tensor],
): OpDef<[Tensor, Tensor], null, null> {
  return defineOp<[Tensor, Tensor], null, null>({
    name: kind,
    forward([a, b]) {
      return { out: elementwise(kind, a, b, kind), saved: null };
    },
    backward(g, _saved, [a, b], _attrs, out) {
      const [ga, gb] = backward(g, a, b, out);
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
export const subOp: OpDef<[Tensor, Tensor], null, null> = binaryOp(
  "sub",
  (g) => [g, scaled(g, -1)],
);

/** a · b: d/da = b, d/db = a. */
export const mulOp: OpDef<[Tensor, Tensor], null, null> = binaryOp("mul", (g, a, b) => [
  elementwise("mul", g, b, "mul"),
  elementwise("mul", g, a, "mul"),
]);

/** a / b: d/da = 1/b, d/db = −a/b² = −out/b. */
export const divOp: OpDef<[Tensor, Tensor], null, null> = binaryOp("div", (g, _a, b, out) => {
  const ga = elementwise("div", g, b, "div");
  return [ga, scaled(elementwise("mul", ga, out, "div"), -1)];
});

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
