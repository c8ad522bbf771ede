/**
 * The WebGPU implementations of the product primitives: `matmul`, `linear`, `conv2d` and
 * `maxPool2d`, mirroring their CPU definitions in `autograd/ops/matmul.ts` and
 * `autograd/ops/conv.ts` (same attributes, shapes, fused bias and ReLU, saved values).
 *
 * Operands reach the GEMM through their strides, so transposed, expanded and stepped views are
 * read in place, never copied. `matmul` needs no device backward: its CPU rule is written in ops
 * (products of transposed views, sums over broadcast dims) that run on the device themselves.
 * `linear`, `conv2d` and `maxPool2d` call kernels in their CPU backward, so they get device
 * backward rules here; the gradients are returned (the device ignores the CPU's accumulate-into
 * sinks).
 *
 * @module
 */

import type { DeviceOp } from "../../device.ts";
import { expectDType } from "../../dtype.ts";
import type { Conv2dAttrs } from "../../ops/conv.ts";
import type { LinearAttrs } from "../../ops/matmul.ts";
import type { Primitive } from "../../ops/mod.ts";
import { broadcastShapes, formatShape, sizeOf } from "../../shape.ts";
import type { AnyTensor, Tensor } from "../../tensor.ts";
import type { ConvGeometry } from "../conv.ts";
import { gpuConvBackward, gpuConvForward, gpuMaxPoolBackward, gpuMaxPoolForward } from "./conv.ts";
import { gpuColumnSum, gpuGemmDense, gpuGemmStrided, type GpuMatrix } from "./gemm.ts";
import { gpuDense, gpuEmpty, gpuStorage } from "./tensor.ts";

/** The 2-D matrix of `t` (a [rows, cols] tensor) as a GEMM operand, with the given strides. */
function matrix(t: AnyTensor, op: string, rowStride: number, colStride: number): GpuMatrix {
  return { storage: gpuStorage(t, op), offset: t.offset, rowStride, colStride };
}

/** The storage step of each batch dim of `t` broadcast to `batch` (0 where it is broadcast). */
function batchStrides(t: AnyTensor, batch: readonly number[]): number[] {
  const lead = batch.length - (t.ndim - 2);
  return batch.map((_, d) => (d < lead || t.shape[d - lead] === 1 ? 0 : t.strides[d - lead]));
}

/** One batch dim after merging: its size and the step of A, B and C along it. */
interface BatchDim {
  size: number;
  a: number;
  b: number;
  c: number;
}

/**
 * The batch dims of a product with the dims of size 1 dropped and neighbours merged wherever all
 * three operands step through them as one, so most batches are a single grid dimension.
 */
function mergeBatch(
  batch: readonly number[],
  sa: number[],
  sb: number[],
  sc: number[],
): BatchDim[] {
  const dims: BatchDim[] = [];
  for (let d = 0; d < batch.length; d++) {
    if (batch[d] === 1) continue;
    const dim = { size: batch[d], a: sa[d], b: sb[d], c: sc[d] };
    const last = dims[dims.length - 1];
    if (
      last !== undefined && last.a === dim.a * dim.size && last.b === dim.b * dim.size &&
      last.c === dim.c * dim.size
    ) {
      dims[dims.length - 1] = { size: last.size * dim.size, a: dim.a, b: dim.b, c: dim.c };
    } else {
      dims.push(dim);
    }
  }
  return dims;
}

