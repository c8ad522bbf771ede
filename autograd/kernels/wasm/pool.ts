/**
 * Worker threads that run kernel exports over the shared memory.
 *
 * Each worker instantiates the same compiled `WebAssembly.Module` over the same shared
 * `WebAssembly.Memory`, then loops forever on a control block (an Int32Array in the shared memory):
 * the caller writes a job number and up to 16 i32 arguments, marks the job OPEN and bumps `SEQ`;
 * the worker sees the new `SEQ`, JOINs the job by compare-exchange, calls the export and stores
 * `DONE = SEQ`. Jobs are work-sharing (threads claim chunks from an atomic counter, see
 * `kernels.ts`), so the caller never needs a late worker: once its own share is over it tries to
 * CLOSE the job, and only if the worker had joined does it wait for it. A worker that wakes up
 * late finds the job CLOSED (or already drained) and skips it.
 * A waiting side first spins on `Atomics.load` (a round trip costs well under a microsecond while
 * both sides spin), and only after a while blocks in `Atomics.wait`, so idle workers burn no CPU;
 * flags in the control block make the other side call `Atomics.notify` only when someone sleeps.
 * {@link KernelPool.park} cuts the spin short: before a native BLAS product, whose own threads
 * need every core, the workers block as soon as their last job is done.
 *
 * Threads come from the platform layer (`autograd/platform/threads.ts`): `node:worker_threads`
 * in Deno and Node, whose Workers can be `unref()`ed, so the pool never keeps the process alive
 * and leaves no pending operation on the calling thread (`deno test`'s sanitizers stay quiet; a
 * Deno Web Worker cannot be unref'd); Web Workers in a cross-origin-isolated browser page. Where
 * there are none the pool starts nothing, the kernels run on the calling thread, and one line
 * says why. A worker announces readiness through the control block; the caller only hands jobs
 * to ready workers, so nothing ever waits for a worker to start (callers that want all threads
 * can await {@link KernelPool.whenReady}). A browser page's main thread may not block in
 * `Atomics.wait`, so there the caller only spins while a worker finishes its share.
 *
 * Limit: a worker that dies in the middle of a job (not an exception, which is caught and
 * reported, but e.g. being killed) leaves the caller waiting forever.
 *
 * @module
 */

import { builtinsReady } from "../../platform/runtime.ts";
import { canBlock, startThread, type Thread, threadSupport } from "../../platform/threads.ts";
import { allocBytes, freeBytes } from "./memory.ts";

// Int32 slots of a control block: below 32 the job (caller → worker), from 32 on, in their own
// cache lines, the worker's replies that the caller polls.
const SEQ = 0; // job number, bumped by the caller to hand over a job
const JOB = 1;
const ARGS = 2;
/** Most arguments a job may take. */
export const MAX_JOB_ARGS = 16;
const STATE = 18; // OPEN when posted; the worker JOINs it or the caller CLOSEs it, whoever is first
const WORKER_SLEEPING = 19; // set by the worker around Atomics.wait, so posts notify only then
const PARK = 20; // = SEQ of the job after which the worker blocks at once instead of spinning
const DONE = 32; // = SEQ of the last job the worker is finished with (ran or skipped)
const READY = 33;
const FAILED = 34;
const CALLER_SLEEPING = 35;
const CTRL_BYTES = 256;
/** `Atomics.pause` (a CPU spin-wait hint) where the runtime has it. */
const pause: () => void = typeof (Atomics as { pause?: () => void }).pause === "function"
  ? () => (Atomics as unknown as { pause: () => void }).pause()
  : () => {};
const OPEN = 1;
const CLOSED = 2;
const JOINED = 3;

