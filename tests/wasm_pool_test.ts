// Tests for the wasm worker pool's parking (autograd/kernels/wasm/pool.ts): before a BLAS
// product the native backend sends the workers to sleep at once instead of letting them spin.

import assert from "node:assert/strict";
import { defaultEngine, wasmAvailable } from "../autograd/kernels/wasm/gemm.ts";
import { JOB_NAMES } from "../autograd/kernels/wasm/kernels.ts";
import { allocBytes, freeBytes, heapF32, memory } from "../autograd/kernels/wasm/memory.ts";
import { KernelPool } from "../autograd/kernels/wasm/pool.ts";
import { threadSupport } from "../autograd/platform/threads.ts";

const ZERO = JOB_NAMES.indexOf("zero");

/** Fills n floats with ones, has the worker alone zero them, and checks that it did. */
function zeroOnWorker(pool: KernelPool, ptr: number, n: number, counter: Int32Array): void {
  heapF32().fill(1, ptr / 4, ptr / 4 + n);
  Atomics.store(counter, 0, 0);
  pool.post(0, ZERO, [ptr, n, 256, counter.byteOffset]);
  pool.finish(0, true); // the caller computes nothing: the worker must run the whole job
  const out = heapF32().subarray(ptr / 4, ptr / 4 + n);
  assert.ok(out.every((v) => v === 0), "the worker zeroed the block");
}

Deno.test({
  name: "park: an idle worker that would spin forever blocks at once, and wakes for the next job",
  ignore: !wasmAvailable || threadSupport().kind === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // An endless spin: without park() the worker would never block.
    const pool = new KernelPool(defaultEngine().module, memory!, JOB_NAMES, Infinity);
    const n = 4096;
    const ptr = allocBytes(4 * n);
    const counter = new Int32Array(memory!.buffer, allocBytes(64), 1);
    try {
      await pool.whenReady(1);
      zeroOnWorker(pool, ptr, n, counter);
      assert.equal(pool.sleeping(0), false, "spinning after its job");
      pool.park();
      // Only a deadline against a hang: a parked worker blocks within microseconds.
      const deadline = performance.now() + 30_000;
      while (!pool.sleeping(0) && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      assert.equal(pool.sleeping(0), true, "blocked in Atomics.wait after park()");
      zeroOnWorker(pool, ptr, n, counter);
      // Parking is for the job it was asked after: after a new job the worker spins again.
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(pool.sleeping(0), false, "spinning again after the next job");
    } finally {
      await pool.terminate();
      freeBytes(ptr);
      freeBytes(counter.byteOffset);
    }
  },
});
