/**
 * The WebGPU reductions, softmax family, losses, layerNorm, gather and scatter-add against the
 * CPU: each device op's forward (and, where the device has its own rule, backward) on the same
 * inputs as the CPU op, over 1-element, odd and long extents (the one-thread-per-output and the
 * workgroup-tree paths), the first, middle, last and all dims, and strided views (transposed,
 * narrowed with an offset, expanded). Then the ops' gradients end to end on the device. Small
 * sizes: CI runs a software adapter.
 *
 * @module
 */

import assert from "node:assert/strict";
import { reduceOps } from "../autograd/kernels/webgpu/reduce_ops.ts";
import { COLUMN_MIN_OUTPUTS, SERIAL_MAX } from "../autograd/kernels/webgpu/reduce.ts";
import { webgpuOps } from "../autograd/kernels/webgpu/mod.ts";
import { opTable } from "../autograd/ops/mod.ts";
import type { DeviceOp } from "../autograd/device.ts";
import {
  argmax,
  argmin,
  crossEntropy,
  cumsum,
  gather,
  gradients,
  layerNorm,
  logSoftmax,
  max,
  mean,
  nllLoss,
  noGrad,
  prod,
  Rng,
  scatterAdd,
  softmax,
  sum,
  Tensor,
  useDevice,
} from "../mod.ts";
import type { AnyTensor } from "../autograd/tensor.ts";
import { gpu, gpuTest } from "./helpers/webgpu.ts";

if (gpu !== null) await useDevice("webgpu");

const rng = new Rng(15);

function random(shape: number[], lo = -2, hi = 2): Tensor {
  const n = shape.reduce((a, s) => a * s, 1);
  return new Tensor(Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.uniform()), shape);
}

function ints(shape: number[], below: number): Tensor<"int32"> {
  const n = shape.reduce((a, s) => a * s, 1);
  return new Tensor(Int32Array.from({ length: n }, () => Math.floor(rng.uniform() * below)), shape);
}

/** Elementwise closeness (NaN matches NaN, infinities match exactly). */
function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  rtol = 1e-5,
  atol = 1e-6,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e)) {
      assert.ok(Number.isNaN(a), `${what}[${i}]: ${a}, expected NaN`);
    } else if (!Number.isFinite(e)) {
      assert.equal(a, e, `${what}[${i}]`);
    } else {
      assert.ok(
        Math.abs(a - e) <= atol + rtol * Math.abs(e),
        `${what}[${i}]: ${a}, expected ${e} (diff ${Math.abs(a - e)})`,
      );
    }
  }
}

/** The device tensor's values and shape against the CPU tensor's. */
async function assertSame(
  device: AnyTensor,
  cpu: AnyTensor,
  what: string,
  rtol = 1e-5,
  atol = 1e-6,
) {
  assert.equal(device.device, "webgpu", `${what}: on the device`);
  assert.deepEqual(device.shape, cpu.shape, `${what}: shape`);
  assertClose(await device.read(), cpu.values(), what, rtol, atol);
}

const dev = <T extends AnyTensor>(t: T): T => t.to("webgpu") as T;

/** Views of a CPU tensor and the same view of its device copy: plain, transposed, narrowed. */
function views(shape: number[]): { name: string; cpu: Tensor; gpu: Tensor }[] {
  const x = random(shape);
  const out = [{ name: `${shape}`, cpu: x, gpu: dev(x) }];
  if (shape.length >= 2) {
    // A transposed base, transposed back: the same shape, non-contiguous.
    const t = random([...shape].reverse()).transpose(0, -1);
    const base = t.transpose(0, -1);
    if (shape.length === 2) {
      out.push({ name: `${shape} transposed`, cpu: t, gpu: dev(base).transpose(0, -1) });
    }
  }
  // A narrowed view: a nonzero offset.
  const wide = random([shape[0] + 2, ...shape.slice(1)]);
  out.push({
    name: `${shape} narrowed`,
    cpu: wide.narrow(0, 1, shape[0]),
    gpu: dev(wide).narrow(0, 1, shape[0]),
  });
  return out;
}

