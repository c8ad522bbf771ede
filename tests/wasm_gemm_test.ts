// Tests for the WebAssembly SIMD GEMM (autograd/kernels/wasm): the encoder, the shared-memory
// allocator, every GEMM path against a float64 reference, and bitwise 1-vs-2-thread equality.

import assert from "node:assert/strict";
import { writeI32, writeU32 } from "../autograd/kernels/wasm/encoder.ts";
import {
  createWasmGemm,
  type Gemm,
  kernelConfig,
  setCallerComputes,
  setThreads,
  threadsReady,
  threadStats,
  wasmAvailable,
  wasmGemm,
} from "../autograd/kernels/wasm/gemm.ts";
import { PLAIN_CONFIG } from "../autograd/kernels/wasm/kernels.ts";
import {
  allocBytes,
  freeBytes,
  freeWasmFloat32,
  heapStats,
  memory,
  pointerOf,
  wasmFloat32,
} from "../autograd/kernels/wasm/memory.ts";
import { uniformSource } from "./helpers/reference.ts";

function filled(n: number, next: () => number, inWasm = false): Float32Array {
  const a = inWasm ? wasmFloat32(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = next();
  return a;
}

interface Case {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  beta: 0 | 1;
  /** Extra elements at the end of every stored row (leading dimension > row length). */
  pad: number;
  /** Elements before each operand's first element. */
  offset: number;
  inWasm?: boolean;
}

/** Runs `gemm` on a case and checks it against a float64 reference; returns C. */
function runCase(gemm: Gemm, cs: Case, seed: number): Float32Array {
  const { transA, transB, m, n, k, beta, pad, offset } = cs;
  const next = uniformSource(seed);
  const lda = (transA ? m : k) + pad;
  const ldb = (transB ? k : n) + pad;
  const ldc = n + pad;
  const a = filled(offset + (transA ? k : m) * lda, next, cs.inWasm);
  const b = filled(offset + (transB ? n : k) * ldb, next, cs.inWasm);
  const c = filled(offset + m * ldc, next, cs.inWasm);
  if (beta === 0) {
    for (let i = 0; i < m; i++) c.fill(NaN, offset + i * ldc, offset + i * ldc + n);
  }
  const before = c.slice();
  gemm(transA, transB, m, n, k, a, offset, lda, b, offset, ldb, beta, c, offset, ldc);
  const label = `${transA ? "Aᵀ" : "A"}·${transB ? "Bᵀ" : "B"} ${m}×${n}×${k} beta=${beta} ` +
    `pad=${pad} offset=${offset}${cs.inWasm ? " in-wasm" : ""}`;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      let mag = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[offset + p * lda + i] : a[offset + i * lda + p];
        const bv = transB ? b[offset + j * ldb + p] : b[offset + p * ldb + j];
        sum += av * bv;
        mag += Math.abs(av * bv);
      }
      if (beta === 1) {
        sum += before[offset + i * ldc + j];
        mag += Math.abs(before[offset + i * ldc + j]);
      }
      const got = c[offset + i * ldc + j];
      const tol = 2 * (k + 2) * 2 ** -24 * mag + 1e-30;
      if (!(Math.abs(got - sum) <= tol)) {
        assert.fail(`${label}: C[${i},${j}] = ${got}, expected ${sum} (tolerance ${tol})`);
      }
    }
  }
  // Nothing outside the m×n window moves: not the padding between rows, not the prefix.
  for (let i = 0; i < c.length; i++) {
    const r = Math.floor((i - offset) / ldc);
    const col = (i - offset) - r * ldc;
    const inside = i >= offset && r < m && col < n;
    if (!inside) {
      assert.ok(Object.is(c[i], before[i]), `${label}: C element ${i} outside the result changed`);
    }
  }
  return c;
}

const layouts: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];

const shapes: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [2, 3, 4],
  [6, 8, 9],
  [5, 16, 3],
  [13, 17, 33],
  [12, 10, 70], // N = 10, dot path
  [128, 10, 100],
  [9, 7, 130],
  [1, 37, 70], // gemv
  [1, 10, 1],
  [1, 33, 5],
  [31, 1, 19], // n = 1
  [3, 9, 1],
  [30, 40, 2],
  [65, 70, 400], // two K blocks in the packed path
  [40, 50, 800], // three K blocks
];