// The thread's main(init, reply) (see platform/threads.ts): it never returns.
const WORKER_SOURCE = `
function main(init, reply) {
  const { module, memory, ctrl, jobs, spinMs } = init;
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const fns = jobs.map((name) => exports[name]);
  const c = new Int32Array(memory.buffer, ctrl, ${CTRL_BYTES / 4});
  const pause = typeof Atomics.pause === "function" ? () => Atomics.pause() : () => {};
  let seen = Atomics.load(c, ${SEQ});
  Atomics.store(c, ${READY}, 1);
  reply("ready");
  for (;;) {
    let seq = Atomics.load(c, ${SEQ});
    if (seq === seen) {
      let n = 0;
      const t0 = performance.now();
      while ((seq = Atomics.load(c, ${SEQ})) === seen) {
        pause(); // eases the spin on a hyperthread sibling
        if (
          (++n & 15) === 0 &&
          (Atomics.load(c, ${PARK}) === seen || ((n & 255) === 0 && performance.now() - t0 > spinMs))
        ) {
          Atomics.store(c, ${WORKER_SLEEPING}, 1);
          Atomics.wait(c, ${SEQ}, seen);
          Atomics.store(c, ${WORKER_SLEEPING}, 0);
        }
      }
    }
    seen = seq;
    // Join the job unless the caller already finished it alone (then it is CLOSED: skip it).
    if (Atomics.compareExchange(c, ${STATE}, ${OPEN}, ${JOINED}) === ${OPEN}) {
      const job = c[${JOB}];
      if (job < 0) return;
      try {
        const a = ${ARGS};
        fns[job](c[a], c[a + 1], c[a + 2], c[a + 3], c[a + 4], c[a + 5], c[a + 6], c[a + 7],
          c[a + 8], c[a + 9], c[a + 10], c[a + 11], c[a + 12], c[a + 13], c[a + 14], c[a + 15]);
      } catch (error) {
        c[${FAILED}] = 1;
        console.error("tapegrad wasm worker: job " + jobs[job] + " failed:", error);
      }
    }
    Atomics.store(c, ${DONE}, seen);
    if (Atomics.load(c, ${CALLER_SLEEPING}) !== 0) Atomics.notify(c, ${DONE});
  }
}
`;

interface PoolWorker {
  worker: Thread;
  ctrl: Int32Array;
  seq: number;
  ready: Promise<void>;
}

/** A set of worker threads running the exports named `jobs` of `module` over `memory`. */
export class KernelPool {
  private readonly workers: PoolWorker[] = [];
  /** Jobs a worker took part in (diagnostics and tests). */
  joinedJobs = 0;
  private noThreadsSaid = false;

  /**
   * Creates an empty pool; workers start on demand ({@link KernelPool.ensure}).
   *
   * @param module the compiled kernel module (shared with workers, not recompiled)
   * @param memory the shared memory the module imports as `env.memory`
   * @param jobs export names; a job number is an index into this list
   * @param spinMs how long an idle worker spins before it blocks in Atomics.wait
   */
  constructor(
    readonly module: WebAssembly.Module,
    readonly memory: WebAssembly.Memory,
    readonly jobs: readonly string[],
    readonly spinMs = 1,
  ) {}

  /** Workers started so far (ready or not). */
  get size(): number {
    return this.workers.length;
  }

  /** How many workers, counted from the first, are ready to take jobs. */
  readyCount(): number {
    let n = 0;
    while (n < this.workers.length && Atomics.load(this.workers[n].ctrl, READY) === 1) n++;
    return n;
  }

  /** Whether worker `index` is blocked in `Atomics.wait` now (diagnostics and tests). */
  sleeping(index: number): boolean {
    return Atomics.load(this.workers[index].ctrl, WORKER_SLEEPING) !== 0;
  }

  /**
   * Starts workers until there are `count` (never stops any). Returns at once. Where the runtime
   * has no threads, starts none and says so once.
   */
  ensure(count: number): void {
    if (this.workers.length >= count) return;
    const support = threadSupport();
    if (support.kind === null) {
      // Still loading node:worker_threads (old Node 20): workers start on a later call.
      if (support.pending) return;
      if (!this.noThreadsSaid) {
        this.noThreadsSaid = true;
        console.info(`tapegrad: no worker threads (${support.reason}); kernels run on one thread`);
      }
      return;
    }
    while (this.workers.length < count) this.workers.push(this.spawn());
  }

