// Where a training step spends its time: every entry of the kernel table is wrapped in a timer
// for a few measured steps of the MLP and of AlexNet at batch 128 (forward, crossEntropy,
// backward, SGD step with momentum, zeroGrad), and the time outside any kernel is reported as
// "other" (op glue, the tape, allocation of JS objects, garbage collection). The WebAssembly
// kernels are split further into their jobs (micro-kernel, packing, layout passes, col2im) and
// the copies between JavaScript arrays and the wasm memory.
//
//   deno task bench:profile [--model mlp|alexnet|both] [--backend wasm|native|reference|auto]
//       [--kernels default|reference] [--batch 128] [--steps 10] [--rounds 5] [--threads N]
//       [--json PATH] [--device cpu|webgpu]
//
// With --device webgpu it reports what a step costs the device instead: dispatches, compute
// passes, submits, host reads and new buffers per step, and the time per step (bench/webgpu_profile.ts).
//
// With the wasm kernels it also measures the WebAssembly SIMD FMA ceiling on the same number of
// threads (bench/fma_ceiling.ts) and quotes the GEMM's GFLOPS and the whole step's (the products'
// FLOPs over the step's time) as shares of it.
//
// With --backend native the time inside the BLAS calls is its own line ("GEMM: BLAS (native)");
// what is left of the GEMM and Linear kernels is their JS glue.
//
// The step is timed in rounds of `--steps` steps; each category reports its median over the
// rounds. Timers cost about 0.1 µs a call, so kernel times are slightly inflated; the total with
// timers is printed next to the total without them.

import { parseArgs } from "node:util";
import {
  BACKEND_REQUESTS,
  type BackendRequest,
  crossEntropy,
  type Kernels,
  kernels,
  type LinearBackwardArgs,
  type LinearForwardArgs,
  referenceKernels,
  Rng,
  setThreads,
  type Tensor,
  tensor,
  useBackend,
  useKernels,
} from "../autograd/mod.ts";
import { pointerOf } from "../autograd/kernels/wasm/memory.ts";
import { getThreads, setKernelProfile, threadsReady } from "../autograd/kernels/wasm/gemm.ts";
import { AlexNet, MLP, type Module, SGD } from "../nn/mod.ts";
import { writeFileAtomicSync } from "../util/atomic.ts";
import { formatDeviceProfile, profileWebGpu } from "./webgpu_profile.ts";
import type { ModelName } from "./webgpu_step.ts";
import { describeCeiling, type FmaCeiling, measureFmaCeiling } from "./fma_ceiling.ts";
import { median } from "./stats.ts";
import { benchFlags } from "./args.ts";

/**
 * Which report line each kernel's time goes to. The wasm GEMM and convolution kernels are split
 * further by the wasm job profile (see WASM_PART); what is left of them is their JS driver.
 */
const CATEGORY: Record<string, string> = {
  gemm: "GEMM / conv driver (JS glue)",
  linearForward: "GEMM / conv driver (JS glue)",
  linearBackward: "GEMM / conv driver (JS glue)",
  convForward: "GEMM / conv driver (JS glue)",
  convBackward: "GEMM / conv driver (JS glue)",
  im2col: "im2col / col2im",
  col2im: "im2col / col2im",
  unary: "elementwise",
  unaryBackward: "elementwise",
  binary: "elementwise",
  scale: "elementwise",
  addInto: "elementwise",
  dropoutMask: "elementwise",
  biasAdd: "elementwise",
  copyStrided: "copies (strided)",
  sumAxis: "reductions",
  maxAxis: "reductions",
  argmaxAxis: "reductions",
  softmaxAxis: "reductions",
  softmaxAxisBackward: "reductions",
  crossEntropyForward: "crossEntropy",
  crossEntropyBackward: "crossEntropy",
  maxPoolForward: "pooling",
  maxPoolBackward: "pooling",
  alloc: "allocation (kernels.alloc)",
  allocPersistent: "allocation (kernels.alloc)",
  sgdStep: "optimizer (SGD step)",
  adamStep: "optimizer (SGD step)",
  zero: "zeroGrad",
};

