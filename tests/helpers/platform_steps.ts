/**
 * The training steps every platform test runs (Deno from a URL, Node on the bundle, a Chromium
 * page and its Web Worker): a seeded MLP trained for a few SGD steps on fixed synthetic data, a
 * known gradient, and a safetensors round trip, on bytes everywhere and through a file where the
 * runtime has one. It imports only the library, so it runs wherever the library does; the
 * reports are compared across runtimes (the same step must give the same loss).
 *
 * @module
 */

import {
  crossEntropy,
  decodeSafetensors,
  encodeSafetensors,
  getThreads,
  kernels,
  Linear,
  loadModel,
  manualSeed,
  ReLU,
  saveModel,
  Sequential,
  setThreads,
  SGD,
  type StoredTensor,
  tensor,
} from "../../mod.ts";
import { threadsReady, threadStats } from "../../autograd/kernels/wasm/mod.ts";
import { runtime } from "../../autograd/platform/runtime.ts";

/** What {@linkcode platformSteps} measured. */
export interface StepsReport {
  /** The runtime the steps ran in. */
  runtime: string;
  /** The kernel table used. */
  kernels: string;
  /** Threads the kernels used (calling thread included). */
  threads: number;
  /** Jobs a worker thread took part in (> 0 proves a second thread computed). */
  joinedJobs: number;
  /** The loss before each SGD step. */
  losses: number[];
  /** Gradient of sum(w²) at w = [0.5, -1] (exactly [1, -2]). */
  squareGrad: number[];
  /** Largest relative error of d sum(x·Wᵀ)/dW against float64 column sums of x. */
  matmulGradError: number;
  /** Whether the model's state dict survived encodeSafetensors → decodeSafetensors. */
  bytesRoundTrip: boolean;
  /** Whether saveModel → loadModel by path reproduced the outputs (null: not asked). */
  fileRoundTrip: boolean | null;
}

/** Options of {@linkcode platformSteps}. */
export interface StepsOptions {
  /** Threads for the kernels (default: the library's default). */
  threads?: number;
  /** A file path for the saveModel/loadModel round trip; omitted where there are no files. */
  modelPath?: string;
  /** SGD steps (default 5). */
  steps?: number;
}

const BATCH = 64;
const IN = 256;
const HIDDEN = 256;
const CLASSES = 10;

/** Fixed inputs in [-1, 1) from a 32-bit LCG: the same on every runtime, no library RNG. */
function inputs(): Float32Array {
  const x = new Float32Array(BATCH * IN);
  let s = 12345;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 2 ** 31 - 1;
  }
  return x;
}

function makeModel(): Sequential {
  return new Sequential(new Linear(IN, HIDDEN), new ReLU(), new Linear(HIDDEN, CLASSES));
}

function storedState(model: Sequential): Record<string, StoredTensor> {
  const out: Record<string, StoredTensor> = {};
  for (const [name, t] of Object.entries(model.stateDict())) {
    out[name] = {
      shape: [...t.shape],
      data: Float32Array.from(t.contiguous().values() as Float32Array),
    };
  }
  return out;
}

function sameArrays(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Runs the steps (see the module documentation) and reports what they gave. */
export async function platformSteps(options: StepsOptions = {}): Promise<StepsReport> {
  if (options.threads !== undefined) setThreads(options.threads);
  if (kernels.name.includes("wasm")) await threadsReady();
  manualSeed(7);
  const model = makeModel();
  const optimizer = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const xData = inputs();
  const x = tensor(xData).reshape(BATCH, IN);
  const y = new Int32Array(BATCH).map((_, i) => (i * 7) % CLASSES);
  const losses: number[] = [];
  for (let step = 0; step < (options.steps ?? 5); step++) {
    optimizer.zeroGrad();
    const loss = crossEntropy(model.call(x), y);
    losses.push(loss.item());
    loss.backward();
    optimizer.step();
  }

  const w = tensor([0.5, -1], { requiresGrad: true });
  w.mul(w).sum().backward();
  const squareGrad = Array.from(w.grad!.values() as Float32Array);

  // d sum(x·Wᵀ)/dW[j, k] = Σ_i x[i, k]: every row of the gradient is x's column sums.
  const layer = new Linear(IN, 128);
  layer.call(x).sum().backward();
  const g = layer.weight.grad!.contiguous().values() as Float32Array;
  let matmulGradError = 0;
  for (let k = 0; k < IN; k++) {
    let sum = 0;
    for (let i = 0; i < BATCH; i++) sum += xData[i * IN + k];
    for (let j = 0; j < 128; j++) {
      matmulGradError = Math.max(
        matmulGradError,
        Math.abs(g[j * IN + k] - sum) / (1 + Math.abs(sum)),
      );
    }
  }

  const state = storedState(model);
  const decoded = decodeSafetensors(encodeSafetensors(state)).tensors;
  const bytesRoundTrip = Object.keys(state).every((k) =>
    decoded[k] !== undefined && sameArrays(decoded[k].data, state[k].data)
  );

  let fileRoundTrip: boolean | null = null;
  if (options.modelPath !== undefined) {
    await saveModel(options.modelPath, model);
    const fresh = makeModel();
    await loadModel(options.modelPath, fresh);
    fileRoundTrip = sameArrays(
      fresh.call(x).contiguous().values() as Float32Array,
      model.call(x).contiguous().values() as Float32Array,
    );
  }

  const stats = kernels.name.includes("wasm") ? threadStats() : { joinedJobs: 0 };
  return {
    runtime,
    kernels: kernels.name,
    threads: getThreads(),
    joinedJobs: stats.joinedJobs,
    losses,
    squareGrad,
    matmulGradError,
    bytesRoundTrip,
    fileRoundTrip,
  };
}
