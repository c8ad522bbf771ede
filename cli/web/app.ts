/**
 * The digit pad's page script: drawing with pointer events, MNIST preparation of the drawing or a
 * dropped image (the same code as `deno task demo`), live predictions of every loaded model with
 * probability bars, and the "train in your browser" panel that drives the training worker.
 *
 * For tests and the curious, `window.tapegradPad` holds the page's state: the last 28×28 input,
 * the predictions, the forward-pass times and the training history.
 *
 * @module
 */

/// <reference lib="dom" />

import { getThreads, kernels, setThreads } from "../../autograd/kernels/mod.ts";
import { DataError } from "../../data/errors.ts";
import { type GrayImage, prepareDigit, rgbaToGray } from "../../data/prepare.ts";
import {
  type Classifier,
  classifierFromSafetensors,
  classifierFromState,
  normalize,
  predict,
} from "./classifier.ts";
import { type Curves, drawCurves } from "./curves.ts";
import type { FromWorker, StartMessage } from "./protocol.ts";

/** What the page exposes as `window.tapegradPad`. */
export interface PadState {
  /** True once the shipped models are loaded. */
  ready: boolean;
  /** Why the page could not start, if it could not. */
  failure: string | null;
  /** The kernels the page's models run on, e.g. "wasm-simd, 1 thread". */
  kernels: string;
  /** Predictions made so far (each drawing update counts one). */
  updates: number;
  /** The last prepared input, 784 bytes row-major, or null when there is no ink. */
  input: number[] | null;
  /** The last prediction of each model by key: top class and the ten probabilities. */
  predictions: Record<string, { top: number; probabilities: number[] }>;
  /** Forward-pass milliseconds of each model, one per update. */
  timings: Record<string, number[]>;
  /** Milliseconds of the MNIST preparation, one per update. */
  prepareMs: number[];
  /** Training: its state, plotted history and figures. */
  training: {
    state: "idle" | "running" | "done" | "failed";
    loss: [number, number][];
    error: [number, number][];
    imagesPerSecond: number;
    threads: number;
    testError: number | null;
    message: string;
  };
}

const state: PadState = {
  ready: false,
  failure: null,
  kernels: "",
  updates: 0,
  input: null,
  predictions: {},
  timings: {},
  prepareMs: [],
  training: {
    state: "idle",
    loss: [],
    error: [],
    imagesPerSecond: 0,
    threads: 0,
    testError: null,
    message: "",
  },
};
(globalThis as unknown as { tapegradPad: PadState }).tapegradPad = state;
// Not enumerable, so the state stays plain data that a test can copy out of the page.
Object.defineProperty(state, "measure", {
  enumerable: false,
  /**
   * The steady-state batch-1 time of one model: the median of `passes` forward passes in a row
   * on the last input, with nothing in between to evict its weights from the caches (a drawing
   * update runs every model in turn, so its times include reading weights back in).
   */
  value: (key: string, passes = 20): number | null => {
    const classifier = classifiers.find((c) => c.key === key);
    if (!classifier || state.input === null) return null;
    const x = normalize(Uint8Array.from(state.input));
    const times = Array.from({ length: passes }, () => predict(classifier, x).ms);
    return median(times);
  },
});

/** Largest image file accepted, in pixels, as in `deno task demo` (data/image.ts). */
const MAX_IMAGE_PIXELS = 50_000_000;
/** Stroke width on the 280-pixel pad: about MNIST's stroke once the digit is scaled to 20 px. */
const STROKE = 20;
/** Updates whose times the timing line summarises. */
const TIMING_WINDOW = 50;

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const pad = byId<HTMLCanvasElement>("pad");
const input28 = byId<HTMLCanvasElement>("input28");
const summary = byId<HTMLParagraphElement>("summary");
const modelsBox = byId<HTMLDivElement>("models");
const timing = byId<HTMLParagraphElement>("timing");
const padContext = pad.getContext("2d", { willReadFrequently: true })!;

