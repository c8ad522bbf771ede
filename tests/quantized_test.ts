/**
 * Dynamic int8 quantization (`nn/quantized.ts`, `autograd/kernels/quantized.ts`): the row
 * quantizer on known values, the integer product of every kernel against a float64 sum of the
 * same integers (the wasm one bit for bit against the reference, on 1 and 2 threads, on edge
 * shapes), QuantizedLinear against the float Linear within the error bound the rounding allows,
 * its errors and state dict, and the shipped MNIST MLP's test error once quantized.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  kernels,
  noGrad,
  referenceKernels,
  Rng,
  setThreads,
  type Tensor,
  tensor,
  useKernels,
} from "../autograd/mod.ts";
import {
  dequantizeInto,
  paddedLength,
  quantizedDotReference,
  quantizedLinearReference,
  quantizeInputs,
  quantizeWeights,
} from "../autograd/kernels/quantized.ts";
import { createWasmEngine, threadsReady } from "../autograd/kernels/wasm/gemm.ts";
import { PLAIN_CONFIG } from "../autograd/kernels/wasm/kernels.ts";
import { quantizedLinearOn, wasmQuantizedLinearWith } from "../autograd/kernels/wasm/quantized.ts";
import { loadDnnl } from "../autograd/kernels/native/mod.ts";
import type { QuantizedLinearKernel } from "../autograd/kernels/types.ts";
import { wasmAvailable, wasmQuantizedLinear } from "../autograd/kernels/wasm/mod.ts";
import { persistentFloat32 } from "../autograd/kernels/wasm/memory.ts";
import { loadDataset } from "../data/datasets.ts";
import { DataLoader, normalizationFor } from "../data/loader.ts";
import { loadModel } from "../nn/checkpoint.ts";
import { Linear, type Module, QuantizedLinear, quantizeDynamic, Sequential } from "../nn/mod.ts";
import { createModel } from "../nn/models/registry.ts";
import { ROOT } from "./helpers/cli.ts";

/** Random weights in −127..127. */
function randomWeights(out: Int8Array, rng: Rng): Int8Array {
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rng.uniform() * 255) - 127;
  return out;
}

/** Random quantized inputs in 0..127. */
function randomInputs(out: Uint8Array, rng: Rng): Uint8Array {
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rng.uniform() * 128);
  return out;
}

/** Σ x·w of the same integers in float64 (exact: every partial sum is far below 2⁵³). */
function float64Dot(x: Uint8Array, w: Int8Array, m: number, n: number, kp: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < kp; p++) s += Number(x[i * kp + p]) * Number(w[j * kp + p]);
      out[i * n + j] = s;
    }
  }
  return out;
}

Deno.test("quantizeWeights: scale max|w|/127 per row, rounded half up, row sums, zero and NaN rows", () => {
  const src = new Float32Array([1, -2, 0.5, 0, 0, 0, 3, NaN, 1]);
  const out = new Int8Array(3 * 16).fill(99);
  const scales = new Float32Array(3);
  const sums = new Int32Array(3);
  quantizeWeights(src, 0, 3, 3, out, 16, scales, sums);
  const s0 = Math.fround(2 / 127);
  assert.equal(scales[0], s0);
  const q0 = [Math.floor(1 / s0 + 0.5), -127, Math.floor(0.5 / s0 + 0.5)];
  assert.deepEqual([...out.subarray(0, 3)], q0);
  assert.equal(sums[0], q0[0] + q0[1] + q0[2]);
  assert.deepEqual([...out.subarray(3, 16)], new Array(13).fill(0), "the padding is zeroed");
  assert.equal(scales[1], 0);
  assert.deepEqual([...out.subarray(16, 19)], [0, 0, 0]);
  assert.ok(Number.isNaN(scales[2]), "a NaN makes the row's scale NaN");
  assert.deepEqual([...out.subarray(32, 35)], [0, 0, 0]);
});

