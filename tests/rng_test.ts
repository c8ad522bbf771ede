/** The seeded generator: textbook values of xoshiro128** and SplitMix64, statistics, state. */

import assert from "node:assert/strict";
import { Rng } from "../mod.ts";

Deno.test("xoshiro128** from state {1, 2, 3, 4} gives the reference outputs", () => {
  // Printed by Blackman & Vigna's reference xoshiro128starstar.c (compiled with gcc) from this state.
  // The first by hand: result = rotl(s1·5, 7)·9 = rotl(10, 7)·9 = 1280·9 = 11520; the update then
  // leaves s1 = 0, so the second output is 0.
  const rng = Rng.fromState({ s: [1, 2, 3, 4], spareNormal: null });
  const outputs = Array.from({ length: 6 }, () => rng.nextUint32());
  assert.deepEqual(outputs, [11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
});

Deno.test("seeding expands the seed with SplitMix64 (seed 0 → e220a8397b1dcdaf, 6e789e6aa1b965f4)", () => {
  assert.deepEqual(new Rng(0).getState().s, [0x7b1dcdaf, 0xe220a839, 0xa1b965f4, 0x6e789e6a]);
});

Deno.test("same seed, same stream; different seeds, different streams", () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const sa = Array.from({ length: 10 }, () => a.nextUint32());
  assert.deepEqual(sa, Array.from({ length: 10 }, () => b.nextUint32()));
  assert.notDeepEqual(sa, Array.from({ length: 10 }, () => c.nextUint32()));
});

Deno.test("uniform, normal and int have the right distributions", () => {
  const rng = new Rng(1);
  const n = 200_000;
  let sum = 0;
  let sumSq = 0;
  let min = 1;
  let max = 0;
  for (let i = 0; i < n; i++) {
    const u = rng.uniform();
    min = Math.min(min, u);
    max = Math.max(max, u);
    sum += rng.normal();
  }
  assert.ok(min >= 0 && max < 1);
  for (let i = 0; i < n; i++) sumSq += rng.normal() ** 2;
  assert.ok(Math.abs(sum / n) < 0.01, `normal mean ${sum / n}`);
  assert.ok(Math.abs(sumSq / n - 1) < 0.015, `normal variance ${sumSq / n}`);
  // int(6): a chi-square test with 5 degrees of freedom (99.9% quantile 20.5).
  const counts = new Array(6).fill(0);
  for (let i = 0; i < 60_000; i++) counts[rng.int(6)]++;
  const chi = counts.reduce((s, c) => s + (c - 10_000) ** 2 / 10_000, 0);
  assert.ok(chi < 20.5, `chi-square ${chi}`);
  assert.throws(() => rng.int(0), /bound must be an integer/);
});

Deno.test("permutation is a permutation and depends on the seed", () => {
  const p = new Rng(3).permutation(100);
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
  assert.notDeepEqual(p, new Rng(4).permutation(100));
});

Deno.test("state round trip continues the exact stream, including a cached normal", () => {
  const rng = new Rng(9);
  rng.normal(); // leaves the second Box–Muller value cached
  const saved = structuredClone(rng.getState());
  assert.notEqual(saved.spareNormal, null);
  const expected = [rng.normal(), rng.normal(), rng.uniform()];
  const restored = Rng.fromState(saved);
  assert.deepEqual([restored.normal(), restored.normal(), restored.uniform()], expected);
  assert.throws(() => Rng.fromState({ s: [0, 0, 0, 0], spareNormal: null }), /all-zero state/);
});

Deno.test("fillUint32 draws exactly what as many nextUint32 calls would", () => {
  const a = new Rng(5);
  const b = new Rng(5);
  const block = new Uint32Array(1000);
  a.fillUint32(block);
  assert.deepEqual(Array.from(block), Array.from({ length: 1000 }, () => b.nextUint32()));
  assert.equal(a.nextUint32(), b.nextUint32(), "both continue from the same state");
});
