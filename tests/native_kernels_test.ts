/**
 * The native (system BLAS) kernels against the reference kernels: GEMM in every layout and on
 * edge shapes, the Linear layer's passes, the batched convolution passes, operands on the
 * JavaScript heap and in the wasm memory, and the operand checks that keep native code inside
 * its arrays. Every test is skipped, with the loader's reason printed once, where no BLAS loads.
 */

import assert from "node:assert/strict";
import { type ConvGeometry, referenceKernels, Rng } from "../mod.ts";
import { loadBlas, loadDnnl, nativeKernels } from "../autograd/kernels/native/mod.ts";
import { wasmAvailable, wasmFloat32 } from "../autograd/kernels/wasm/mod.ts";
import type { ConvBackwardArgs, LinearBackwardArgs } from "../autograd/kernels/types.ts";
import { allGemmCases, checkGemm } from "./helpers/gemm_cases.ts";

const load = loadBlas();
const ignore = load.blas === null;
const native = load.blas === null ? null : nativeKernels(load.blas);
const dnnlLoad = loadDnnl();

Deno.test("native backend: a BLAS loads here (or the tests below are skipped, and why)", () => {
  if (ignore) console.log(`native tests skipped: ${load.reason}`);
  else console.log(`native BLAS: ${load.reason}`);
});

function random(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** |got − want| within float32 rounding of sums of `terms` products of magnitude ~1. */
function assertClose(got: Float32Array, want: Float32Array, terms: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const tolerance = 2e-6 * Math.sqrt(terms + 1) * 8;
  for (let i = 0; i < got.length; i++) {
    const scale = 1 + Math.abs(want[i]);
    // NaN on both sides: an element neither kernel writes (a gradient that was not asked for).
    if (Number.isNaN(got[i]) && Number.isNaN(want[i])) continue;
    if (!(Math.abs(got[i] - want[i]) <= tolerance * scale)) {
      assert.fail(`${what}: element ${i} is ${got[i]}, the reference gives ${want[i]}`);
    }
  }
}

Deno.test({
  name:
    "native GEMM: all four layouts, edge shapes (1×1×1, odd, K not a multiple of 8/16, m = 1), offsets, padded rows, beta 0 over NaN and beta 1",
  ignore,
  fn() {
    allGemmCases().forEach((c, i) => checkGemm(native!.gemm, c, i));
    for (const [m, n, k] of [[2, 3, 15], [9, 17, 31], [128, 10, 1023], [1, 7, 17], [130, 1, 9]]) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          checkGemm(native!.gemm, { transA, transB, m, n, k, beta: 1 }, m * n + k);
        }
      }
    }
  },
});

Deno.test({
  name: "native GEMM: operands in the wasm memory are read and written in place",
  ignore: ignore || !wasmAvailable,
  fn() {
    const rng = new Rng(3);
    const [m, n, k] = [37, 29, 41];
    const a = wasmFloat32(m * k);
    const b = wasmFloat32(n * k);
    const c = wasmFloat32(m * n);
    a.set(random(m * k, rng));
    b.set(random(n * k, rng));
    const want = new Float32Array(m * n);
    referenceKernels.gemm(false, true, m, n, k, a, 0, k, b, 0, k, 0, want, 0, n);
    native!.gemm(false, true, m, n, k, a, 0, k, b, 0, k, 0, c, 0, n);
    assertClose(c, want, k, "wasm-memory C");
    // Mixed: A on the JavaScript heap, B in the wasm memory, C on the heap at an offset.
    const aHeap = a.slice();
    const cHeap = new Float32Array(m * n + 3).fill(NaN);
    native!.gemm(false, true, m, n, k, aHeap, 0, k, b, 0, k, 0, cHeap, 3, n);
    assertClose(cHeap.subarray(3), want, k, "heap C");
  },
});