/** Report lines for the parts of the wasm kernels (jobs and copies). */
const WASM_PART: Record<string, string> = {
  compute: "GEMM: micro-kernel (packed)",
  dot: "GEMM: micro-kernel (dot, gemv)",
  dotRow: "GEMM: micro-kernel (dot, gemv)",
  gemvN: "GEMM: micro-kernel (dot, gemv)",
  packAB: "GEMM: operand packing",
  packAIdx: "GEMM: packing with im2col fused",
  packBIdx: "GEMM: packing with im2col fused",
  col2imIdx: "im2col / col2im",
  im2row: "im2col / col2im",
  nchwToNhwc: "conv layout passes (NCHW↔NHWC, bias, ReLU)",
  nhwcToNchw: "conv layout passes (NCHW↔NHWC, bias, ReLU)",
  gyRows: "conv layout passes (NCHW↔NHWC, bias, ReLU)",
  "copy in/out": "copies JS ↔ wasm memory",
  blas: "GEMM: BLAS (native)",
  dnnl: "convolutions: oneDNN (native)",
  relu: "elementwise",
  reluBackward: "elementwise",
  leakyRelu: "elementwise",
  leakyReluBackward: "elementwise",
  addInto: "elementwise",
  sgd: "optimizer (SGD step)",
  adam: "optimizer (SGD step)",
  zero: "zeroGrad",
};

const { values } = benchFlags(import.meta.url, () =>
  parseArgs({
    options: {
      model: { type: "string", default: "both" },
      kernels: { type: "string", default: "default" },
      backend: { type: "string", default: "wasm" },
      batch: { type: "string", default: "128" },
      steps: { type: "string", default: "10" },
      rounds: { type: "string", default: "5" },
      threads: { type: "string" },
      json: { type: "string" },
      device: { type: "string", default: "cpu" },
      help: { type: "boolean", short: "h" },
    },
  }));

if (values.device === "webgpu") {
  // The device's own profile: what a step costs in dispatches, submits and host reads.
  const models = values.model === "both"
    ? ["mlp", "alexnet"] as const
    : [values.model as ModelName];
  const profiles = [];
  for (const model of models) {
    const p = await profileWebGpu(
      model,
      Number(values.batch),
      Number(values.steps),
      Number(values.rounds),
    );
    console.log(formatDeviceProfile(p));
    profiles.push(p);
  }
  if (values.json) writeFileAtomicSync(values.json, JSON.stringify(profiles, null, 2) + "\n");
  Deno.exit(0);
} else if (values.device !== "cpu") {
  console.error(`bench/profile.ts: --device must be cpu or webgpu`);
  Deno.exit(2);
}

const batch = Number(values.batch);
const steps = Number(values.steps);
const rounds = Number(values.rounds);
if (values.threads !== undefined) setThreads(Number(values.threads));
if (!(BACKEND_REQUESTS as readonly string[]).includes(values.backend)) {
  console.error(`bench/profile.ts: --backend must be one of ${BACKEND_REQUESTS.join(", ")}`);
  Deno.exit(2);
}
console.error(`backend: ${useBackend(values.backend as BackendRequest).reason}`);
if (values.kernels === "reference") useKernels(referenceKernels);
// The wasm kernels' products are quoted against the FMA ceiling on as many threads as they use,
// measured before tapegrad's workers start so that nothing else runs on the cores.
const ceiling: FmaCeiling | null = kernels.name === "wasm-simd"
  ? await measureFmaCeiling({ threads: getThreads() })
  : null;
await threadsReady();

interface Probe {
  /** Milliseconds per kernel name in the current round. */
  ms: Map<string, number>;
  /** Milliseconds of wasm parts (jobs, copies) per "kernel/part" in the current round. */
  parts: Map<string, number>;
  /** Floating-point operations of GEMM-like kernels in the current round. */
  flops: number;
  /** Bytes of GEMM operands that did not live in the wasm memory (copied in, or C copied out). */
  copiedBytes: number;
}