/**
 * [..., m, k]·[..., k, n] with the batch dims broadcast as in PyTorch: one batched GEMM over the
 * innermost merged batch dim (a batch times a shared matrix whose rows follow each other is one
 * GEMM of batch·m rows), the outer batch dims, if any remain, as separate dispatches.
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
  const out = gpuEmpty([...batch, m, n]);
  if (sizeOf(batch) === 0 || m === 0 || n === 0) return out;
  const cStrides = out.strides.slice(0, batch.length);
  const dims = mergeBatch(batch, batchStrides(a, batch), batchStrides(b, batch), cStrides);
  const inner = dims.pop() ?? { size: 1, a: 0, b: 0, c: 0 };
  const ars = a.strides[a.ndim - 2];
  const acs = a.strides[a.ndim - 1];
  const B = matrix(b, "matmul", b.strides[b.ndim - 2], b.strides[b.ndim - 1]);
  const C = matrix(out, "matmul", n, 1);
  let rows = m;
  let A = matrix(a, "matmul", ars, acs);
  let count = inner.size;
  // A shared B against stacked A matrices whose rows follow each other: one tall product.
  if (count > 1 && inner.b === 0 && (m === 1 || inner.a === m * ars)) {
    A = { ...A, rowStride: m === 1 ? inner.a : ars };
    rows = count * m;
    count = 1;
  }
  const outer = dims.reduce((s, d) => s * d.size, 1);
  const index = new Array<number>(dims.length).fill(0);
  let [ao, bo, co] = [0, 0, 0];
  for (let i = 0; i < outer; i++) {
    gpuGemmStrided(
      rows,
      n,
      k,
      { ...A, offset: A.offset + ao, batchStride: inner.a },
      { ...B, offset: B.offset + bo, batchStride: inner.b },
      { ...C, offset: C.offset + co, batchStride: inner.c },
      { batch: count },
    );
    for (let d = dims.length - 1; d >= 0; d--) {
      index[d]++;
      ao += dims[d].a;
      bo += dims[d].b;
      co += dims[d].c;
      if (index[d] < dims[d].size) break;
      ao -= dims[d].a * dims[d].size;
      bo -= dims[d].b * dims[d].size;
      co -= dims[d].c * dims[d].size;
      index[d] = 0;
    }
  }
  return out;
}

/** `matmul` on the device (forward only: the CPU backward is written in device-ready ops). */
const matmulOp: DeviceOp = {
  forward([a, b]) {
    if (a.ndim < 2 || b.ndim < 2) {
      throw new RangeError(
        `matmul: the primitive takes operands of 2 or more dims, got ${formatShape(a.shape)} and ${
          formatShape(b.shape)
        } (use matmul(), which handles vectors)`,
      );
    }
    return { out: product(a as Tensor, b as Tensor), saved: null };
  },
};

/** `linear` on the device: x·Wᵀ + b (then ReLU) in one GEMM, the gradients in two and a sum. */
const linearOp: DeviceOp = {
  forward([input, weight, bias], { relu }: LinearAttrs) {
    expectDType("linear", bias === undefined ? [input, weight] : [input, weight, bias], [
      "float32",
    ]);
    const [rows, inFeatures] = input.shape;
    const outFeatures = weight.shape[0];
    const out = gpuEmpty([rows, outFeatures]);
    // B(p, j) = W[j, p]: the weight read transposed through its strides.
    gpuGemmStrided(
      rows,
      outFeatures,
      inFeatures,
      matrix(input, "linear", input.strides[0], input.strides[1]),
      matrix(weight, "linear", weight.strides[1], weight.strides[0]),
      matrix(out, "linear", outFeatures, 1),
      {
        relu,
        bias: bias === undefined
          ? undefined
          : { ...matrix(bias, "linear", 0, 0), stride: bias.strides[0], per: "column" },
      },
    );
    return { out, saved: null };
  },
  backward(g, _saved, [input, weight, bias], { relu }: LinearAttrs, out) {
    const [rows, inFeatures] = input.shape;
    const outFeatures = weight.shape[0];
    const [gs0, gs1] = g.strides;
    const [ys0, ys1] = out.strides;
    const G = matrix(g, "linear backward", gs0, gs1);
    // The fused ReLU's mask: the gradient flows where the output was positive.
    const mask = relu ? matrix(out, "linear backward", ys0, ys1) : undefined;
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    let gb: Tensor | null = null;
    if (input.requiresGrad) {
      // gx [N, in] = G'·W.
      gx = gpuEmpty([rows, inFeatures]);
      gpuGemmStrided(
        rows,
        inFeatures,
        outFeatures,
        G,
        matrix(weight, "linear backward", weight.strides[0], weight.strides[1]),
        matrix(gx, "linear backward", inFeatures, 1),
        { maskA: mask },
      );
    }
    if (weight.requiresGrad) {
      // gw [out, in] = G'ᵀ·X: G and its mask read transposed.
      gw = gpuEmpty([outFeatures, inFeatures]);
      gpuGemmDense(
        outFeatures,
        inFeatures,
        rows,
        { ...G, rowStride: gs1, colStride: gs0 },
        matrix(input, "linear backward", input.strides[0], input.strides[1]),
        { storage: gpuStorage(gw, "linear backward"), offset: 0 },
        mask && { ...mask, rowStride: ys1, colStride: ys0 },
      );
    }
    if (bias !== undefined && bias.requiresGrad) {
      // gb [out] = 1ᵀ·G': the sum of each column of the masked gradient.
      gb = gpuEmpty([outFeatures]);
      const columns = (m: GpuMatrix) => ({
        storage: m.storage,
        offset: m.offset,
        inner: Math.max(rows, 1),
        outerStride: 0,
        innerStride: m.rowStride,
        colStride: m.colStride,
      });
      gpuColumnSum(
        columns(G),
        rows,
        outFeatures,
        mask === undefined ? null : columns(mask),
        gpuStorage(gb, "linear backward"),
        0,
      );
    }
    return bias === undefined ? [gx, gw] : [gx, gw, gb];
  },
};