Deno.test({
  name: "native GEMM: an operand that overruns its array is refused before native code runs",
  ignore,
  fn() {
    const a = new Float32Array(12);
    const b = new Float32Array(12);
    const c = new Float32Array(9);
    assert.throws(
      () => native!.gemm(false, false, 3, 3, 5, a, 0, 4, b, 0, 3, 0, c, 0, 3),
      /nativeGemm A·B m=3 n=3 k=5: A stored \[3,5\].*leading dimension 4 is invalid/,
    );
    assert.throws(
      () => native!.gemm(false, false, 3, 3, 4, a, 1, 4, b, 0, 3, 0, c, 0, 3),
      /nativeGemm A·B m=3 n=3 k=4: A stored \[3,4\] \(offset 1, ld 4\) overruns its array of 12/,
    );
    assert.throws(
      () => native!.gemm(false, false, 3, 3, 4, a, 0, 4, b, 0, 3, 0, c, 1, 3),
      /C stored \[3,3\] \(offset 1, ld 3\) overruns/,
    );
    assert.throws(
      () => native!.gemm(false, false, 3, 3, 4, a, 0, 4, b, 0, 3, 0.5, c, 0, 3),
      /beta must be 0 or 1/,
    );
  },
});

interface LinearCase {
  rows: number;
  inF: number;
  outF: number;
  xTrans: boolean;
  bias: boolean;
  relu: boolean;
}

const linearCases: LinearCase[] = [
  { rows: 1, inF: 1, outF: 1, xTrans: false, bias: true, relu: false },
  { rows: 1, inF: 784, outF: 512, xTrans: false, bias: true, relu: true },
  { rows: 7, inF: 13, outF: 5, xTrans: false, bias: false, relu: true },
  { rows: 128, inF: 1024, outF: 10, xTrans: false, bias: true, relu: false },
  { rows: 33, inF: 15, outF: 17, xTrans: true, bias: true, relu: true },
  { rows: 5, inF: 31, outF: 9, xTrans: true, bias: false, relu: false },
  { rows: 64, inF: 257, outF: 130, xTrans: false, bias: true, relu: true },
];

type LinearKernels = Pick<typeof referenceKernels, "linearForward" | "linearBackward">;

/** Every case of `linearCases` through `kernels`, forward and backward, against the reference. */
function checkLinears(kernels: LinearKernels): void {
  linearCases.forEach((c, index) => {
    const rng = new Rng(100 + index);
    const what = `linear ${JSON.stringify(c)}`;
    const ldx = c.xTrans ? c.rows + 2 : c.inF + 3;
    const x = random(2 + (c.xTrans ? c.inF : c.rows) * ldx, rng);
    const w = random(1 + c.outF * c.inF, rng);
    const bias = c.bias ? random(c.outF + 4, rng) : null;
    const operands = {
      x,
      xOffset: 2,
      xTrans: c.xTrans,
      ldx,
      rows: c.rows,
      inFeatures: c.inF,
      w,
      wOffset: 1,
      outFeatures: c.outF,
    };
    const forward = (kernel: typeof referenceKernels.linearForward) => {
      const out = new Float32Array(c.rows * c.outF + 1).fill(NaN);
      kernel({ ...operands, bias, biasOffset: 4, relu: c.relu, out, outOffset: 1 });
      return out;
    };
    const want = forward(referenceKernels.linearForward);
    const got = forward(kernels.linearForward);
    assertClose(got.subarray(1), want.subarray(1), c.inF, `${what} forward`);

    const gy = random(c.rows * c.outF, rng);
    const backward = (kernel: typeof referenceKernels.linearBackward) => {
      const gx = new Float32Array(c.rows * c.inF).fill(NaN);
      const gw = random(c.outF * c.inF, new Rng(7)); // accumulated into
      const gb = random(c.outF, new Rng(8));
      const args: LinearBackwardArgs = {
        ...operands,
        gy,
        gyOffset: 0,
        y: c.relu ? want : null,
        yOffset: 1,
        gx,
        gxOffset: 0,
        gw,
        gwOffset: 0,
        gb,
        gbOffset: 0,
      };
      kernel(args);
      return { gx, gw, gb };
    };
    const r = backward(referenceKernels.linearBackward);
    const n = backward(kernels.linearBackward);
    assertClose(n.gx, r.gx, c.outF, `${what} gx`);
    assertClose(n.gw, r.gw, c.rows, `${what} gw`);
    assertClose(n.gb, r.gb, c.rows, `${what} gb`);
  });
}

Deno.test({
  name:
    "native Linear forward and backward match the reference (1×1, odd sizes, transposed X, fused ReLU, no bias)",
  ignore,
  fn() {
    checkLinears(native!);
  },
});

function geometry(
  channels: number,
  height: number,
  width: number,
  kernelH: number,
  kernelW: number,
  stride: [number, number],
  pad: [number, number],
): ConvGeometry {
  const [strideH, strideW] = stride;
  const [padH, padW] = pad;
  return {
    channels,
    height,
    width,
    kernelH,
    kernelW,
    strideH,
    strideW,
    padH,
    padW,
    outH: Math.floor((height + 2 * padH - kernelH) / strideH) + 1,
    outW: Math.floor((width + 2 * padW - kernelW) / strideW) + 1,
  };
}

