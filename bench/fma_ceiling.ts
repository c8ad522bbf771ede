// The WebAssembly SIMD FMA ceiling of this CPU: a loop of independent f32x4 multiply-adds with
// no loads or stores, run on 1 thread and on N at once (the main thread and N-1 workers). Its 12
// accumulator chains cover two FMA pipes of 4 cycles' latency (8 chains would); a core with more
// pipes (Apple's M-series has four) would need more chains, and would read low here.
// It is the bound no wasm GEMM can pass, so the GEMM's GFLOPS in bench:threads and
// bench:profile are quoted as a share of it. It uses `f32x4.relaxed_madd` where the runtime has
// relaxed SIMD, as the GEMM does, else `f32x4.mul` + `f32x4.add`.
//
//   deno run --allow-read bench/fma_ceiling.ts [--threads 2] [--ms 300] [--rounds 5]

import { parseArgs } from "node:util";
import { F32, I32, ModuleBuilder, V128 } from "../autograd/kernels/wasm/encoder.ts";
import { addConst, whileLoop } from "../autograd/kernels/wasm/emit.ts";
import { relaxedSimdSupported } from "../autograd/kernels/wasm/kernels.ts";
import { median } from "./stats.ts";

/** Independent accumulator chains in the probe's loop: 12 v128 plus two operands fit in 16. */
const CHAINS = 12;
/** Floating-point operations per loop iteration (a multiply-add is 2 per lane, 4 lanes). */
const FLOPS_PER_ITERATION = CHAINS * 4 * 2;
/** Loop iterations per call of the probe: 6.3 MFLOP, about 0.1 ms at 60 GFLOPS. */
const ITERATIONS_PER_CALL = 1 << 16;

/** The probe module: `run(iterations) -> f32`, whose result keeps the loop from being elided. */
export function fmaProbeModule(relaxed: boolean): Uint8Array {
  const mod = new ModuleBuilder();
  mod.func("run", [I32], [F32], (f, [iterations]) => {
    const [a, b] = [f.local(V128), f.local(V128)];
    const acc = Array.from({ length: CHAINS }, () => f.local(V128));
    // acc ← a·acc + b with a < 1 converges to b / (1 − a): finite whatever the iteration count.
    f.f32Const(0.5).f32x4Splat().set(a);
    f.f32Const(0.25).f32x4Splat().set(b);
    acc.forEach((l, i) => f.f32Const(i).f32x4Splat().set(l));
    whileLoop(f, () => f.get(iterations), () => {
      for (const l of acc) {
        if (relaxed) f.get(a).get(l).get(b).f32x4RelaxedMadd().set(l);
        else f.get(a).get(l).f32x4Mul().get(b).f32x4Add().set(l);
      }
      addConst(f, iterations, -1);
    });
    f.get(acc[0]);
    for (const l of acc.slice(1)) f.get(l).f32x4Add();
    f.f32x4ExtractLane(0);
  });
  return mod.encode();
}

/** What the probe measured. */
export interface FmaCeiling {
  /** Whether it used `f32x4.relaxed_madd` (else mul + add). */
  relaxed: boolean;
  /** Threads that ran the probe at once. */
  threads: number;
  /** Total GFLOPS over all threads (the median over rounds). */
  gflops: number;
  /** GFLOPS of one thread running alone (the median over rounds). */
  oneThreadGflops: number;
}

type Run = (iterations: number) => number;

/** Calls `run` until `ms` have passed; returns GFLOPS. */
function timeProbe(run: Run, ms: number): number {
  let calls = 0;
  const t0 = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    run(ITERATIONS_PER_CALL);
    calls++;
    elapsed = performance.now() - t0;
  }
  return calls * ITERATIONS_PER_CALL * FLOPS_PER_ITERATION / (elapsed * 1e6);
}

/** The worker's side: instantiate the bytes it is sent, then time the probe on every "go". */
function serveProbe(): void {
  // The worker's global scope (the file is type-checked with the main thread's lib).
  const scope = self as unknown as {
    onmessage: (e: MessageEvent) => void;
    postMessage(message: unknown): void;
  };
  let run: Run | null = null;
  scope.onmessage = (e: MessageEvent) => {
    const msg = e.data as { bytes?: Uint8Array; ms: number };
    if (msg.bytes !== undefined) {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(msg.bytes as BufferSource));
      run = instance.exports.run as Run;
      timeProbe(run, 20); // tier-up before the first timing
      scope.postMessage("ready");
      return;
    }
    scope.postMessage(timeProbe(run!, msg.ms));
  };
}

/**
 * Measures the ceiling: each round times the probe on the calling thread alone, then on it and
 * `threads - 1` workers at once (`ms` each). Needs `--allow-read` (the workers load this file).
 */
export async function measureFmaCeiling(
  options: { threads?: number; ms?: number; rounds?: number } = {},
): Promise<FmaCeiling> {
  const { threads = 2, ms = 300, rounds = 3 } = options;
  const relaxed = relaxedSimdSupported();
  const bytes = fmaProbeModule(relaxed);
  const run = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource)).exports
    .run as Run;
  timeProbe(run, 20);
  const workers = Array.from(
    { length: threads - 1 },
    () => new Worker(import.meta.url, { type: "module" }),
  );
  const ask = (w: Worker, msg: unknown) =>
    new Promise<unknown>((resolve) => {
      w.onmessage = (e) => resolve(e.data);
      w.postMessage(msg);
    });
  try {
    await Promise.all(workers.map((w) => ask(w, { bytes, ms })));
    const alone: number[] = [];
    const together: number[] = [];
    for (let r = 0; r < rounds; r++) {
      alone.push(timeProbe(run, ms));
      const others = workers.map((w) => ask(w, { ms }) as Promise<number>);
      const mine = timeProbe(run, ms);
      together.push(mine + (await Promise.all(others)).reduce((s, g) => s + g, 0));
    }
    return { relaxed, threads, gflops: median(together), oneThreadGflops: median(alone) };
  } finally {
    for (const w of workers) w.terminate();
  }
}

/** One line for a report: the ceiling and how it was measured. */
export function describeCeiling(c: FmaCeiling): string {
  return `wasm SIMD FMA ceiling (bench/fma_ceiling.ts, ${
    c.relaxed ? "relaxed_madd" : "mul+add"
  }): ${c.oneThreadGflops.toFixed(1)} GFLOPS on 1 thread, ${c.gflops.toFixed(1)} on ${c.threads}`;
}

const inWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !==
  "undefined";
if (inWorker) serveProbe();
else if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      threads: { type: "string", default: "2" },
      ms: { type: "string", default: "300" },
      rounds: { type: "string", default: "5" },
    },
  });
  const ceiling = await measureFmaCeiling({
    threads: Number(values.threads),
    ms: Number(values.ms),
    rounds: Number(values.rounds),
  });
  console.log(describeCeiling(ceiling));
}