const classifiers: Classifier[] = [];
const cards = new Map<string, { top: HTMLElement; rows: HTMLLIElement[] }>();

// ---------------------------------------------------------------------------------------------
// Drawing

/** Where the next prediction's pixels come from: the pad, or an image at its own resolution. */
let source: { kind: "pad" } | { kind: "image"; image: GrayImage; name: string } = { kind: "pad" };
let drawing = false;
let last = { x: 0, y: 0 };
let scheduled = false;

function clearPad(): void {
  padContext.fillStyle = "#ffffff";
  padContext.fillRect(0, 0, pad.width, pad.height);
  source = { kind: "pad" };
}

function padPoint(event: PointerEvent): { x: number; y: number } {
  // offsetX/Y are CSS pixels inside the padding box; the canvas has its own resolution.
  return {
    x: (event.offsetX * pad.width) / pad.clientWidth,
    y: (event.offsetY * pad.height) / pad.clientHeight,
  };
}

function strokeTo(point: { x: number; y: number }): void {
  if (point.x === last.x && point.y === last.y) {
    // A tap is a dot. Chromium 156 draws nothing for a zero-length round-capped line, so the
    // dot is filled instead (a "1" traced as one tap per row was read as an empty pad).
    padContext.fillStyle = "#000000";
    padContext.beginPath();
    padContext.arc(point.x, point.y, STROKE / 2, 0, 2 * Math.PI);
    padContext.fill();
    return;
  }
  padContext.strokeStyle = "#000000";
  padContext.lineWidth = STROKE;
  padContext.lineCap = "round";
  padContext.lineJoin = "round";
  padContext.beginPath();
  padContext.moveTo(last.x, last.y);
  padContext.lineTo(point.x, point.y);
  padContext.stroke();
  last = point;
}

pad.addEventListener("pointerdown", (event) => {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  source = { kind: "pad" }; // drawing over an opened image: the pad is what counts now
  last = padPoint(event);
  strokeTo(last);
  schedule();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  // Coalesced events keep fast strokes smooth: the browser batches moves per frame.
  for (const e of event.getCoalescedEvents?.() ?? [event]) strokeTo(padPoint(e));
  schedule();
});
for (const type of ["pointerup", "pointercancel"] as const) {
  pad.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    schedule(true);
  });
}

let announce = false;
/** Predicts at the next frame, at most once per frame however many events arrive. */
function schedule(finished = false): void {
  announce ||= finished;
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    const speak = announce;
    announce = false;
    update(speak);
  });
}

// ---------------------------------------------------------------------------------------------
// Predictions