Deno.test("quantizeInputs: 0..127 over [min(0, x), max(0, x)], zero exact, NaN rows", () => {
  const src = new Float32Array([-1, 0, 3, 2, 4, 0.5, 0, 0, 0, 1, Infinity, 0]);
  const out = new Uint8Array(4 * 16).fill(200);
  const scales = new Float32Array(4);
  const zeros = new Int32Array(4).fill(-1);
  quantizeInputs(src, 0, 4, 3, out, 16, scales, zeros);
  const s0 = Math.fround(4 / 127);
  assert.equal(scales[0], s0);
  const z0 = Math.floor(1 / s0 + 0.5);
  assert.equal(zeros[0], z0);
  assert.deepEqual([...out.subarray(0, 3)], [Math.floor(-1 / s0 + 0.5) + z0, z0, 127]);
  assert.deepEqual([...out.subarray(3, 16)], new Array(13).fill(0), "the padding is zeroed");
  // All non-negative (ReLU outputs): zero point 0, the largest value 127.
  assert.equal(scales[1], Math.fround(4 / 127));
  assert.equal(zeros[1], 0);
  assert.deepEqual([...out.subarray(16, 19)], [Math.floor(2 / scales[1] + 0.5), 127, 16]);
  assert.equal(scales[2], 0);
  assert.equal(zeros[2], 0);
  assert.ok(Number.isNaN(scales[3]), "an infinity makes the row's scale NaN");
});

/** m, n, k: batch 1, partial tiles of 1–3 rows, K below, at and past a vector, the MLP's shapes. */
const DOT_SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 3, 15],
  [2, 5, 16],
  [3, 7, 17],
  [1, 4, 33],
  [4, 9, 100],
  [1, 512, 784],
  [1, 1024, 512],
  [5, 10, 1024],
  [33, 130, 300],
  [130, 70, 500], // past DNNL_MIN_MACS: oneDNN's product on its whole team
];

/** oneDNN, where it loads: its int8 product is checked beside the wasm kernels. */
const dnnl = loadDnnl().dnnl;
/** The int8 layer kernels every backend may run, oneDNN's products among them where it loads. */
function layerKernels(): { name: string; kernel: QuantizedLinearKernel }[] {
  const plainEngine = createWasmEngine(PLAIN_CONFIG);
  const all = [
    { name: "default", kernel: wasmQuantizedLinear },
    { name: "plain SIMD", kernel: quantizedLinearOn(() => plainEngine) },
  ];
  if (dnnl !== null) {
    all.push({
      name: "oneDNN products",
      kernel: wasmQuantizedLinearWith((...args) => dnnl.int8Product(...args)),
    });
  }
  return all;
}

Deno.test("quantizedDot: the reference kernel is the exact integer sum", () => {
  const rng = new Rng(1);
  for (const [m, n, k] of DOT_SHAPES) {
    const kp = paddedLength(k);
    const x = randomInputs(new Uint8Array(m * kp), rng);
    const w = randomWeights(new Int8Array(n * kp), rng);
    const out = new Int32Array(m * n);
    quantizedDotReference(x, w, out, m, n, kp);
    assert.deepEqual([...out], [...float64Dot(x, w, m, n, kp)], `${m}×${n}×${kp}`);
  }
});

Deno.test({
  name: "quantizedDot: oneDNN's int8 product is the exact integer sum, on 1 and 2 threads",
  ignore: dnnl === null,
  fn: () => {
    const rng = new Rng(3);
    try {
      for (const threads of [1, 2]) {
        dnnl!.setThreads(threads);
        for (const [m, n, k] of DOT_SHAPES) {
          const kp = paddedLength(k);
          const x = randomInputs(new Uint8Array(m * kp), rng);
          const w = randomWeights(new Int8Array(n * kp), rng);
          const out = new Int32Array(m * n).fill(-1);
          dnnl!.int8Product(x, w, out, m, n, kp);
          assert.deepEqual([...out], [...float64Dot(x, w, m, n, kp)], `${m}×${n}×${kp}`);
        }
      }
      assert.throws(
        () => dnnl!.int8Product(new Uint8Array(15), new Int8Array(16), new Int32Array(1), 1, 1, 16),
        /int8Product: 1x16 by 1x16 needs 16, 16 and 1 elements; got 15, 16 and 1/,
      );
    } finally {
      dnnl!.setThreads(2);
    }
  },
});

/** Random layer inputs, with rows of zeros, a NaN and an infinity among them when `special`. */
function randomLayerInput(rows: number, cols: number, rng: Rng, special: boolean): Float32Array {
  const x = Float32Array.from({ length: rows * cols }, () => rng.normal() * 3 - 0.5);
  if (special && rows >= 4) {
    x.fill(0, 0, cols); // an all-zero row
    x[cols + 1] = NaN;
    x[2 * cols] = -Infinity;
    for (let c = 0; c < cols; c++) x[3 * cols + c] = Math.abs(x[3 * cols + c]); // ReLU-like
  }
  return x;
}

