// The default (fast) kernels against the reference kernels: elementwise maps (GELU to a few ulp,
// the rest bitwise) and gradient accumulation bitwise (random data with NaN, ±∞, ±0; odd lengths; offsets; operands inside and
// outside the wasm memory), the optimizer updates bitwise, persistent storage, the fused
// conv + ReLU op, and whole MLP / AlexNet training steps within float tolerance.

import assert from "node:assert/strict";
import { unaryOps } from "../autograd/ops/unary.ts";
import {
  conv2d,
  crossEntropy,
  kernels,
  referenceKernels,
  relu,
  Rng,
  type Tensor,
  tensor,
  type UnaryKind,
  useKernels,
} from "../autograd/mod.ts";
import { adamStepReference, sgdStepReference } from "../autograd/kernels/optim.ts";
import {
  persistentFloat32,
  persistentStats,
  pointerOf,
  setPersistentBudget,
  wasmAvailable,
  wasmFloat32,
} from "../autograd/kernels/wasm/mod.ts";
import { DEFAULT_PERSISTENT_BUDGET } from "../autograd/kernels/wasm/memory.ts";
import { AlexNet, MLP, type Module, SGD } from "../nn/mod.ts";

const ignore = !wasmAvailable;

/** Random values with the special ones sprinkled in. */
function values(n: number, seed: number, inWasm = false): Float32Array {
  const rng = new Rng(seed);
  const a = inWasm ? wasmFloat32(n) : new Float32Array(n);
  const special = [NaN, Infinity, -Infinity, 0, -0, 1e-40, -1e-40, 3e38, -3e38];
  for (let i = 0; i < n; i++) {
    a[i] = rng.uniform() < 0.05 ? special[i % special.length] : rng.normal() * 3;
  }
  return a;
}

function bitsEqual(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) assert.fail(`${what}: element ${i} is ${a[i]}, reference ${b[i]}`);
  }
}

/** Float32 distance in units in the last place (sign-magnitude bit patterns made monotonic). */
function ulpDistance(a: number, b: number): number {
  const bits = new Int32Array(new Float32Array([a, b]).buffer);
  const ordered = (i: number) => (i < 0 ? -0x80000000 - i : i);
  return Math.abs(ordered(bits[0]) - ordered(bits[1]));
}

/**
 * The kinds whose fast kernel computes in float32 rather than reproducing the reference's
 * float64 bit for bit (`gelu_kernels.ts`), with the closeness each must keep: the forward within
 * `ulps` (or both below 1e-37, where float32 has only a few bits left), the gradient within
 * `grad`·|gy| absolutely (plus a few denormal steps; its terms are at most 1.25, and they cancel near the GELU's minimum, so
 * a relative bound there would measure the cancellation, not the kernel). Special values (NaN,
 * ±∞, ±0) must still come out exactly as the reference's.
 */
const approximateKinds: Partial<Record<UnaryKind, { ulps: number; grad: number }>> = {
  gelu: { ulps: 8, grad: 2e-6 },
};

function closeEqual(
  got: Float32Array,
  want: Float32Array,
  what: string,
  within: (g: number, w: number, i: number) => boolean,
): void {
  assert.equal(got.length, want.length, `${what}: lengths`);
  for (let i = 0; i < got.length; i++) {
    const [g, w] = [got[i], want[i]];
    if (Object.is(g, w) || (Number.isFinite(w) && w !== 0 && within(g, w, i))) continue;
    assert.fail(`${what}: element ${i} is ${g}, reference ${w}`);
  }
}

// Below, at and above the size where the wasm kernels take over, odd lengths included.
const lengths = [1, 7, 1023, 4095, 4096, 4099, 5000, 70001];
/** Every unary kind (from the primitive table), at parameter 0 unless listed here. */
const params: Partial<Record<UnaryKind, number>> = { leakyRelu: 0.01, pow: 2 };
const kinds = Object.keys(unaryOps) as UnaryKind[];

