/**
 * The WebGPU GEMM against a float64 product (and the reference GEMM): every layout (NN, NT, TN,
 * TT), edge shapes (1×1×1, K = 1, sizes that are not multiples of the 64×64×16 tile), element
 * offsets and leading dimensions wider than the rows, beta 0 over NaN and beta 1, batches with a
 * broadcast operand, the fused bias (per column and per row) and ReLU, split-K, the column sum.
 * Padding around C must stay untouched. Then the ops: matmul (2-D, transposed views, batches,
 * broadcast batches) and linear (bias, fused ReLU, transposed input, expanded gradient) on the
 * device against the same ops on the CPU, values and gradients. Sizes stay small: CI runs a
 * software adapter.
 *
 * @module
 */

import assert from "node:assert/strict";
import { gradients, linear, matmul, Rng, Tensor, useDevice } from "../mod.ts";
import { gemmReference } from "../autograd/kernels/gemm.ts";
import {
  dispatchGemm,
  gemmWgsl,
  gpuColumnSum,
  gpuGemm,
  gpuGemmStrided,
  gpuSumSlices,
  hookParam,
  splitK,
} from "../autograd/kernels/webgpu/gemm.ts";
import { gpu, gpuTest } from "./helpers/webgpu.ts";

if (gpu !== null) await useDevice("webgpu");

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [17, 33, 65],
  [5, 9, 1],
  [64, 64, 16],
  [70, 3, 130],
  [1, 80, 33],
];

function random(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** Asserts |got − want| ≤ tolerance scaled by the magnitude of the terms summed. */
function close(got: number, want: number, magnitude: number, k: number, what: string): void {
  const tolerance = 1e-6 * (magnitude + 1) * Math.sqrt(k + 1);
  if (!(Math.abs(got - want) <= tolerance)) {
    assert.fail(`${what}: got ${got}, expected ${want}`);
  }
}

interface Case {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  beta: number;
  batch: number;
  /** Which operand is broadcast across the batch (stride 0). */
  broadcast: "none" | "a" | "b";
  bias: "none" | "column" | "row";
  relu: boolean;
}

async function check(c: Case, seed: number): Promise<void> {
  const g = gpu!;
  const rng = new Rng(seed);
  const { transA, transB, m, n, k, beta, batch } = c;
  const [ar, ac] = transA ? [k, m] : [m, k];
  const [br, bc] = transB ? [n, k] : [k, n];
  // Leading dimensions wider than the rows, element offsets, and a batch stride with a gap.
  const lda = ac + 3;
  const ldb = bc + 2;
  const ldc = n + 1;
  const sA = c.broadcast === "a" ? 0 : ar * lda + 5;
  const sB = c.broadcast === "b" ? 0 : br * ldb + 1;
  const sC = m * ldc + 3;
  const aOff = 5;
  const bOff = 7;
  const cOff = 4;
  const a = random(rng, aOff + (batch - 1) * sA + ar * lda);
  const b = random(rng, bOff + (batch - 1) * sB + br * ldb);
  const c0 = Float32Array.from(
    { length: cOff + (batch - 1) * sC + m * ldc + 2 },
    () => (beta === 0 ? NaN : rng.normal()),
  );
  const biasLength = c.bias === "row" ? m : n;
  const bias = random(rng, 2 + biasLength);
  const cGpu = g.upload(c0);
  gpuGemm(
    transA,
    transB,
    m,
    n,
    k,
    g.upload(a),
    aOff,
    lda,
    g.upload(b),
    bOff,
    ldb,
    beta,
    cGpu,
    cOff,
    ldc,
    {
      batch,
      strideA: sA,
      strideB: sB,
      strideC: sC,
      bias: c.bias === "none" ? undefined : g.upload(bias),
      biasOffset: 2,
      biasPer: c.bias === "row" ? "row" : "column",
      relu: c.relu,
    },
  );
  const out = await g.read(cGpu) as Float32Array;
  const what = JSON.stringify(c);
  const written = new Set<number>();
  for (let z = 0; z < batch; z++) {
    const A = (i: number, p: number) => a[aOff + z * sA + (transA ? p * lda + i : i * lda + p)];
    const B = (p: number, j: number) => b[bOff + z * sB + (transB ? j * ldb + p : p * ldb + j)];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        const at = cOff + z * sC + i * ldc + j;
        written.add(at);
        let sum = beta === 0 ? 0 : beta * c0[at];
        let magnitude = Math.abs(sum);
        if (c.bias !== "none") {
          const v = bias[2 + (c.bias === "row" ? i : j)];
          sum += v;
          magnitude += Math.abs(v);
        }
        for (let p = 0; p < k; p++) {
          sum += A(i, p) * B(p, j);
          magnitude += Math.abs(A(i, p) * B(p, j));
        }
        if (c.relu) sum = Math.max(sum, 0);
        close(out[at], sum, magnitude, k, `${what} C[${z}][${i}][${j}]`);
      }
    }
  }
  for (let i = 0; i < out.length; i++) {
    if (!written.has(i)) {
      assert.ok(Object.is(out[i], c0[i]), `${what}: C[${i}] outside was written`);
    }
  }
}

