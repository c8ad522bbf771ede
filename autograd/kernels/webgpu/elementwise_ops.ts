/**
 * The elementwise primitives on the WebGPU device, mirroring their CPU definitions in
 * `autograd/ops/` (same attributes, shapes and saved values): every unary kind (`ops/unary.ts`),
 * binary arithmetic (`ops/arith.ts`), `where` (`ops/compare.ts`), the copies `contiguous` and
 * `sliceScatter` (`ops/view.ts`) and `cat` (`ops/join.ts`), and `dropout` (`ops/dropout.ts`); and
 * the helpers the core calls outside the table (`binaryInto`, `cast`, `fill`). The kernels are
 * in `elementwise.ts`.
 *
 * Backward rules are given where the CPU's reads host memory: the unary kinds (the fused
 * `unaryBackward` kernel for a first-order backward; under `createGraph` the CPU's rule in
 * differentiable ops, as on the CPU). Arithmetic, where, the copies and dropout have rules written
 * in ops, which run on the device by themselves.
 *
 * Dropout: the CPU's mask comes from xoshiro128**, a sequential generator (each output needs the
 * previous state), not a counter-based one, so the 32-bit draws are made on the host from the same
 * generator, advancing it exactly as the CPU op does, and uploaded; the device turns them into the
 * mask with the CPU's threshold, so the masks are the same bits for the same generator state.
 *
 * @module
 */

import type { DeviceHelpers, DeviceOp } from "../../device.ts";
import { type DType, expectDType } from "../../dtype.ts";
import type { BinaryKind, UnaryKind } from "../elementwise.ts";
import type { Primitive } from "../../ops/mod.ts";
import { derivative, type UnaryAttrs } from "../../ops/unary.ts";
import type { Rng } from "../../rng.ts";
import { broadcastShapes, contiguousStrides } from "../../shape.ts";
import { isGradEnabled } from "../../tape.ts";
import type { AnyTensor, Tensor } from "../../tensor.ts";
import {
  gpuBinaryInto,
  gpuCast,
  gpuDropout,
  gpuFill,
  gpuUnary,
  gpuUnaryBackward,
  gpuWhere,
  UNARY_WGSL,
} from "./elementwise.ts";
import { copyStridedGpu, gpuEmpty, gpuStorage } from "./tensor.ts";

function unaryOp(kind: UnaryKind): DeviceOp {
  return {
    forward([x], { param }: UnaryAttrs) {
      expectDType(kind, [x], ["float32"]);
      return { out: gpuUnary(kind, x, param), saved: null };
    },
    backward(g, _saved, [x], { param }: UnaryAttrs, out) {
      if (isGradEnabled()) return [derivative[kind](g, x as Tensor, out, param)];
      return [gpuUnaryBackward(kind, g, x, out, param)];
    },
  };
}

function arithmetic(kind: BinaryKind): DeviceOp {
  return {
    forward([a, b]) {
      expectDType(kind, [a, b], ["float32"]);
      const out = gpuEmpty(broadcastShapes(a.shape, b.shape, kind));
      gpuBinaryInto(kind, a, b, out);
      return { out, saved: null };
    },
  };
}

/** Attributes of sliceScatter (as `ops/view.ts`). */
interface SliceScatterAttrs {
  shape: number[];
  dim: number;
  start: number;
  step: number;
}

/** Attributes of dropout (as `ops/dropout.ts`). */
interface DropoutAttrs {
  p: number;
  rng: Rng;
}

/** Every elementwise primitive on the device. */
export const elementwiseOps: { readonly [P in Primitive]?: DeviceOp } = {
  ...(Object.fromEntries(
    (Object.keys(UNARY_WGSL) as UnaryKind[]).map((kind) => [kind, unaryOp(kind)]),
  ) as { [K in UnaryKind]: DeviceOp }),
  add: arithmetic("add"),
  sub: arithmetic("sub"),
  mul: arithmetic("mul"),
  div: arithmetic("div"),
  maximum: arithmetic("maximum"),
  minimum: arithmetic("minimum"),
  where: {
    forward([cond, a, b]) {
      expectDType("where", [cond], ["bool"]);
      if (a.dtype !== b.dtype) {
        throw new TypeError(
          `where: the branches have dtypes ${a.dtype} and ${b.dtype}; convert one`,
        );
      }
      const shape = broadcastShapes(
        broadcastShapes(cond.shape, a.shape, "where"),
        b.shape,
        "where",
      );
      return { out: gpuWhere(cond, a, b, shape), saved: null };
    },
  },
  contiguous: {
    forward([x]) {
      const out = gpuEmpty(x.shape, x.dtype);
      copyStridedGpu(x, gpuStorage(out, "contiguous"), 0, out.strides);
      return { out, saved: null };
    },
  },
  sliceScatter: {
    forward([src], { shape, dim, start, step }: SliceScatterAttrs) {
      const out = gpuEmpty(shape, "float32", true);
      const strides = [...out.strides];
      strides[dim] *= step;
      const offset = src.shape[dim] > 0 ? start * out.strides[dim] : 0;
      copyStridedGpu(src, gpuStorage(out, "sliceScatter"), offset, strides);
      return { out, saved: null };
    },
  },
  cat: {
    forward(inputs, { dim, sizes }: { dim: number; sizes: number[] }) {
      const shape = [...inputs[0].shape];
      shape[dim] = sizes.reduce((a, b) => a + b, 0);
      const out = gpuEmpty(shape, inputs[0].dtype);
      const strides = contiguousStrides(shape);
      let at = 0;
      inputs.forEach((t, i) => {
        copyStridedGpu(t, gpuStorage(out, "cat"), at * strides[dim], strides);
        at += sizes[i];
      });
      return { out, saved: null };
    },
  },
  dropout: {
    forward([x], { p, rng }: DropoutAttrs) {
      const bits = new Uint32Array(x.size);
      rng.fillUint32(bits);
      const { out, mask } = gpuDropout(x, bits, p);
      return { out, saved: mask };
    },
  },
};

/** The elementwise helpers the core calls outside the table. */
export const elementwiseHelpers: Pick<DeviceHelpers, "binaryInto" | "cast" | "fill"> = {
  binaryInto(kind: BinaryKind, a: AnyTensor, b: AnyTensor, out: AnyTensor): void {
    gpuBinaryInto(kind, a, b, out);
  },
  cast(x: AnyTensor, dtype: DType): AnyTensor {
    return x.dtype === dtype ? x : gpuCast(x, dtype);
  },
  fill(out: AnyTensor, value: number): void {
    gpuFill(out, value);
  },
};
