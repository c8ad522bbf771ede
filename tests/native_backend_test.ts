/**
 * Choosing the native backend: what useBackend installs and says, the thread count handed to
 * BLAS (tapegrad's workers then get only the bulk passes), the fallbacks to wasm without `--allow-ffi` or with
 * a missing `TAPEGRAD_BLAS` (in child processes with those permissions), `--backend` on the train
 * task, the determinism claim (same library and thread count: bitwise the same results run after
 * run), and a short MNIST training on native kernels. Skipped, saying why, where no BLAS loads.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  crossEntropy,
  currentBackend,
  getThreads,
  kernels,
  Rng,
  setThreads,
  tensor,
  useBackend,
  wasmKernels,
} from "../mod.ts";
import { loadBlas } from "../autograd/kernels/native/mod.ts";
import {
  getThreads as wasmGetThreads,
  setThreads as wasmSetThreads,
  threadsReady,
  threadStats,
} from "../autograd/kernels/wasm/mod.ts";
import { AlexNet, MLP, SGD } from "../nn/mod.ts";
import { mnistOneEpochCorrect } from "./helpers/mnist_epoch.ts";
import { withTempDir } from "./helpers/temp.ts";

const load = loadBlas();
const ignore = load.blas === null;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MOD = new URL("../mod.ts", import.meta.url).href;

/** Runs `body` with the native backend installed, then puts wasm and the thread count back. */
async function withNative<T>(threads: number, body: () => T | Promise<T>): Promise<T> {
  const before = getThreads();
  setThreads(threads);
  useBackend("native");
  try {
    return await body();
  } finally {
    useBackend("wasm");
    setThreads(before);
  }
}

/** Runs a TypeScript snippet in a child `deno run` with the given flags; returns its stdout. */
async function child(
  flags: string[],
  source: string,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return await withTempDirValue(async (dir) => {
    const file = `${dir}/snippet.ts`;
    await Deno.writeTextFile(file, source);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...flags, file],
      cwd: ROOT,
      env: { NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
  });
}

async function withTempDirValue<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  let result: T;
  await withTempDir(async (dir) => {
    result = await fn(dir);
  });
  return result!;
}

const SNIPPET = `
import { useBackend, BackendUnavailableError, kernels } from ${JSON.stringify(MOD)};
const auto = useBackend("auto");
let native = "installed";
try { useBackend("native"); } catch (e) {
  native = e instanceof BackendUnavailableError ? "unavailable: " + e.message : "other: " + e;
}
console.log(JSON.stringify({ auto, native, name: kernels.name }));
`;

Deno.test({
  name: "useBackend: native installs BLAS GEMM and Linear and says why; wasm puts everything back",
  ignore,
  async fn() {
    // The pool's worker started and ready (it starts on first use; until it is ready a job runs
    // on the calling thread alone).
    wasmSetThreads(2);
    await threadsReady();
    await withNative(2, () => {
      const choice = currentBackend();
      assert.equal(choice.backend, "native");
      assert.equal(choice.requested, "native");
      assert.equal(choice.library, load.blas!.path);
      assert.match(choice.reason, /from /);
      assert.match(kernels.name, /^native-blas\+/);
      assert.notEqual(kernels.gemm, wasmKernels.gemm);
      assert.notEqual(kernels.linearForward, wasmKernels.linearForward);
      assert.equal(kernels.unary, wasmKernels.unary, "elementwise kernels stay wasm's");
      // The SGD step runs on every thread of the pool (then back to one): wasm's bits.
      const n = 50_000;
      const run = (step: typeof kernels.sgdStep) => {
        // In the wasm memory, as parameters live there (else it is the reference loop).
        const [p, b, g] = [1, 2, 3].map((f) => {
          const a = kernels.allocPersistent(n);
          for (let i = 0; i < n; i++) a[i] = Math.sin(f * i);
          return a;
        });
        step(p, 0, g, 0, n, 0.1, 0.01, 0.9, 0, true, b, false);
        return [...p, ...b];
      };
      const before = threadStats().parallelJobs;
      const got = run(kernels.sgdStep);
      assert.ok(threadStats().parallelJobs > before, "the SGD step was shared between threads");
      assert.deepEqual(got, run(wasmKernels.sgdStep));
      assert.equal(wasmGetThreads(), 1, "tapegrad's pool is back at one thread");
    });
    assert.equal(currentBackend().backend, "wasm");
    assert.equal(kernels.gemm, wasmKernels.gemm);
    assert.equal(kernels.name, wasmKernels.name);
    const auto = useBackend("auto");
    try {
      assert.equal(auto.backend, "native");
      assert.equal(auto.requested, "auto");
    } finally {
      useBackend("wasm");
    }
  },
});