const plain = { beta: 0, batch: 1, broadcast: "none", bias: "none", relu: false } as const;

Deno.test({
  name: "webgpu gemm: every layout and edge shape, beta 0 over NaN and beta 1",
  ...gpuTest,
  async fn() {
    let seed = 1;
    for (const [m, n, k] of SHAPES) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          for (const beta of [0, 1]) {
            await check({ ...plain, transA, transB, m, n, k, beta }, seed++);
          }
        }
      }
    }
  },
});

Deno.test({
  name: "webgpu gemm: batches with strides, a broadcast operand, bias and ReLU epilogues",
  ...gpuTest,
  async fn() {
    let seed = 100;
    const cases: Partial<Case>[] = [
      { batch: 3, broadcast: "none" },
      { batch: 4, broadcast: "a", transA: true },
      { batch: 2, broadcast: "b", transB: true },
      { bias: "column", relu: false, transB: true },
      { bias: "column", relu: true, transB: true },
      { bias: "row", relu: true },
      { relu: true, beta: 1, transA: true },
      { batch: 3, broadcast: "b", bias: "column", relu: true, transB: true },
    ];
    for (const extra of cases) {
      for (const [m, n, k] of [[3, 5, 7], [17, 33, 65], [1, 1, 1]] as const) {
        await check({ ...plain, transA: false, transB: false, m, n, k, ...extra }, seed++);
      }
    }
  },
});

Deno.test({
  name: "webgpu gemm: K = 0 writes zeros (plus the bias); the result matches the reference GEMM",
  ...gpuTest,
  async fn() {
    const g = gpu!;
    const cGpu = g.upload(new Float32Array(6).fill(NaN));
    gpuGemm(
      false,
      false,
      2,
      3,
      0,
      g.upload(new Float32Array(1)),
      0,
      1,
      g.upload(new Float32Array(3)),
      0,
      3,
      0,
      cGpu,
      0,
      3,
      {
        bias: g.upload(new Float32Array([1, 2, 3])),
      },
    );
    assert.deepEqual(Array.from(await g.read(cGpu)), [1, 2, 3, 1, 2, 3]);
    // Against the CPU's reference kernel on one mid-sized case (all four layouts).
    const rng = new Rng(7);
    const [m, n, k] = [19, 23, 41];
    for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]]) {
      const a = random(rng, m * k);
      const b = random(rng, k * n);
      const want = new Float32Array(m * n);
      gemmReference(ta, tb, m, n, k, a, 0, ta ? m : k, b, 0, tb ? k : n, 0, want, 0, n);
      const c = g.alloc("float32", m * n);
      gpuGemm(ta, tb, m, n, k, g.upload(a), 0, ta ? m : k, g.upload(b), 0, tb ? k : n, 0, c, 0, n);
      const got = await g.read(c) as Float32Array;
      for (let i = 0; i < m * n; i++) close(got[i], want[i], Math.abs(want[i]) * 4, k, `ref ${i}`);
    }
  },
});

