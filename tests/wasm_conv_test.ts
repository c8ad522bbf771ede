// Tests for the WebAssembly convolution path (autograd/kernels/wasm/conv.ts): forward and both
// backward passes against the reference kernels on the AlexNet layers and edge geometries (1×1,
// odd sizes, channel counts that need padding to a multiple of 4, strides and paddings, batch 1,
// fused ReLU), operands inside and outside the wasm memory, and bitwise 1-vs-2-thread equality.

import assert from "node:assert/strict";
import type { ConvGeometry } from "../autograd/kernels/conv.ts";
import { convBackwardReference, convForwardReference } from "../autograd/kernels/conv.ts";
import type { ConvBackwardArgs, ConvForwardArgs } from "../autograd/kernels/types.ts";
import {
  convKernelsOver,
  wasmConvBackward,
  wasmConvForward,
} from "../autograd/kernels/wasm/conv.ts";
import {
  setCallerComputes,
  setThreads,
  threadsReady,
  threadStats,
  wasmAvailable,
  wasmGemm,
} from "../autograd/kernels/wasm/gemm.ts";
import { wasmFloat32 } from "../autograd/kernels/wasm/memory.ts";
import { uniformSource } from "./helpers/reference.ts";

function filled(n: number, next: () => number, inWasm: boolean): Float32Array {
  const a = inWasm ? wasmFloat32(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = next();
  return a;
}

interface ConvCase {
  name: string;
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
}

function geometry(c: ConvCase): ConvGeometry {
  return {
    channels: c.C,
    height: c.H,
    width: c.W,
    kernelH: c.kh,
    kernelW: c.kw,
    strideH: c.sh,
    strideW: c.sw,
    padH: c.ph,
    padW: c.pw,
    outH: Math.floor((c.H + 2 * c.ph - c.kh) / c.sh) + 1,
    outW: Math.floor((c.W + 2 * c.pw - c.kw) / c.sw) + 1,
  };
}

const cases: ConvCase[] = [
  {
    name: "AlexNet conv1",
    N: 3,
    C: 1,
    H: 28,
    W: 28,
    O: 32,
    kh: 4,
    kw: 4,
    sh: 2,
    sw: 2,
    ph: 0,
    pw: 0,
  },
  {
    name: "AlexNet conv2",
    N: 2,
    C: 32,
    H: 13,
    W: 13,
    O: 64,
    kh: 3,
    kw: 3,
    sh: 2,
    sw: 2,
    ph: 1,
    pw: 1,
  },
  {
    name: "AlexNet conv3",
    N: 2,
    C: 64,
    H: 7,
    W: 7,
    O: 128,
    kh: 3,
    kw: 3,
    sh: 2,
    sw: 2,
    ph: 1,
    pw: 1,
  },
  {
    name: "1×1 everything",
    N: 1,
    C: 1,
    H: 1,
    W: 1,
    O: 1,
    kh: 1,
    kw: 1,
    sh: 1,
    sw: 1,
    ph: 0,
    pw: 0,
  },
  {
    name: "1×1 kernel, 5 channels",
    N: 2,
    C: 5,
    H: 3,
    W: 4,
    O: 3,
    kh: 1,
    kw: 1,
    sh: 1,
    sw: 1,
    ph: 0,
    pw: 0,
  },
  {
    name: "odd sizes, 3 channels",
    N: 3,
    C: 3,
    H: 9,
    W: 7,
    O: 5,
    kh: 3,
    kw: 2,
    sh: 1,
    sw: 2,
    ph: 1,
    pw: 0,
  },
  {
    name: "1 channel 3×3 pad 2",
    N: 1,
    C: 1,
    H: 6,
    W: 5,
    O: 7,
    kh: 3,
    kw: 3,
    sh: 1,
    sw: 1,
    ph: 2,
    pw: 2,
  },
  {
    name: "6 channels, stride 3",
    N: 2,
    C: 6,
    H: 11,
    W: 10,
    O: 9,
    kh: 3,
    kw: 3,
    sh: 3,
    sw: 3,
    ph: 1,
    pw: 1,
  },
  {
    name: "K over two blocks",
    N: 1,
    C: 48,
    H: 5,
    W: 5,
    O: 13,
    kh: 3,
    kw: 3,
    sh: 1,
    sw: 1,
    ph: 1,
    pw: 1,
  },
  {
    name: "batch 1 conv2",
    N: 1,
    C: 32,
    H: 13,
    W: 13,
    O: 64,
    kh: 3,
    kw: 3,
    sh: 2,
    sw: 2,
    ph: 1,
    pw: 1,
  },
  // Big enough per image that the batch is processed in chunks of images (3 + 1).
  {
    name: "chunked batch",
    N: 4,
    C: 64,
    H: 64,
    W: 64,
    O: 8,
    kh: 3,
    kw: 3,
    sh: 1,
    sw: 1,
    ph: 1,
    pw: 1,
  },
];

function tolerance(expected: Float32Array, got: Float32Array, what: string, k: number): void {
  assert.equal(got.length, expected.length);
  let scale = 0;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  const tol = (4 * k + 8) * 2 ** -24 * Math.max(scale, 1e-3);
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(got[i] - expected[i]) <= tol)) {
      assert.fail(`${what}: element ${i} = ${got[i]}, expected ${expected[i]} (tolerance ${tol})`);
    }
  }
}