const convCases: { g: ConvGeometry; batch: number; out: number; bias: boolean; relu: boolean }[] = [
  { g: geometry(1, 1, 1, 1, 1, [1, 1], [0, 0]), batch: 1, out: 1, bias: true, relu: false },
  { g: geometry(1, 28, 28, 4, 4, [2, 2], [0, 0]), batch: 3, out: 32, bias: true, relu: true },
  { g: geometry(3, 7, 9, 3, 3, [2, 1], [1, 1]), batch: 2, out: 5, bias: false, relu: true },
  { g: geometry(5, 6, 5, 2, 3, [1, 2], [0, 1]), batch: 4, out: 7, bias: true, relu: false },
  { g: geometry(32, 13, 13, 3, 3, [2, 2], [1, 1]), batch: 2, out: 64, bias: true, relu: true },
  { g: geometry(2, 5, 5, 5, 5, [1, 1], [2, 2]), batch: 1, out: 3, bias: true, relu: true },
];

type ConvKernels = Pick<typeof referenceKernels, "convForward" | "convBackward">;

/** Every case of `convCases` through `kernels`, forward and backward, against the reference. */
function checkConvs(kernels: ConvKernels): void {
  convCases.forEach((c, index) => {
    const rng = new Rng(200 + index);
    const what = `conv ${JSON.stringify(c)}`;
    const { g, batch, out: O } = c;
    const K = g.channels * g.kernelH * g.kernelW;
    const P = g.outH * g.outW;
    const x = random(3 + batch * g.channels * g.height * g.width, rng);
    const w = random(2 + O * K, rng);
    const bias = c.bias ? random(O + 1, rng) : null;
    const operands = { x, xOffset: 3, batch, w, wOffset: 2, outChannels: O, g };
    const forward = (kernel: typeof referenceKernels.convForward) => {
      const out = new Float32Array(1 + batch * O * P).fill(NaN);
      kernel({ ...operands, bias, biasOffset: 1, relu: c.relu, out, outOffset: 1 });
      return out;
    };
    const want = forward(referenceKernels.convForward);
    const got = forward(kernels.convForward);
    assertClose(got.subarray(1), want.subarray(1), K, `${what} forward`);

    const gy = random(batch * O * P, rng);
    // Each gradient alone too: the kernels build different passes for each request.
    for (const need of ["all", "gx", "gw", "gb"]) {
      const backward = (kernel: typeof referenceKernels.convBackward) => {
        const gx = new Float32Array(1 + batch * g.channels * g.height * g.width).fill(NaN);
        const gw = new Float32Array(2 + O * K).fill(NaN);
        const gb = new Float32Array(3 + O).fill(NaN);
        const args: ConvBackwardArgs = {
          ...operands,
          gy,
          gyOffset: 0,
          y: c.relu ? want : null,
          yOffset: 1,
          gx: need === "all" || need === "gx" ? gx : null,
          gxOffset: 1,
          gw: need === "all" || need === "gw" ? gw : null,
          gwOffset: 2,
          gb: need === "all" || need === "gb" ? gb : null,
          gbOffset: 3,
        };
        kernel(args);
        return { gx: gx.subarray(1), gw: gw.subarray(2), gb: gb.subarray(3) };
      };
      const r = backward(referenceKernels.convBackward);
      const n = backward(kernels.convBackward);
      assertClose(n.gx, r.gx, O * g.kernelH * g.kernelW, `${what} gx (${need})`);
      assertClose(n.gw, r.gw, batch * P, `${what} gw (${need})`);
      assertClose(n.gb, r.gb, batch * P, `${what} gb (${need})`);
    }
  });
}

Deno.test({
  name:
    "native convolution (im2col on BLAS) forward and backward match the reference (strides, padding, K = 1, 16, 27, 30, 288, 50)",
  ignore,
  fn() {
    checkConvs(native!);
  },
});

Deno.test({
  name:
    "native convolution on oneDNN: forward and backward match the reference on every shape, none falling back",
  ignore,
  fn() {
    if (dnnlLoad.dnnl === null) {
      console.log(`oneDNN test skipped: ${dnnlLoad.reason}`);
      return;
    }
    console.log(`oneDNN: ${dnnlLoad.reason}`);
    const refuse = () => {
      throw new Error("oneDNN refused a shape and fell back");
    };
    checkConvs(dnnlLoad.dnnl.convKernels({ convForward: refuse, convBackward: refuse }, 0));
  },
});

