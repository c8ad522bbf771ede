// GEMM benchmarks at the shapes tapegrad trains with (batch 128): the WebAssembly SIMD kernel on
// one and two threads against the reference TypeScript kernel (`gemmReference`, the baseline)
// and a cache-blocked 4×4 TypeScript GEMM. GFLOPS = 2·m·n·k / time (the GFLOP count is in the
// name of the 1-thread row).
//
// The wasm kernel runs twice per thread count: with all operands in ordinary JavaScript arrays
// (each call copies A and B into the wasm memory and C out, on the calling thread), and with the
// operands already in the wasm memory, which is how training calls it: parameters, gradients and
// optimizer state live there, and the Linear and convolution kernels move each activation in once
// per pass before their GEMMs. The second pair is the kernel's own two-thread scaling; the
// copies are measured per step by `deno task bench:profile`.
//
//   deno bench --allow-read --allow-env bench/gemm_bench.ts
//
// The machines this was written on have 2 cores shared with other work, so two-thread numbers
// in particular move from run to run.

import {
  type Gemm,
  setThreads,
  threadsReady,
  wasmAvailable,
  wasmGemm,
} from "../autograd/kernels/wasm/gemm.ts";
import { wasmFloat32 } from "../autograd/kernels/wasm/memory.ts";
import { gemmReference } from "../autograd/kernels/gemm.ts";
import { BATCH, type GemmShape, MLP_GEMM_SHAPES } from "./mlp_shapes.ts";

/**
 * Cache-blocked TypeScript GEMM with the {@link Gemm} contract: K blocks of 256, 4×4 register
 * tiles of C (sixteen local accumulators) over any layout through index strides, a scalar loop
 * for edge tiles.
 */
const tsBlockedGemm: Gemm = (
  transA,
  transB,
  m,
  n,
  k,
  a,
  aOffset,
  lda,
  b,
  bOffset,
  ldb,
  beta,
  c,
  cOffset,
  ldc,
) => {
  if (beta === 0) {
    for (let i = 0; i < m; i++) {
      c.fill(0, cOffset + i * ldc, cOffset + i * ldc + n);
    }
  }
  // Strides of op(A)[i, p] and op(B)[p, j] inside their arrays.
  const asi = transA ? 1 : lda;
  const asp = transA ? lda : 1;
  const bsp = transB ? 1 : ldb;
  const bsj = transB ? ldb : 1;
  const KB = 256;
  for (let p0 = 0; p0 < k; p0 += KB) {
    const p1 = Math.min(k, p0 + KB);
    for (let i = 0; i < m; i += 4) {
      const mi = Math.min(4, m - i);
      for (let j = 0; j < n; j += 4) {
        const nj = Math.min(4, n - j);
        const ci = cOffset + i * ldc + j;
        if (mi < 4 || nj < 4) {
          for (let ii = 0; ii < mi; ii++) {
            for (let jj = 0; jj < nj; jj++) {
              let s = 0;
              for (let p = p0; p < p1; p++) {
                s += a[aOffset + (i + ii) * asi + p * asp] * b[bOffset + p * bsp + (j + jj) * bsj];
              }
              c[ci + ii * ldc + jj] += s;
            }
          }
          continue;
        }
        let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        let pa = aOffset + i * asi + p0 * asp;
        let pb = bOffset + p0 * bsp + j * bsj;
        for (let p = p0; p < p1; p++) {
          const a0 = a[pa], a1 = a[pa + asi], a2 = a[pa + 2 * asi], a3 = a[pa + 3 * asi];
          const b0 = b[pb], b1 = b[pb + bsj], b2 = b[pb + 2 * bsj], b3 = b[pb + 3 * bsj];
          c00 += a0 * b0, c01 += a0 * b1, c02 += a0 * b2, c03 += a0 * b3;
          c10 += a1 * b0, c11 += a1 * b1, c12 += a1 * b2, c13 += a1 * b3;
          c20 += a2 * b0, c21 += a2 * b1, c22 += a2 * b2, c23 += a2 * b3;
          c30 += a3 * b0, c31 += a3 * b1, c32 += a3 * b2, c33 += a3 * b3;
          pa += asp;
          pb += bsp;
        }
        c[ci] += c00, c[ci + 1] += c01, c[ci + 2] += c02, c[ci + 3] += c03;
        const c1i = ci + ldc, c2i = c1i + ldc, c3i = c2i + ldc;
        c[c1i] += c10, c[c1i + 1] += c11, c[c1i + 2] += c12, c[c1i + 3] += c13;
        c[c2i] += c20, c[c2i + 1] += c21, c[c2i + 2] += c22, c[c2i + 3] += c23;
        c[c3i] += c30, c[c3i + 1] += c31, c[c3i + 2] += c32, c[c3i + 3] += c33;
      }
    }
  }
};

