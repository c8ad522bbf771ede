/**
 * The WebGPU elementwise primitives against the CPU ops: every unary kind (forward and gradient)
 * and every binary kind on contiguous, transposed, sliced and broadcast operands; where, casts,
 * cat, sliceScatter, fill through zeros, and dropout, whose mask must be the CPU's bit for bit.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type AnyTensor,
  cat,
  dropout,
  gelu,
  gradients,
  maximum,
  minimum,
  Rng,
  sliceScatter,
  type Tensor,
  tensor,
  useDevice,
  where,
} from "../mod.ts";
import type { BinaryKind, UnaryKind } from "../autograd/kernels/elementwise.ts";
import { derivative } from "../autograd/ops/unary.ts";
import { gpu, gpuTest } from "./helpers/webgpu.ts";

if (gpu !== null) await useDevice("webgpu");

function random(shape: number[], seed: number, positive = false): Tensor {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = rng.normal() * 2;
    data[i] = positive ? Math.abs(v) + 0.1 : v;
  }
  return tensor(data, { shape });
}

/** Elementwise closeness with a relative and an absolute tolerance, naming the first miss. */
function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  tol = 2e-6,
) {
  assert.equal(actual.length, expected.length, `${what}: lengths`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue;
    assert.ok(
      Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)),
      `${what}: element ${i} is ${a} on webgpu, ${e} on the CPU`,
    );
  }
}

/** The layouts each op sees: contiguous, transposed, a slice with an offset. */
function layouts(): [string, (t: Tensor) => Tensor][] {
  return [
    ["contiguous", (t) => t],
    ["transposed", (t) => t.transpose()],
    ["sliced", (t) => t.slice(1, 1, 5, 2)],
  ];
}

/** Kinds that need positive inputs, and the parameter each kind is checked with. */
const POSITIVE: readonly UnaryKind[] = ["log", "sqrt", "pow"];
const PARAM: Partial<Record<UnaryKind, number[]>> = {
  pow: [2, 3, 0.5, -1, 1.7],
  leakyRelu: [0.2],
  gelu: [0, 1],
};

Deno.test({
  name: "webgpu unary: every kind's values and gradient on every layout are the CPU's",
  ...gpuTest,
  async fn() {
    for (const kind of Object.keys(derivative) as UnaryKind[]) {
      for (const param of PARAM[kind] ?? [0]) {
        const x = random([6, 6], 3, POSITIVE.includes(kind));
        for (const [layout, view] of layouts()) {
          const leafCpu = x.detach();
          leafCpu.requiresGrad = true;
          const leafGpu = x.to("webgpu");
          leafGpu.requiresGrad = true;
          const apply = (t: Tensor) => applyUnary(kind, view(t), param);
          const yCpu = apply(leafCpu);
          const yGpu = apply(leafGpu);
          const tol = ["erf", "gelu", "expm1", "log1p", "pow", "sin", "cos", "tanh"].includes(kind)
            ? 2e-5
            : 2e-6;
          assertClose(await yGpu.read(), yCpu.values(), `${kind}(${param}) ${layout}`, tol);
          if (["sign", "floor", "round"].includes(kind)) continue;
          const [gCpu] = gradients(yCpu.sum(), [leafCpu]);
          const [gGpu] = gradients(yGpu.sum(), [leafGpu]);
          assertClose(
            await gGpu.read(),
            gCpu.values(),
            `${kind}(${param}) gradient ${layout}`,
            1e-4,
          );
        }
      }
    }
  },
});

function applyUnary(kind: UnaryKind, x: Tensor, param: number): Tensor {
  switch (kind) {
    case "pow":
      return x.pow(param);
    case "leakyRelu":
      return x.leakyRelu(param);
    case "gelu":
      return gelu(x, { approximate: param === 0 ? "none" : "tanh" });
    default:
      return (x as unknown as Record<string, () => Tensor>)[kind]();
  }
}

const BINARY: readonly BinaryKind[] = [
  "add",
  "sub",
  "mul",
  "div",
  "maximum",
  "minimum",
  "eq",
  "ne",
  "lt",
  "le",
  "gt",
  "ge",
];

