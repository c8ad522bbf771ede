// tapegrad against PyTorch (CPU, when `/usr/bin/python3 -c "import torch"` works) and
// TensorFlow.js (cpu backend, and wasm backend with SIMD) in one run, on the same models and
// batches: a training step at batch 128 (forward, softmax cross-entropy, backward, SGD with
// momentum 0.9), and inference at batch 1 and 128, also with the Linear layers quantized to int8
// (tapegrad's quantizeDynamic, PyTorch's quantize_dynamic). tapegrad runs on each of its backends that
// loads here (wasm, and native when a system BLAS loads). Prints images/s for each and the
// ratios of each tapegrad backend to each peer.
//
//   deno task bench:peers                       (all backends and peers, all cores)
//   deno task bench:peers --quick               (shorter timing rounds)
//   deno task bench:peers --threads 2 --backends native,wasm --peers pytorch
//
// PyTorch runs as a child process (bench/peers_torch.py --serve, the same models and protocol)
// that times one round per request, so its rounds alternate with tapegrad's: every round of a
// task runs each tapegrad backend and PyTorch (with the same thread count, and with one intra-op
// thread, its fastest here) once, in a rotating order, and each ratio is the median of the
// round-by-round ratios. It needs `--allow-run` (the task grants it for /usr/bin/python3),
// Debian's python3-torch and libopenblas0-pthread (torch falls back to the reference BLAS
// without it). When it is missing the run says how to add it and goes on.
//
// TensorFlow.js comes from npm (npm: specifiers, fetched by Deno on first run). Its wasm backend
// loads its .wasm files from the installed package (setWasmPaths); it runs single-threaded under
// Deno (its threaded build needs a cross-origin-isolated browser page). TensorFlow.js layers are
// channels-last, so AlexNet takes [N, 28, 28, 1] there; 'same' padding with stride 2 gives the
// same sizes as PyTorch's padding 1 for these layers, so every model does the same arithmetic.
//
// Timings: each measurement is the median of a few rounds after an untimed warm-up round; the
// machines this runs on have 2 cores shared with other work, so compare the ratios of one run, not
// absolute figures.

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import { setWasmPaths } from "npm:@tensorflow/tfjs-backend-wasm@4.22.0";
import {
  type BackendName,
  crossEntropy,
  getThreads,
  kernels,
  noGrad,
  Rng,
  setThreads,
  type Tensor,
  tensor,
  useBackend,
} from "../autograd/mod.ts";
import { threadsReady } from "../autograd/kernels/wasm/gemm.ts";
import { AlexNet, MLP, type Module, quantizeDynamic, SGD } from "../nn/mod.ts";
import { cpuDescription, startTorchPeer } from "./peers_torch.ts";
import { median } from "./stats.ts";
import { benchFlags } from "./args.ts";

const { values } = benchFlags(import.meta.url, () =>
  parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      threads: { type: "string" },
      backends: { type: "string", default: "native,wasm" },
      peers: { type: "string", default: "pytorch,tfjs-cpu,tfjs-wasm" },
      python: { type: "string", default: "/usr/bin/python3" },
      "round-s": { type: "string" },
      rounds: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  }));
/** Seconds per timing round, and rounds per measurement. */
const ROUND_S = values["round-s"] !== undefined
  ? Number(values["round-s"])
  : values.quick
  ? 0.25
  : 0.6;
const ROUNDS = values.rounds !== undefined ? Number(values.rounds) : values.quick ? 3 : 5;
const BATCH = 128;
/** Milliseconds of idling before each alternated round (see where it is used). */
const PAUSE_MS = 250;
if (values.threads !== undefined) setThreads(Number(values.threads));
const THREADS = getThreads();
const backends = values.backends.split(",").filter((b) => b !== "") as BackendName[];
const peerList = values.peers.split(",").filter((p) => p !== "");
for (const p of peerList) {
  if (!["pytorch", "tfjs-cpu", "tfjs-wasm"].includes(p)) {
    console.error(`bench/peers.ts: --peers: unknown peer "${p}" (pytorch, tfjs-cpu, tfjs-wasm)`);
    Deno.exit(2);
  }
}

/** Seconds per call of `fn` over one round of at least ROUND_S seconds (at least one call). */
function oneRound(fn: () => void): number {
  let calls = 0;
  const t0 = performance.now();
  let t = t0;
  while (calls === 0 || t - t0 < ROUND_S * 1000) {
    fn();
    calls++;
    t = performance.now();
  }
  return (t - t0) / 1000 / calls;
}

