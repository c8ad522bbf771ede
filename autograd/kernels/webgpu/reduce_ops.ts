/**
 * The WebGPU implementations of the reduction, softmax, loss, normalisation and indexing
 * primitives — `sum`, `mean`, `max`, `cumsum`, `prod`, `softmax`, `logSoftmax`, `crossEntropy`,
 * `nllLoss`, `layerNorm`, `gather`, `scatterAdd` — mirroring their CPU definitions in
 * `autograd/ops/` (same attributes, shapes and saved values), and the `argReduce` helper.
 *
 * A device backward is given only where the CPU rule reads host memory: softmax and log-softmax
 * (a kernel, or the CPU's own differentiable formula under `createGraph`), the two losses (the
 * loss scale lives on the device, so the gradient never reads the loss back), layerNorm (fused
 * kernels) and gather (whose CPU rule starts from a host zero tensor). Sum, mean, max, cumsum,
 * prod and scatterAdd have rules written in ops, which run on the device by themselves.
 *
 * The losses take their labels from the attributes: an `Int32Array` (uploaded once per array)
 * or an int32 device tensor, whose rows labelled `attrs.ignoreIndex` (default −100) are ignored
 * on the device, as are negative labels.
 *
 * @module
 */

import type { DeviceHelpers, DeviceOp } from "../../device.ts";
import { expectDType } from "../../dtype.ts";
import { mul, sub } from "../../ops/arith.ts";
import { scatterAdd } from "../../ops/index.ts";
import type { Primitive } from "../../ops/mod.ts";
import { sum } from "../../ops/reduce.ts";
import { exp } from "../../ops/unary.ts";
import { isGradEnabled } from "../../tape.ts";
import { type AnyTensor, Tensor } from "../../tensor.ts";
import {
  gpuArgReduce,
  gpuCrossEntropy,
  gpuCrossEntropyBackward,
  gpuCumsum,
  gpuGather,
  type GpuLabels,
  gpuLayerNorm,
  gpuLayerNormBackwardAffine,
  gpuLayerNormBackwardInput,
  gpuLossTargets,
  gpuNllLoss,
  gpuReduce,
  gpuScatterAdd,
  gpuSoftmax,
  gpuSoftmaxBackward,
  type GpuView,
  type LayerNormOperands,
  type ReduceKind,
} from "./reduce.ts";
import { type GpuStorage, webgpu } from "./runtime.ts";
import { copyStridedGpu, gpuDense, gpuEmpty, gpuStorage } from "./tensor.ts";

/** The strided view of a device tensor, as the kernels take it. */
function view(t: AnyTensor, op: string): GpuView {
  return { storage: gpuStorage(t, op), offset: t.offset, shape: t.shape, strides: t.strides };
}

/** Attributes of the reductions (as `autograd/ops/reduce.ts` and `stats.ts`). */
interface ReduceAttrs {
  dims: number[];
  keepDim: boolean;
}

/** The shape after reducing `dims`, kept as size 1 with `keepDim`. */
function reducedShape(shape: readonly number[], dims: readonly number[], keepDim: boolean) {
  const out: number[] = [];
  shape.forEach((size, i) => {
    if (!dims.includes(i)) out.push(size);
    else if (keepDim) out.push(1);
  });
  return out;
}

/** The keepDim-shaped fold of `x` over `dims` (a new contiguous tensor; `scale` for a sum). */
function reduce(kind: ReduceKind, x: AnyTensor, dims: readonly number[], scale = 1): Tensor {
  const out = gpuEmpty(reducedShape(x.shape, dims, true));
  gpuReduce(kind, view(x, kind), dims, gpuStorage(out, kind), 0, scale);
  return out;
}

/** `kept` (keepDim-shaped, contiguous) with the reduced dims removed unless `keepDim`. */
function shaped(kept: Tensor, x: AnyTensor, dims: readonly number[], keepDim: boolean): Tensor {
  return keepDim ? kept : new Tensor(kept.storage, reducedShape(x.shape, dims, false));
}

const sumOp: DeviceOp = {
  forward([x], { dims, keepDim }: ReduceAttrs) {
    return { out: shaped(reduce("sum", x, dims), x, dims, keepDim), saved: null };
  },
};

