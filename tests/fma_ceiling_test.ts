// The FMA ceiling probe (bench/fma_ceiling.ts) computes what it claims: each of its 12 chains is
// acc ← 0.5·acc + 0.25 from acc = i, so after n steps the result is Σᵢ 0.5 + (i − 0.5)·0.5ⁿ, and
// a probe that dropped chains or iterations would return something else.

import assert from "node:assert/strict";
import { fmaProbeModule, measureFmaCeiling } from "../bench/fma_ceiling.ts";
import { relaxedSimdSupported, simdSupported } from "../autograd/kernels/wasm/kernels.ts";

function expected(iterations: number): number {
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += 0.5 + (i - 0.5) * 0.5 ** iterations;
  return sum;
}

for (const relaxed of [false, true]) {
  Deno.test({
    name: `fma probe (${relaxed ? "relaxed_madd" : "mul+add"}): runs every chain and iteration`,
    ignore: !simdSupported() || (relaxed && !relaxedSimdSupported()),
    fn() {
      const bytes = fmaProbeModule(relaxed);
      const run = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource))
        .exports.run as (n: number) => number;
      for (const n of [0, 1, 3, 10]) {
        const got = run(n);
        assert.ok(
          Math.abs(got - expected(n)) < 1e-5,
          `${n} iterations: ${got}, not ${expected(n)}`,
        );
      }
    },
  });
}

Deno.test({
  name: "fma probe: measures a positive ceiling on 2 threads, one worker beside the caller",
  ignore: !simdSupported(),
  async fn() {
    const c = await measureFmaCeiling({ threads: 2, ms: 5, rounds: 1 });
    assert.equal(c.threads, 2);
    assert.ok(c.oneThreadGflops > 0 && Number.isFinite(c.oneThreadGflops));
    assert.ok(c.gflops > 0 && Number.isFinite(c.gflops));
  },
});