/** A layer's int8 weights, scales and row sums from random floats. */
function randomLayer(n: number, k: number, rng: Rng, inMemory: boolean) {
  const kp = paddedLength(k);
  const store = inMemory ? persistentFloat32(n * kp / 4) : null;
  const weights = store
    ? new Int8Array(store.buffer, store.byteOffset, n * kp)
    : new Int8Array(n * kp);
  const weightScales = new Float32Array(n);
  const rowSums = new Int32Array(n);
  const floats = Float32Array.from({ length: n * k }, () => rng.normal());
  quantizeWeights(floats, 0, n, k, weights, kp, weightScales, rowSums);
  const bias = Float32Array.from({ length: n }, () => rng.normal());
  return { kp, weights, weightScales, rowSums, bias, store };
}

Deno.test({
  name:
    "quantizedLinear: wasm (relaxed and plain SIMD, oneDNN's products) gives the reference's bits, weights in or " +
    "out of its memory, with and without bias, 1 and 2 threads",
  ignore: !wasmAvailable,
  fn: async () => {
    const rng = new Rng(2);
    const kernelsToCheck = layerKernels();
    try {
      for (const threads of [1, 2]) {
        setThreads(threads);
        await threadsReady();
        for (const [m, n, k] of DOT_SHAPES) {
          for (const inMemory of [false, true]) {
            const layer = randomLayer(n, k, rng, inMemory);
            const x = randomLayerInput(m, k, rng, true);
            for (
              const [bias, relu] of [[layer.bias, false], [null, false], [
                layer.bias,
                true,
              ]] as const
            ) {
              const args = {
                relu,
                x,
                xOffset: 0,
                rows: m,
                inFeatures: k,
                outFeatures: n,
                rowLength: layer.kp,
                weights: layer.weights,
                weightScales: layer.weightScales,
                rowSums: layer.rowSums,
                bias,
              };
              const expected = new Float32Array(m * n);
              quantizedLinearReference({ ...args, out: expected });
              for (const { name, kernel } of kernelsToCheck) {
                const got = new Float32Array(m * n).fill(-1);
                kernel({ ...args, out: got });
                const what =
                  `${m}×${n}×${k}, ${name}, ${threads} threads, in memory ${inMemory}, ` +
                  `bias ${bias !== null}`;
                assert.deepEqual(
                  new Uint32Array(got.buffer),
                  new Uint32Array(expected.buffer),
                  what,
                );
              }
            }
          }
        }
      }
    } finally {
      setThreads(2);
    }
  },
});

Deno.test("quantizedDot: sums of 127·127 products at the longest row a test can afford stay exact", () => {
  const kp = 1024;
  const x = new Uint8Array(2 * kp).fill(127);
  x.fill(0, kp);
  const w = new Int8Array(4 * kp).fill(127);
  w.fill(-127, 2 * kp);
  const got = new Int32Array(8);
  quantizedDotReference(x, w, got, 2, 4, kp);
  const top = kp * 127 * 127;
  assert.deepEqual([...got], [top, top, -top, -top, 0, 0, 0, 0]);
});

Deno.test({
  name:
    "quantizedLinear: the extremes (every product ±127·127, zero point 127) on the wasm kernels and oneDNN's",
  ignore: !wasmAvailable,
  fn: () => {
    // Row 0 quantizes to u = 127 everywhere (zero point 0), row 1 to u = 0 with zero point 127;
    // the weights to q = ±127. Sums and zero-point terms reach ±1024·127².
    const k = 1024;
    const x = new Float32Array(2 * k).fill(2);
    x.fill(-2, k);
    const floats = new Float32Array(4 * k).fill(1);
    floats.fill(-1, 2 * k);
    const weights = new Int8Array(4 * k);
    const weightScales = new Float32Array(4);
    const rowSums = new Int32Array(4);
    quantizeWeights(floats, 0, 4, k, weights, k, weightScales, rowSums);
    const args = {
      x,
      xOffset: 0,
      rows: 2,
      inFeatures: k,
      outFeatures: 4,
      rowLength: k,
      weights,
      weightScales,
      rowSums,
      bias: null,
      relu: false,
    };
    const expected = new Float32Array(8);
    quantizedLinearReference({ ...args, out: expected });
    expected.forEach((v, i) => {
      const exact = [2048, 2048, -2048, -2048, -2048, -2048, 2048, 2048][i];
      assert.ok(Math.abs(v - exact) < 1e-3 * 2048, `${i}: ${v}`);
    });
    for (const { name, kernel } of layerKernels()) {
      const got = new Float32Array(8);
      kernel({ ...args, out: got });
      assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(expected.buffer), name);
    }
  },
});