const meanOp: DeviceOp = {
  forward([x], { dims, keepDim }: ReduceAttrs) {
    const count = dims.reduce((n, d) => n * x.shape[d], 1);
    return { out: shaped(reduce("sum", x, dims, 1 / count), x, dims, keepDim), saved: null };
  },
};

/** Saves the keepDim-shaped maxima, as the CPU op (its backward finds the ties from them). */
const maxOp: DeviceOp = {
  forward([x], { dims, keepDim }: ReduceAttrs) {
    const kept = reduce("max", x, dims);
    return { out: shaped(kept, x, dims, keepDim), saved: kept };
  },
};

const prodOp: DeviceOp = {
  forward([x], { dims, keepDim }: ReduceAttrs) {
    expectDType("prod", [x], ["float32"]);
    return { out: shaped(reduce("prod", x, dims), x, dims, keepDim), saved: null };
  },
};

const cumsumOp: DeviceOp = {
  forward([x], { dim, reverse }: { dim: number; reverse: boolean }) {
    expectDType("cumsum", [x], ["float32"]);
    const source = gpuDense(x);
    const out = gpuEmpty(x.shape);
    const outer = x.shape.slice(0, dim).reduce((a, s) => a * s, 1);
    const inner = x.shape.slice(dim + 1).reduce((a, s) => a * s, 1);
    gpuCumsum(
      gpuStorage(source, "cumsum"),
      source.offset,
      outer,
      x.shape[dim],
      inner,
      reverse,
      gpuStorage(out, "cumsum"),
    );
    return { out, saved: null };
  },
};

/** Attributes of softmax and log-softmax (as `autograd/ops/softmax.ts`). */
interface AxisAttrs {
  dim: number;
  outer: number;
  n: number;
  inner: number;
}

function softmaxLike(log: boolean): DeviceOp {
  const name = log ? "logSoftmax" : "softmax";
  return {
    forward([x], { outer, n, inner }: AxisAttrs) {
      const input = gpuDense(x);
      const out = gpuEmpty(x.shape);
      gpuSoftmax(
        gpuStorage(input, name),
        input.offset,
        outer,
        n,
        inner,
        log,
        gpuStorage(out, name),
      );
      return { out, saved: null };
    },
    backward(g, _saved, _inputs, { dim, outer, n, inner }: AxisAttrs, out) {
      // Under createGraph, the CPU's differentiable formula (in ops that run here too).
      if (isGradEnabled()) {
        return [
          log
            ? sub(g, mul(exp(out), sum(g, dim, true)))
            : mul(out, sub(g, sum(mul(g, out), dim, true))),
        ];
      }
      const gd = gpuDense(g);
      const y = gpuDense(out);
      const gx = gpuEmpty(g.shape);
      gpuSoftmaxBackward(
        gpuStorage(gd, name),
        gd.offset,
        gpuStorage(y, name),
        y.offset,
        outer,
        n,
        inner,
        log,
        gpuStorage(gx, name),
      );
      return [gx];
    },
  };
}

/** Attributes of the losses (as `autograd/ops/softmax.ts`, plus what device labels need). */
interface LossAttrs {
  /** Host labels (ignored rows already −1), or an int32 device tensor [rows]. */
  labels: Int32Array | Tensor<"int32">;
  smoothing: number;
  reduction: "mean" | "sum";
  /** The label of ignored rows, for device labels (default −100, as PyTorch). */
  ignoreIndex?: number;
}

/** Device copies of host label arrays, made once per array (forward and backward share it). */
const uploaded = new WeakMap<Int32Array, GpuStorage>();

function deviceLabels(attrs: LossAttrs, op: string): GpuLabels {
  const { labels } = attrs;
  if (labels instanceof Int32Array) {
    let storage = uploaded.get(labels);
    if (storage === undefined) {
      storage = webgpu().upload(labels.length === 0 ? new Int32Array(1) : labels);
      uploaded.set(labels, storage);
    }
    return { storage, offset: 0, stride: 1, ignoreIndex: -1 };
  }
  return {
    storage: gpuStorage(labels, op),
    offset: labels.offset,
    stride: labels.strides[0] ?? 1,
    ignoreIndex: attrs.ignoreIndex ?? -100,
  };
}

/** What the device crossEntropy keeps: the probabilities and the loss scale (both on the device). */
interface CrossEntropySaved {
  probs: GpuStorage;
  scale: GpuStorage;
}

