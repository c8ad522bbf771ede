// Training steps of the MLP and AlexNet on the WebGPU device against the CPU kernels in the same
// run, and the WebGPU GEMM at square sizes. Runs with `--device webgpu` (skipped otherwise, so
// `deno task bench` alone stays a CPU run):
//
//   deno task bench --device webgpu
//
// Each iteration records STEPS training steps and then reads the last loss back, so the time
// includes the GPU's work, not only the recording; images/s = STEPS · batch / time. On the
// software adapter (lavapipe) the figures only show that the path works: quote GPU figures from
// a real GPU, with its name.

import { type Device, noGrad, tensor, useDevice } from "../autograd/mod.ts";
import { threadsReady } from "../autograd/kernels/wasm/gemm.ts";
import { deviceStep, type ModelName } from "./webgpu_step.ts";

const wanted = Deno.args.includes("--device") &&
  Deno.args[Deno.args.indexOf("--device") + 1] === "webgpu";
const opened = wanted ? await useDevice("webgpu") : null;
if (opened) console.log(opened.description);
await threadsReady();

const STEPS = 5;

for (const name of ["mlp", "alexnet"] as ModelName[]) {
  for (const batch of [128, 1024]) {
    for (const device of ["webgpu", "cpu"] as Device[]) {
      const run = wanted ? await deviceStep(name, batch, device) : null;
      Deno.bench({
        name: `${name} train step ×${STEPS}, batch ${batch}, ${device}`,
        group: `${name} ${batch}`,
        baseline: device === "cpu",
        ignore: !wanted,
        n: 3,
        warmup: 1,
        async fn(b) {
          b.start();
          let loss = run!.step();
          for (let i = 1; i < STEPS; i++) loss = run!.step();
          await loss.read();
          b.end();
        },
      });
    }
  }
}

for (const n of [256, 1024]) {
  const a = wanted
    ? tensor(new Float32Array(n * n).fill(0.5), { shape: [n, n], device: "webgpu" })
    : null;
  Deno.bench({
    name: `webgpu matmul ${n}³ (${(2 * n ** 3 / 1e9).toFixed(2)} GFLOP)`,
    group: "gemm",
    ignore: !wanted,
    n: 3,
    warmup: 1,
    async fn() {
      await noGrad(() => a!.matmul(a!)).read();
    },
  });
}
