// Two-thread scaling of the WebAssembly GEMM on the MLP's shapes at batch 128, as a median of
// interleaved rounds. Deno.bench (bench/gemm_bench.ts) times all one-thread iterations of a product
// and then all two-thread ones and compares their means, so on a machine shared with other work a
// change of load between the two runs, or one burst, moves the ratio. Here every round times the
// product on one thread and then on two, back to back, and the ratio is taken per round: the
// median of those ratios is what both thread counts saw under the same conditions.
//
//   deno task bench:threads [--rounds 31] [--json PATH]      (--json also needs --allow-write)
//
// Operands live in the wasm memory, as in training (parameters and gradients are kept there and
// the Linear kernels move each activation in once per pass before their products).

import { parseArgs } from "node:util";
import {
  setThreads,
  threadsReady,
  wasmAvailable,
  wasmGemm,
} from "../autograd/kernels/wasm/gemm.ts";
import { wasmFloat32 } from "../autograd/kernels/wasm/memory.ts";
import { Rng } from "../autograd/rng.ts";
import { writeFileAtomicSync } from "../util/atomic.ts";
import { MLP_GEMM_SHAPES } from "./mlp_shapes.ts";

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "31" }, json: { type: "string" } },
});
const rounds = Number(values.rounds);
if (!wasmAvailable) {
  console.error("bench/threads.ts: WebAssembly SIMD or shared memory is unavailable here");
  Deno.exit(1);
}

const rng = new Rng(5);
function operand(n: number): Float32Array {
  const a = wasmFloat32(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform() - 0.5;
  return a;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

setThreads(2);
await threadsReady();

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
for (const s of MLP_GEMM_SHAPES) {
  const { transA, transB, m, n, k } = s;
  const a = operand(m * k);
  const b = operand(k * n);
  const c = operand(m * n);
  const lda = transA ? m : k;
  const ldb = transB ? k : n;
  // Enough calls per timing that one takes a few milliseconds.
  const calls = Math.max(3, Math.round(3e7 / (m * n * k)));
  const time = (threads: number): number => {
    setThreads(threads);
    // One untimed call first: after a one-thread timing the worker has gone to sleep, and waking
    // it takes longer than fc3's whole product.
    wasmGemm(transA, transB, m, n, k, a, 0, lda, b, 0, ldb, 0, c, 0, n);
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) {
      wasmGemm(transA, transB, m, n, k, a, 0, lda, b, 0, ldb, 0, c, 0, n);
    }
    return (performance.now() - t0) / calls;
  };
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
    name: s.name,
    gflop: 2 * m * n * k / 1e9,
    oneThreadMs: median(one),
    twoThreadsMs: median(two),
    ratio: median(ratios),
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
  });
}
setThreads(1);

console.log(`GEMM at batch 128, operands in wasm memory; medians of ${rounds} interleaved rounds`);
console.log("| product | 1 thread | 2 threads | 2 threads ÷ 1 (median) | range over rounds |");
console.log("|---|---:|---:|---:|---:|");
for (const r of rows) {
  const gflops = r.gflop / (r.oneThreadMs / 1000);
  console.log(
    `| ${r.name} | ${r.oneThreadMs.toFixed(3)} ms (${gflops.toFixed(0)} GFLOPS) | ` +
      `${r.twoThreadsMs.toFixed(3)} ms | ${r.ratio.toFixed(2)}× | ` +
      `${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)}× |`,
  );
}
if (values.json !== undefined) {
  writeFileAtomicSync(values.json, JSON.stringify(rows, null, 2) + "\n");
}