const B = BATCH;
const shapes: GemmShape[] = [
  ...MLP_GEMM_SHAPES.map((s) => ({ ...s, name: `mlp ${s.name}` })),
  { name: "conv1 im2col K=16 N=32", transA: false, transB: false, m: B * 169, n: 32, k: 16 },
  { name: "conv2 im2col K=288 N=64", transA: false, transB: false, m: B * 49, n: 64, k: 288 },
  { name: "conv3 im2col K=576 N=128", transA: false, transB: false, m: B * 16, n: 128, k: 576 },
  { name: "alexnet fc 2048→1024", transA: false, transB: true, m: B, n: 1024, k: 2048 },
  { name: "gemv m=1 784→512 (x·Wᵀ)", transA: false, transB: true, m: 1, n: 512, k: 784 },
];

/** A copy of `a` in the wasm memory. */
function copyToWasm(a: Float32Array): Float32Array {
  const out = wasmFloat32(a.length);
  out.set(a);
  return out;
}

function random(n: number, seed: number, inWasm = false): Float32Array {
  const out = inWasm ? wasmFloat32(n) : new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

if (wasmAvailable) {
  setThreads(2);
  await threadsReady();
}

for (const s of shapes) {
  const { transA, transB, m, n, k } = s;
  const lda = transA ? m : k;
  const ldb = transB ? k : n;
  const a = random(m * k, 1);
  const b = random(k * n, 2);
  const c = new Float32Array(m * n);
  const gflop = (2 * m * n * k / 1e9).toPrecision(3);
  const run = (gemm: Gemm): void => gemm(transA, transB, m, n, k, a, 0, lda, b, 0, ldb, 0, c, 0, n);
  Deno.bench({
    name: `${s.name} reference (TypeScript)`,
    group: s.name,
    baseline: true,
    n: m * n * k > 1e7 ? 10 : undefined,
    fn: () => run(gemmReference),
  });
  Deno.bench({
    name: `${s.name} ts-blocked`,
    group: s.name,
    n: m * n * k > 1e7 ? 10 : undefined,
    fn: () => run(tsBlockedGemm),
  });
  for (const inWasm of [false, true]) {
    const where = inWasm ? ", operands in wasm memory" : "";
    const [wa, wb, wc] = inWasm ? [copyToWasm(a), copyToWasm(b), copyToWasm(c)] : [a, b, c];
    const runWasm = (): void =>
      wasmGemm(transA, transB, m, n, k, wa, 0, lda, wb, 0, ldb, 0, wc, 0, n);
    for (const threads of [1, 2]) {
      Deno.bench({
        name: threads === 1
          ? `${s.name} wasm 1 thread${where} [${gflop} GFLOP]`
          : `${s.name} wasm 2 threads${where}`,
        group: s.name,
        ignore: !wasmAvailable,
        fn: () => {
          setThreads(threads);
          runWasm();
        },
      });
    }
  }
}

// Batch-1 inference with the weights already in the wasm memory (no copy of W per call), which is
// where a second thread can help a gemv.
{
  const [n, k] = [512, 784];
  const w = random(n * k, 3, wasmAvailable);
  const x = random(k, 4);
  const y = new Float32Array(n);
  const group = "gemv m=1 784→512, W in wasm memory";
  for (const threads of [1, 2]) {
    Deno.bench({
      name: `${group} wasm ${threads} thread${threads > 1 ? "s" : ""}`,
      group,
      baseline: threads === 1,
      ignore: !wasmAvailable,
      fn: () => {
        setThreads(threads);
        wasmGemm(false, true, 1, n, k, x, 0, k, w, 0, k, 0, y, 0, n);
      },
    });
  }
}
