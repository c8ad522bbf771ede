/**
 * The digit pad's training worker: fetches MNIST from the server, trains the MLP (784-512-1024-10,
 * SGD with Nesterov momentum, a short warm-up then cosine decay) with the kernels on every core,
 * reports loss, test error and images/s as it goes, and sends the trained weights back. Running
 * here keeps the page responsive; the kernels' own threads are Web Workers it starts itself.
 *
 * @module
 */

import {
  argmax,
  crossEntropy,
  getThreads,
  noGrad,
  setThreads,
  type Tensor,
} from "../../autograd/mod.ts";
import { threadsReady } from "../../autograd/kernels/wasm/mod.ts";
import {
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  type IdxImages,
  idxToImages,
  idxToLabels,
  parseIdx,
} from "../../data/idx.ts";
import { DataLoader, MNIST_NORMALIZATION } from "../../data/loader.ts";
import { MLP } from "../../nn/models/mlp.ts";
import { SGD } from "../../nn/optim/sgd.ts";
import type { DoneMessage, FromWorker, StartMessage, ToWorker } from "./protocol.ts";

/** The parts of a dedicated worker's global scope used here. */
interface WorkerScope {
  postMessage(message: FromWorker, transfer?: ArrayBuffer[]): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
}

const scope = globalThis as unknown as WorkerScope;
const post = (message: FromWorker, transfer?: ArrayBuffer[]) =>
  scope.postMessage(message, transfer);

/** Test images evaluated during training (all 10,000 at the end). */
const EVAL_IMAGES = 1_000;

let stopRequested = false;
let running = false;

/** A macrotask boundary without timer clamping, so a "stop" message gets handled. */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** The bytes of `/mnist/<name>` (raw or gzip), parsed as IDX with the expected magic. */
async function fetchIdx(name: string, magic: number) {
  const response = await fetch(`/mnist/${name}`);
  if (!response.ok) {
    throw new Error(`MNIST is not available: ${(await response.text()).trim()}`);
  }
  return await parseIdx(new Uint8Array(await response.arrayBuffer()), name, magic);
}

/** The fraction of the first `limit` images of a split that the model gets wrong. */
function errorRate(model: MLP, images: IdxImages, labels: Uint8Array, limit: number): number {
  const loader = new DataLoader(images, labels, {
    batchSize: 1000,
    shuffle: false,
    limit,
    normalization: MNIST_NORMALIZATION,
  });
  let wrong = 0;
  model.eval();
  noGrad(() => {
    for (const { x, y } of loader.epoch(0)) {
      const predicted = argmax(model.call(x), 1).values();
      for (let i = 0; i < y.length; i++) if (predicted[i] !== y[i]) wrong++;
    }
  });
  model.train();
  return wrong / loader.size;
}

/** Learning rate at `step` of `steps`: linear warm-up over 5% of the steps, then cosine to 0. */
function rateAt(step: number, steps: number, peak: number): number {
  const warmup = Math.max(1, Math.round(steps * 0.05));
  if (step < warmup) return peak * (step + 1) / warmup;
  return peak * 0.5 * (1 + Math.cos(Math.PI * (step - warmup) / Math.max(1, steps - warmup)));
}

async function train(start: StartMessage): Promise<void> {
  post({ type: "status", text: "loading MNIST from the server (55 MB, once)…" });
  const [trainImages, trainLabels, testImages, testLabels] = await Promise.all([
    fetchIdx("train-images-idx3-ubyte", IDX_IMAGES_MAGIC).then(idxToImages),
    fetchIdx("train-labels-idx1-ubyte", IDX_LABELS_MAGIC).then(idxToLabels),
    fetchIdx("t10k-images-idx3-ubyte", IDX_IMAGES_MAGIC).then(idxToImages),
    fetchIdx("t10k-labels-idx1-ubyte", IDX_LABELS_MAGIC).then(idxToLabels),
  ]);

  try {
    setThreads(Math.max(1, start.threads));
    await threadsReady();
  } catch (error) {
    // One thread still trains; say why the others are missing.
    post({ type: "status", text: `threads unavailable (${(error as Error).message}); using one` });
  }
  const threads = getThreads();
  post({ type: "status", text: `training on ${threads} thread${threads === 1 ? "" : "s"}…` });

  const model = new MLP({ seed: start.seed });
  const optimizer = new SGD(model.parameters(), {
    lr: start.lr,
    momentum: 0.9,
    nesterov: true,
  });
  const loader = new DataLoader(trainImages, trainLabels, {
    batchSize: start.batchSize,
    seed: start.seed,
    dropLast: true,
    normalization: MNIST_NORMALIZATION,
  });
  const steps = start.steps;
  const reportEvery = Math.max(1, Math.round(steps / 100));
  const evalEvery = Math.max(10, Math.round(steps / 10));
  post({
    type: "eval",
    step: 0,
    testError: errorRate(model, testImages, testLabels, EVAL_IMAGES),
    images: EVAL_IMAGES,
  });

  let step = 0, lossSum = 0, lossCount = 0, trainMs = 0;
  const rate = () => (step * start.batchSize) / (trainMs / 1000);
  let epoch = 0;
  while (step < steps && !stopRequested) {
    const batches = loader.epoch(epoch++);
    let t0 = performance.now();
    for (const { x, y } of batches) {
      optimizer.paramGroups[0].lr = rateAt(step, steps, start.lr);
      optimizer.zeroGrad();
      const loss: Tensor = crossEntropy(model.call(x), y);
      loss.backward();
      optimizer.step();
      lossSum += loss.item();
      lossCount++;
      step++;
      trainMs += performance.now() - t0;
      if (step % reportEvery === 0 || step === steps) {
        post({
          type: "progress",
          step,
          loss: lossSum / lossCount,
          imagesPerSecond: rate(),
          threads,
        });
        lossSum = lossCount = 0;
      }
      if (step % evalEvery === 0 && step < steps) {
        post({
          type: "eval",
          step,
          testError: errorRate(model, testImages, testLabels, EVAL_IMAGES),
          images: EVAL_IMAGES,
        });
      }
      if (step % 5 === 0) await yieldToEvents();
      if (step >= steps || stopRequested) break;
      t0 = performance.now();
    }
  }
  post({ type: "status", text: "evaluating on the 10,000 test images…" });
  const testError = errorRate(model, testImages, testLabels, testLabels.length);
  post({ type: "eval", step, testError, images: testLabels.length });
  const state: DoneMessage["state"] = {};
  for (const [name, t] of Object.entries(model.stateDict())) {
    state[name] = { shape: [...t.shape], data: t.toFloat32Array() };
  }
  post({
    type: "done",
    step,
    stopped: stopRequested,
    options: { inFeatures: 784, hidden: [512, 1024], numClasses: 10 },
    state,
    testError,
    imagesPerSecond: rate(),
  }, Object.values(state).map((s) => s.data.buffer as ArrayBuffer));
}

scope.onmessage = (event) => {
  const message = event.data;
  if (message.type === "stop") {
    stopRequested = true;
    return;
  }
  if (running) return;
  running = true;
  stopRequested = false;
  train(message).catch((error) => {
    post({ type: "error", text: error instanceof Error ? error.message : String(error) });
  }).finally(() => {
    running = false;
  });
};