const DIM_SETS: [number[], (number[] | undefined)[]][] = [
  [[1], [[0], undefined]],
  [[7], [[0]]],
  [[130], [[0]]],
  [[3, 5], [[0], [1], [0, 1], []]],
  [[5, 70], [[0], [1], undefined]],
  [[40, 3], [[0], [1]]],
  [[2, 3, 4], [[0], [1], [2], [0, 2], [1, 2], [0, 1, 2]]],
  [[4, 1, 6], [[1], [0, 1], [2]]],
  [[3, 20, 2], [[1], [0, 2]]],
  // Many outputs next to each other in the input: one thread per output.
  [[20, COLUMN_MIN_OUTPUTS + 3], [[0]]],
];

Deno.test({
  name: "webgpu sum, mean, max, prod: any dims, keepDim, strided, both reduce paths",
  ...gpuTest,
  async fn() {
    assert.ok(
      DIM_SETS.some(([s, ds]) =>
        ds.some((d) => (d ?? s.map((_, i) => i)).reduce((n, i) => n * s[i], 1) > SERIAL_MAX)
      ),
    );
    for (const [shape, dimSets] of DIM_SETS) {
      for (const v of views(shape)) {
        for (const dims of dimSets) {
          for (const keepDim of [false, true]) {
            const what = `${v.name} dims ${dims} keepDim ${keepDim}`;
            await assertSame(
              sum(v.gpu, dims, keepDim),
              sum(v.cpu, dims, keepDim),
              `sum ${what}`,
              1e-5,
              1e-5,
            );
            if (dims?.length !== 0) {
              await assertSame(
                mean(v.gpu, dims, keepDim),
                mean(v.cpu, dims, keepDim),
                `mean ${what}`,
                1e-5,
                1e-6,
              );
              await assertSame(
                max(v.gpu, dims, keepDim),
                max(v.cpu, dims, keepDim),
                `max ${what}`,
                0,
                0,
              );
            }
          }
        }
      }
      // Products of values near 1 stay in range.
      const x = random(shape, 0.7, 1.3);
      for (const dims of dimSets) {
        await assertSame(
          prod(dev(x), dims, true),
          prod(x, dims, true),
          `prod ${shape} ${dims}`,
          1e-5,
          1e-6,
        );
      }
    }
  },
});

Deno.test({
  name:
    "webgpu max: a NaN anywhere in a slice wins, ties and −∞; the saved maxima are keepDim-shaped",
  ...gpuTest,
  async fn() {
    // Expected values by hand (NaN wins, as in PyTorch's amax), on the CPU too.
    const x = new Tensor(
      Float32Array.from([1, NaN, 3, 3, -Infinity, -Infinity, 2, 2, ...Array(40).fill(5), 4]),
      [49],
    );
    const rows = new Tensor(Float32Array.from([1, NaN, 3, 3, -Infinity, -Infinity, 2, 2]), [4, 2]);
    const cases: [Tensor, number[], number[]][] = [
      [x, [0], [NaN]],
      [rows, [0], [3, NaN]],
      [rows, [1], [NaN, 3, -Infinity, 2]],
      [rows, [0, 1], [NaN]],
      [rows.narrow(0, 1, 3), [0, 1], [3]],
    ];
    for (const [t, dims, want] of cases) {
      assertClose(await max(dev(t), dims).read(), want, `max ${t.shape} ${dims}`, 0, 0);
      assertClose(max(t, dims).toFloat32Array(), want, `cpu max ${t.shape} ${dims}`, 0, 0);
    }
    const ties = new Tensor(Float32Array.from([2, 2, -Infinity, -Infinity, 7, 7]), [3, 2]);
    await assertSame(max(dev(ties), [1]), max(ties, [1]), "max ties", 0, 0);
    const { out, saved } = reduceOps.max!.forward(
      [dev(rows)],
      { dims: [1], keepDim: false },
      false,
    );
    assert.deepEqual(out.shape, [4]);
    assert.deepEqual((saved as Tensor).shape, [4, 1]);
  },
});