Deno.test({
  name: "webgpu gemm: a masked A operand (the fused ReLU's gradient) and general strides",
  ...gpuTest,
  async fn() {
    const g = gpu!;
    const rng = new Rng(11);
    const [m, n, k] = [9, 13, 21];
    // A stored with column stride 2 (a stepped view), B with row stride 1 and column stride k.
    const a = random(rng, m * k * 2);
    const b = random(rng, k * n);
    const mask = random(rng, m * k);
    const c = g.alloc("float32", m * n);
    gpuGemmStrided(
      m,
      n,
      k,
      { storage: g.upload(a), offset: 0, rowStride: 2 * k, colStride: 2 },
      { storage: g.upload(b), offset: 0, rowStride: 1, colStride: k },
      { storage: c, offset: 0, rowStride: n, colStride: 1 },
      { maskA: { storage: g.upload(mask), offset: 0, rowStride: 1, colStride: m } },
    );
    const got = await g.read(c) as Float32Array;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        let mag = 0;
        for (let p = 0; p < k; p++) {
          const v = mask[p * m + i] > 0 ? a[i * 2 * k + 2 * p] * b[j * k + p] : 0;
          s += v;
          mag += Math.abs(v);
        }
        close(got[i * n + j], s, mag, k, `masked C[${i}][${j}]`);
      }
    }
  },
});

Deno.test({
  name: "webgpu gemm: split-K slices sum to the whole product; the column sum",
  ...gpuTest,
  async fn() {
    const g = gpu!;
    const rng = new Rng(5);
    const [m, n, k] = [5, 7, 300];
    assert.equal(splitK(m, n, k), 0, "a short K is not split");
    assert.ok(splitK(64, 64, 100000) > 0, "a long K over few tiles is split");
    const slice = splitK(m, n, k, 4);
    assert.equal(slice % 16, 0);
    const slices = Math.ceil(k / slice);
    assert.equal(slices, 4);
    const a = random(rng, m * k);
    const b = random(rng, k * n);
    // A small custom kernel through the hooks: plain row-major operands, C slices side by side.
    const kernel = g.kernel(
      "test_gemm_hooks_split",
      gemmWgsl({
        source: `@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
fn loadA(z: u32, i: u32, p: u32) -> f32 { return a[i * ${hookParam(0)} + p]; }
fn loadB(z: u32, p: u32, j: u32) -> f32 { return b[p * ${hookParam(1)} + j]; }
fn store(z: u32, i: u32, j: u32, v: f32) { c[z * ${hookParam(2)} + i * ${hookParam(1)} + j] = v; }`,
        aFast: "k",
        bFast: "n",
      }),
      2,
      1,
    );
    const parts = g.alloc("float32", slices * m * n);
    dispatchGemm(
      g,
      kernel,
      [g.upload(a), g.upload(b), parts],
      m,
      n,
      k,
      [k, n, m * n],
      slices,
      slice,
    );
    const out = g.upload(new Float32Array(m * n + 3).fill(NaN));
    gpuSumSlices(parts, slices, m * n, out, 3);
    const got = await g.read(out) as Float32Array;
    assert.ok(Number.isNaN(got[0]) && Number.isNaN(got[2]));
    const want = new Float32Array(m * n);
    gemmReference(false, false, m, n, k, a, 0, k, b, 0, n, 0, want, 0, n);
    for (let i = 0; i < m * n; i++) close(got[3 + i], want[i], 30, k, `split C[${i}]`);

    // Column sums of [2, 3 columns, 5 pixels] (a conv bias gradient), masked and not.
    const [batch, cols, pixels] = [2, 3, 5];
    const x = random(rng, 1 + batch * cols * pixels);
    const y = random(rng, batch * cols * pixels);
    for (const masked of [false, true]) {
      const sums = g.alloc("float32", cols);
      const layout = (offset: number) => ({
        offset,
        inner: pixels,
        outerStride: cols * pixels,
        innerStride: 1,
        colStride: pixels,
      });
      gpuColumnSum(
        { storage: g.upload(x), ...layout(1) },
        batch * pixels,
        cols,
        masked ? { storage: g.upload(y), ...layout(0) } : null,
        sums,
        0,
      );
      const s = await g.read(sums);
      for (let c = 0; c < cols; c++) {
        let want = 0;
        for (let nb = 0; nb < batch; nb++) {
          for (let p = 0; p < pixels; p++) {
            const i = nb * cols * pixels + c * pixels + p;
            if (!masked || y[i] > 0) want += x[1 + i];
          }
        }
        close(s[c], want, 10, 10, `column ${c} (masked ${masked})`);
      }
    }
    // Zero rows sum to zero.
    const zeros = g.upload(new Float32Array(2).fill(NaN));
    gpuColumnSum(
      {
        storage: g.upload(new Float32Array(1)),
        offset: 0,
        inner: 1,
        outerStride: 0,
        innerStride: 2,
        colStride: 1,
      },
      0,
      2,
      null,
      zeros,
      0,
    );
    assert.deepEqual(Array.from(await g.read(zeros)), [0, 0]);
  },
});