/** The loss is a device scalar: nothing is read back, forward or backward. */
const crossEntropyOp: DeviceOp = {
  forward([logits], attrs: LossAttrs) {
    const [rows, classes] = logits.shape;
    const x = gpuDense(logits);
    const gpu = webgpu();
    const probs = gpu.alloc("float32", Math.max(rows * classes, 1));
    const scale = gpu.alloc("float32", 1);
    const out = gpuEmpty([]);
    gpuCrossEntropy(
      gpuStorage(x, "crossEntropy"),
      x.offset,
      deviceLabels(attrs, "crossEntropy"),
      rows,
      classes,
      attrs.smoothing,
      attrs.reduction === "mean",
      probs,
      gpuStorage(out, "crossEntropy"),
      scale,
    );
    return { out, saved: { probs, scale } satisfies CrossEntropySaved };
  },
  backward(g, saved, [logits], attrs: LossAttrs) {
    const { probs, scale } = saved as CrossEntropySaved;
    const [rows, classes] = logits.shape;
    const gx = gpuEmpty(logits.shape);
    gpuCrossEntropyBackward(
      probs,
      deviceLabels(attrs, "crossEntropy backward"),
      rows,
      classes,
      attrs.smoothing,
      gpuStorage(g, "crossEntropy backward"),
      g.offset,
      scale,
      gpuStorage(gx, "crossEntropy backward"),
    );
    return [gx];
  },
};

/** Saves the loss scale (on the device); the gradient is −g·q in ops, as on the CPU. */
const nllLossOp: DeviceOp = {
  forward([logp], attrs: LossAttrs) {
    const scale = webgpu().alloc("float32", 1);
    const out = gpuEmpty([]);
    gpuNllLoss(
      view(logp, "nllLoss"),
      deviceLabels(attrs, "nllLoss"),
      attrs.reduction === "mean",
      gpuStorage(out, "nllLoss"),
      scale,
    );
    return { out, saved: scale };
  },
  backward(g, scale, [logp], attrs: LossAttrs) {
    const [rows, classes] = logp.shape;
    const q = gpuEmpty([rows, classes]);
    gpuLossTargets(
      deviceLabels(attrs, "nllLoss backward"),
      rows,
      classes,
      0,
      scale as GpuStorage,
      gpuStorage(q, "nllLoss backward"),
    );
    return [mul(g, q).neg()];
  },
};

/** Attributes of layerNorm (as `autograd/ops/norm.ts`). */
interface LayerNormAttrs {
  rows: number;
  n: number;
  eps: number;
  weight: boolean;
  bias: boolean;
}

/** The dense operands of a layerNorm call, from its inputs [x, weight?, bias?]. */
function layerNormOperands(inputs: readonly AnyTensor[], attrs: LayerNormAttrs) {
  const x = gpuDense(inputs[0] as Tensor);
  const w = attrs.weight ? gpuDense(inputs[1] as Tensor) : null;
  const b = attrs.bias ? gpuDense(inputs[attrs.weight ? 2 : 1] as Tensor) : null;
  const region = (t: Tensor | null) =>
    t === null ? null : { storage: gpuStorage(t, "layerNorm"), offset: t.offset };
  const operands: LayerNormOperands = {
    x: gpuStorage(x, "layerNorm"),
    xOffset: x.offset,
    weight: region(w),
    bias: region(b),
    rows: attrs.rows,
    n: attrs.n,
  };
  return operands;
}

/** Each row's mean and 1/√(var + ε), on the device (as the CPU's saved Float32Arrays). */
interface LayerNormSaved {
  mean: Tensor;
  rstd: Tensor;
}

