/**
 * The WebGPU convolution and max pooling against the CPU reference kernels: forward (with and
 * without bias, fused ReLU) and every gradient, over strides 1-2, padding 0-1, 1×1 and rectangular
 * kernels, odd sizes, several channels and batches of 2-3, the weight gradient also split over K;
 * max pooling with overlapping and padded windows, ties and a NaN. Then the ops themselves: the
 * same conv2d / maxPool2d on the CPU and on the device, values and gradients. Small sizes: CI
 * runs a software adapter.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  convBackwardReference,
  convForwardReference,
  maxPoolBackward,
  maxPoolForward,
} from "../autograd/kernels/conv.ts";
import type { ConvGeometry } from "../autograd/kernels/conv.ts";
import {
  gpuConvBackward,
  gpuConvForward,
  gpuMaxPoolBackward,
  gpuMaxPoolForward,
} from "../autograd/kernels/webgpu/conv.ts";
import { productOps } from "../autograd/kernels/webgpu/matmul_ops.ts";
import { conv2d, gradients, maxPool2d, Rng, Tensor, useDevice } from "../mod.ts";
import { gpu, gpuTest } from "./helpers/webgpu.ts";

if (gpu !== null) await useDevice("webgpu");

function random(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

function geometry(
  [c, h, w]: [number, number, number],
  [kh, kw]: [number, number],
  stride: number,
  pad: number,
): ConvGeometry {
  return {
    channels: c,
    height: h,
    width: w,
    kernelH: kh,
    kernelW: kw,
    strideH: stride,
    strideW: stride,
    padH: pad,
    padW: pad,
    outH: Math.floor((h + 2 * pad - kh) / stride) + 1,
    outW: Math.floor((w + 2 * pad - kw) / stride) + 1,
  };
}

/** |got − want| within float32 rounding of a sum of `terms` terms of size ~`scale`. */
function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  terms: number,
  what: string,
  scale = 1,
): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const tolerance = 2e-6 * scale * Math.sqrt(terms + 1) * 4;
  for (let i = 0; i < want.length; i++) {
    const ok = Number.isNaN(want[i])
      ? Number.isNaN(got[i])
      : Math.abs(got[i] - want[i]) <= tolerance * (1 + Math.abs(want[i]));
    if (!ok) assert.fail(`${what}[${i}]: got ${got[i]}, expected ${want[i]}`);
  }
}

interface ConvCase {
  batch: number;
  image: [number, number, number];
  out: number;
  kernel: [number, number];
  stride: number;
  pad: number;
  bias: boolean;
  relu: boolean;
  slices?: number;
}

const CONV_CASES: ConvCase[] = [
  {
    batch: 2,
    image: [3, 7, 7],
    out: 4,
    kernel: [3, 3],
    stride: 1,
    pad: 1,
    bias: true,
    relu: false,
  },
  { batch: 3, image: [2, 9, 8], out: 5, kernel: [3, 3], stride: 2, pad: 1, bias: true, relu: true },
  {
    batch: 2,
    image: [4, 5, 5],
    out: 3,
    kernel: [1, 1],
    stride: 1,
    pad: 0,
    bias: false,
    relu: false,
  },
  { batch: 2, image: [3, 6, 7], out: 2, kernel: [1, 1], stride: 2, pad: 0, bias: true, relu: true },
  {
    batch: 1,
    image: [1, 1, 1],
    out: 1,
    kernel: [1, 1],
    stride: 1,
    pad: 0,
    bias: true,
    relu: false,
  },
  {
    batch: 2,
    image: [2, 5, 9],
    out: 3,
    kernel: [2, 4],
    stride: 2,
    pad: 1,
    bias: false,
    relu: true,
  },
  {
    batch: 3,
    image: [5, 11, 10],
    out: 7,
    kernel: [5, 5],
    stride: 1,
    pad: 2,
    bias: true,
    relu: true,
  },
  {
    batch: 3,
    image: [3, 8, 8],
    out: 4,
    kernel: [3, 3],
    stride: 1,
    pad: 0,
    bias: true,
    relu: true,
    slices: 3,
  },
];