/** The contiguous storage region of a dense device tensor. */
function region(t: AnyTensor, op: string) {
  return { storage: gpuStorage(t, op), offset: t.offset };
}

/** `conv2d` on the device: implicit GEMMs forward and backward (see `conv.ts`). */
const conv2dOp: DeviceOp = {
  forward([input, weight, bias], g: Conv2dAttrs) {
    expectDType("conv2d", bias === undefined ? [input, weight] : [input, weight, bias], [
      "float32",
    ]);
    const x = gpuDense(input);
    const w = gpuDense(weight);
    const [batch] = x.shape;
    const outChannels = w.shape[0];
    const out = gpuEmpty([batch, outChannels, g.outH, g.outW]);
    gpuConvForward({
      x: region(x, "conv2d"),
      batch,
      w: region(w, "conv2d"),
      outChannels,
      g,
      bias: bias === undefined ? null : { ...region(bias, "conv2d"), stride: bias.strides[0] },
      relu: g.relu === true,
      out: region(out, "conv2d"),
    });
    return { out, saved: null };
  },
  backward(gradOut, _saved, [input, weight, bias], g: Conv2dAttrs, out) {
    const op = "conv2d backward";
    const gy = gpuDense(gradOut);
    const x = gpuDense(input);
    const w = gpuDense(weight);
    const gx = input.requiresGrad ? gpuEmpty(input.shape) : null;
    const gw = weight.requiresGrad ? gpuEmpty(weight.shape) : null;
    const gb = bias !== undefined && bias.requiresGrad ? gpuEmpty(bias.shape) : null;
    gpuConvBackward({
      x: region(x, op),
      batch: x.shape[0],
      w: region(w, op),
      outChannels: w.shape[0],
      g,
      gy: region(gy, op),
      y: g.relu === true ? region(gpuDense(out), op) : null,
      gx: gx === null ? null : region(gx, op),
      gw: gw === null ? null : region(gw, op),
      gb: gb === null ? null : region(gb, op),
    });
    return bias === undefined ? [gx, gw] : [gx, gw, gb];
  },
};

/** `maxPool2d` on the device: the argmax of every window is saved as a device int32 tensor. */
const maxPool2dOp: DeviceOp = {
  forward([input], g: ConvGeometry) {
    expectDType("maxPool2d", [input], ["float32"]);
    const x = gpuDense(input);
    const [batch, channels] = x.shape;
    const out = gpuEmpty([batch, channels, g.outH, g.outW]);
    const argmax = gpuEmpty([batch, channels, g.outH, g.outW], "int32");
    gpuMaxPoolForward(
      region(x, "maxPool2d"),
      batch * channels,
      g,
      gpuStorage(out, "maxPool2d"),
      gpuStorage(argmax, "maxPool2d"),
    );
    return { out, saved: argmax };
  },
  backward(gradOut, argmax, [input], g: ConvGeometry) {
    const gy = gpuDense(gradOut);
    const gx = gpuEmpty(input.shape);
    gpuMaxPoolBackward(
      region(gy, "maxPool2d backward"),
      gpuStorage(argmax as Tensor<"int32">, "maxPool2d backward"),
      input.shape[0] * input.shape[1],
      g,
      gpuStorage(gx, "maxPool2d backward"),
    );
    return [gx];
  },
};

/** The product, convolution and pooling primitives on WebGPU. */
export const productOps: { readonly [P in Primitive]?: DeviceOp } = {
  matmul: matmulOp,
  linear: linearOp,
  conv2d: conv2dOp,
  maxPool2d: maxPool2dOp,
};