interface Run {
  out: Float32Array;
  gx: Float32Array;
  gw: Float32Array;
  gb: Float32Array;
}

function runConv(
  c: ConvCase,
  fwd: (a: ConvForwardArgs) => void,
  bwd: (a: ConvBackwardArgs) => void,
  relu: boolean,
  inWasm: boolean,
  seed: number,
): Run {
  const g = geometry(c);
  const next = uniformSource(seed);
  const off = 3; // every operand starts a few elements into its array
  const xN = c.N * c.C * c.H * c.W;
  const wN = c.O * c.C * c.kh * c.kw;
  const yN = c.N * c.O * g.outH * g.outW;
  const x = filled(off + xN, next, inWasm);
  const w = filled(off + wN, next, inWasm);
  const bias = filled(off + c.O, next, inWasm);
  const out = filled(off + yN, next, inWasm).fill(NaN, off);
  fwd({
    x,
    xOffset: off,
    batch: c.N,
    w,
    wOffset: off,
    outChannels: c.O,
    g,
    bias,
    biasOffset: off,
    relu,
    out,
    outOffset: off,
  });
  const gy = filled(off + yN, next, inWasm);
  const gx = filled(off + xN, next, inWasm).fill(NaN, off);
  const gw = filled(off + wN, next, inWasm).fill(NaN, off);
  const gb = filled(off + c.O, next, inWasm).fill(NaN, off);
  bwd({
    x,
    xOffset: off,
    batch: c.N,
    w,
    wOffset: off,
    outChannels: c.O,
    g,
    gy,
    gyOffset: off,
    y: relu ? out : null,
    yOffset: off,
    gx,
    gxOffset: off,
    gw,
    gwOffset: off,
    gb,
    gbOffset: off,
  });
  for (const a of [out, gx, gw, gb]) {
    assert.ok(a.subarray(0, off).every((v, i) => v === a[i]), "prefix untouched");
  }
  return {
    out: out.slice(off),
    gx: gx.slice(off),
    gw: gw.slice(off),
    gb: gb.slice(off),
  };
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

Deno.test({
  name:
    "wasm conv forward, input, filter and bias gradients match the reference, packed and on explicit operands",
  ignore: !wasmAvailable,
  fn() {
    const explicit = convKernelsOver(wasmGemm);
    let seed = 1;
    for (const c of cases) {
      for (const relu of [false, true]) {
        for (const inWasm of c.name === "chunked batch" ? [false] : [false, true]) {
          const label = `${c.name}${relu ? " +relu" : ""}${inWasm ? " in-wasm" : ""}`;
          const ref = runConv(c, convForwardReference, convBackwardReference, relu, false, seed);
          // The packed path, and the explicit operands the native backend hands to BLAS (here
          // to the wasm GEMM, so the im2row path is checked without a BLAS library).
          for (
            const [path, fwd, bwd] of [["packed", wasmConvForward, wasmConvBackward], [
              "explicit",
              explicit.convForward,
              explicit.convBackward,
            ]] as const
          ) {
            const got = runConv(c, fwd, bwd, relu, inWasm, seed);
            const k = c.C * c.kh * c.kw;
            const g = geometry(c);
            const what = `${label} ${path}`;
            tolerance(ref.out, got.out, `${what} forward`, k);
            tolerance(ref.gx, got.gx, `${what} input gradient`, c.O * c.kh * c.kw);
            tolerance(ref.gw, got.gw, `${what} filter gradient`, c.N * g.outH * g.outW);
            tolerance(ref.gb, got.gb, `${what} bias gradient`, c.N * g.outH * g.outW);
          }
          seed++;
        }
      }
    }
  },
});

Deno.test({
  name: "wasm conv: bitwise identical results on 1 and 2 threads (AlexNet layers, batch 32)",
  ignore: !wasmAvailable,
  async fn() {
    const layers = cases.slice(0, 3).map((c) => ({ ...c, N: 32 }));
    try {
      setThreads(1);
      const one = layers.map((c, i) =>
        runConv(c, wasmConvForward, wasmConvBackward, true, false, i)
      );
      setThreads(2);
      await threadsReady();
      const before = threadStats().parallelJobs;
      const two = layers.map((c, i) =>
        runConv(c, wasmConvForward, wasmConvBackward, true, false, i)
      );
      assert.ok(threadStats().parallelJobs > before, "expected jobs to run on two threads");
      // The workers alone (the calling thread only waits) must give the same bits too.
      setCallerComputes(false);
      const workers = layers.map((c, i) =>
        runConv(c, wasmConvForward, wasmConvBackward, true, false, i)
      );
      for (let i = 0; i < layers.length; i++) {
        for (const key of ["out", "gx", "gw", "gb"] as const) {
          assert.ok(
            bitsEqual(one[i][key], two[i][key]),
            `${layers[i].name} ${key}: 1 vs 2 threads`,
          );
          assert.ok(bitsEqual(one[i][key], workers[i][key]), `${layers[i].name} ${key}: workers`);
        }
      }
    } finally {
      setCallerComputes(true);
      setThreads(navigator.hardwareConcurrency ?? 1);
    }
  },
});