Deno.test({
  name: "webgpu conv2d kernels: forward and gradients match the reference kernels",
  ...gpuTest,
  async fn() {
    const g0 = gpu!;
    let seed = 1;
    for (const c of CONV_CASES) {
      const rng = new Rng(seed++);
      const g = geometry(c.image, c.kernel, c.stride, c.pad);
      const [channels, height, width] = c.image;
      const patch = channels * c.kernel[0] * c.kernel[1];
      const pixels = g.outH * g.outW;
      const xSize = c.batch * channels * height * width;
      const ySize = c.batch * c.out * pixels;
      // Operands at nonzero offsets (a dense view inside a bigger buffer).
      const x = random(rng, 3 + xSize);
      const w = random(rng, 2 + c.out * patch);
      const bias = random(rng, 1 + c.out);
      const gy = random(rng, 4 + ySize);
      const what = JSON.stringify(c);

      const want = new Float32Array(ySize);
      convForwardReference({
        x,
        xOffset: 3,
        batch: c.batch,
        w,
        wOffset: 2,
        outChannels: c.out,
        g,
        bias: c.bias ? bias : null,
        biasOffset: 1,
        relu: c.relu,
        out: want,
        outOffset: 0,
      });
      const xg = g0.upload(x);
      const wg = g0.upload(w);
      const out = g0.upload(new Float32Array(1 + ySize).fill(NaN));
      gpuConvForward({
        x: { storage: xg, offset: 3 },
        batch: c.batch,
        w: { storage: wg, offset: 2 },
        outChannels: c.out,
        g,
        bias: c.bias ? { storage: g0.upload(bias), offset: 1, stride: 1 } : null,
        relu: c.relu,
        out: { storage: out, offset: 1 },
      });
      const got = await g0.read(out) as Float32Array;
      assert.ok(Number.isNaN(got[0]), `${what}: wrote before the output`);
      assertClose(got.subarray(1), want, patch, `${what} forward`);

      const gx = new Float32Array(xSize);
      const gw = new Float32Array(c.out * patch);
      const gb = new Float32Array(c.out);
      convBackwardReference({
        x,
        xOffset: 3,
        batch: c.batch,
        w,
        wOffset: 2,
        outChannels: c.out,
        g,
        gy,
        gyOffset: 4,
        y: c.relu ? want : null,
        yOffset: 0,
        gx,
        gxOffset: 0,
        gw,
        gwOffset: 0,
        gb,
        gbOffset: 0,
      });
      const gxg = g0.upload(new Float32Array(xSize).fill(NaN));
      const gwg = g0.upload(new Float32Array(c.out * patch).fill(NaN));
      const gbg = g0.upload(new Float32Array(c.out).fill(NaN));
      gpuConvBackward({
        x: { storage: xg, offset: 3 },
        batch: c.batch,
        w: { storage: wg, offset: 2 },
        outChannels: c.out,
        g,
        gy: { storage: g0.upload(gy), offset: 4 },
        y: c.relu ? { storage: out, offset: 1 } : null,
        gx: { storage: gxg, offset: 0 },
        gw: { storage: gwg, offset: 0 },
        gb: c.bias ? { storage: gbg, offset: 0 } : null,
        weightSlices: c.slices,
      });
      assertClose(await g0.read(gxg), gx, c.out * c.kernel[0] * c.kernel[1], `${what} gx`);
      assertClose(await g0.read(gwg), gw, c.batch * pixels, `${what} gw`);
      if (c.bias) assertClose(await g0.read(gbg), gb, c.batch * pixels, `${what} gb`);
    }
  },
});