/** A random CPU tensor of `shape` (requiring grad when asked). */
function randomTensor(rng: Rng, shape: readonly number[], requiresGrad = false): Tensor {
  const t = new Tensor(random(rng, shape.reduce((a, d) => a * d, 1)), shape);
  t.requiresGrad = requiresGrad;
  return t;
}

/** The same values on the device, a leaf requiring grad like `t`. */
function toDevice(t: Tensor): Tensor {
  const d = t.to("webgpu");
  d.requiresGrad = t.requiresGrad;
  return d;
}

/** Device values (any layout) against CPU values (read in row-major order). */
async function assertSame(got: Tensor, want: Tensor, k: number, what: string): Promise<void> {
  assert.equal(got.device, "webgpu", `${what}: ran on ${got.device}`);
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  const g = await got.read();
  const w = want.contiguous().data;
  for (let i = 0; i < w.length; i++) {
    close(g[i], w[i], 4 * Math.max(1, Math.abs(w[i])), k, `${what}[${i}]`);
  }
}

Deno.test({
  name: "webgpu matmul op: 2-D, transposed views, batches and broadcast batches as on the CPU",
  ...gpuTest,
  async fn() {
    const rng = new Rng(21);
    // [a shape, b shape, transpose a's last two dims, transpose b's]
    const cases: [number[], number[], boolean, boolean][] = [
      [[1, 1], [1, 1], false, false],
      [[3, 7], [7, 5], false, false],
      [[17, 65], [33, 65], false, true],
      [[65, 17], [65, 33], true, false],
      [[5, 1], [1, 9], false, false],
      [[3, 4, 6], [3, 6, 5], false, false],
      [[3, 6, 4], [3, 5, 6], true, true],
      [[4, 7, 6], [6, 5], false, false],
      [[4, 1, 6], [6, 5], false, false],
      [[2, 1, 4, 5], [3, 5, 6], false, false],
      [[2, 3, 4, 5], [5, 6], false, false],
      [[5, 6], [2, 3, 6, 4], false, false],
      [[2, 5, 4], [1, 5, 3], true, false],
    ];
    for (const [aShape, bShape, ta, tb] of cases) {
      const a0 = randomTensor(rng, aShape);
      const b0 = randomTensor(rng, bShape);
      const view = (t: Tensor, flag: boolean) => (flag ? t.transpose(-1, -2) : t);
      const want = matmul(view(a0, ta), view(b0, tb));
      const got = matmul(view(toDevice(a0), ta), view(toDevice(b0), tb));
      const k = view(a0, ta).shape[view(a0, ta).ndim - 1];
      await assertSame(got, want, k, `matmul ${JSON.stringify([aShape, bShape, ta, tb])}`);
    }
    // A stepped (non-contiguous, not transposed) view and an expanded operand.
    const a = randomTensor(rng, [6, 10]);
    const b = randomTensor(rng, [1, 4]);
    const stepped = (t: Tensor) => t.slice(1, 0, 10, 2);
    await assertSame(
      matmul(stepped(toDevice(a)), toDevice(b).expand(5, 4)),
      matmul(stepped(a), b.expand(5, 4)),
      5,
      "matmul of views",
    );
    // The backward rule is the CPU's, in device ops: G·Bᵀ and Aᵀ·G.
    const x = randomTensor(rng, [3, 4, 6], true);
    const w = randomTensor(rng, [3, 6, 5], true);
    const gy = randomTensor(rng, [3, 4, 5]);
    const want = gradients(matmul(x, w), [x, w], { gradOutput: gy });
    const [xd, wd] = [toDevice(x), toDevice(w)];
    const got = gradients(matmul(xd, wd), [xd, wd], { gradOutput: gy.to("webgpu") });
    await assertSame(got[0], want[0], 5, "matmul grad a");
    await assertSame(got[1], want[1], 4, "matmul grad b");
  },
});