Deno.test("encoder writes LEB128 like the spec's examples", () => {
  const u: number[] = [];
  writeU32(u, 624485);
  assert.deepEqual(u, [0xe5, 0x8e, 0x26]);
  const s: number[] = [];
  writeI32(s, -123456);
  assert.deepEqual(s, [0xc0, 0xbb, 0x78]);
  const z: number[] = [];
  writeI32(z, 64);
  writeI32(z, -64);
  writeU32(z, 0);
  assert.deepEqual(z, [0xc0, 0x00, 0x40, 0x00]);
});

Deno.test({
  name: "wasmGemm matches float64 on edge shapes, all layouts, beta 0 (NaN C) and 1, strided",
  ignore: !wasmAvailable,
  fn() {
    setThreads(1);
    let seed = 1;
    for (const [m, n, k] of shapes) {
      for (const [transA, transB] of layouts) {
        for (const beta of [0, 1] as const) {
          runCase(wasmGemm, { transA, transB, m, n, k, beta, pad: 0, offset: 0 }, seed++);
          runCase(wasmGemm, { transA, transB, m, n, k, beta, pad: 3, offset: 5 }, seed++);
        }
      }
    }
  },
});

Deno.test({
  name: "wasmGemm handles K = 1..9 and every M, N residue of the tiles",
  ignore: !wasmAvailable,
  fn() {
    setThreads(1);
    let seed = 100;
    for (let k = 1; k <= 9; k++) {
      for (const [transA, transB] of layouts) {
        runCase(wasmGemm, { transA, transB, m: 11, n: 13, k, beta: 0, pad: 1, offset: 2 }, seed++);
      }
    }
    for (let m = 1; m <= 13; m++) {
      for (let n = 1; n <= 17; n += 2) {
        for (const [transA, transB] of layouts) {
          runCase(wasmGemm, { transA, transB, m, n, k: 7, beta: 1, pad: 0, offset: 0 }, seed++);
        }
      }
    }
    // The dot path's K tails (K mod 8 in 0..7 above DOT_MIN_K).
    for (let k = 64; k < 72; k++) {
      runCase(
        wasmGemm,
        { transA: false, transB: true, m: 7, n: 5, k, beta: 0, pad: 0, offset: 0 },
        seed++,
      );
    }
  },
});

Deno.test({
  name: "wasmGemm uses operands living in wasm memory in place (C included)",
  ignore: !wasmAvailable,
  fn() {
    setThreads(1);
    let seed = 200;
    for (const [m, n, k] of [[7, 13, 5], [1, 37, 70], [12, 10, 70], [33, 20, 40]] as const) {
      for (const [transA, transB] of layouts) {
        for (const beta of [0, 1] as const) {
          runCase(
            wasmGemm,
            { transA, transB, m, n, k, beta, pad: 2, offset: 3, inWasm: true },
            seed++,
          );
        }
      }
    }
  },
});

Deno.test({
  name: "the fallback kernels (mul+add, 5×8 tile) are correct too",
  ignore: !wasmAvailable,
  fn() {
    const plain = createWasmGemm(PLAIN_CONFIG);
    let seed = 300;
    for (const [m, n, k] of [...shapes, [128, 64, 130] as [number, number, number]]) {
      for (const [transA, transB] of layouts) {
        runCase(plain, { transA, transB, m, n, k, beta: 1, pad: 1, offset: 1 }, seed++);
      }
    }
  },
});

Deno.test({
  name: "the packed path gives the same bits for any tile (3, 5 or 6 rows, A load-splat or not)",
  ignore: !wasmAvailable,
  fn() {
    // The rounding contract: an element of C sums the same products in the same order whichever
    // tile computes it, so the tile is free to change with the CPU or the register budget.
    // Heights below 4 load-splat every row whatever splatFromVector says.
    const tiles = [[3, false], [5, true], [5, false], [6, true], [6, false]] as const;
    const gemms = tiles.map(([mr, splatFromVector]) =>
      createWasmGemm({ ...kernelConfig, mr, splatFromVector })
    );
    let seed = 900;
    for (const [m, n, k] of [[37, 29, 401], [128, 40, 784], [6, 8, 9], [11, 17, 1000]]) {
      for (const [transA, transB] of layouts) {
        if (transB && !transA) continue; // the dot path, which has no tile height
        const next = uniformSource(seed++);
        const a = filled(m * k, next);
        const b = filled(n * k, next);
        const results = gemms.map((gemm) => {
          const c = new Float32Array(m * n);
          gemm(transA, transB, m, n, k, a, 0, transA ? m : k, b, 0, transB ? k : n, 0, c, 0, n);
          return c;
        });
        for (const c of results.slice(1)) {
          assert.deepEqual(
            new Uint32Array(c.buffer),
            new Uint32Array(results[0].buffer),
            `${m}×${n}×${k} transA=${transA} transB=${transB}`,
          );
        }
      }
    }
  },
});