Deno.test({
  name:
    "setThreads under native goes to BLAS; tapegrad's pool stays at 1 thread between bulk passes",
  ignore: ignore || !load.blas?.canSetThreads,
  async fn() {
    const before = wasmGetThreads();
    await withNative(2, () => {
      assert.equal(getThreads(), 2);
      assert.equal(load.blas!.getThreads(), 2);
      assert.equal(wasmGetThreads(), 1);
      setThreads(1);
      assert.equal(getThreads(), 1);
      assert.equal(load.blas!.getThreads(), 1);
    });
    assert.equal(wasmGetThreads(), before, "back on wasm, the pool has its thread count again");
  },
});

Deno.test({
  name:
    "native runs the convolution's product on BLAS: wasm's result to float32 rounding, the same bits run after run, and tapegrad's pool stays at one thread",
  ignore,
  async fn() {
    const rng = new Rng(9);
    const g = {
      channels: 32,
      height: 13,
      width: 13,
      kernelH: 3,
      kernelW: 3,
      strideH: 2,
      strideW: 2,
      padH: 1,
      padW: 1,
      outH: 7,
      outW: 7,
    };
    const batch = 64;
    const x = Float32Array.from({ length: batch * 32 * 169 }, () => rng.normal());
    const w = Float32Array.from({ length: 64 * 288 }, () => rng.normal());
    const bias = Float32Array.from({ length: 64 }, () => rng.normal());
    const run = (kernel: typeof kernels.convForward) => {
      const out = new Float32Array(batch * 64 * 49);
      kernel({
        x,
        xOffset: 0,
        batch,
        w,
        wOffset: 0,
        outChannels: 64,
        g,
        bias,
        biasOffset: 0,
        relu: true,
        out,
        outOffset: 0,
      });
      return out;
    };
    const want = run(wasmKernels.convForward);
    await withNative(2, () => {
      const got = run(kernels.convForward);
      // K = 288 products of unit normals: sums of size ~17, rounded in another order.
      const worst = got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
      assert.ok(worst < 1e-4, `native's convolution is within ${worst} of wasm's`);
      const again = run(kernels.convForward);
      assert.ok(again.every((v, i) => Object.is(v, got[i])), "the same bits on a second run");
      assert.equal(wasmGetThreads(), 1, "tapegrad's pool stays at one thread");
    });
  },
});

Deno.test("without --allow-ffi, importing works and auto picks wasm, saying why; native names the reason", async () => {
  const run = await child(["--allow-read", "--allow-env"], SNIPPET);
  assert.equal(run.code, 0, run.stderr);
  const r = JSON.parse(run.stdout);
  assert.equal(r.auto.backend, "wasm");
  assert.match(r.auto.reason, /native unavailable: --allow-ffi is not granted/);
  assert.match(r.native, /^unavailable: the native backend is unavailable: --allow-ffi/);
  assert.equal(r.name, "wasm-simd");
});

Deno.test("TAPEGRAD_BLAS naming a missing file: auto falls back to wasm and names the path", async () => {
  const run = await child(["--allow-read", "--allow-env", "--allow-ffi"], SNIPPET, {
    TAPEGRAD_BLAS: "/nonexistent/libblas-for-test.so",
  });
  assert.equal(run.code, 0, run.stderr);
  const r = JSON.parse(run.stdout);
  assert.equal(r.auto.backend, "wasm");
  assert.match(r.auto.reason, /TAPEGRAD_BLAS=\/nonexistent\/libblas-for-test\.so/);
  assert.match(r.native, /^unavailable: .*libblas-for-test\.so/);
});

