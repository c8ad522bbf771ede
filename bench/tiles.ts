// The packed GEMM's micro-kernel variants against each other, on one thread, on the MLP's
// products that take the packed path (the weight gradients and the input gradient at batch 128).
// The tile is the one part of the GEMM whose best shape depends on the CPU: on the Intel Xeon of
// 2026-12-03, Deno's bounds-checked loads shared ports with the FMAs and the 5×8 tile that splats
// four A values from one vector beat the 6×8 tile of six load-splats (README, "WebAssembly on an
// Intel Xeon"). Run this on a new CPU before changing the default, and quote it when you do.
//
//   deno task bench:tiles [--rounds 15]
//
// Every variant computes the same bits (tests/wasm_gemm_test.ts), so only speed is compared.
// Each round times every variant once, in a rotating order, for at least 0.2 s each; a variant's
// figure is its median time, and its ratio to the default the median of the round-by-round
// ratios, so all variants see the same conditions. Operands live in the wasm memory.

import { parseArgs } from "node:util";
import {
  createWasmGemm,
  type Gemm,
  kernelConfig,
  relaxedSimd,
  wasmAvailable,
} from "../autograd/kernels/wasm/gemm.ts";
import type { KernelConfig } from "../autograd/kernels/wasm/kernels.ts";
import { wasmFloat32 } from "../autograd/kernels/wasm/memory.ts";
import { Rng } from "../autograd/rng.ts";
import { measureFmaCeiling } from "./fma_ceiling.ts";
import { MLP_GEMM_SHAPES } from "./mlp_shapes.ts";
import { cpuDescription } from "./peers_torch.ts";
import { median } from "./stats.ts";
import { benchFlags } from "./args.ts";

const { values } = benchFlags(import.meta.url, () =>
  parseArgs({
    options: {
      rounds: { type: "string", default: "15" },
      help: { type: "boolean", short: "h" },
    },
  }));
const rounds = Number(values.rounds);
if (!wasmAvailable) {
  console.error("bench/tiles.ts: WebAssembly SIMD or shared memory is unavailable here");
  Deno.exit(1);
}
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error(`bench/tiles.ts: --rounds must be a positive integer, got "${values.rounds}"`);
  Deno.exit(2);
}

/** A tile variant: a name for the table and the configuration it builds. */
interface Variant {
  name: string;
  config: KernelConfig;
}

const describe = (c: KernelConfig): string =>
  `${c.mr}×8, ${c.splatFromVector ? "4 A values splatted from a vector" : "A load-splats"}`;
const variants: Variant[] = [{ name: `${describe(kernelConfig)} (default)`, config: kernelConfig }];
const tried: Partial<KernelConfig>[] = relaxedSimd
  ? [{ mr: 6, splatFromVector: false }, { mr: 5, splatFromVector: false }, { mr: 4 }]
  : [{ mr: 5, splatFromVector: true }, { mr: 4, splatFromVector: false }];
for (const change of tried) {
  const config = { ...kernelConfig, ...change };
  variants.push({ name: describe(config), config });
}
const gemms: Gemm[] = variants.map((v) => createWasmGemm(v.config));

const ROUND_MS = 200;
const rng = new Rng(1);
const filled = (n: number): Float32Array => wasmFloat32(n).map(() => rng.normal());

console.log(`CPU: ${cpuDescription()}`);
const ceiling = await measureFmaCeiling({ threads: 1 });
console.log(
  `wasm SIMD FMA ceiling (bench/fma_ceiling.ts): ${ceiling.oneThreadGflops.toFixed(1)} GFLOPS`,
);
console.log(`packed GEMM on one thread, operands in wasm memory; medians of ${rounds} rounds`);
const header = variants.map((v) => v.name);
console.log(`| product | ${header.join(" | ")} |`);
console.log(`|---|${header.map(() => "---:").join("|")}|`);

for (const s of MLP_GEMM_SHAPES) {
  if (s.transB && !s.transA) continue; // X·Wᵀ takes the dot path, which has no tile
  const a = filled(s.m * s.k);
  const b = filled(s.n * s.k);
  const c = wasmFloat32(s.m * s.n);
  const lda = s.transA ? s.m : s.k;
  const ldb = s.transB ? s.k : s.n;
  const once = (g: Gemm) =>
    g(s.transA, s.transB, s.m, s.n, s.k, a, 0, lda, b, 0, ldb, 0, c, 0, s.n);
  for (const g of gemms) for (let i = 0; i < 5; i++) once(g);
  const times: number[][] = variants.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let v = 0; v < variants.length; v++) {
      const which = (v + r) % variants.length;
      let calls = 0;
      const start = performance.now();
      let elapsed = 0;
      while (elapsed < ROUND_MS) {
        once(gemms[which]);
        calls++;
        elapsed = performance.now() - start;
      }
      times[which].push(elapsed / calls);
    }
  }
  const gflops = (ms: number) => (2 * s.m * s.n * s.k) / ms / 1e6;
  const cells = times.map((t, v) => {
    const ms = median(t);
    const figure = `${ms.toFixed(3)} ms (${gflops(ms).toFixed(0)} GFLOPS)`;
    if (v === 0) return figure;
    return `${figure}, ${median(t.map((x, r) => times[0][r] / x)).toFixed(2)}× the default`;
  });
  console.log(`| ${s.name} | ${cells.join(" | ")} |`);
}
console.log(
  "ratio = the default's time ÷ the variant's, per round (above 1: the variant is faster here)",
);