Deno.test({
  name: "wasmGemm is right on the MLP-sized 128×784×512",
  ignore: !wasmAvailable,
  fn() {
    setThreads(1);
    runCase(wasmGemm, {
      transA: false,
      transB: true,
      m: 128,
      n: 512,
      k: 784,
      beta: 0,
      pad: 0,
      offset: 0,
    }, 7);
    runCase(wasmGemm, {
      transA: false,
      transB: false,
      m: 128,
      n: 784,
      k: 512,
      beta: 1,
      pad: 0,
      offset: 0,
    }, 8);
  },
});

Deno.test({
  name: "wasmGemm gives bitwise the same C on 1 and 2 threads",
  ignore: !wasmAvailable,
  async fn() {
    setThreads(2);
    await threadsReady();
    const before = threadStats();
    const cases: Case[] = [
      { transA: false, transB: true, m: 128, n: 512, k: 784, beta: 0, pad: 0, offset: 0 },
      // In wasm memory: copied in, so little work per copied byte would keep it on one thread.
      {
        transA: false,
        transB: true,
        m: 128,
        n: 10,
        k: 1024,
        beta: 0,
        pad: 0,
        offset: 0,
        inWasm: true,
      },
      { transA: true, transB: false, m: 512, n: 784, k: 128, beta: 1, pad: 0, offset: 0 },
      { transA: false, transB: false, m: 128, n: 784, k: 512, beta: 0, pad: 3, offset: 1 },
      { transA: false, transB: false, m: 1000, n: 64, k: 288, beta: 0, pad: 0, offset: 0 },
      { transA: true, transB: true, m: 100, n: 90, k: 700, beta: 1, pad: 0, offset: 0 },
      {
        transA: false,
        transB: true,
        m: 1,
        n: 512,
        k: 784,
        beta: 0,
        pad: 0,
        offset: 0,
        inWasm: true,
      },
      {
        transA: false,
        transB: false,
        m: 1,
        n: 512,
        k: 784,
        beta: 0,
        pad: 0,
        offset: 0,
        inWasm: true,
      },
    ];
    // 1 thread; the worker alone (deterministically exercises the worker's code and other chunk
    // boundaries); and both sharing chunks as they come.
    const modes = [
      { threads: 1, callerComputes: true },
      { threads: 2, callerComputes: false },
      { threads: 2, callerComputes: true },
    ];
    const results: Float32Array[][] = modes.map(() => []);
    modes.forEach(({ threads, callerComputes }, mode) => {
      setThreads(threads);
      setCallerComputes(callerComputes);
      cases.forEach((cs, i) => results[mode].push(runWithoutCheck(cs, 1000 + i)));
    });
    setCallerComputes(true);
    const stats = threadStats();
    assert.ok(stats.parallelJobs > before.parallelJobs, "no job was offered to the worker");
    assert.ok(stats.joinedJobs > before.joinedJobs, "the worker never took part");
    cases.forEach((cs, i) => {
      const one = new Uint32Array(results[0][i].buffer);
      for (let mode = 1; mode < modes.length; mode++) {
        const other = new Uint32Array(results[mode][i].buffer);
        assert.deepEqual(
          other,
          one,
          `${JSON.stringify(modes[mode])} differs from 1 thread for ${JSON.stringify(cs)}`,
        );
      }
    });
    // And they are right.
    runCase(wasmGemm, cases[0], 1000);
    setThreads(1);
  },
});

Deno.test({
  name: "a product with little work per copied byte stays on the calling thread",
  ignore: !wasmAvailable,
  async fn() {
    setThreads(2);
    await threadsReady();
    try {
      // N = 10 over a batch copied in: 2.5 multiply-adds per copied byte.
      const narrow: Case = {
        transA: false,
        transB: true,
        m: 128,
        n: 10,
        k: 1024,
        beta: 0,
        pad: 0,
        offset: 0,
      };
      let before = threadStats().parallelJobs;
      runWithoutCheck(narrow, 1);
      assert.equal(threadStats().parallelJobs, before, "copied operands: one thread");
      before = threadStats().parallelJobs;
      runWithoutCheck({ ...narrow, inWasm: true }, 1);
      assert.ok(threadStats().parallelJobs > before, "operands in wasm memory: shared");
      // fc1's forward product copies as much but does 128 multiply-adds per copied byte.
      before = threadStats().parallelJobs;
      runWithoutCheck({ ...narrow, n: 512, k: 784 }, 1);
      assert.ok(threadStats().parallelJobs > before, "enough work: shared");
    } finally {
      setThreads(1);
    }
  },
});