const probe: Probe = { ms: new Map(), parts: new Map(), flops: 0, copiedBytes: 0 };
/** Wall time of wasm jobs and copies, by job name (see setKernelProfile). */
const wasmParts = new Map<string, number>();

/** Wraps every function of the active kernel table in a timer that adds to `probe`. */
function instrument(): () => void {
  const wrapped: Partial<Record<keyof Kernels, unknown>> = {};
  for (const [name, fn] of Object.entries(kernels)) {
    if (typeof fn !== "function") continue;
    const f = fn as (...args: unknown[]) => unknown;
    wrapped[name as keyof Kernels] = (...args: unknown[]): unknown => {
      wasmParts.clear();
      const t0 = performance.now();
      try {
        return f(...args);
      } finally {
        probe.ms.set(name, (probe.ms.get(name) ?? 0) + performance.now() - t0);
        if (name === "gemm") countGemm(args);
        if (name === "linearForward" || name === "linearBackward") countLinear(args[0]);
        // The wasm parts of this call belong to this kernel (kernels do not nest).
        for (const [job, ms] of wasmParts) {
          const key = `${name}|${job}`;
          probe.parts.set(key, (probe.parts.get(key) ?? 0) + ms);
        }
      }
    };
  }
  const restore = useKernels(wrapped as Partial<Kernels>);
  setKernelProfile(wasmParts);
  return () => {
    setKernelProfile(null);
    restore();
  };
}

function countGemm(args: unknown[]): void {
  const [transA, transB, m, n, k, a, , , b, , , beta, c] = args as [
    boolean,
    boolean,
    number,
    number,
    number,
    Float32Array,
    number,
    number,
    Float32Array,
    number,
    number,
    number,
    Float32Array,
  ];
  probe.flops += 2 * m * n * k;
  if (pointerOf(a) < 0) probe.copiedBytes += 4 * m * k;
  if (pointerOf(b) < 0) probe.copiedBytes += 4 * k * n;
  if (pointerOf(c) < 0) probe.copiedBytes += 4 * m * n * (beta === 0 ? 1 : 2);
  void transA;
  void transB;
}

/** FLOPs and copied bytes of a Linear kernel call (its GEMMs run inside it, not via kernels.gemm). */
function countLinear(args: unknown): void {
  const a = args as LinearBackwardArgs & Partial<LinearForwardArgs>;
  const { rows, inFeatures, outFeatures } = a;
  const outside = (arr: Float32Array | null | undefined, n: number): number =>
    arr && pointerOf(arr) < 0 ? 4 * n : 0;
  if (a.out !== undefined) {
    probe.flops += 2 * rows * inFeatures * outFeatures;
    probe.copiedBytes += outside(a.x, rows * inFeatures) + outside(a.out, rows * outFeatures);
    return;
  }
  const products = (a.gx ? 1 : 0) + (a.gw ? 1 : 0);
  probe.flops += 2 * rows * inFeatures * outFeatures * products +
    (a.gb ? 2 * rows * outFeatures : 0);
  probe.copiedBytes += outside(a.gy, rows * outFeatures) + outside(a.y, rows * outFeatures) +
    (a.gw ? outside(a.x, rows * inFeatures) : 0) + outside(a.gx, rows * inFeatures) +
    outside(a.gw, inFeatures * outFeatures) + outside(a.gb, outFeatures);
}

function makeModel(name: string): Module<[Tensor], Tensor> {
  return name === "mlp" ? new MLP({ seed: 1 }) : new AlexNet({ seed: 1 });
}

function inputBatch(rng: Rng): { x: Tensor; y: Int32Array } {
  const data = new Float32Array(batch * 784);
  for (let i = 0; i < data.length; i++) data[i] = rng.normal();
  const x = tensor(data).reshape(batch, 1, 28, 28);
  const y = new Int32Array(batch);
  for (let i = 0; i < batch; i++) y[i] = Math.floor(rng.uniform() * 10);
  return { x, y };
}