Deno.test({
  name: "webgpu argmax, argmin: the first extreme, NaN counts as both, −∞ rows, long dims",
  ...gpuTest,
  async fn() {
    const special = new Tensor(
      Float32Array.from([2, 5, 5, 1, NaN, 0, NaN, 7, -Infinity, -Infinity, -Infinity, 3]),
      [3, 4],
    );
    const cases: Tensor[] = [special, random([1]), random([7, 3]), random([2, 100, 3])];
    // Ties in a long row: the first wins across the workgroup's threads.
    cases.push(
      new Tensor(Float32Array.from({ length: 150 }, (_, i) => (i % 70 === 5 ? 9 : i % 3)), [150]),
    );
    for (const t of cases) {
      for (let d = 0; d < t.ndim; d++) {
        for (const keepDim of [false, true]) {
          for (const [name, f] of [["argmax", argmax], ["argmin", argmin]] as const) {
            const got = f(dev(t), d, keepDim);
            const want = f(t, d, keepDim);
            assert.equal(got.dtype, "int32");
            assert.deepEqual(got.shape, want.shape);
            assert.deepEqual(
              Array.from(await got.read()),
              Array.from(want.values()),
              `${name} ${t.shape} dim ${d}`,
            );
          }
        }
      }
    }
    const t = random([4, 6]).transpose(0, 1);
    assert.deepEqual(
      Array.from(await argmax(dev(t.contiguous()).transpose(0, 1).transpose(0, 1), 1).read()),
      Array.from(argmax(t, 1).values()),
    );
  },
});

Deno.test({
  name: "webgpu cumsum: forward and reverse along the first, middle and last dims, strided",
  ...gpuTest,
  async fn() {
    for (const shape of [[1], [9], [3, 4], [2, 5, 3], [70]]) {
      for (const v of views(shape)) {
        for (let d = 0; d < shape.length; d++) {
          await assertSame(
            cumsum(v.gpu, d),
            cumsum(v.cpu, d),
            `cumsum ${v.name} dim ${d}`,
            1e-5,
            1e-5,
          );
          const attrs = { dim: d, reverse: true };
          const got = reduceOps.cumsum!.forward([v.gpu], attrs, false).out;
          const want = opTable.cumsum.forward([v.cpu], attrs, false).out;
          await assertSame(got, want, `reverse cumsum ${v.name} dim ${d}`, 1e-5, 1e-5);
        }
      }
    }
  },
});

/** The softmax attributes the CPU function computes. */
function axis(x: AnyTensor, dim: number) {
  return {
    dim,
    outer: x.shape.slice(0, dim).reduce((a, s) => a * s, 1),
    n: x.shape[dim],
    inner: x.shape.slice(dim + 1).reduce((a, s) => a * s, 1),
  };
}

/** Runs a device op's backward and the CPU op's backward without recording (the kernel paths). */
function backwards(
  op: keyof typeof opTable,
  g: Tensor,
  saved: { cpu: unknown; gpu: unknown },
  inputs: { cpu: AnyTensor[]; gpu: AnyTensor[] },
  attrs: unknown,
  out: { cpu: Tensor; gpu: Tensor },
) {
  return noGrad(() => ({
    gpu: (reduceOps[op] as DeviceOp).backward!(dev(g), saved.gpu, inputs.gpu, attrs, out.gpu, []),
    cpu: opTable[op].backward(g, saved.cpu, inputs.cpu, attrs, out.cpu, []),
  }));
}

Deno.test({
  name: "webgpu softmax, logSoftmax: forward and the backward kernels, any dim, strided, long rows",
  ...gpuTest,
  async fn() {
    const extreme = new Tensor(Float32Array.from([1000, 0, -1000, 3, -Infinity, 2]), [2, 3]);
    for (const shape of [[1], [5], [3, 7], [2, 100], [2, 3, 4], [4, 70, 2]]) {
      for (const v of [...views(shape), { name: "extreme", cpu: extreme, gpu: dev(extreme) }]) {
        if (v.name === "extreme" && shape.length !== 2) continue;
        for (let d = 0; d < v.cpu.ndim; d++) {
          for (const [name, f] of [["softmax", softmax], ["logSoftmax", logSoftmax]] as const) {
            const what = `${name} ${v.name} dim ${d}`;
            const yg = f(v.gpu, d);
            const yc = f(v.cpu, d);
            await assertSame(yg, yc, what, 1e-5, 1e-6);
            const g = random([...v.cpu.shape]);
            const grads = backwards(
              name,
              g,
              { cpu: null, gpu: null },
              { cpu: [v.cpu], gpu: [v.gpu] },
              axis(v.cpu, d),
              { cpu: yc, gpu: yg },
            );
            await assertSame(grads.gpu[0]!, grads.cpu[0]!, `${what} backward`, 1e-4, 1e-5);
          }
        }
      }
    }
  },
});

/** The loss attributes the CPU functions compute (ignored labels become −1). */
function lossAttrs(
  labels: Int32Array,
  ignore: number,
  smoothing: number,
  reduction: "mean" | "sum",
) {
  const kernelLabels = labels.map((l) => (l === ignore ? -1 : l));
  return {
    labels: kernelLabels,
    smoothing,
    reduction,
    counted: kernelLabels.filter((l) => l >= 0).length,
  };
}

