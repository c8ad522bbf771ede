// The reference models with the default (WebAssembly SIMD) kernels against the reference
// TypeScript kernels as baseline: forward at batch 1 and 128, and a training step at batch 128
// (forward, crossEntropy, backward, SGD with momentum 0.9) for the MLP and AlexNet.
//
//   deno task bench          (all of bench/)
//   deno bench --allow-read --allow-env bench/models_bench.ts
//
// Images/s = batch / (time per iteration). The machines this runs on have 2 cores shared with
// other work: read the ratios within a group, taken in one run.

import {
  crossEntropy,
  kernels,
  noGrad,
  referenceKernels,
  Rng,
  type Tensor,
  tensor,
  useKernels,
} from "../autograd/mod.ts";
import { threadsReady } from "../autograd/kernels/wasm/gemm.ts";
import { AlexNet, MLP, type Module, SGD } from "../nn/mod.ts";

const BATCH = 128;
const rng = new Rng(3);

function input(batch: number): Tensor {
  const x = new Float32Array(batch * 784);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  return tensor(x).reshape(batch, 1, 28, 28);
}

const labels = new Int32Array(BATCH);
for (let i = 0; i < BATCH; i++) labels[i] = Math.floor(rng.uniform() * 10);
const x1 = input(1);
const xB = input(BATCH);

interface Setup {
  model: Module<[Tensor], Tensor>;
  step: () => void;
}

/** A model and its training step under kernel set `k`. */
function setup(name: string, k: "default" | "reference"): Setup {
  const restoreKernels = k === "reference" ? useKernels(referenceKernels) : null;
  const model = name === "mlp" ? new MLP({ seed: 1 }) : new AlexNet({ seed: 1 });
  const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const step = (): void => {
    optimizer.zeroGrad();
    crossEntropy(model.call(xB), labels).backward();
    optimizer.step();
  };
  step(); // allocates the gradients
  restoreKernels?.();
  return { model, step };
}

/** Runs `fn` with the reference kernels installed. */
function withReference(fn: () => void): void {
  const restore = useKernels(referenceKernels);
  try {
    fn();
  } finally {
    restore();
  }
}

await threadsReady();

for (const name of ["mlp", "alexnet"]) {
  const fast = setup(name, "default");
  const slow = setup(name, "reference");
  const slowN = name === "alexnet" ? 8 : 30; // the reference AlexNet step takes ~0.2 s
  for (const [batch, x] of [[1, x1], [BATCH, xB]] as const) {
    const group = `${name} forward, batch ${batch}`;
    Deno.bench({
      name: `${group}: reference TypeScript kernels`,
      group,
      baseline: true,
      n: batch === 1 ? 500 : slowN,
      fn: () => withReference(() => noGrad(() => slow.model.call(x))),
    });
    Deno.bench({
      name: `${group}: ${kernels.name}`,
      group,
      fn: () => {
        noGrad(() => fast.model.call(x));
      },
    });
  }
  const group = `${name} training step, batch ${BATCH}`;
  Deno.bench({
    name: `${group}: reference TypeScript kernels`,
    group,
    baseline: true,
    n: slowN,
    warmup: 2,
    fn: () => withReference(slow.step),
  });
  Deno.bench({ name: `${group}: ${kernels.name}`, group, fn: fast.step });
}