/**
 * Median seconds per call of `fn`: an untimed warm-up round, then ROUNDS rounds (one, for a very
 * slow implementation: seconds per call).
 */
function measure(fn: () => void): number {
  oneRound(fn);
  const per: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    per.push(oneRound(fn));
    if (per[r] > 4) break;
  }
  return median(per);
}

function images(n: number, rng: Rng): Float32Array {
  const x = new Float32Array(n * 784);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  return x;
}

function labels(n: number, rng: Rng): Int32Array {
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = Math.floor(rng.uniform() * 10);
  return y;
}

/**
 * One row of results: seconds per call (or an error) per implementation, and for those that
 * alternated, their seconds per call round by round.
 */
interface Row {
  what: string;
  batch: number;
  seconds: Map<string, number | string>;
  rounds: Map<string, number[]>;
}

const rows: Row[] = [];
const rng = new Rng(1);
const xb = images(BATCH, rng);
const x1 = images(1, rng);
const yb = labels(BATCH, rng);

function row(what: string, batch: number): Row {
  let r = rows.find((x) => x.what === what && x.batch === batch);
  if (r === undefined) {
    r = { what, batch, seconds: new Map(), rounds: new Map() };
    rows.push(r);
  }
  return r;
}

// ---- tapegrad and PyTorch, round by round ----

/** One of the tasks every implementation runs; `key` names it to the PyTorch child. */
interface Task {
  what: string;
  batch: number;
  key: string;
}

const TASKS: Task[] = (["mlp", "alexnet"] as const).flatMap((model) => [
  { what: `${model} train step`, batch: BATCH, key: `${model} train step` },
  { what: `${model} forward`, batch: 1, key: `${model} forward 1` },
  { what: `${model} forward`, batch: BATCH, key: `${model} forward ${BATCH}` },
  // Linear layers quantized to int8 (quantizeDynamic; PyTorch's quantize_dynamic), inference.
  { what: `${model} forward, int8 Linear`, batch: 1, key: `${model} int8 forward 1` },
  { what: `${model} forward, int8 Linear`, batch: BATCH, key: `${model} int8 forward ${BATCH}` },
]);

/** An implementation in the alternation: one timing round (seconds per call) of a task. */
interface Contestant {
  name: string;
  round(task: Task): Promise<number>;
}

/** The tapegrad columns, in the order they ran. */
const tapegradNames: string[] = [];
const contestants: Contestant[] = [];
for (const backend of backends) {
  let reason: string;
  try {
    reason = useBackend(backend).reason;
  } catch (e) {
    console.error(`tapegrad ${backend}: ${firstLine(e)} (skipped)`);
    continue;
  }
  setThreads(THREADS);
  await threadsReady();
  const tgName = `tapegrad ${kernels.name} (${getThreads()} threads)`;
  console.error(`${tgName}: ${reason}`);
  tapegradNames.push(tgName);
  const xB = tensor(xb).reshape(BATCH, 1, 28, 28);
  const x1t = tensor(x1).reshape(1, 1, 28, 28);
  const calls = new Map<string, () => void>();
  for (const name of ["mlp", "alexnet"] as const) {
    const model: Module<[Tensor], Tensor> = name === "mlp"
      ? new MLP({ seed: 1 })
      : new AlexNet({ seed: 1 });
    const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const step = (): void => {
      optimizer.zeroGrad();
      crossEntropy(model.call(xB), yb).backward();
      optimizer.step();
    };
    step(); // allocates the gradients
    calls.set(`${name} train step`, step);
    calls.set(`${name} forward 1`, () => noGrad(() => model.call(x1t)));
    calls.set(`${name} forward ${BATCH}`, () => noGrad(() => model.call(xB)));
    const int8 = quantizeDynamic(name === "mlp" ? new MLP({ seed: 1 }) : new AlexNet({ seed: 1 }));
    int8.eval();
    calls.set(`${name} int8 forward 1`, () => noGrad(() => int8.call(x1t)));
    calls.set(`${name} int8 forward ${BATCH}`, () => noGrad(() => int8.call(xB)));
  }
  const warm = new Set<string>();
  contestants.push({
    name: tgName,
    round(task) {
      // The backends take turns, so each round installs its own (the tables are ready-made).
      useBackend(backend);
      setThreads(THREADS);
      const fn = calls.get(task.key)!;
      // A task's first round is preceded by an untimed one: in a fresh process the first 50
      // native MLP steps ran about 20% slower than the steps after the hundredth (Intel Xeon).
      if (!warm.has(task.key)) {
        oneRound(fn);
        warm.add(task.key);
      }
      return Promise.resolve(oneRound(fn));
    },
  });
}
useBackend("wasm");