Deno.test({
  name:
    "webgpu crossEntropy: smoothing, reductions, ignored rows, host or device labels; its gradient",
  ...gpuTest,
  async fn() {
    for (const [rows, classes] of [[1, 1], [1, 5], [6, 3], [5, 100], [300, 4]]) {
      const logits = random([rows, classes], -4, 4);
      const labels = ints([rows], classes);
      const raw = labels.values();
      if (rows > 2) raw[1] = raw[rows - 1] = -100;
      const withIgnored = new Tensor<"int32">(raw, [rows]);
      for (const smoothing of [0, 0.1]) {
        for (const reduction of ["mean", "sum"] as const) {
          const what = `crossEntropy [${rows}, ${classes}] ε ${smoothing} ${reduction}`;
          const options = { labelSmoothing: smoothing, reduction };
          const want = crossEntropy(logits, withIgnored, options);
          const got = crossEntropy(dev(logits), raw, options);
          assert.deepEqual(got.shape, []);
          await assertSame(got, want, what, 1e-5, 1e-5);
          // Device labels: ignored on the device by attrs.ignoreIndex.
          const attrs = lossAttrs(raw, -100, smoothing, reduction);
          const onDevice = reduceOps.crossEntropy!.forward(
            [dev(logits)],
            { ...attrs, labels: dev(withIgnored), ignoreIndex: -100 },
            true,
          );
          await assertSame(onDevice.out, want, `${what} device labels`, 1e-5, 1e-5);
          const cpu = opTable.crossEntropy.forward([logits], attrs, true);
          const gpuRun = reduceOps.crossEntropy!.forward([dev(logits)], attrs, true);
          const g = new Tensor(Float32Array.from([0.5 + rng.uniform()]), []);
          const grads = backwards(
            "crossEntropy",
            g,
            { cpu: cpu.saved, gpu: gpuRun.saved },
            { cpu: [logits], gpu: [dev(logits)] },
            attrs,
            { cpu: cpu.out as Tensor, gpu: gpuRun.out as Tensor },
          );
          await assertSame(grads.gpu[0]!, grads.cpu[0]!, `${what} backward`, 1e-5, 1e-6);
          const deviceGrads = noGrad(() =>
            reduceOps.crossEntropy!.backward!(
              dev(g),
              onDevice.saved,
              [dev(logits)],
              { ...attrs, labels: dev(withIgnored), ignoreIndex: -100 },
              onDevice.out as Tensor,
              [],
            )
          );
          await assertSame(
            deviceGrads[0]!,
            grads.cpu[0]!,
            `${what} backward, device labels`,
            1e-5,
            1e-6,
          );
        }
      }
    }
    // Every row ignored: mean divides by 1, as the CPU.
    const x = random([3, 4]);
    const none = Int32Array.from([-100, -100, -100]);
    await assertSame(crossEntropy(dev(x), none), crossEntropy(x, none), "all ignored");
    // A label out of range cannot throw on the device: the loss is NaN.
    const bad = reduceOps.crossEntropy!.forward([dev(x)], {
      labels: dev(new Tensor<"int32">(Int32Array.from([0, 9, 1]), [3])),
      smoothing: 0,
      reduction: "mean",
    }, false);
    assert.ok(Number.isNaN((await bad.out.read())[0]));
  },
});

Deno.test({
  name: "webgpu nllLoss: strided log-probabilities, reductions, ignored rows",
  ...gpuTest,
  async fn() {
    for (const [rows, classes] of [[1, 1], [4, 3], [300, 5]]) {
      const base = random([classes, rows]);
      const labels = ints([rows], classes).values();
      if (rows > 2) labels[2] = -7;
      for (const reduction of ["mean", "sum"] as const) {
        const what = `nllLoss [${rows}, ${classes}] ${reduction}`;
        const options = { reduction, ignoreIndex: -7 };
        const want = nllLoss(base.transpose(0, 1), labels, options);
        await assertSame(
          nllLoss(dev(base).transpose(0, 1), labels, options),
          want,
          what,
          1e-5,
          1e-5,
        );
      }
    }
  },
});