Deno.test({
  name:
    "TAPEGRAD_DNNL: off, or naming a missing file, keeps native on BLAS with im2col convolutions and says why",
  ignore,
  async fn() {
    for (
      const [value, why] of [
        ["off", /convolutions as im2col on BLAS \(TAPEGRAD_DNNL=off\)/],
        ["/nonexistent/libdnnl-for-test.so", /im2col on BLAS \(no oneDNN 2 .*libdnnl-for-test\.so/],
      ] as const
    ) {
      const run = await child(["--allow-read", "--allow-env", "--allow-ffi"], SNIPPET, {
        TAPEGRAD_DNNL: value,
      });
      assert.equal(run.code, 0, run.stderr);
      const r = JSON.parse(run.stdout);
      assert.equal(r.auto.backend, "native");
      assert.match(r.auto.reason, why);
      assert.equal(r.name, "native-blas+wasm-simd");
    }
  },
});

Deno.test("TAPEGRAD_BACKEND: an invalid value is refused naming the valid ones", async () => {
  const run = await child(
    ["--allow-read", "--allow-env"],
    `import { backendFromEnv } from ${JSON.stringify(MOD)};
try { backendFromEnv(); console.log("accepted"); } catch (e) { console.log(String(e)); }`,
    { TAPEGRAD_BACKEND: "gpu" },
  );
  assert.match(
    run.stdout,
    /TAPEGRAD_BACKEND must be one of auto, native, wasm, reference; got "gpu"/,
  );
});

/**
 * Parameters after `steps` SGD steps of a fresh MLP or AlexNet on fixed random data (batch 64:
 * AlexNet's convolutions are large enough for oneDNN where it loads).
 */
function trainedBits(steps: number, kind: "mlp" | "alexnet" = "mlp"): Uint32Array[] {
  const rng = new Rng(4);
  const pixels = tensor(Float32Array.from({ length: 64 * 784 }, () => rng.normal()));
  const x = kind === "mlp" ? pixels.reshape(64, 784) : pixels.reshape(64, 1, 28, 28);
  const y = Int32Array.from({ length: 64 }, () => Math.floor(rng.uniform() * 10));
  const model = kind === "mlp" ? new MLP({ seed: 3 }) : new AlexNet({ rng: new Rng(3) });
  const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  for (let s = 0; s < steps; s++) {
    optimizer.zeroGrad();
    crossEntropy(model.call(x), y).backward();
    optimizer.step();
  }
  return model.parameters().map((p) => new Uint32Array(p.toFloat32Array().slice().buffer));
}

function sameBits(a: Uint32Array[], b: Uint32Array[]): boolean {
  return a.length === b.length &&
    a.every((t, i) => t.length === b[i].length && t.every((v, j) => v === b[i][j]));
}

Deno.test({
  name: "native determinism: the same thread count gives bitwise the same training, run after run",
  ignore,
  async fn() {
    for (const threads of [1, 2]) {
      await withNative(threads, () => {
        for (const kind of ["mlp", "alexnet"] as const) {
          const first = trainedBits(4, kind);
          const second = trainedBits(4, kind);
          assert.ok(sameBits(first, second), `${kind}, ${threads} thread(s): two runs differ`);
        }
      });
    }
    // Not a promise of the backend (OpenBLAS may split sums differently), only reported.
    for (const kind of ["mlp", "alexnet"] as const) {
      const one = await withNative(1, () => trainedBits(4, kind));
      const two = await withNative(2, () => trainedBits(4, kind));
      console.log(
        `native ${kind}, 1 vs 2 threads: ${
          sameBits(one, two) ? "bitwise identical" : "differ"
        } here`,
      );
    }
  },
});

Deno.test({
  name:
    "native backend trains the MLP: one epoch on the first 5,000 MNIST images, ≥ 90% on 1,000 test images",
  ignore,
  async fn() {
    const correct = await withNative(getThreads(), mnistOneEpochCorrect);
    assert.ok(correct >= 900, `${correct} of 1000 test images correct`);
  },
});

Deno.test({
  name:
    "train --backend native runs on BLAS and says so, and two runs write identical model.safetensors; a bad --backend is a usage error",
  ignore,
  async fn() {
    await withTempDir(async (dir) => {
      const train = (args: string[]) =>
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-read",
            "--allow-write",
            "--allow-env",
            "--allow-net",
            "--allow-ffi",
            "cli/train.ts",
            ...args,
          ],
          cwd: ROOT,
          env: { NO_COLOR: "1", INIT_CWD: "" },
          stdout: "piped",
          stderr: "piped",
        }).output();
      const text = new TextDecoder();
      // Two runs on 2 BLAS threads: the same bits in both processes (the determinism claim).
      const files: Uint8Array[] = [];
      for (const out of ["run1", "run2"]) {
        const ok = await train([
          "--backend",
          "native",
          "--threads",
          "2",
          "--epochs",
          "2",
          "--limit-train",
          "512",
          "--limit-test",
          "100",
          "--out",
          `${dir}/${out}`,
        ]);
        const stdout = text.decode(ok.stdout);
        assert.equal(ok.code, 0, text.decode(ok.stderr));
        assert.match(
          stdout,
          /^kernels +native-blas(\+dnnl)?\+wasm-simd, 2 thread\(s\) \(.*from .*\)$/m,
        );
        files.push(await Deno.readFile(`${dir}/${out}/model.safetensors`));
      }
      assert.deepEqual(files[0], files[1], "two native runs wrote different model.safetensors");
      const bad = await train(["--backend", "gpu"]);
      assert.equal(bad.code, 2);
      assert.match(
        text.decode(bad.stderr),
        /--backend must be one of auto, native, wasm, reference; got "gpu"/,
      );
    });
  },
});