Deno.test({
  name: "webgpu maxPool2d kernels: values, argmax and gradients match the reference",
  ...gpuTest,
  async fn() {
    const g0 = gpu!;
    const cases: [[number, number, number], [number, number], number, number][] = [
      [[3, 6, 6], [2, 2], 2, 0],
      [[2, 7, 5], [3, 3], 2, 1],
      [[2, 5, 5], [3, 3], 1, 1],
      [[1, 1, 1], [1, 1], 1, 0],
      [[2, 9, 7], [3, 2], 2, 1],
    ];
    let seed = 50;
    for (const [image, kernel, stride, pad] of cases) {
      const rng = new Rng(seed++);
      const batch = 2;
      const g = geometry(image, kernel, stride, pad);
      const planes = batch * image[0];
      const xSize = planes * image[1] * image[2];
      const ySize = planes * g.outH * g.outW;
      // Rounded values make ties, whose first element must win as on the CPU.
      const x = Float32Array.from({ length: 2 + xSize }, () => Math.round(rng.normal() * 2));
      if (xSize > 4) x[2 + 3] = NaN;
      const gy = random(rng, 1 + ySize);
      const what = JSON.stringify({ image, kernel, stride, pad });
      const want = new Float32Array(ySize);
      const wantArgmax = new Int32Array(ySize);
      maxPoolForward(x.subarray(2), planes, g, want, wantArgmax);
      const out = g0.alloc("float32", ySize);
      const argmax = g0.alloc("int32", ySize);
      gpuMaxPoolForward({ storage: g0.upload(x), offset: 2 }, planes, g, out, argmax);
      assertClose(await g0.read(out), want, 1, `${what} forward`);
      assert.deepEqual(Array.from(await g0.read(argmax)), Array.from(wantArgmax), `${what} argmax`);
      const gx = new Float32Array(xSize);
      maxPoolBackward(gy.subarray(1), wantArgmax, planes, g, gx);
      const gxg = g0.upload(new Float32Array(xSize).fill(NaN));
      gpuMaxPoolBackward({ storage: g0.upload(gy), offset: 1 }, argmax, planes, g, gxg);
      // The same additions in the same order: equal, not just close.
      assert.deepEqual(Array.from(await g0.read(gxg)), Array.from(gx), `${what} backward`);
    }
  },
});

/** A random CPU tensor of `shape` that requires grad. */
function leaf(rng: Rng, shape: number[]): Tensor {
  const t = new Tensor(random(rng, shape.reduce((a, d) => a * d, 1)), shape);
  t.requiresGrad = true;
  return t;
}

/** The same tensor moved to the device, a leaf that requires grad. */
function onDevice(t: Tensor): Tensor {
  const d = t.to("webgpu");
  d.requiresGrad = true;
  return d;
}

Deno.test({
  name: "webgpu conv2d and maxPool2d ops: the device's values and gradients are the CPU's",
  ...gpuTest,
  async fn() {
    assert.ok(productOps.conv2d && productOps.maxPool2d);
    const rng = new Rng(9);
    const convs: [number[], number[], { stride: number; padding: number; relu: boolean }][] = [
      [[2, 3, 7, 6], [4, 3, 3, 3], { stride: 2, padding: 1, relu: true }],
      [[3, 2, 5, 5], [3, 2, 1, 1], { stride: 1, padding: 0, relu: false }],
    ];
    for (const [xShape, wShape, options] of convs) {
      for (const withBias of [true, false]) {
        const x = leaf(rng, xShape);
        const w = leaf(rng, wShape);
        const b = leaf(rng, [wShape[0]]);
        const y = conv2d(x, w, withBias ? b : undefined, options);
        const gy = new Tensor(random(rng, y.size), y.shape);
        const inputs = withBias ? [x, w, b] : [x, w];
        const want = gradients(y, inputs, { gradOutput: gy });
        const dInputs = inputs.map(onDevice);
        const yd = conv2d(dInputs[0], dInputs[1], withBias ? dInputs[2] : undefined, options);
        assert.equal(yd.device, "webgpu");
        assert.deepEqual(yd.shape, y.shape);
        const what = JSON.stringify({ xShape, wShape, options, withBias });
        assertClose(await yd.read(), y.data, 27, `${what} y`);
        const got = gradients(yd, dInputs, { gradOutput: gy.to("webgpu") });
        for (let i = 0; i < inputs.length; i++) {
          assertClose(await got[i].read(), want[i].contiguous().data, 100, `${what} grad ${i}`, 2);
        }
      }
    }
    // A transposed (non-contiguous) input goes through its dense copy.
    const x = leaf(rng, [2, 3, 6, 5]);
    const xt = x.transpose(2, 3);
    const y = maxPool2d(xt, 3, { stride: 2, padding: 1 });
    const gy = new Tensor(random(rng, y.size), y.shape);
    const [want] = gradients(y, [x], { gradOutput: gy });
    const xd = onDevice(x);
    const yd = maxPool2d(xd.transpose(2, 3), 3, { stride: 2, padding: 1 });
    assert.deepEqual(Array.from(await yd.read()), Array.from(y.contiguous().data));
    const [got] = gradients(yd, [xd], { gradOutput: gy.to("webgpu") });
    assertClose(await got.read(), want.contiguous().data, 4, "maxPool2d grad");
  },
});
