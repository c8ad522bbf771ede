// Two-thread scaling on the MLP's GEMM shapes at batch 128 and on whole training steps (MLP and
// AlexNet, batch 128, SGD with momentum), as a median of interleaved rounds, for the wasm GEMM
// or the native (system BLAS) one. Deno.bench (bench/gemm_bench.ts) times all one-thread
// iterations of a product and then all two-thread ones and compares their means, so on a
// machine shared with other work a change of load between the two runs, or one burst, moves the
// ratio. Here every round times the product on one thread and then on two, back to back, and the
// ratio is taken per round: the median of those ratios is what both thread counts saw under the
// same conditions.
//
//   deno task bench:threads [--backend wasm|native] [--rounds 31] [--steps] [--json PATH]
//
// With the wasm GEMM it first measures the WebAssembly SIMD FMA ceiling (bench/fma_ceiling.ts) and
// quotes each product's one-thread GFLOPS as a share of the one-thread ceiling.
//
// --backend native needs a BLAS that loads (see autograd/kernels/native/blas.ts) and sets its
// thread count with openblas_set_num_threads (or BLIS's / MKL's call); --steps adds the training
// steps, run through useBackend so the thread count goes where training sends it (BLAS, with
// tapegrad's workers idle, under native). --json also needs --allow-write.
//
// Operands live in the wasm memory, as in training (parameters and gradients are kept there and
// the Linear kernels move each activation in once per pass before their products); BLAS reads
// them in place.

import { parseArgs } from "node:util";
import type { Gemm } from "../autograd/kernels/gemm.ts";
import { createNativeGemm, loadBlas } from "../autograd/kernels/native/mod.ts";
import {
  setThreads as wasmSetThreads,
  threadsReady,
  wasmAvailable,
  wasmGemm,
} from "../autograd/kernels/wasm/gemm.ts";
import { wasmFloat32 } from "../autograd/kernels/wasm/memory.ts";
import { crossEntropy, setThreads, tensor, useBackend } from "../autograd/mod.ts";
import { Rng } from "../autograd/rng.ts";
import { AlexNet, MLP, SGD } from "../nn/mod.ts";
import { writeFileAtomicSync } from "../util/atomic.ts";
import { MLP_GEMM_SHAPES } from "./mlp_shapes.ts";
import { cpuDescription } from "./peers_torch.ts";
import { describeCeiling, type FmaCeiling, measureFmaCeiling } from "./fma_ceiling.ts";
import { median } from "./stats.ts";
import { benchFlags } from "./args.ts";