Deno.test({
  name:
    "fast unary kernels equal the reference (bitwise, GELU to a few ulp; special values, odd sizes, offsets)",
  ignore,
  fn() {
    for (const n of lengths) {
      for (const inWasm of [false, true]) {
        for (const kind of kinds) {
          const param = params[kind] ?? 0;
          const x = values(n + 5, n, inWasm);
          const want = new Float32Array(n + 3);
          const got = inWasm ? wasmFloat32(n + 3) : new Float32Array(n + 3);
          referenceKernels.unary(kind, x, 5, want, 3, n, param);
          kernels.unary(kind, x, 5, got, 3, n, param);
          const label = `${kind} n=${n}${inWasm ? " in wasm" : ""}`;
          const tolerance = approximateKinds[kind];
          if (tolerance === undefined) bitsEqual(got.slice(), want, label);
          else {
            closeEqual(
              got.slice(),
              want,
              label,
              (g, w) =>
                ulpDistance(g, w) <= tolerance.ulps || Math.max(Math.abs(g), Math.abs(w)) < 1e-37,
            );
          }

          const gy = values(n, n + 1, inWasm);
          const y = want.slice(3);
          const xs = x.slice(5);
          const gxRef = new Float32Array(n);
          const gx = inWasm ? wasmFloat32(n) : new Float32Array(n);
          referenceKernels.unaryBackward(kind, gy, xs, y, gxRef, n, param);
          kernels.unaryBackward(kind, gy, xs, y, gx, n, param);
          const backward = `${kind} backward n=${n}${inWasm ? " in wasm" : ""}`;
          if (tolerance === undefined) bitsEqual(gx.slice(), gxRef, backward);
          else {
            closeEqual(
              gx.slice(),
              gxRef,
              backward,
              (g, w, i) => Math.abs(g - w) <= tolerance.grad * Math.abs(gy[i]) + 1e-44,
            );
          }
        }
      }
    }
  },
});

Deno.test({
  name: "fast addInto equals the reference bitwise, in place and with offsets",
  ignore,
  fn() {
    for (const n of lengths) {
      for (const inWasm of [false, true]) {
        const src = values(n + 2, 2 * n, inWasm);
        const want = values(n + 4, 3 * n, inWasm);
        const got = inWasm ? wasmFloat32(n + 4) : new Float32Array(n + 4);
        got.set(want);
        referenceKernels.addInto(want, 4, src, 2, n);
        kernels.addInto(got, 4, src, 2, n);
        bitsEqual(got.slice(), want.slice(), `addInto n=${n}${inWasm ? " in wasm" : ""}`);
      }
    }
  },
});

Deno.test({
  name: "fast zero kernel clears exactly the range, in wasm memory or not",
  ignore,
  fn() {
    for (const n of lengths) {
      for (const inWasm of [false, true]) {
        const x = values(n + 6, 4 * n, inWasm);
        const want = x.slice();
        referenceKernels.zero(want, 3, n);
        kernels.zero(x, 3, n);
        bitsEqual(x.slice(), want, `zero n=${n}${inWasm ? " in wasm" : ""}`);
      }
    }
  },
});

Deno.test({
  name: "fast SGD and Adam updates equal the reference bitwise (parameter in wasm memory or not)",
  ignore,
  fn() {
    // 5001: one chunk, with a tail of one element; 40003: three chunks of at least 16384.
    for (const [n, resident] of [[5001, false], [5001, true], [40003, true]] as const) {
      const sgdCases: [number, number, number, boolean, boolean][] = [
        [0, 0, 0, false, false],
        [0.01, 0.9, 0, true, false],
        [0.01, 0.9, 0.1, false, true],
        [0, 0.9, 0, false, false],
      ];
      for (const [wd, momentum, dampening, nesterov, first] of sgdCases) {
        const p0 = values(n + 3, 5).map((v) => Number.isFinite(v) ? v : 0.5);
        const g = values(n + 1, 6).map((v) => Number.isFinite(v) ? v : -0.25);
        const b0 = values(n, 7).map((v) => Number.isFinite(v) ? v : 1);
        const want = p0.slice();
        const got = resident ? persistentFloat32(n + 3) : new Float32Array(n + 3);
        got.set(p0);
        const bWant = b0.slice();
        // SGD keeps its momentum buffer in persistent storage too (nn/optim/sgd.ts).
        const bGot = resident ? persistentFloat32(n) : new Float32Array(n);
        bGot.set(b0);
        sgdStepReference(want, 3, g, 1, n, 0.05, wd, momentum, dampening, nesterov, bWant, first);
        kernels.sgdStep(got, 3, g, 1, n, 0.05, wd, momentum, dampening, nesterov, bGot, first);
        const label = `sgd wd=${wd} μ=${momentum} nesterov=${nesterov} first=${first}`;
        bitsEqual(got.slice(), want, `${label} param${resident ? " (in wasm)" : ""}`);
        bitsEqual(bGot.slice(), bWant, `${label} buffer${resident ? " (in wasm)" : ""}`);
      }
      for (const [wd, decoupled] of [[0, false], [0.01, false], [0.01, true]] as const) {
        const p0 = values(n + 3, 8).map((v) => Number.isFinite(v) ? v : 0.5);
        const g = values(n, 9).map((v) => Number.isFinite(v) ? v : 2);
        const m0 = values(n, 10).map((v) => Number.isFinite(v) ? v : 0);
        const v0 = values(n, 11).map((v) => Number.isFinite(v) ? Math.abs(v) : 1);
        const want = p0.slice();
        const got = resident ? persistentFloat32(n + 3) : new Float32Array(n + 3);
        got.set(p0);
        const [mW, vW, mG, vG] = [m0.slice(), v0.slice(), m0.slice(), v0.slice()];
        adamStepReference(want, 3, g, 0, n, mW, vW, 7, 1e-3, 0.9, 0.999, 1e-8, wd, decoupled);
        kernels.adamStep(got, 3, g, 0, n, mG, vG, 7, 1e-3, 0.9, 0.999, 1e-8, wd, decoupled);
        const label = `adam wd=${wd} decoupled=${decoupled}`;
        bitsEqual(got.slice(), want, `${label} param${resident ? " (in wasm)" : ""}`);
        bitsEqual(mG, mW, `${label} exp_avg`);
        bitsEqual(vG, vW, `${label} exp_avg_sq`);
      }
    }
  },
});