Deno.test({
  name: "native Linear with its ReLU and mask on oneDNN matches the reference",
  ignore: ignore || dnnlLoad.dnnl === null,
  fn() {
    checkLinears(nativeKernels(load.blas!, dnnlLoad.dnnl));
  },
});

Deno.test({
  name: "oneDNN ReLU (alone and fused into a convolution) maps NaN and −0 to +0, as the reference",
  ignore: ignore || dnnlLoad.dnnl === null,
  fn() {
    const dnnl = dnnlLoad.dnnl!;
    const edges = [NaN, -0, -1, 1, -NaN, Infinity, -Infinity, 1e-45];
    const x = new Float32Array(64);
    x.set(edges);
    const want = new Float32Array(64);
    referenceKernels.unary("relu", x, 0, want, 0, 64, 0);
    const got = new Float32Array(64);
    dnnl.relu(x, 0, got, 0, 64);
    assert.deepEqual(Array.from(got).map(String), Array.from(want).map(String));
    assert.ok(got.every((v, i) => Object.is(v, want[i])), "signs of zero differ");

    const g = geometry(1, 8, 8, 1, 1, [1, 1], [0, 0]);
    const refuse = () => {
      throw new Error("fell back");
    };
    const conv = dnnl.convKernels({ convForward: refuse, convBackward: refuse }, 0);
    const run = (kernel: typeof referenceKernels.convForward) => {
      const out = new Float32Array(64);
      const w = new Float32Array([1]);
      const bias = new Float32Array([0]);
      kernel({
        x,
        xOffset: 0,
        w,
        wOffset: 0,
        bias,
        biasOffset: 0,
        relu: true,
        out,
        outOffset: 0,
        batch: 1,
        outChannels: 1,
        g,
      });
      return out;
    };
    const fused = run(conv.convForward);
    const reference = run(referenceKernels.convForward);
    assert.ok(fused.every((v, i) => Object.is(v, reference[i])), `${fused} against ${reference}`);
  },
});

Deno.test({
  name:
    "oneDNN plans: past 32 shapes the oldest plan's objects are destroyed, so the count stays bounded, and an evicted shape rebuilds right",
  ignore: ignore || dnnlLoad.dnnl === null,
  fn() {
    const dnnl = dnnlLoad.dnnl!;
    const refuse = () => {
      throw new Error("fell back");
    };
    const conv = dnnl.convKernels({ convForward: refuse, convBackward: refuse }, 0);
    const g = geometry(2, 6, 6, 3, 3, [1, 1], [1, 1]);
    const O = 3;
    const rng = new Rng(7);
    const w = random(O * 2 * 9, rng);
    const bias = random(O, rng);
    /** Forward and backward at `batch`; the forward's result against the reference's. */
    const pass = (batch: number): void => {
      const x = random(batch * 2 * 36, rng);
      const operands = { x, xOffset: 0, batch, w, wOffset: 0, outChannels: O, g };
      const forward = (kernel: typeof referenceKernels.convForward) => {
        const out = new Float32Array(batch * O * 36);
        kernel({ ...operands, bias, biasOffset: 0, relu: false, out, outOffset: 0 });
        return out;
      };
      assertClose(forward(conv.convForward), forward(referenceKernels.convForward), 18, "forward");
      conv.convBackward({
        ...operands,
        gy: random(batch * O * 36, rng),
        gyOffset: 0,
        y: null,
        yOffset: 0,
        gx: new Float32Array(x.length),
        gxOffset: 0,
        gw: new Float32Array(w.length),
        gwOffset: 0,
        gb: new Float32Array(O),
        gbOffset: 0,
      });
    };
    const before = dnnl.liveObjects();
    const round = (first: number) => {
      for (let batch = first; batch < first + 40; batch++) pass(batch);
      return dnnl.liveObjects();
    };
    // Each round builds 40 plans of each kind into caches of 32; the first and third rounds end
    // with the same 32 shapes cached, so with the same objects alive.
    const first = round(1);
    assert.ok(first > before, `no objects counted (${before} → ${first})`);
    round(41);
    assert.equal(round(1), first, "oneDNN objects of evicted plans were not destroyed");
  },
});