const { values } = benchFlags(import.meta.url, () =>
  parseArgs({
    options: {
      rounds: { type: "string", default: "31" },
      json: { type: "string" },
      backend: { type: "string", default: "wasm" },
      steps: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  }));
const rounds = Number(values.rounds);
if (!wasmAvailable) {
  console.error("bench/threads.ts: WebAssembly SIMD or shared memory is unavailable here");
  Deno.exit(1);
}

/** The GEMM to time and how to give it a thread count. */
let gemm: Gemm = wasmGemm;
let gemmThreads: (n: number) => void = wasmSetThreads;
let label = "wasm GEMM";
if (values.backend === "native") {
  const load = loadBlas();
  if (load.blas === null) {
    console.error(`bench/threads.ts: --backend native: ${load.reason}`);
    Deno.exit(1);
  }
  const blas = load.blas;
  if (!blas.canSetThreads) {
    console.error(`bench/threads.ts: ${load.reason} has no thread-count call`);
    Deno.exit(1);
  }
  gemm = createNativeGemm(blas);
  // tapegrad's workers stay idle (1 thread) while BLAS is timed, as under useBackend("native").
  wasmSetThreads(1);
  gemmThreads = (n) => blas.setThreads(n);
  label = `native GEMM (${load.reason})`;
} else if (values.backend !== "wasm") {
  console.error(`bench/threads.ts: --backend must be wasm or native, got "${values.backend}"`);
  Deno.exit(2);
}

const rng = new Rng(5);
function operand(n: number): Float32Array {
  const a = wasmFloat32(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform() - 0.5;
  return a;
}

// The bound the wasm GEMM's GFLOPS are measured against, taken before tapegrad's workers start.
const ceiling: FmaCeiling | null = values.backend === "wasm" ? await measureFmaCeiling() : null;

if (values.backend === "wasm") {
  wasmSetThreads(2);
  await threadsReady();
}

interface Row {
  name: string;
  gflop: number;
  oneThreadMs: number;
  twoThreadsMs: number;
  ratio: number;
  ratioMin: number;
  ratioMax: number;
}
const rows: Row[] = [];

/** Paired rounds of `time(1)` then `time(2)` (ms per call), after one warm-up of each. */
function paired(name: string, gflop: number, time: (threads: number) => number): void {
  time(1);
  time(2); // warm-up
  const one: number[] = [];
  const two: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t1 = time(1);
    const t2 = time(2);
    one.push(t1);
    two.push(t2);
    ratios.push(t1 / t2);
  }
  rows.push({
    name,
    gflop,
    oneThreadMs: median(one),
    twoThreadsMs: median(two),
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
  });
}

for (const s of MLP_GEMM_SHAPES) {
  const { transA, transB, m, n, k } = s;
  const a = operand(m * k);
  const b = operand(k * n);
  const c = operand(m * n);
  const lda = transA ? m : k;
  const ldb = transB ? k : n;
  // Enough calls per timing that one takes a few milliseconds.
  const calls = Math.max(3, Math.round(3e7 / (m * n * k)));
  paired(s.name, 2 * m * n * k / 1e9, (threads) => {
    gemmThreads(threads);
    // One untimed call first: after a one-thread timing the worker has gone to sleep, and waking
    // it takes longer than fc3's whole product.
    gemm(transA, transB, m, n, k, a, 0, lda, b, 0, ldb, 0, c, 0, n);
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) gemm(transA, transB, m, n, k, a, 0, lda, b, 0, ldb, 0, c, 0, n);
    return (performance.now() - t0) / calls;
  });
}
gemmThreads(1);

if (values.steps) {
  useBackend(values.backend === "native" ? "native" : "wasm");
  const x = tensor(Float32Array.from({ length: 128 * 784 }, () => rng.normal()))
    .reshape(128, 1, 28, 28);
  const y = Int32Array.from({ length: 128 }, () => Math.floor(rng.uniform() * 10));
  for (
    const [name, model] of [["MLP", new MLP({ seed: 1 })], [
      "AlexNet",
      new AlexNet({ seed: 1 }),
    ]] as const
  ) {
    const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const step = () => {
      optimizer.zeroGrad();
      crossEntropy(model.call(x), y).backward();
      optimizer.step();
    };
    step();
    paired(`${name} training step, batch 128`, NaN, (threads) => {
      setThreads(threads);
      step(); // untimed: wakes the threads
      const t0 = performance.now();
      for (let i = 0; i < 3; i++) step();
      return (performance.now() - t0) / 3;
    });
  }
  setThreads(1);
  useBackend("wasm");
}

console.log(`CPU: ${cpuDescription()}`);
console.log(
  `${label} at batch 128, operands in wasm memory; medians of ${rounds} interleaved rounds`,
);
if (ceiling !== null) console.log(describeCeiling(ceiling));
console.log("| product | 1 thread | 2 threads | 2 threads ÷ 1 (median) | range over rounds |");
console.log("|---|---:|---:|---:|---:|");
for (const r of rows) {
  const oneThreadGflops = r.gflop / (r.oneThreadMs / 1000);
  const share = ceiling === null
    ? ""
    : `, ${(100 * oneThreadGflops / ceiling.oneThreadGflops).toFixed(0)}% of the ceiling`;
  const gflops = Number.isNaN(r.gflop) ? "" : ` (${oneThreadGflops.toFixed(0)} GFLOPS${share})`;
  console.log(
    `| ${r.name} | ${r.oneThreadMs.toFixed(3)} ms${gflops} | ` +
      `${r.twoThreadsMs.toFixed(3)} ms | ${r.ratio.toFixed(2)}× | ` +
      `${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)}× |`,
  );
}
if (values.json !== undefined) {
  writeFileAtomicSync(values.json, JSON.stringify({ ceiling, rows }, null, 2) + "\n");
}