  /** Starts one worker and sends it the module, the memory and its control block. */
  private spawn(): PoolWorker {
    const ctrlPtr = allocBytes(CTRL_BYTES);
    const ctrl = new Int32Array(this.memory.buffer, ctrlPtr, CTRL_BYTES / 4);
    ctrl.fill(0);
    ctrl[PARK] = -1;
    // A worker that fails to start rejects `started` (never unhandled); readyCount() simply
    // never counts it.
    const worker = startThread(WORKER_SOURCE);
    const ready = worker.started;
    worker.postMessage({
      module: this.module,
      memory: this.memory,
      ctrl: ctrlPtr,
      jobs: this.jobs,
      spinMs: this.spinMs,
    });
    worker.unref();
    return { worker, ctrl, seq: 0, ready };
  }

  /** Resolves when the first `count` workers are ready (starting them if needed). */
  async whenReady(count: number = this.workers.length): Promise<void> {
    await builtinsReady; // an old Node 20 loads node:worker_threads asynchronously
    this.ensure(count);
    count = Math.min(count, this.workers.length);
    for (let i = 0; i < count; i++) {
      const w = this.workers[i];
      if (Atomics.load(w.ctrl, READY) === 1) continue;
      w.worker.ref(); // keep the event loop alive only while someone awaits startup
      try {
        await w.ready;
      } finally {
        w.worker.unref();
      }
    }
  }

  /**
   * Offers job `job` with `args` to ready worker `index` and returns at once. Jobs are
   * work-sharing (the caller runs the same job itself), so the worker may take part or not.
   */
  post(index: number, job: number, args: ArrayLike<number>): void {
    const w = this.workers[index];
    if (args.length > MAX_JOB_ARGS) {
      throw new RangeError(`wasm/pool: job ${this.jobs[job]} has ${args.length} > 16 arguments`);
    }
    const c = w.ctrl;
    c[JOB] = job;
    for (let i = 0; i < args.length; i++) c[ARGS + i] = args[i];
    for (let i = args.length; i < MAX_JOB_ARGS; i++) c[ARGS + i] = 0;
    Atomics.store(c, STATE, OPEN);
    w.seq = (w.seq + 1) | 0;
    Atomics.store(c, SEQ, w.seq);
    if (Atomics.load(c, WORKER_SLEEPING) !== 0) Atomics.notify(c, SEQ);
  }

  /**
   * Tells every worker to block in `Atomics.wait` as soon as it is done with the last job posted
   * to it, instead of spinning for `spinMs` in case another follows. For when the cores are
   * about to go to someone else's threads (a BLAS product): a spinning worker would halve the
   * speed of the BLAS thread that shares its core, and with it the whole product. The next
   * {@link KernelPool.post} wakes the worker as usual.
   */
  park(): void {
    for (const w of this.workers) Atomics.store(w.ctrl, PARK, w.seq);
  }

  /**
   * Ends worker `index`'s part in the last posted job: if the worker has not joined yet, the job
   * is closed to it (it will skip it); otherwise waits until it is done. Throws if its job failed.
   * Call only after the caller's own share is complete (nothing is left to claim), or with
   * `waitForJoin` when the caller computes nothing itself (the worker must then do it all).
   */
  finish(index: number, waitForJoin = false): void {
    const w = this.workers[index];
    const c = w.ctrl;
    if (waitForJoin) {
      for (let n = 0; Atomics.load(c, STATE) === OPEN; n++) {
        pause();
        if (n > 20000 && canBlock) Atomics.wait(c, DONE, Atomics.load(c, DONE), 1);
      }
    } else if (Atomics.compareExchange(c, STATE, OPEN, CLOSED) === OPEN) {
      return;
    }
    this.joinedJobs++;
    let spins = 0;
    for (;;) {
      const done = Atomics.load(c, DONE);
      if (done === w.seq) break;
      pause();
      if (++spins > 20000 && canBlock) {
        Atomics.store(c, CALLER_SLEEPING, 1);
        Atomics.wait(c, DONE, done, 100);
        Atomics.store(c, CALLER_SLEEPING, 0);
      }
    }
    if (c[FAILED] !== 0) {
      c[FAILED] = 0;
      throw new Error(`wasm/pool: worker ${index + 1} failed (see its console output)`);
    }
  }

  /** Stops every worker (the pool can start new ones later). */
  async terminate(): Promise<void> {
    const all = this.workers.splice(0);
    await Promise.all(all.map((w) => w.worker.terminate()));
    for (const w of all) freeBytes(w.ctrl.byteOffset);
  }
}