/** FLOPs of the convolutions of one training step (they bypass kernels.gemm in wasm). */
function convFlops(name: string): number {
  if (name !== "alexnet" || kernels.name === "typescript") return 0;
  // [outChannels, C·kh·kw, pixels], and whether the input gradient is computed.
  const layers: [number, number, number, boolean][] = [
    [32, 16, 169, false],
    [64, 288, 49, true],
    [128, 576, 16, true],
  ];
  let flops = 0;
  for (const [o, k, p, gx] of layers) flops += 2 * o * k * p * batch * (gx ? 3 : 2);
  return flops;
}

interface ModelProfile {
  model: string;
  kernels: string;
  batch: number;
  stepMs: number;
  stepMsUninstrumented: number;
  imagesPerSecond: number;
  gemmGflops: number;
  /** The step's product FLOPs over its uninstrumented time. */
  stepGflops: number;
  gemmShare: number;
  copiedMBPerStep: number;
  categories: Record<string, number>;
  phases: Record<string, number>;
  perKernel: Record<string, number>;
  /** Largest resident set size seen after a round of steps, MiB. */
  rssMB: number;
}

function profile(name: string): ModelProfile {
  const model = makeModel(name);
  model.train();
  const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const rng = new Rng(7);
  const { x, y } = inputBatch(rng);
  const phase = new Map<string, number>();
  const time = (key: string, fn: () => void): void => {
    const t0 = performance.now();
    fn();
    phase.set(key, (phase.get(key) ?? 0) + performance.now() - t0);
  };
  const step = (): void => {
    let logits: Tensor | null = null;
    let loss: Tensor | null = null;
    time("zeroGrad", () => optimizer.zeroGrad());
    time("forward", () => {
      logits = model.call(x);
    });
    time("loss", () => {
      loss = crossEntropy(logits!, y);
    });
    time("backward", () => loss!.backward());
    time("optimizer step", () => optimizer.step());
  };
  step();
  for (let i = 0; i < 10; i++) step();

  // Uninstrumented step time, for comparison.
  const plain: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) step();
    plain.push((performance.now() - t0) / steps);
  }

  const restore = instrument();
  let peakRss = Deno.memoryUsage().rss;
  const perRound: Map<string, number>[] = [];
  const totals: number[] = [];
  const flops: number[] = [];
  const copied: number[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      probe.ms.clear();
      probe.parts.clear();
      probe.flops = 0;
      probe.copiedBytes = 0;
      phase.clear();
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) step();
      const total = (performance.now() - t0) / steps;
      peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
      const row = new Map<string, number>();
      let inKernels = 0;
      for (const [k, ms] of probe.ms) {
        const cat = CATEGORY[k] ?? `other kernels (${k})`;
        row.set(cat, (row.get(cat) ?? 0) + ms / steps);
        row.set(`kernel: ${k}`, ms / steps);
        inKernels += ms / steps;
      }
      // Split the wasm kernels into their parts; the rest stays with the kernel's own line.
      for (const [key, ms] of probe.parts) {
        const [kernel, job] = key.split("|");
        const cat = WASM_PART[job] ?? `wasm ${job}`;
        row.set(cat, (row.get(cat) ?? 0) + ms / steps);
        const own = CATEGORY[kernel] ?? `other kernels (${kernel})`;
        row.set(own, (row.get(own) ?? 0) - ms / steps);
        row.set(`kernel: ${key}`, ms / steps);
      }
      // The optimizer's own code (around its sgdStep kernel calls) and zeroGrad live in nn/optim.
      const optKernels = ((probe.ms.get("sgdStep") ?? 0) + (probe.ms.get("adamStep") ?? 0)) /
        steps;
      const opt = (phase.get("optimizer step") ?? 0) / steps - optKernels;
      const zeroKernel = (probe.ms.get("zero") ?? 0) / steps;
      const zero = (phase.get("zeroGrad") ?? 0) / steps - zeroKernel;
      const optimizer = "optimizer (SGD step)";
      row.set(optimizer, (row.get(optimizer) ?? 0) + opt);
      row.set("zeroGrad", (row.get("zeroGrad") ?? 0) + zero);
      row.set("other (op glue, tape, GC)", total - inKernels - opt - zero);
      for (const [k, v] of phase) row.set(`phase: ${k}`, v / steps);
      perRound.push(row);
      totals.push(total);
      flops.push(probe.flops / steps);
      copied.push(probe.copiedBytes / steps);
    }
  } finally {
    restore();
  }
  const keys = new Set<string>();
  for (const row of perRound) for (const k of row.keys()) keys.add(k);
  const categories: Record<string, number> = {};
  const phases: Record<string, number> = {};
  const perKernel: Record<string, number> = {};
  for (const k of keys) {
    const v = median(perRound.map((r) => r.get(k) ?? 0));
    if (k.startsWith("phase: ")) phases[k.slice(7)] = v;
    else if (k.startsWith("kernel: ")) perKernel[k.slice(8)] = v;
    else categories[k] = v;
  }
  const stepMs = median(totals);
  let gemmMs = 0;
  for (const [k, v] of Object.entries(categories)) if (k.startsWith("GEMM:")) gemmMs += v;
  if (gemmMs === 0) gemmMs = categories["GEMM / conv driver (JS glue)"] ?? 0;
  return {
    model: name,
    kernels: kernels.name,
    batch,
    stepMs,
    stepMsUninstrumented: median(plain),
    imagesPerSecond: batch / (median(plain) / 1000),
    gemmGflops: gemmMs > 0 ? (median(flops) + convFlops(name)) / (gemmMs * 1e6) : 0,
    stepGflops: (median(flops) + convFlops(name)) / (median(plain) * 1e6),
    gemmShare: 100 * gemmMs / stepMs,
    copiedMBPerStep: median(copied) / 1e6,
    categories,
    phases,
    perKernel,
    rssMB: peakRss / 2 ** 20,
  };
}