Deno.test({
  name: "webgpu binary: every kind with broadcast and strided operands is the CPU's",
  ...gpuTest,
  async fn() {
    const a = random([4, 5], 1);
    const cases: [string, Tensor, Tensor][] = [
      ["same shape", a, random([4, 5], 2)],
      ["row broadcast", a, random([5], 3)],
      ["column broadcast", a, random([4, 1], 4)],
      ["transposed", random([5, 4], 5).transpose(), a],
      ["scalar", a, tensor([0.5])],
      ["ties", a, a],
    ];
    for (const kind of BINARY) {
      for (const [what, x, y] of cases) {
        const cpu = binary(kind, x, y);
        const dev = binary(kind, x.to("webgpu"), y.to("webgpu"));
        assert.equal(dev.dtype, cpu.dtype, `${kind} ${what}: dtype`);
        assert.deepEqual(dev.shape, cpu.shape, `${kind} ${what}: shape`);
        assertClose(await dev.read(), cpu.values(), `${kind} ${what}`);
      }
    }
    // NaN propagates through maximum and minimum as on the CPU.
    const nan = tensor([NaN, 1, 2, NaN]);
    const other = tensor([0, NaN, 3, NaN]);
    for (const kind of ["maximum", "minimum"] as const) {
      assertClose(
        await binary(kind, nan.to("webgpu"), other.to("webgpu")).read(),
        binary(kind, nan, other).values(),
        `${kind} with NaN`,
      );
    }
    assertClose(await nan.to("webgpu").sign().read(), nan.sign().values(), "sign of NaN");
  },
});

function binary(kind: BinaryKind, a: Tensor, b: Tensor): AnyTensor {
  if (kind === "maximum") return maximum(a, b);
  if (kind === "minimum") return minimum(a, b);
  return (a as unknown as Record<string, (b: Tensor) => AnyTensor>)[kind](b);
}

Deno.test({
  name: "webgpu where, casts, cat and sliceScatter are the CPU's",
  ...gpuTest,
  async fn() {
    const x = random([3, 4], 7);
    const y = random([4], 8);
    const cond = x.gt(0);
    const cpuWhere = where(cond, x, y);
    const gpuWhere = where(cond.to("webgpu"), x.to("webgpu"), y.to("webgpu"));
    assertClose(await gpuWhere.read(), cpuWhere.values(), "where");
    const mixed = tensor([-2.7, -0.5, 0, 0.5, 3.9]);
    for (const dtype of ["int32", "bool", "float32"] as const) {
      assertClose(
        await mixed.to("webgpu").to(dtype).read(),
        mixed.to(dtype).values(),
        `cast ${dtype}`,
      );
    }
    const ints = tensor([-3, 0, 7], { dtype: "int32" });
    assertClose(
      await ints.to("webgpu").to("float32").read(),
      ints.to("float32").values(),
      "int32 → float32",
    );
    assertClose(
      await ints.to("webgpu").to("bool").read(),
      ints.to("bool").values(),
      "int32 → bool",
    );
    const parts = [
      random([2, 3], 9),
      random([2, 1], 10).expand(2, 2),
      random([3, 2], 11).transpose(),
    ];
    assertClose(
      await cat(parts.map((p) => p.to("webgpu")), 1).read(),
      cat(parts, 1).values(),
      "cat of views",
    );
    const src = random([2, 3], 12);
    assertClose(
      await sliceScatter(src.to("webgpu"), [2, 7], 1, 1, 2).read(),
      sliceScatter(src, [2, 7], 1, 1, 2).values(),
      "sliceScatter",
    );
  },
});

Deno.test({
  name: "webgpu dropout: the mask is the CPU's for the same generator state",
  ...gpuTest,
  async fn() {
    const x = random([8, 16], 13);
    const cpu = dropout(x, 0.3, { rng: new Rng(21) });
    const dev = dropout(x.to("webgpu"), 0.3, { rng: new Rng(21) });
    assert.deepEqual(await dev.read(), cpu.values());
  },
});