Deno.test({
  name: "allocPersistent: zeroed wasm storage within the budget, the JavaScript heap past it",
  ignore,
  fn() {
    try {
      const a = kernels.allocPersistent(1000);
      assert.ok(pointerOf(a) > 0, "expected wasm storage");
      assert.ok(a.every((v) => v === 0));
      assert.equal(pointerOf(kernels.allocPersistent(8)), -1, "short arrays stay on the heap");
      setPersistentBudget(persistentStats().liveBytes);
      const b = kernels.allocPersistent(1000);
      assert.equal(pointerOf(b), -1, "past the budget: the heap");
      assert.equal(b.length, 1000);
      setPersistentBudget(0);
      assert.equal(pointerOf(kernels.allocPersistent(1000)), -1);
      assert.equal(referenceKernels.allocPersistent(1000).length, 1000);
    } finally {
      setPersistentBudget(DEFAULT_PERSISTENT_BUDGET);
    }
  },
});

function grads(ts: Tensor[]): Float32Array[] {
  return ts.map((t) => t.grad!.toFloat32Array());
}

function close(got: Float32Array, want: Float32Array, what: string, rel = 2e-4): void {
  assert.equal(got.length, want.length);
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= rel * scale + 1e-7)) {
      assert.fail(`${what}: element ${i} is ${got[i]}, reference ${want[i]} (scale ${scale})`);
    }
  }
}

Deno.test({
  name: "conv2d with relu: true equals relu(conv2d(...)) in values and gradients, both kernel sets",
  ignore,
  fn() {
    const rng = new Rng(4);
    const rand = (shape: number[]): Tensor => {
      const n = shape.reduce((a, b) => a * b, 1);
      const t = tensor(Float32Array.from({ length: n }, () => rng.normal())).reshape(...shape);
      t.requiresGrad = true;
      return t;
    };
    for (const set of ["default", "reference"] as const) {
      const restore = set === "reference" ? useKernels(referenceKernels) : () => {};
      try {
        const x = rand([3, 5, 9, 8]);
        const w = rand([7, 5, 3, 3]);
        const b = rand([7]);
        const gy = tensor(Float32Array.from({ length: 3 * 7 * 5 * 4 }, () => rng.normal()))
          .reshape(3, 7, 5, 4);
        const fused = conv2d(x, w, b, { stride: [2, 2], padding: 1, relu: true });
        fused.backward(gy);
        const g1 = grads([x, w, b]);
        for (const t of [x, w, b]) t.grad = null;
        const plain = relu(conv2d(x, w, b, { stride: [2, 2], padding: 1 }));
        plain.backward(gy);
        const g2 = grads([x, w, b]);
        bitsEqual(fused.toFloat32Array(), plain.toFloat32Array(), `${set}: values`);
        ["x", "w", "b"].forEach((name, i) => close(g1[i], g2[i], `${set}: grad ${name}`, 1e-6));
      } finally {
        restore();
      }
    }
  },
});