/** Canvas pixels (a clamped array) as the plain bytes the preparation takes, without a copy. */
function bytesOf(data: Uint8ClampedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function currentImage(): { image: GrayImage; name: string } {
  if (source.kind === "image") return source;
  const { data } = padContext.getImageData(0, 0, pad.width, pad.height);
  return {
    image: {
      width: pad.width,
      height: pad.height,
      data: rgbaToGray(bytesOf(data), pad.width, pad.height),
    },
    name: "drawing",
  };
}

function showInput(pixels: Uint8Array | null): void {
  const ctx = input28.getContext("2d")!;
  const image = ctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = pixels ? pixels[i] : 0;
    image.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(image, 0, 0);
}

/** The median of the last {@linkcode TIMING_WINDOW} values. */
function median(values: number[]): number {
  const sorted = values.slice(-TIMING_WINDOW).sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function showTiming(): void {
  if (state.prepareMs.length === 0) return;
  const parts = classifiers
    .filter((c) => (state.timings[c.key] ?? []).length > 0)
    .map((c) => `${c.title} ${median(state.timings[c.key]).toFixed(3)} ms`);
  timing.textContent = `Forward pass at batch 1 in this page, median of the last ` +
    `${Math.min(TIMING_WINDOW, state.prepareMs.length)} drawing updates (each runs every model ` +
    `in turn): ${parts.join(" · ")}; ` +
    `MNIST preparation ${median(state.prepareMs).toFixed(2)} ms (kernels: ${state.kernels}).`;
}

function clearPredictions(message: string): void {
  state.input = null;
  state.predictions = {};
  showInput(null);
  for (const card of cards.values()) {
    card.top.textContent = "–";
    for (const row of card.rows) renderRow(row, 0, false);
  }
  summary.textContent = message;
}

function renderRow(row: HTMLLIElement, p: number, best: boolean): void {
  row.classList.toggle("best", best);
  (row.children[1].firstElementChild as HTMLElement).style.width = `${(100 * p).toFixed(1)}%`;
  row.children[2].textContent = `${(100 * p).toFixed(1)}%`;
}

function update(speak: boolean): void {
  if (!state.ready) return;
  const { image, name } = currentImage();
  const t0 = performance.now();
  let pixels: Uint8Array;
  try {
    pixels = prepareDigit(image, { source: name }).pixels;
  } catch (error) {
    if (!(error instanceof DataError)) throw error;
    clearPredictions(
      source.kind === "image" ? error.message : "Draw a digit in the box (one digit, large).",
    );
    return;
  }
  state.prepareMs.push(performance.now() - t0);
  state.input = Array.from(pixels);
  showInput(pixels);
  const x = normalize(pixels);
  const reads: string[] = [];
  for (const classifier of classifiers) {
    const p = predict(classifier, x);
    (state.timings[classifier.key] ??= []).push(p.ms);
    state.predictions[classifier.key] = { top: p.top, probabilities: Array.from(p.probabilities) };
    const card = cards.get(classifier.key)!;
    card.top.textContent = String(p.top);
    card.rows.forEach((row, i) => renderRow(row, p.probabilities[i], i === p.top));
    reads.push(
      `${classifier.title} reads ${p.top} (${(100 * p.probabilities[p.top]).toFixed(0)}%)`,
    );
  }
  state.updates++;
  // The live region speaks when a stroke ends, not on every frame of it.
  if (speak || summary.textContent === "" || !summary.dataset.live) {
    summary.textContent = reads.join("; ") + ".";
    summary.dataset.live = "yes";
  }
  showTiming();
}

function addCard(classifier: Classifier): void {
  const existing = classifiers.findIndex((c) => c.key === classifier.key);
  if (existing >= 0) classifiers[existing] = classifier;
  else classifiers.push(classifier);
  if (cards.has(classifier.key)) return;
  const card = document.createElement("section");
  card.className = "model";
  card.dataset.model = classifier.key;
  card.setAttribute("aria-label", `${classifier.title}: probability of each digit`);
  const title = document.createElement("h3");
  title.textContent = classifier.title;
  const top = document.createElement("p");
  top.className = "top";
  top.textContent = "–";
  const list = document.createElement("ol");
  list.className = "bars";
  list.start = 0;
  const rows: HTMLLIElement[] = [];
  for (let digit = 0; digit < 10; digit++) {
    const row = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = String(digit);
    const track = document.createElement("span");
    track.className = "track";
    track.setAttribute("aria-hidden", "true");
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.display = "block";
    track.append(fill);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = "0.0%";
    row.append(label, track, pct);
    rows.push(row);
  }
  list.append(...rows);
  card.append(title, top, list);
  modelsBox.append(card);
  cards.set(classifier.key, { top, rows });
}

async function loadShipped(): Promise<void> {
  const files = ["/models/mnist-mlp.safetensors", "/models/mnist-alexnet.safetensors"];
  const [mlp, alexnet] = await Promise.all(files.map(async (url) => {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
    return new Uint8Array(await response.arrayBuffer());
  }));
  addCard(classifierFromSafetensors(mlp, files[0], "MLP", "mlp"));
  // The same MLP with int8 weights: a quarter of the bytes to read per drawing update.
  addCard(classifierFromSafetensors(mlp, files[0], "MLP, int8", "mlp-int8", { int8: true }));
  addCard(classifierFromSafetensors(alexnet, files[1], "AlexNet", "alexnet"));
  const threads = getThreads();
  state.kernels = `${kernels.name}, ${threads} thread${threads === 1 ? "" : "s"}`;
  state.ready = true;
  clearPredictions("Draw a digit in the box (one digit, large).");
}

// ---------------------------------------------------------------------------------------------
// Images: dropped, opened, or a test digit from the server

async function decodeFile(blob: Blob, name: string): Promise<GrayImage> {
  let bitmap: ImageBitmap;
  try {
    // The file's own values, not converted to the screen's colour space, as the demo's decoders
    // read them.
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none" });
  } catch {
    throw new DataError(`${name}: the browser cannot decode this file as an image`);
  }
  const { width, height } = bitmap;
  if (width * height > MAX_IMAGE_PIXELS) {
    bitmap.close();
    throw new DataError(`${name}: image too large (${width}×${height}); scale it down first`);
  }
  // Its own pixels at full size, so the preparation sees what `deno task demo` would.
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0);
  // The pad shows it scaled to fit, on paper.
  clearPad();
  const scale = Math.min(pad.width / width, pad.height / height);
  padContext.drawImage(
    bitmap,
    (pad.width - width * scale) / 2,
    (pad.height - height * scale) / 2,
    width * scale,
    height * scale,
  );
  bitmap.close();
  const { data } = ctx.getImageData(0, 0, width, height);
  return { width, height, data: rgbaToGray(bytesOf(data), width, height) };
}

async function openImage(blob: Blob, name: string): Promise<void> {
  try {
    const image = await decodeFile(blob, name);
    source = { kind: "image", image, name };
    schedule(true);
  } catch (error) {
    clearPredictions(error instanceof Error ? error.message : String(error));
  }
}

pad.addEventListener("dragover", (event) => {
  event.preventDefault();
  pad.classList.add("dragover");
});
pad.addEventListener("dragleave", () => pad.classList.remove("dragover"));
// A file dropped anywhere on the page opens, rather than the browser navigating away to it.
document.addEventListener("dragover", (event) => event.preventDefault());
document.addEventListener("drop", (event) => {
  event.preventDefault();
  pad.classList.remove("dragover");
  const file = event.dataTransfer?.files[0];
  if (file) openImage(file, file.name);
});
byId<HTMLInputElement>("file").addEventListener("change", (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (file) openImage(file, file.name);
});
byId<HTMLButtonElement>("clear").addEventListener("click", () => {
  clearPad();
  clearPredictions("Draw a digit in the box (one digit, large).");
});

let samples: string[] | null = null;
let nextSample = 0;
byId<HTMLButtonElement>("sample").addEventListener("click", async () => {
  samples ??= await (await fetch("/samples/index.json")).json() as string[];
  if (samples.length === 0) return;
  const name = samples[nextSample++ % samples.length];
  await openImage(await (await fetch(`/samples/${name}`)).blob(), name);
});

// ---------------------------------------------------------------------------------------------
// Training in a worker

const trainForm = byId<HTMLFormElement>("train-form");
const trainButton = byId<HTMLButtonElement>("train");
const stopButton = byId<HTMLButtonElement>("stop");
const trainStatus = byId<HTMLParagraphElement>("train-status");
const curvesCanvas = byId<HTMLCanvasElement>("curves");
let worker: Worker | null = null;
let curves: Curves = { loss: [], error: [], steps: 1 };
let trainStart = 0;

function setRunning(running: boolean): void {
  trainButton.disabled = running;
  stopButton.disabled = !running;
  for (const id of ["steps", "batch", "lr"]) byId<HTMLInputElement>(id).disabled = running;
}

function setStat(id: string, text: string): void {
  byId<HTMLElement>(id).textContent = text;
}

function redraw(): void {
  drawCurves(curvesCanvas, curves);
  const loss = curves.loss.at(-1), error = curves.error.at(-1);
  curvesCanvas.setAttribute(
    "aria-label",
    `Training loss and test error by step: ${
      loss ? `loss ${loss[1].toFixed(3)} at step ${loss[0]}` : "no loss yet"
    }, ${error ? `test error ${(100 * error[1]).toFixed(1)}% at step ${error[0]}` : "no test yet"}`,
  );
}

function onWorkerMessage(message: FromWorker): void {
  const t = state.training;
  switch (message.type) {
    case "status":
      t.message = message.text;
      trainStatus.textContent = message.text;
      break;
    case "progress":
      curves.loss.push([message.step, message.loss]);
      t.imagesPerSecond = message.imagesPerSecond;
      t.threads = message.threads;
      setStat("stat-step", `${message.step} / ${curves.steps}`);
      setStat("stat-loss", message.loss.toFixed(4));
      setStat("stat-rate", Math.round(message.imagesPerSecond).toLocaleString("en"));
      setStat("stat-threads", String(message.threads));
      redraw();
      break;
    case "eval":
      curves.error.push([message.step, message.testError]);
      setStat(
        "stat-error",
        `${(100 * message.testError).toFixed(2)}% (${message.images.toLocaleString("en")} images)`,
      );
      redraw();
      break;
    case "done": {
      t.state = "done";
      t.testError = message.testError;
      t.imagesPerSecond = message.imagesPerSecond;
      addCard(classifierFromState(message.state, message.options, "MLP trained here", "trained"));
      const seconds = (performance.now() - trainStart) / 1000;
      t.message = `${message.stopped ? "Stopped" : "Done"} after ${message.step} steps ` +
        `(${seconds.toFixed(1)} s, ${Math.round(message.imagesPerSecond).toLocaleString("en")} ` +
        `images/s): test error ${(100 * message.testError).toFixed(2)}% on 10,000 images. ` +
        `Its predictions are now beside the shipped models'; draw to try it.`;
      trainStatus.textContent = t.message;
      setRunning(false);
      schedule(true);
      break;
    }
    case "error":
      t.state = "failed";
      t.message = `Training failed: ${message.text}`;
      trainStatus.textContent = t.message;
      setRunning(false);
      break;
  }
}

trainForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!trainForm.reportValidity()) return;
  const start: StartMessage = {
    type: "start",
    steps: Number(byId<HTMLInputElement>("steps").value),
    batchSize: Number(byId<HTMLSelectElement>("batch").value),
    lr: Number(byId<HTMLInputElement>("lr").value),
    threads: navigator.hardwareConcurrency || 1,
    seed: 1,
  };
  curves = { loss: [], error: [], steps: start.steps };
  Object.assign(state.training, {
    state: "running",
    loss: curves.loss,
    error: curves.error,
    testError: null,
    message: "",
  });
  if (!worker) {
    worker = new Worker("/train_worker.js", { type: "module" });
    worker.onmessage = (e: MessageEvent<FromWorker>) => onWorkerMessage(e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      onWorkerMessage({ type: "error", text: e.message || "the worker could not start" });
      worker = null;
    };
  }
  trainStart = performance.now();
  trainStatus.textContent = crossOriginIsolated
    ? "Starting…"
    : "Starting on one thread: the page is not cross-origin isolated, so no shared memory.";
  setRunning(true);
  redraw();
  worker.postMessage(start);
});
stopButton.addEventListener("click", () => worker?.postMessage({ type: "stop" }));

// ---------------------------------------------------------------------------------------------
// Start

// A batch-1 forward pass is too small to share: waking another thread costs more than it saves,
// and the page's own thread may not block waiting for one. Training runs on every core, in the
// worker.
setThreads(1);
clearPad();
redraw();
loadShipped().catch((error) => {
  state.failure = error instanceof Error ? error.message : String(error);
  summary.textContent = `The models could not be loaded: ${state.failure}`;
});
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").then(() => navigator.serviceWorker.ready).then(() => {
    byId<HTMLElement>("offline").textContent =
      "Served by deno task serve; the page and both models are cached, so it also works offline.";
  }).catch(() => {
    // Offline use is a convenience; the page works without it.
  });
}