Deno.test({
  name: "webgpu linear op: forward and gradients with and without bias and ReLU",
  ...gpuTest,
  async fn() {
    const rng = new Rng(31);
    const shapes: [number, number, number][] = [[1, 1, 1], [3, 7, 5], [17, 33, 10], [70, 20, 3]];
    for (const [rows, inFeatures, outFeatures] of shapes) {
      for (const withBias of [true, false]) {
        for (const relu of [false, true]) {
          for (const transposedInput of [false, true]) {
            const what = JSON.stringify({
              rows,
              inFeatures,
              outFeatures,
              withBias,
              relu,
              transposedInput,
            });
            const x0 = transposedInput
              ? randomTensor(rng, [inFeatures, rows], true)
              : randomTensor(rng, [rows, inFeatures], true);
            const w = randomTensor(rng, [outFeatures, inFeatures], true);
            const b = randomTensor(rng, [outFeatures], true);
            const input = (t: Tensor) => (transposedInput ? t.transpose(0, 1) : t);
            const y = linear(input(x0), w, withBias ? b : undefined, { relu });
            const leaves = withBias ? [x0, w, b] : [x0, w];
            const dLeaves = leaves.map(toDevice);
            const yd = linear(input(dLeaves[0]), dLeaves[1], withBias ? dLeaves[2] : undefined, {
              relu,
            });
            await assertSame(yd, y, inFeatures, `${what} y`);
            const gy = randomTensor(rng, y.shape);
            const want = gradients(y, leaves, { gradOutput: gy });
            const got = gradients(yd, dLeaves, { gradOutput: gy.to("webgpu") });
            for (let i = 0; i < leaves.length; i++) {
              await assertSame(got[i], want[i], Math.max(rows, outFeatures), `${what} grad ${i}`);
            }
          }
        }
      }
    }
    // An expanded upstream gradient (stride 0, as a sum's backward gives) and a long batch that
    // splits the weight gradient over K.
    const x = randomTensor(rng, [1100, 3], true);
    const w = randomTensor(rng, [2, 3], true);
    const b = randomTensor(rng, [2], true);
    const gy = randomTensor(rng, [1, 2]).expand(1100, 2);
    const want = gradients(linear(x, w, b, { relu: true }), [x, w, b], { gradOutput: gy });
    const d = [x, w, b].map(toDevice);
    const got = gradients(linear(d[0], d[1], d[2], { relu: true }), d, {
      gradOutput: gy.contiguous().to("webgpu").slice(0, 0, 1, 1).expand(1100, 2),
    });
    for (let i = 0; i < 3; i++) await assertSame(got[i], want[i], 1100, `expanded grad ${i}`);
  },
});
