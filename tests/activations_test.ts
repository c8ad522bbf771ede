/**
 * The new elementwise kinds beyond the op table's rows: erf and GELU accuracy against float64
 * (including the tails), the fused backward kernels against the differentiable derivatives used
 * under createGraph, second derivatives of gelu in both forms against closed forms, and the
 * composites' behaviour at extreme inputs (no NaN gradients from discarded branches).
 */

import assert from "node:assert/strict";
import { erf as erf64, erfc as erfc64 } from "../autograd/kernels/erf.ts";
import { kernels } from "../autograd/kernels/mod.ts";
import { derivative } from "../autograd/ops/unary.ts";
import {
  elu,
  erf,
  gelu,
  grad,
  logSigmoid,
  noGrad,
  randn,
  Rng,
  silu,
  softplus,
  type Tensor,
  tensor,
} from "../mod.ts";
import * as ref from "./helpers/reference.ts";

Deno.test("erf and erfc in float64 agree with known values and the naive reference", () => {
  const known: [number, number][] = [[0.5, 0.5204998778130465], [1, 0.8427007929497149], [
    2,
    0.9953222650189527,
  ]];
  for (const [x, v] of known) assert.ok(Math.abs(erf64(x) - v) < 1e-15, `erf(${x})`);
  // erfc keeps relative accuracy in the tail, where 1 − erf would be all rounding.
  assert.ok(Math.abs(erfc64(5) / 1.5374597944280349e-12 - 1) < 1e-12, "erfc(5)");
  assert.ok(Math.abs(erfc64(-2) - (2 - 0.004677734981047266)) < 1e-15, "erfc(-2)");
  const rng = new Rng(3);
  for (let i = 0; i < 2000; i++) {
    const x = (rng.uniform() - 0.5) * 12;
    assert.ok(Math.abs(erf64(x) - ref.erf(x)) < 1e-13, `erf(${x})`);
  }
  assert.equal(erf64(Infinity), 1);
  assert.equal(erf64(-Infinity), -1);
  assert.ok(Number.isNaN(erf64(NaN)));
});

Deno.test("exact gelu is correctly rounded in float32 across the range, tails included", () => {
  const xs = [-12, -8, -5, -3, -1, -1e-3, 0, 1e-3, 0.5, 2, 5, 9];
  const y = gelu(tensor(xs)).toFloat32Array();
  xs.map(Math.fround).forEach((x, i) => {
    // Φ(x) = erfc(−x/√2)/2, the reference's erf only where 1 + erf(·) keeps its digits.
    const exact = x < -3
      ? 0.5 * x * erfc64(-x / Math.SQRT2)
      : 0.5 * x * (1 + ref.erf(x / Math.SQRT2));
    const tol = 6e-8 * Math.abs(exact) + 1e-45;
    assert.ok(Math.abs(y[i] - exact) <= tol, `gelu(${x}) = ${y[i]}, want ${exact}`);
  });
});

Deno.test("the fused backward kernels equal the differentiable derivatives", () => {
  const kinds = [
    ["erf", 0],
    ["gelu", 0],
    ["gelu", 1],
    ["log1p", 0],
    ["expm1", 0],
    ["sin", 0],
    ["cos", 0],
    ["sign", 0],
    ["floor", 0],
    ["round", 0],
  ] as const;
  const rng = new Rng(5);
  for (const [kind, param] of kinds) {
    const x = randn([64], rng);
    const input = kind === "log1p" ? x.abs() : x;
    const g = randn([64], rng);
    const y = new Float32Array(64);
    kernels.unary(kind, input.toFloat32Array(), 0, y, 0, 64, param);
    const fused = new Float32Array(64);
    kernels.unaryBackward(kind, g.toFloat32Array(), input.toFloat32Array(), y, fused, 64, param);
    const formula = noGrad(() => derivative[kind](g, input, tensor(y), param).toFloat32Array());
    fused.forEach((v, i) =>
      assert.ok(
        Math.abs(v - formula[i]) <= 1e-5 * (1 + Math.abs(v)),
        `${kind}(${param})[${i}]: ${v} vs ${formula[i]}`,
      )
    );
  }
});

const points = [-2.5, -1.1, -0.3, 0.2, 0.9, 2.2];

function assertAll(actual: Tensor, expected: number[], tol: number, what: string): void {
  actual.toFloat32Array().forEach((v, i) =>
    assert.ok(
      Math.abs(v - expected[i]) <= tol * (1 + Math.abs(expected[i])),
      `${what}[${i}]: ${v} vs ${expected[i]}`,
    )
  );
}

Deno.test("second derivatives of gelu (exact, tanh), softplus, silu, erf, sin: closed forms", () => {
  const pdf = (x: number) => Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI);
  const k = Math.sqrt(2 / Math.PI);
  const c = 0.044715;
  const tanhD2 = (x: number) => {
    const u = k * (x + c * x ** 3);
    const t = Math.tanh(u);
    const du = k * (1 + 3 * c * x * x);
    const d2u = k * 6 * c * x;
    const s = 1 - t * t;
    return s * du + 0.5 * x * (-2 * t * s * du * du + s * d2u);
  };
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const cases: [string, (x: Tensor) => Tensor, (x: number) => number][] = [
    ["exact", (x) => gelu(x), (x) => pdf(x) * (2 - x * x)],
    ["tanh", (x) => gelu(x, { approximate: "tanh" }), tanhD2],
    ["softplus", (x) => softplus(x), (x) => sig(x) * (1 - sig(x))],
    ["silu", (x) => silu(x), (x) => sig(x) * (1 - sig(x)) * (2 + x * (1 - 2 * sig(x)))],
    ["erf", (x) => erf(x), (x) => (-4 * x / Math.sqrt(Math.PI)) * Math.exp(-x * x)],
    ["sin", (x) => x.sin(), (x) => -Math.sin(x)],
  ];
  for (const [name, f, d2] of cases) {
    const first = (y: Tensor) => grad((z: Tensor) => f(z).sum())(y).sum();
    assertAll(grad(first)(tensor(points)), points.map(d2), 2e-4, `${name}''`);
  }
});

Deno.test("composites give finite gradients at extreme inputs", () => {
  const x = tensor([-200, -30, -1, 0.5, 30, 200], { requiresGrad: true });
  for (
    const f of [
      (t: Tensor) => softplus(t),
      (t: Tensor) => softplus(t, 3, 5),
      (t: Tensor) => logSigmoid(t),
      (t: Tensor) => elu(t),
      (t: Tensor) => gelu(t),
      (t: Tensor) => erf(t),
    ]
  ) {
    x.grad = null;
    const y = f(x);
    assert.ok(y.toFloat32Array().every(Number.isFinite), `${f} forward`);
    y.sum().backward();
    assert.ok(x.grad!.toFloat32Array().every(Number.isFinite), `${f} gradient`);
  }
  // log σ(−200) = −200 exactly in float32; log σ(30) = −e^−30, kept (not rounded to 0).
  const ls = logSigmoid(tensor([-200, 30])).toFloat32Array();
  assert.equal(ls[0], -200);
  assert.ok(Math.abs(ls[1] / -Math.exp(-30) - 1) < 1e-6);
});