/**
 * The most |y − ŷ| can be for one output when x and w are each off by at most half their step
 * (and a hair: the scales are rounded to float32): Σ (|x||Δw| + |ŵ||Δx|) plus float32 rounding.
 */
function errorBound(x: Float32Array, w: Float32Array, sx: number, sw: number, y: number): number {
  let bound = 0;
  for (let p = 0; p < x.length; p++) {
    const half = 0.5 + 1e-6;
    bound += Math.abs(x[p]) * sw * half + (Math.abs(w[p]) + sw * half) * sx * half;
  }
  return bound + 4e-7 * Math.abs(y) + 1e-7;
}

Deno.test("QuantizedLinear: within the rounding bound of the float Linear, on every backend alike", () => {
  const rng = new Rng(3);
  for (const [rows, inF, outF] of [[1, 784, 512], [7, 33, 10], [3, 5, 1]]) {
    const linear = new Linear(inF, outF, { rng });
    const q = new QuantizedLinear(linear);
    const x = tensor(Float32Array.from({ length: rows * inF }, () => rng.normal() * 2));
    const x2 = x.reshape([rows, inF]);
    const exact = noGrad(() => linear.call(x2)).toFloat32Array();
    const got = noGrad(() => q.call(x2));
    assert.deepEqual(got.shape, [rows, outF]);
    const y = got.toFloat32Array();
    const xs = x.toFloat32Array();
    const ws = linear.weight.toFloat32Array();
    const b = linear.bias!.toFloat32Array();
    for (let i = 0; i < rows; i++) {
      const xi = xs.subarray(i * inF, (i + 1) * inF);
      const sx = (Math.max(0, ...xi) - Math.min(0, ...xi)) / 127;
      for (let j = 0; j < outF; j++) {
        const wj = ws.subarray(j * inF, (j + 1) * inF);
        const sw = Math.max(...wj.map(Math.abs)) / 127;
        const diff = Math.abs(y[i * outF + j] - exact[i * outF + j]);
        const bound = errorBound(xi, wj, sx, sw, exact[i * outF + j] - b[j]);
        assert.ok(
          diff <= bound,
          `[${rows}, ${inF}]→${outF} (${i}, ${j}): off by ${diff} > ${bound}`,
        );
      }
    }
    // The reference kernels give the same floats: the integer sums are exact on both.
    const restore = useKernels(referenceKernels);
    try {
      assert.deepEqual(noGrad(() => q.call(x2)).toFloat32Array(), y);
    } finally {
      restore();
    }
    // The fused ReLU is ReLU of the result, as Linear.forward(x, { relu: true }) is.
    const fused = noGrad(() => q.forward(x2, { relu: true })).toFloat32Array();
    assert.deepEqual(fused, y.map((v) => (v > 0 ? v : 0)));
    const floatFused = noGrad(() => linear.forward(x2, { relu: true })).toFloat32Array();
    assert.deepEqual(floatFused, exact.map((v) => (v > 0 ? v : 0)));
    // Leading dimensions are kept, as Linear keeps them.
    assert.deepEqual(noGrad(() => q.call(x.reshape([1, rows, inF]))).shape, [1, rows, outF]);
  }
});

Deno.test("dequantizeInto: the zero point out, one float32 rounding of s · (sx · sw), then the bias", () => {
  const out = new Float32Array(2);
  const scales = {
    inputScales: new Float32Array([0.1]),
    zeroPoints: new Int32Array([5]),
    weightScales: new Float32Array([0.3, 0.7]),
    rowSums: new Int32Array([10, -2]),
  };
  dequantizeInto(new Int32Array([1000, -3]), 1, 2, scales, new Float32Array([0.5, 0]), false, out);
  const s0 = Math.fround(Math.fround(0.1) * Math.fround(0.3));
  assert.equal(out[0], Math.fround(Math.fround((1000 - 50) * s0) + 0.5));
  assert.equal(out[1], Math.fround((-3 + 10) * Math.fround(Math.fround(0.1) * Math.fround(0.7))));
});

