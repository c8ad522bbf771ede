/**
 * Threads: which kind this runtime offers, how to start one, how many cores there are, and
 * whether this thread may block in `Atomics.wait`.
 *
 * - **Deno and Node** use `node:worker_threads` (reached through {@linkcode nodeBuiltin}, never
 *   imported statically). In Deno this is chosen over its Web Worker on purpose: a node Worker can
 *   be `unref()`ed, so a pool of idle threads never keeps the process alive and leaves no pending
 *   operation that `deno test`'s sanitizers would report; Deno's Web Worker has no `unref`.
 * - **Browsers** use Web Workers, but only in a `crossOriginIsolated` page (or a worker of one):
 *   only there can the kernels' shared memory be handed to another thread.
 * - Anywhere else (no `Worker`, or a page without cross-origin isolation) there are no threads,
 *   and {@linkcode threadSupport} says why in one line.
 *
 * A thread runs a script that defines `function main(init, reply)`; the first message posted to
 * the thread is passed to `main` as `init`, and `reply(message)` posts back.
 *
 * @module
 */

import { builtinsSettled, nodeBuiltin, runtime } from "./runtime.ts";

type NodeWorkerThreads = typeof import("node:worker_threads");
type NodeOs = typeof import("node:os");

/** What {@linkcode threadSupport} reports. */
export interface ThreadSupport {
  /** The kind of thread {@linkcode startThread} starts, or null when there is none. */
  kind: "node" | "web" | null;
  /** Why there are no threads (empty when there are). */
  reason: string;
  /** True while node:worker_threads is still loading (old Node 20 only): ask again later. */
  pending?: boolean;
}

/** The kind of threads this runtime offers, or why it offers none. */
export function threadSupport(): ThreadSupport {
  if (runtime !== "browser") {
    if (nodeBuiltin<NodeWorkerThreads>("worker_threads")) return { kind: "node", reason: "" };
    return {
      kind: null,
      reason: builtinsSettled() ? "node:worker_threads is unavailable" : "",
      pending: !builtinsSettled(),
    };
  }
  const g = globalThis as { Worker?: unknown; crossOriginIsolated?: boolean };
  if (typeof g.Worker !== "function") return { kind: null, reason: "this context has no Worker" };
  if (g.crossOriginIsolated !== true) {
    return {
      kind: null,
      reason: "the page is not cross-origin isolated (serve it with the headers " +
        "Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)",
    };
  }
  return { kind: "web", reason: "" };
}

/** A started thread. */
export interface Thread {
  /** Resolves on the thread's first message; rejects if it fails before sending one. */
  readonly started: Promise<void>;
  /** Posts `message` (structured clone; shared memories are shared, not copied). */
  postMessage(message: unknown): void;
  /** Lets the thread keep the process alive (node threads; no-op for Web Workers). */
  ref(): void;
  /** Lets the process exit while the thread runs (node threads; no-op for Web Workers). */
  unref(): void;
  /** Stops the thread. */
  terminate(): Promise<void>;
}

const urls = new Map<string, string | URL>();

/**
 * Starts a thread running `source` (a script defining `main(init, reply)`, see the module
 * documentation). Throws when {@linkcode threadSupport} reports none.
 */
export function startThread(source: string): Thread {
  const support = threadSupport();
  if (support.kind === "node") {
    const { Worker } = nodeBuiltin<NodeWorkerThreads>("worker_threads")!;
    let url = urls.get(source) as URL | undefined;
    if (!url) {
      // A data: URL needs no permission in Deno and no file; Node and Deno both accept it.
      const script = `import { parentPort } from "node:worker_threads";\n${source}\n` +
        `parentPort.once("message", (init) => main(init, (m) => parentPort.postMessage(m)));\n`;
      url = new URL("data:text/javascript," + encodeURIComponent(script));
      urls.set(source, url);
    }
    const worker = new Worker(url);
    const started = new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", (e: unknown) => reject(e));
    });
    started.catch(() => {}); // a thread that fails to start must not be an unhandled rejection
    return {
      started,
      postMessage: (message) => worker.postMessage(message),
      ref: () => worker.ref(),
      unref: () => worker.unref(),
      terminate: async () => {
        await worker.terminate();
      },
    };
  }
  if (support.kind === "web") {
    let url = urls.get(source) as string | undefined;
    if (!url) {
      // A Blob URL keeps the page's origin (a data: URL worker would not share its memory).
      const script = `${source}\nself.onmessage = (e) => { self.onmessage = null; ` +
        `main(e.data, (m) => self.postMessage(m)); };\n`;
      url = URL.createObjectURL(new Blob([script], { type: "text/javascript" }));
      urls.set(source, url);
    }
    const worker = new Worker(url);
    const started = new Promise<void>((resolve, reject) => {
      worker.onmessage = () => resolve();
      worker.onerror = (e) => reject(new Error(`worker failed to start: ${e.message}`));
    });
    started.catch(() => {});
    return {
      started,
      postMessage: (message) => worker.postMessage(message),
      ref: () => {},
      unref: () => {},
      terminate: () => Promise.resolve(worker.terminate()),
    };
  }
  throw new Error(`no threads here: ${support.reason}`);
}

/** How many logical cores the machine has (`node:os` in Node, `navigator` elsewhere); at least 1. */
export function hardwareConcurrency(): number {
  let n: number | undefined;
  if (runtime === "node") {
    const os = nodeBuiltin<NodeOs>("os");
    n = os?.availableParallelism?.() ?? os?.cpus().length;
  } else {
    n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
      ?.hardwareConcurrency;
  }
  return Number.isInteger(n) && n! >= 1 ? n! : 1;
}

function probeWait(): boolean {
  try {
    if (typeof SharedArrayBuffer !== "function") return false;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false; // a browser's main thread may not block
  }
}

/** Whether this thread may block in `Atomics.wait` (not a browser page's main thread). */
export const canBlock: boolean = probeWait();