/** Runs a case without the (slow for big shapes) reference; returns a copy of C. */
function runWithoutCheck(cs: Case, seed: number): Float32Array {
  const { transA, transB, m, n, k, beta, pad, offset } = cs;
  const next = uniformSource(seed);
  const lda = (transA ? m : k) + pad;
  const ldb = (transB ? k : n) + pad;
  const ldc = n + pad;
  const a = filled(offset + (transA ? k : m) * lda, next, cs.inWasm);
  const b = filled(offset + (transB ? n : k) * ldb, next, cs.inWasm);
  const c = filled(offset + m * ldc, next, cs.inWasm);
  wasmGemm(transA, transB, m, n, k, a, offset, lda, b, offset, ldb, beta, c, offset, ldc);
  return c.slice();
}

Deno.test({
  name: "wasmGemm handles empty sizes and rejects bad arguments with the shape in the message",
  ignore: !wasmAvailable,
  fn() {
    const c = new Float32Array([NaN, NaN, 5, NaN, NaN]);
    wasmGemm(
      false,
      false,
      2,
      2,
      0,
      new Float32Array(0),
      0,
      0,
      new Float32Array(0),
      0,
      2,
      0,
      c,
      0,
      3,
    );
    assert.deepEqual([...c], [0, 0, 5, 0, 0]); // k = 0, beta 0: C = 0, the gap kept
    wasmGemm(
      false,
      false,
      0,
      3,
      4,
      new Float32Array(0),
      0,
      4,
      new Float32Array(12),
      0,
      3,
      0,
      c,
      0,
      3,
    );
    assert.throws(
      () =>
        wasmGemm(
          false,
          false,
          2,
          2,
          2,
          new Float32Array(3),
          0,
          2,
          new Float32Array(4),
          0,
          2,
          0,
          c,
          0,
          2,
        ),
      /wasmGemm A·B m=2 n=2 k=2: A stored \[2,2\].*overruns/,
    );
    assert.throws(
      () =>
        wasmGemm(
          false,
          false,
          2,
          2,
          2,
          new Float32Array(4),
          0,
          1,
          new Float32Array(4),
          0,
          2,
          0,
          c,
          0,
          2,
        ),
      /leading dimension 1 is invalid/,
    );
    assert.throws(
      () =>
        wasmGemm(
          false,
          false,
          1,
          1,
          1,
          new Float32Array(1),
          0,
          1,
          new Float32Array(1),
          0,
          1,
          2,
          c,
          0,
          1,
        ),
      /beta must be 0 or 1/,
    );
  },
});

Deno.test({
  name: "wasm memory: views survive growth, pointerOf, zeroed and reusable blocks",
  ignore: !wasmAvailable,
  fn() {
    const v = wasmFloat32(1000);
    assert.equal(v.length, 1000);
    assert.ok(v.every((x) => x === 0));
    v[3] = 42;
    const p = pointerOf(v);
    assert.ok(p > 0 && p % 64 === 0);
    assert.equal(pointerOf(new Float32Array(4)), -1);
    assert.equal(pointerOf(v.subarray(10)), p + 40);

    const bufferBefore = memory!.buffer;
    // As large as the whole memory: no free block and no room above the heap top can hold it, so
    // it must grow (a fixed size did not always: earlier tests may leave room after a grow).
    const big = allocBytes(bufferBefore.byteLength);
    assert.notEqual(memory!.buffer, bufferBefore, "expected the memory to grow");
    assert.equal(v[3], 42);
    v[4] = 7; // the old view still writes the live memory
    assert.equal(new Float32Array(memory!.buffer, p, 8)[4], 7);
    assert.equal(pointerOf(v), p, "old views are still recognised after growth");
    freeBytes(big);

    const live = heapStats().liveBlocks;
    freeWasmFloat32(v);
    assert.equal(heapStats().liveBlocks, live - 1);
    const w = wasmFloat32(1000);
    assert.ok(w.every((x) => x === 0), "blocks are zeroed even when reused");
    freeWasmFloat32(w);
    assert.throws(() => freeBytes(p), /not a live block/);
    assert.equal(wasmFloat32(0).length, 0);
  },
});