Deno.test("QuantizedLinear: clear errors for training, shapes and dtypes", () => {
  const q = new QuantizedLinear(new Linear(4, 2));
  const x = tensor([[1, 2, 3, 4]], { requiresGrad: true });
  assert.throws(() => q.call(x), /QuantizedLinear: inference only.*noGrad/);
  assert.deepEqual(noGrad(() => q.call(x)).shape, [1, 2]);
  assert.throws(
    () => noGrad(() => q.call(tensor([[1, 2, 3]]))),
    /input \[1, 3\] does not match inFeatures 4/,
  );
  assert.throws(
    () => noGrad(() => q.call(tensor(new Int32Array(4)).reshape([1, 4]))),
    /expected a float32 tensor on the cpu, got int32/,
  );
  assert.throws(() => quantizeDynamic(new Linear(2, 2)), /use new QuantizedLinear\(linear\)/);
  assert.match(String(q), /QuantizedLinear\(inFeatures=4, outFeatures=2, bias=true, dtype=int8\)/);
});

Deno.test("quantizeDynamic: every Linear replaced (shared ones stay shared); the state dict is the float model's", () => {
  const shared = new Linear(3, 3);
  const net = new Sequential(new Linear(4, 3), shared, shared);
  const before = net.stateDict();
  const y0 = noGrad(() => net.call(tensor([[1, -1, 0.5, 2]])));
  assert.equal(quantizeDynamic(net), net);
  const layers = net.children();
  assert.ok(layers.every((l) => l instanceof QuantizedLinear));
  assert.equal(layers[1], layers[2]);
  assert.deepEqual(Object.keys(net.stateDict()), Object.keys(before));
  for (const [k, v] of Object.entries(net.stateDict())) {
    assert.deepEqual(v.toFloat32Array(), before[k].toFloat32Array(), k);
  }
  assert.equal(net.parameters().length, 0, "nothing left to train");
  const y1 = noGrad(() => net.call(tensor([[1, -1, 0.5, 2]]))).toFloat32Array();
  y0.toFloat32Array().forEach((v, i) => assert.ok(Math.abs(v - y1[i]) < 0.05, `${v} vs ${y1[i]}`));
});

Deno.test("quantizeDynamic: loading a state dict into the quantized model quantizes the new weights", () => {
  const a = createModel("mlp", { seed: 1, hidden: [32, 16] });
  const b = createModel("mlp", { seed: 2, hidden: [32, 16] });
  const x = tensor(Float32Array.from({ length: 2 * 784 }, (_, i) => Math.sin(i))).reshape([2, 784]);
  const expected = noGrad(() => quantizeDynamic(b).call(x)).toFloat32Array();
  const qa = quantizeDynamic(a);
  assert.notDeepEqual(noGrad(() => qa.call(x)).toFloat32Array(), expected);
  qa.loadStateDict(b.stateDict());
  assert.deepEqual(noGrad(() => qa.call(x)).toFloat32Array(), expected);
  // …and the quantized model's state dict loads into a float model.
  const float = createModel("mlp", { hidden: [32, 16] });
  float.loadStateDict(qa.stateDict());
  assert.ok(float.children().every((l) => l instanceof Linear));
});

Deno.test("quantizeDynamic: the shipped MNIST MLP keeps its test error and nearly every answer", async () => {
  const mnist = await loadDataset("mnist");
  const batches = (): DataLoader =>
    new DataLoader(mnist.test.images, mnist.test.labels, {
      batchSize: 1000,
      shuffle: false,
      normalization: normalizationFor("mnist"),
    });
  const predictions = (model: Module<[Tensor], Tensor>): Int32Array => {
    const out = new Int32Array(mnist.test.labels.length);
    let at = 0;
    for (const { x } of batches().epoch(0)) {
      const classes = noGrad(() => model.call(x).argmax(1));
      out.set(classes.values() as Int32Array, at);
      at += x.shape[0];
    }
    return out;
  };
  const { model } = await loadModel(join(ROOT, "models", "mnist-mlp.safetensors"));
  const float = predictions(model);
  const quantized = predictions(quantizeDynamic(model));
  const labels = mnist.test.labels;
  const errors = (p: Int32Array) => p.filter((c, i) => c !== labels[i]).length / labels.length;
  const agree = float.filter((c, i) => c === quantized[i]).length / labels.length;
  console.log(
    `  MNIST test error: float32 ${(errors(float) * 100).toFixed(2)}%, int8 ` +
      `${(errors(quantized) * 100).toFixed(2)}%; the same class for ${(agree * 100).toFixed(2)}%`,
  );
  assert.ok(Math.abs(errors(quantized) - errors(float)) <= 0.001, "test error moved by over 0.1%");
  assert.ok(agree >= 0.995, `only ${agree} of the answers agree`);
  assert.equal(
    kernels.quantizedLinear,
    wasmAvailable ? wasmQuantizedLinear : quantizedLinearReference,
  );
});