/** The CPU's vector extension as the PyTorch child read it (Deno may not read /proc). */
let cpuVector = "";

// PyTorch also on one intra-op thread when more are asked for: on the 2-core machines here its
// OpenMP threads and OpenBLAS's oversubscribe the cores, and one OpenMP thread is its fastest
// (and its default: torch.get_num_threads() is 1 there; the column that matches the child's
// default says so). OpenBLAS, which PyTorch does not tell, keeps one thread per core for the
// products either way.
const torchThreads = THREADS > 1 ? [THREADS, 1] : [THREADS];
const torch = peerList.includes("pytorch")
  ? await startTorchPeer({ python: values.python, batch: BATCH })
  : null;
if (torch !== null && "missing" in torch) console.error(`PyTorch: ${torch.missing}`);
else if (torch !== null) {
  cpuVector = torch.cpu;
  console.error(`${torch.name}: BLAS ${torch.blas}`);
  for (const threads of torchThreads) {
    const count = threads === 1 && THREADS > 1
      ? `1 thread, OpenBLAS on ${THREADS}`
      : `${threads} threads`;
    const label = `${torch.name} (${count}${
      threads === torch.defaultThreads ? ", its default here" : ""
    })`;
    contestants.push({ name: label, round: (task) => torch.round(task.key, threads, ROUND_S) });
  }
}

// Every round of a task runs each implementation once, in an order that rotates from round to
// round, so a change of the machine's speed falls on all of them alike.
/** Contestants that failed, with why: they sit out the rest of the run. */
const failed = new Map<string, string>();
for (const task of TASKS) {
  const r = row(task.what, task.batch);
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < contestants.length; i++) {
      const c = contestants[(i + round) % contestants.length];
      if (failed.has(c.name)) continue;
      const rounds = r.rounds.get(c.name) ?? [];
      // A very slow implementation (seconds per call) gets one round.
      if (rounds.length > 0 && rounds[0] > 4) continue;
      // Idle threads of the one before (OpenBLAS's, OpenMP's, tapegrad's pool) spin for up to
      // about 0.1 s after their last job: a pause lets them sleep before the next one starts.
      await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
      try {
        rounds.push(await c.round(task));
      } catch (e) {
        failed.set(c.name, firstLine(e));
        console.error(`${c.name}: ${firstLine(e)} (left out from here on)`);
        continue;
      }
      r.rounds.set(c.name, rounds);
    }
  }
  for (const [name, rounds] of r.rounds) r.seconds.set(name, median(rounds));
  for (const [name, why] of failed) if (!r.rounds.has(name)) r.seconds.set(name, `failed: ${why}`);
}
if (torch !== null && !("missing" in torch)) await torch.close().catch(() => {});

// ---- TensorFlow.js ----

function tfMlp(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.flatten({ inputShape: [28, 28, 1] }),
      tf.layers.dense({ units: 512, activation: "relu" }),
      tf.layers.dense({ units: 1024, activation: "relu" }),
      tf.layers.dense({ units: 10 }),
    ],
  });
}

function tfAlexNet(): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [28, 28, 1],
        filters: 32,
        kernelSize: 4,
        strides: 2,
        padding: "valid",
        activation: "relu",
      }),
      tf.layers.conv2d({
        filters: 64,
        kernelSize: 3,
        strides: 2,
        padding: "same",
        activation: "relu",
      }),
      tf.layers.conv2d({
        filters: 128,
        kernelSize: 3,
        strides: 2,
        padding: "same",
        activation: "relu",
      }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 1024, activation: "relu" }),
      tf.layers.dense({ units: 10 }),
    ],
  });
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0].slice(0, 120);
}