function report(p: ModelProfile): void {
  console.log(
    `\n${p.model} training step, batch ${p.batch}, kernels "${p.kernels}"` +
      ": " +
      `${p.stepMsUninstrumented.toFixed(2)} ms/step (${p.stepMs.toFixed(2)} with timers), ` +
      `${Math.round(p.imagesPerSecond)} images/s, peak RSS ${Math.round(p.rssMB)} MiB`,
  );
  console.log(
    `GEMM (packing + micro-kernel) ${p.gemmShare.toFixed(1)}% of the step, at ` +
      `${p.gemmGflops.toFixed(1)} GFLOPS; ${p.copiedMBPerStep.toFixed(1)} MB of GEMM and Linear ` +
      "operands outside the wasm memory per step",
  );
  if (ceiling !== null) {
    const share = (g: number) => `${(100 * g / ceiling.gflops).toFixed(0)}%`;
    console.log(
      `${describeCeiling(ceiling)}: the GEMM runs at ${share(p.gemmGflops)} of it, the whole ` +
        `step (its products' FLOPs over its time, ${p.stepGflops.toFixed(1)} GFLOPS) at ` +
        share(p.stepGflops),
    );
  }
  const rows = Object.entries(p.categories).sort((a, b) => b[1] - a[1]);
  console.log("| where | ms/step | share |");
  console.log("|---|---:|---:|");
  for (const [k, v] of rows) {
    console.log(`| ${k} | ${v.toFixed(3)} | ${(100 * v / p.stepMs).toFixed(1)}% |`);
  }
  console.log(
    "phases (ms/step): " +
      Object.entries(p.phases).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", "),
  );
  console.log(
    "kernels (ms/step): " +
      Object.entries(p.perKernel).sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", "),
  );
}

const models = values.model === "both" ? ["mlp", "alexnet"] : [values.model!];
const results: ModelProfile[] = [];
for (const m of models) {
  const p = profile(m);
  results.push(p);
  report(p);
}
if (values.json !== undefined) {
  writeFileAtomicSync(values.json, JSON.stringify({ ceiling, results }, null, 2) + "\n");
}