Deno.test({
  name: "webgpu layerNorm: forward, saved statistics and every gradient, affine or not, strided",
  ...gpuTest,
  async fn() {
    for (
      const [lead, n] of [[[1], 1], [[3], 5], [[2, 3], 70], [[130], 3]] as [number[], number][]
    ) {
      for (const affine of ["none", "weight", "bias", "both"]) {
        const xc = random([...lead, n]);
        const inputs = { cpu: [xc] as Tensor[], gpu: [dev(xc)] as Tensor[] };
        const withW = affine === "weight" || affine === "both";
        const withB = affine === "bias" || affine === "both";
        if (withW) {
          const w = random([n]);
          inputs.cpu.push(w);
          inputs.gpu.push(dev(w));
        }
        if (withB) {
          const b = random([n]);
          inputs.cpu.push(b);
          inputs.gpu.push(dev(b));
        }
        for (const t of [...inputs.cpu, ...inputs.gpu]) t.requiresGrad = true;
        const rows = lead.reduce((a, s) => a * s, 1);
        const attrs = { rows, n, eps: 1e-5, weight: withW, bias: withB };
        const what = `layerNorm [${lead}, ${n}] ${affine}`;
        const cpu = opTable.layerNorm.forward(inputs.cpu, attrs, true);
        const got = reduceOps.layerNorm!.forward(inputs.gpu, attrs, true);
        await assertSame(got.out, cpu.out, what, 1e-5, 1e-5);
        const saved = got.saved as { mean: Tensor; rstd: Tensor };
        const want = cpu.saved as { mean: Float32Array; rstd: Float32Array };
        assertClose(await saved.mean.read(), want.mean, `${what} mean`);
        assertClose(await saved.rstd.read(), want.rstd, `${what} rstd`, 1e-4, 1e-5);
        const g = random([...lead, n]);
        const grads = backwards("layerNorm", g, { cpu: cpu.saved, gpu: got.saved }, inputs, attrs, {
          cpu: cpu.out as Tensor,
          gpu: got.out as Tensor,
        });
        for (let i = 0; i < grads.cpu.length; i++) {
          await assertSame(grads.gpu[i]!, grads.cpu[i]!, `${what} gradient ${i}`, 1e-4, 1e-5);
        }
      }
    }
    // Through the function: a transposed input and the public shape rules.
    const x = random([6, 4]);
    await assertSame(
      layerNorm(dev(x).transpose(0, 1), 6),
      layerNorm(x.transpose(0, 1), 6),
      "layerNorm transposed",
      1e-5,
      1e-5,
    );
  },
});

Deno.test({
  name:
    "webgpu gather: every dim, repeated, broadcast and strided indices, int32 values, out of range",
  ...gpuTest,
  async fn() {
    const x = random([3, 4, 5]);
    for (let d = 0; d < 3; d++) {
      const shape = [2, 3, 4].map((s, i) => (i === d ? 6 : s));
      const index = ints(shape, x.shape[d]);
      await assertSame(gather(dev(x), d, dev(index)), gather(x, d, index), `gather dim ${d}`, 0, 0);
      // The gradient: a device scatter-add of g into zeros.
      const g = random(shape);
      const grads = backwards(
        "gather",
        g,
        { cpu: null, gpu: null },
        { cpu: [x, index], gpu: [dev(x), dev(index)] },
        { dim: d, op: "gather" },
        { cpu: g, gpu: dev(g) },
      );
      await assertSame(grads.gpu[0]!, grads.cpu[0]!, `gather dim ${d} backward`, 0, 0);
      assert.equal(grads.gpu[1], null);
    }
    // A transposed source, an expanded (stride 0) index, int32 values.
    const base = random([5, 4]);
    const row = ints([1, 3], 5);
    const expanded = row.expand(4, 3);
    await assertSame(
      gather(dev(base).transpose(0, 1), 1, dev(row).expand(4, 3)),
      gather(base.transpose(0, 1), 1, expanded),
      "gather transposed, expanded index",
      0,
      0,
    );
    const xi = ints([4, 5], 100);
    await assertSame(
      gather(dev(xi), 1, dev(row).expand(4, 3)),
      gather(xi, 1, expanded),
      "gather int32",
      0,
      0,
    );
    // Out of range reads NaN instead of throwing.
    const bad = reduceOps.gather!.forward(
      [dev(x), dev(new Tensor(Int32Array.from([0, 7, -1]), [3, 1, 1]))],
      { dim: 0, op: "gather" },
      false,
    );
    const values = await bad.out.read();
    assert.equal(values[0], x.values()[0]);
    assert.ok(Number.isNaN(values[1]) && Number.isNaN(values[2]));
  },
});