const layerNormOp: DeviceOp = {
  forward(inputs, attrs: LayerNormAttrs) {
    expectDType("layerNorm", inputs, ["float32"]);
    const operands = layerNormOperands(inputs, attrs);
    const out = gpuEmpty(inputs[0].shape);
    const mean = gpuEmpty([attrs.rows]);
    const rstd = gpuEmpty([attrs.rows]);
    if (attrs.rows > 0 && attrs.n > 0) {
      gpuLayerNorm(
        operands,
        attrs.eps,
        gpuStorage(out, "layerNorm"),
        gpuStorage(mean, "layerNorm"),
        gpuStorage(rstd, "layerNorm"),
      );
    }
    return { out, saved: { mean, rstd } satisfies LayerNormSaved };
  },
  backward(gradOut, saved, inputs, attrs: LayerNormAttrs) {
    const { mean, rstd } = saved as LayerNormSaved;
    const operands = layerNormOperands(inputs, attrs);
    const g = gpuDense(gradOut);
    const gs = gpuStorage(g, "layerNorm backward");
    const ms = gpuStorage(mean, "layerNorm backward");
    const rs = gpuStorage(rstd, "layerNorm backward");
    const weight = attrs.weight ? inputs[1] : undefined;
    const bias = attrs.bias ? inputs[attrs.weight ? 2 : 1] : undefined;
    const gx = inputs[0].requiresGrad ? gpuEmpty(inputs[0].shape) : null;
    const gw = weight?.requiresGrad ? gpuEmpty(weight.shape) : null;
    const gb = bias?.requiresGrad ? gpuEmpty(bias.shape) : null;
    const empty = attrs.rows === 0 || attrs.n === 0;
    if (gx !== null && !empty) {
      gpuLayerNormBackwardInput(operands, gs, g.offset, ms, rs, gpuStorage(gx, "layerNorm"));
    }
    if (attrs.n > 0) {
      // With no rows the kernel still writes the (zero) sums.
      gpuLayerNormBackwardAffine(
        operands,
        gs,
        g.offset,
        ms,
        rs,
        gw === null ? null : gpuStorage(gw, "layerNorm"),
        gb === null ? null : gpuStorage(gb, "layerNorm"),
      );
    }
    const grads: (Tensor | null)[] = [gx];
    if (attrs.weight) grads.push(gw);
    if (attrs.bias) grads.push(gb);
    return grads;
  },
};

/** Out-of-range indices cannot throw without a read: they read NaN (see `reduce.ts`). */
const gatherOp: DeviceOp = {
  forward([x, index], { dim }: { dim: number }) {
    const out = gpuEmpty(index.shape, x.dtype);
    gpuGather(view(x, "gather"), dim, view(index, "gather"), gpuStorage(out, "gather"), x.dtype);
    return { out, saved: null };
  },
  backward(g, _saved, [x, index], { dim }: { dim: number }) {
    // The CPU rule scatters into a host zero tensor; here the zeros are on the device.
    return [scatterAdd(gpuEmpty(x.shape, "float32", true), dim, index as Tensor<"int32">, g), null];
  },
};

const scatterAddOp: DeviceOp = {
  forward([x, index, src], { dim }: { dim: number }) {
    expectDType("scatterAdd", [x, src], ["float32", "int32"]);
    const dtype = x.dtype as "float32" | "int32";
    const out = gpuEmpty(x.shape, dtype);
    copyStridedGpu(x, gpuStorage(out, "scatterAdd"), 0, out.strides);
    gpuScatterAdd(
      gpuStorage(out, "scatterAdd"),
      x.shape,
      dim,
      view(index, "scatterAdd"),
      view(src, "scatterAdd"),
      dtype,
    );
    return { out, saved: null };
  },
};

/** The reduction, softmax, loss, normalisation and indexing primitives on WebGPU. */
export const reduceOps: { readonly [P in Primitive]?: DeviceOp } = {
  sum: sumOp,
  mean: meanOp,
  max: maxOp,
  prod: prodOp,
  cumsum: cumsumOp,
  softmax: softmaxLike(false),
  logSoftmax: softmaxLike(true),
  crossEntropy: crossEntropyOp,
  nllLoss: nllLossOp,
  layerNorm: layerNormOp,
  gather: gatherOp,
  scatterAdd: scatterAddOp,
};

/** Index of the first maximum (or minimum) along `dim` on the device, int32 (NaN counts as both). */
export const argReduce: DeviceHelpers["argReduce"] = (kind, x, dim, keepDim) => {
  expectDType(kind, [x], ["float32"]);
  const out = gpuEmpty(reducedShape(x.shape, [dim], keepDim), "int32");
  if (x.shape[dim] === 0 && out.size > 0) {
    throw new RangeError(`${kind}: dimension ${dim} of the input is empty`);
  }
  gpuArgReduce(kind, view(x, kind), dim, gpuStorage(out, kind));
  return out;
};