/** One SGD step from the same seed under kernel set `set`; returns the loss and the new weights. */
function trainStep(
  name: "mlp" | "alexnet",
  set: "default" | "reference",
): { loss: number; params: Float32Array[]; grads: Float32Array[] } {
  const restore = set === "reference" ? useKernels(referenceKernels) : () => {};
  try {
    const model: Module<[Tensor], Tensor> = name === "mlp"
      ? new MLP({ seed: 11 })
      : new AlexNet({ seed: 11 });
    const rng = new Rng(12);
    const batch = 5;
    const x = tensor(Float32Array.from({ length: batch * 784 }, () => rng.normal()))
      .reshape(batch, 1, 28, 28);
    const y = Int32Array.from({ length: batch }, (_, i) => (3 * i + 1) % 10);
    const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    optimizer.zeroGrad();
    const loss = crossEntropy(model.call(x), y);
    loss.backward();
    const g = grads(model.parameters());
    optimizer.step();
    return {
      loss: loss.item(),
      params: model.parameters().map((p) => p.toFloat32Array()),
      grads: g,
    };
  } finally {
    restore();
  }
}

for (const name of ["mlp", "alexnet"] as const) {
  Deno.test({
    name: `${name}: a training step with the fast kernels matches the reference kernels`,
    ignore,
    fn() {
      const fast = trainStep(name, "default");
      const ref = trainStep(name, "reference");
      assert.ok(Math.abs(fast.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), "loss");
      fast.grads.forEach((g, i) => close(g, ref.grads[i], `${name} gradient ${i}`));
      fast.params.forEach((p, i) => close(p, ref.params[i], `${name} parameter ${i}`));
    },
  });
}

/** Normal random values (no specials: they would turn the products' sums into NaN). */
function normals(n: number, seed: number, inWasm = false): Float32Array {
  const rng = new Rng(seed);
  const a = inWasm ? wasmFloat32(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

Deno.test({
  name: "linear kernels: wasm against reference (ReLU, bias, transposed X, accumulation, N = 1)",
  ignore,
  fn() {
    const cases: [number, number, number, boolean][] = [
      [1, 5, 3, false],
      [1, 784, 512, false],
      [7, 13, 9, true],
      [128, 100, 64, false],
      [65, 64, 130, true],
    ];
    let seed = 100;
    for (const [rows, inF, outF, xTrans] of cases) {
      for (const [relu, withBias, inWasm] of [[true, true, false], [false, false, true]]) {
        const what = `${rows}×${inF}→${outF} xTrans=${xTrans} relu=${relu} bias=${withBias}`;
        const off = 3; // every operand starts past an offset
        const x = normals(off + rows * inF, seed++, inWasm);
        const w = normals(off + outF * inF, seed++, inWasm);
        const bias = withBias ? normals(off + outF, seed++) : null;
        const common = {
          x,
          xOffset: off,
          xTrans,
          ldx: xTrans ? rows : inF,
          rows,
          inFeatures: inF,
          w,
          wOffset: off,
          outFeatures: outF,
        };
        const forward = (k: typeof kernels) => {
          const out = new Float32Array(off + rows * outF);
          k.linearForward({ ...common, bias, biasOffset: off, relu, out, outOffset: off });
          return out;
        };
        const y = forward(referenceKernels);
        close(forward(kernels), y, `${what}: forward`);
        const gy = normals(off + rows * outF, seed++, inWasm);
        const backward = (k: typeof kernels) => {
          const gx = new Float32Array(off + rows * inF);
          // Accumulation: both gradients start from the same non-zero values.
          const gw = inWasm ? wasmFloat32(off + outF * inF) : new Float32Array(off + outF * inF);
          gw.fill(1.5);
          const gb = new Float32Array(off + outF).fill(-2);
          k.linearBackward({
            ...common,
            gy,
            gyOffset: off,
            y: relu ? y : null,
            yOffset: off,
            gx,
            gxOffset: off,
            gw,
            gwOffset: off,
            gb: withBias ? gb : null,
            gbOffset: off,
          });
          return [gx, gw, gb];
        };
        const gyBefore = gy.slice();
        const want = backward(referenceKernels);
        const got = backward(kernels);
        bitsEqual(gy, gyBefore, `${what}: the output gradient is not modified`);
        close(got[0], want[0], `${what}: gx`);
        close(got[1], want[1], `${what}: gw`);
        close(got[2], want[2], `${what}: gb`);
        assert.equal(got[1][0], 1.5, "elements before the offset are left alone");
        const anyGradient = !relu || y.some((v, i) => i >= off && v > 0);
        assert.equal(got[1].some((v, i) => i >= off && v !== 1.5), anyGradient, "gw accumulated");
      }
    }
  },
});