async function tfRun(backend: "cpu" | "wasm"): Promise<void> {
  if (backend === "wasm") {
    const require = createRequire(import.meta.url);
    const pkg = dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json"));
    setWasmPaths(join(pkg, "dist") + "/");
  }
  const ok = await tf.setBackend(backend);
  await tf.ready();
  if (!ok || tf.getBackend() !== backend) throw new Error(`TensorFlow.js ${backend} unavailable`);
  const name = `tfjs-${backend} ${tf.version.tfjs}`;
  const xB = tf.tensor4d(xb, [BATCH, 28, 28, 1]);
  const x1t = tf.tensor4d(x1, [1, 28, 28, 1]);
  const onehot = tf.oneHot(tf.tensor1d(yb, "int32"), 10);
  for (const model of ["mlp", "alexnet"]) {
    const net = model === "mlp" ? tfMlp() : tfAlexNet();
    const optimizer = tf.train.momentum(0.01, 0.9);
    const step = (): void => {
      tf.tidy(() => {
        const cost = optimizer.minimize(
          () =>
            tf.losses.softmaxCrossEntropy(onehot, net.apply(xB, { training: true }) as tf.Tensor),
          true,
        );
        cost?.dataSync();
      });
    };
    try {
      row(`${model} train step`, BATCH).seconds.set(name, measure(step));
    } catch (e) {
      row(`${model} train step`, BATCH).seconds.set(name, `cannot train: ${firstLine(e)}`);
    }
    for (const [x, batch] of [[x1t, 1], [xB, BATCH]] as const) {
      const fwd = (): void => {
        tf.tidy(() => (net.apply(x) as tf.Tensor).dataSync());
      };
      try {
        row(`${model} forward`, batch).seconds.set(name, measure(fwd));
      } catch (e) {
        row(`${model} forward`, batch).seconds.set(name, `failed: ${firstLine(e)}`);
      }
    }
    net.dispose();
    optimizer.dispose();
  }
  tf.dispose([xB, x1t, onehot]);
}

for (const backend of ["cpu", "wasm"] as const) {
  if (!peerList.includes(`tfjs-${backend}`)) continue;
  try {
    await tfRun(backend);
  } catch (e) {
    console.error(`TensorFlow.js ${backend}: ${firstLine(e)}`);
  }
}

// ---- report ----

const impls = [...tapegradNames, ...new Set(rows.flatMap((r) => [...r.seconds.keys()]))].filter((
  v,
  i,
  a,
) => a.indexOf(v) === i);
const fmt = (r: Row, impl: string): string => {
  const s = r.seconds.get(impl);
  if (s === undefined) return "–";
  if (typeof s === "string") return s;
  const perSecond = r.batch / s;
  return r.batch === 1
    ? `${(s * 1000).toFixed(3)} ms (${Math.round(perSecond)}/s)`
    : `${Math.round(perSecond)} images/s`;
};
const peers = impls.filter((i) => !tapegradNames.includes(i));
const pairs = tapegradNames.flatMap((t) => peers.map((p) => [t, p] as const));
/** A column's name without "tapegrad " and, but for PyTorch (run with two counts), its threads. */
const short = (name: string) =>
  (name.startsWith("pytorch") ? name : name.replace(/ \(.*\)$/, "")).replace(/^tapegrad /, "");
console.log(
  `\nCPU: ${cpuDescription(cpuVector)}; ${THREADS} thread(s) for every implementation` +
    (torchThreads.length > 1 ? " (PyTorch also on 1)" : ""),
);
console.log(`\n| task | batch | ${impls.join(" | ")} |`);
console.log(`|---|---:|${impls.map(() => "---:").join("|")}|`);
for (const r of rows) {
  console.log(`| ${r.what} | ${r.batch} | ${impls.map((i) => fmt(r, i)).join(" | ")} |`);
}
if (pairs.length > 0) {
  console.log(
    `\n| task | batch | ${pairs.map(([t, p]) => `${short(t)} ÷ ${short(p)}`).join(" | ")} |`,
  );
  console.log(`|---|---:|${pairs.map(() => "---:").join("|")}|`);
  for (const r of rows) {
    const ratios = pairs.map(([t, p]) => {
      const mine = r.rounds.get(t), theirs = r.rounds.get(p);
      if (mine !== undefined && theirs !== undefined && mine.length === theirs.length) {
        // Alternated: the median of the round-by-round ratios.
        return `${median(mine.map((m, i) => theirs[i] / m)).toFixed(2)}×`;
      }
      const m = r.seconds.get(t), th = r.seconds.get(p);
      return typeof th === "number" && typeof m === "number" ? `${(th / m).toFixed(2)}×` : "–";
    });
    console.log(`| ${r.what} | ${r.batch} | ${ratios.join(" | ")} |`);
  }
}
console.log(
  "\nratio = peer time / tapegrad time (higher: tapegrad faster). tapegrad and PyTorch " +
    `alternate: ${ROUNDS} rounds of ≥${ROUND_S} s, each running every one of them once in a ` +
    "rotating order; times are medians over the rounds and their ratios the median of the " +
    "round-by-round ratios. TensorFlow.js runs after them (medians of as many rounds).",
);
