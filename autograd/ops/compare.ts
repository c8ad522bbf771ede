/**
 * Comparisons (`eq ne lt le gt ge`, bool results, no gradient), selection by a mask (`where`,
 * `maskedFill`) and dtype conversion (`cast`, behind `Tensor.to`).
 *
 * @module
 */

import { deviceBackend } from "../device.ts";
import { type DType, expectDType, storageFor, type StorageOf } from "../dtype.ts";
import { type BinaryKind, kernels } from "../kernels/mod.ts";
import { broadcastShapes } from "../shape.ts";
import { type AnyTensor, Tensor } from "../tensor.ts";
import { broadcastStrides, elementwiseInto } from "./arith.ts";
import { applyOp, defineOp } from "./op.ts";
import { reduceTo } from "./reduce.ts";
import { dense, empty, emptyOn, onDevice, scalarLike } from "./util.ts";

function compare(kind: BinaryKind, a: AnyTensor, b: AnyTensor | number): Tensor<"bool"> {
  const other = scalarLike(b, a);
  const shape = broadcastShapes(a.shape, other.shape, kind);
  if (a.device !== "cpu" || other.device !== "cpu") {
    const device = a.device !== "cpu" ? a.device : other.device;
    const out = emptyOn(device, shape, "bool");
    return elementwiseInto(kind, onDevice(kind, a, device), onDevice(kind, other, device), out);
  }
  return elementwiseInto(kind, a, other, empty(shape, "bool"));
}

/** a == b elementwise, broadcasting (bool; any dtypes). */
export function eq(a: AnyTensor, b: AnyTensor | number): Tensor<"bool"> {
  return compare("eq", a, b);
}

/** a != b elementwise, broadcasting (bool). */
export function ne(a: AnyTensor, b: AnyTensor | number): Tensor<"bool"> {
  return compare("ne", a, b);
}

/** a < b elementwise, broadcasting (bool). */
export function lt(a: AnyTensor, b: AnyTensor | number): Tensor<"bool"> {
  return compare("lt", a, b);
}

/** a <= b elementwise, broadcasting (bool). */
export function le(a: AnyTensor, b: AnyTensor | number): Tensor<"bool"> {
  return compare("le", a, b);
}

/** a > b elementwise, broadcasting (bool). */
export function gt(a: AnyTensor, b: AnyTensor | number): Tensor<"bool"> {
  return compare("gt", a, b);
}

/** a >= b elementwise, broadcasting (bool). */
export function ge(a: AnyTensor, b: AnyTensor | number): Tensor<"bool"> {
  return compare("ge", a, b);
}

/**
 * Selection cond ? a : b, broadcasting all three. The gradient of each branch is the output
 * gradient where that branch was chosen, 0 elsewhere.
 */
export const whereOp = defineOp<[Tensor<"bool">, AnyTensor, AnyTensor], null, null>({
  name: "where",
  forward([cond, a, b]) {
    expectDType("where", [cond], ["bool"]);
    if (a.dtype !== b.dtype) {
      throw new TypeError(`where: the branches have dtypes ${a.dtype} and ${b.dtype}; convert one`);
    }
    const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape, "where"), b.shape, "where");
    const out = empty(shape, a.dtype);
    kernels.where(
      shape,
      cond.data,
      cond.offset,
      broadcastStrides(cond, shape),
      a.data,
      a.offset,
      broadcastStrides(a, shape),
      b.data,
      b.offset,
      broadcastStrides(b, shape),
      out.data,
      0,
    );
    return { out, saved: null };
  },
  backward(g, _saved, [cond, a, b]) {
    return [
      null,
      a.requiresGrad ? reduceTo(where(cond, g, 0), a.shape) : null,
      b.requiresGrad ? reduceTo(where(cond, 0, g), b.shape) : null,
    ];
  },
});

/** `a` where `cond` holds, `b` elsewhere; numbers take the other branch's dtype (float32 if both). */
export function where<D extends DType = "float32">(
  cond: Tensor<"bool">,
  a: Tensor<D> | number,
  b: Tensor<D> | number,
): Tensor<D> {
  const like = typeof a !== "number" ? a : typeof b !== "number" ? b : null;
  const ta = like === null ? new Tensor(new Float32Array([a as number]), []) : scalarLike(a, like);
  const tb = like === null ? new Tensor(new Float32Array([b as number]), []) : scalarLike(b, like);
  return applyOp(whereOp, [cond, ta, tb], null);
}

/** `value` where `mask` holds, `x` elsewhere (PyTorch's `masked_fill`); differentiable in `x`. */
export function maskedFill(x: Tensor, mask: Tensor<"bool">, value: number): Tensor {
  return where(mask, value, x);
}

/**
 * The values of `x` as `dtype`: float → int32 rounds toward zero, anything → bool is `≠ 0`. The
 * result is `x` itself when the dtype already matches; a conversion is not differentiable.
 */
export function cast<D extends DType, E extends DType>(x: Tensor<D>, dtype: E): Tensor<E> {
  if ((x.dtype as DType) === dtype) return x as unknown as Tensor<E>;
  if (x.device !== "cpu") return deviceBackend(x.device).helpers.cast(x, dtype) as Tensor<E>;
  const source = dense(x);
  const out = storageFor(dtype, x.size);
  const n = x.size;
  const from = source.data;
  const o = source.offset;
  if (dtype === "bool") { for (let i = 0; i < n; i++) out[i] = from[o + i] !== 0 ? 1 : 0; }
  else if (dtype === "int32") { for (let i = 0; i < n; i++) out[i] = Math.trunc(from[o + i]); }
  else (out as Float32Array).set(from.subarray(o, o + n) as ArrayLike<number>);
  return new Tensor<E>(out as StorageOf<E>, x.shape);
}

/** Throws naming `op` unless `x` is float32 (the dtype gradients flow through). */
export function expectFloat(op: string, ...xs: AnyTensor[]): void {
  expectDType(op, xs, ["float32"]);
}