Deno.test({
  name:
    "webgpu scatterAdd: repeated indices bitwise as the CPU, smaller index, larger src, strided, int32",
  ...gpuTest,
  async fn() {
    const x = random([4, 5, 3]);
    for (let d = 0; d < 3; d++) {
      // More sources than destinations along d: every destination collects repeats.
      const shape = [3, 4, 2].map((s, i) => (i === d ? 9 : s));
      const index = ints(shape, x.shape[d]);
      const src = random(shape.map((s) => s + 1));
      await assertSame(
        scatterAdd(dev(x), d, dev(index), dev(src)),
        scatterAdd(x, d, index, src),
        `scatterAdd dim ${d}`,
        0,
        0,
      );
    }
    // Many repeats of mixed magnitudes: the order of the additions shows in the bits.
    const few = random([3, 2]);
    const many = ints([40, 2], 3);
    const mixed = random([40, 2]).mul(
      new Tensor(Float32Array.from({ length: 80 }, (_, i) => 10 ** (i % 7 - 3)), [40, 2]),
    );
    await assertSame(
      scatterAdd(dev(few), 0, dev(many), dev(mixed)),
      scatterAdd(few, 0, many, mixed),
      "scatterAdd many repeats",
      0,
      0,
    );
    // Strided x and src, and an expanded index (an embedding gradient's pattern).
    const xt = random([3, 6]);
    const srcT = random([5, 8]);
    const idx = ints([8, 1], 6).expand(8, 3);
    const want = scatterAdd(xt.transpose(0, 1), 0, idx, srcT.transpose(0, 1));
    const gotReal = scatterAdd(
      dev(xt).transpose(0, 1),
      0,
      dev(idx.contiguous().narrow(1, 0, 1)).expand(8, 3),
      dev(srcT).transpose(0, 1),
    );
    await assertSame(gotReal, want, "scatterAdd strided", 0, 0);
    const xi = ints([5, 2], 50);
    const si = ints([7, 2], 50);
    const ii = ints([7, 2], 5);
    await assertSame(
      scatterAdd(dev(xi), 0, dev(ii), dev(si)),
      scatterAdd(xi, 0, ii, si),
      "scatterAdd int32",
      0,
      0,
    );
  },
});

/** The device has all the ops the gradients below are written in (elementwise lands separately). */
const composable = webgpuOps.mul !== undefined && webgpuOps.where !== undefined;

Deno.test({
  name:
    "webgpu reductions, losses, layerNorm, gather, scatterAdd: gradients end to end against the CPU",
  ...gpuTest,
  ignore: gpuTest.ignore || !composable,
  async fn() {
    const x = random([3, 5], 0.5, 1.5);
    const labels = Int32Array.from([1, 4, 0]);
    const index = ints([3, 5], 3);
    const cases: [string, (t: Tensor) => Tensor][] = [
      ["sum", (t) => sum(t, [0])],
      ["mean", (t) => mean(t, [1], true)],
      ["max", (t) => max(t, [0, 1])],
      ["prod", (t) => prod(t, [1])],
      ["cumsum", (t) => cumsum(t, 1)],
      ["softmax", (t) => softmax(t, 0)],
      ["logSoftmax", (t) => logSoftmax(t, 1)],
      ["crossEntropy", (t) => crossEntropy(t, labels, { labelSmoothing: 0.1 })],
      ["nllLoss", (t) => nllLoss(logSoftmax(t, 1), labels, { reduction: "sum" })],
      ["layerNorm", (t) => layerNorm(t, 5)],
      ["gather", (t) => gather(t, 0, t.device === "cpu" ? index : dev(index))],
      ["scatterAdd", (t) => scatterAdd(t, 0, t.device === "cpu" ? index : dev(index), t.mul(2))],
    ];
    for (const [name, f] of cases) {
      const w = random([3, 5]);
      const run = (t: Tensor, wt: Tensor) => {
        const leaf = t.detach();
        leaf.requiresGrad = true;
        const y = f(leaf);
        const loss = y.ndim === 0 ? y : sum(y.mul(y.ndim === 2 && y.shape[1] === 5 ? wt : 1));
        return gradients(loss, [leaf])[0]!;
      };
      await assertSame(run(dev(x), dev(w)), run(x, w), `${name} gradient`, 1e-4, 1e-5);
    }
  },
});
