/**
 * One-line op checks, after tinygrad's `helper_test_op`: {@linkcode forward} compares an op with a
 * float64 reference on contiguous, transposed, sliced and broadcast inputs; {@linkcode gradient}
 * runs gradcheck on the same layouts. Each returns a thunk, so an op's checks read as one table
 * row:
 *
 * ```ts
 * tanh: [forward((x) => x.tanh(), (x) => ref.map(x, Math.tanh), [[3, 4]]), gradient((x) => x.tanh(), [[3, 4]])],
 * ```
 *
 * Inputs are random normals (seeded), optionally kept `margin` away from 0 (for kinks such as
 * relu's) or made `positive` (log, sqrt).
 *
 * @module
 */

import assert from "node:assert/strict";
import { gradcheck, type GradcheckOptions, Rng, type Tensor, tensor } from "../../mod.ts";
import { assertClose, fromTensor, type Ref } from "./reference.ts";

/** How inputs are drawn. */
export interface InputOptions {
  /** Keep every value at least this far from 0 (default 0). */
  margin?: number;
  /** Draw |normal| + margin instead (for log, sqrt, division by the input). */
  positive?: boolean;
  /** Scale of the normals (default 1). */
  scale?: number;
  /** Seed (default 1). */
  seed?: number;
}

/** Options of {@linkcode forward}. */
export interface ForwardOptions extends InputOptions {
  /** Absolute tolerance against the float64 reference (default 1e-5). */
  atol?: number;
  /** Relative tolerance (default 1e-5). */
  rtol?: number;
}

/** Options of {@linkcode gradient}. */
export interface GradientOptions extends InputOptions, GradcheckOptions {}

/** A way of presenting a logical shape: a leaf of `source` shape and a view of it. */
interface Layout {
  name: string;
  /** The leaf's shape for a logical shape, or null when this layout does not apply. */
  source(shape: number[]): number[] | null;
  /** The view of the leaf with the logical shape. */
  view(leaf: Tensor, shape: number[]): Tensor;
}

const LAYOUTS: readonly Layout[] = [
  { name: "contiguous", source: (s) => s, view: (t) => t },
  {
    name: "transposed",
    source: (s) => (s.length < 2 ? null : [...s.slice(0, -2), s[s.length - 1], s[s.length - 2]]),
    view: (t) => t.transpose(-1, -2),
  },
  {
    name: "sliced",
    source: (s) => (s.length < 1 ? null : [...s.slice(0, -1), 2 * s[s.length - 1] + 1]),
    view: (t, s) => t.slice(-1, 1, 1 + 2 * s[s.length - 1], 2),
  },
  {
    name: "broadcast",
    source: (s) => (s.length < 1 || s[0] < 2 ? null : [1, ...s.slice(1)]),
    view: (t, s) => t.expand(s),
  },
];

function leafValues(shape: number[], rng: Rng, options: InputOptions): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const margin = options.margin ?? 0;
  const scale = options.scale ?? 1;
  for (let i = 0; i < n; i++) {
    const v = rng.normal() * scale;
    data[i] = options.positive
      ? Math.abs(v) + Math.max(margin, 0.1)
      : v + Math.sign(v || 1) * margin;
  }
  return data;
}

/** The layouts that apply to every shape of the list (each input gets the same layout). */
function layoutsFor(shapes: number[][]): Layout[] {
  return LAYOUTS.filter((l) => shapes.some((s) => l.source(s) !== null));
}

function leaves(shapes: number[][], layout: Layout, rng: Rng, options: InputOptions): Tensor[] {
  return shapes.map((s) => {
    const source = layout.source(s) ?? s;
    return tensor(leafValues(source, rng, options), { shape: source, requiresGrad: true });
  });
}

function views(inputs: Tensor[], shapes: number[][], layout: Layout): Tensor[] {
  return inputs.map((t, i) => (layout.source(shapes[i]) === null ? t : layout.view(t, shapes[i])));
}

/**
 * A check of `op` against the float64 reference `ref` for inputs of `shapes`, in every layout that
 * applies: the reference gets the inputs' exact float32 values as float64 arrays.
 */
export function forward(
  op: (...xs: Tensor[]) => Tensor,
  ref: (...xs: Ref[]) => Ref,
  shapes: number[][],
  options: ForwardOptions = {},
): () => void {
  return () => {
    const rng = new Rng(options.seed ?? 1);
    for (const layout of layoutsFor(shapes)) {
      const inputs = views(leaves(shapes, layout, rng, options), shapes, layout);
      const expected = ref(...inputs.map(fromTensor));
      assertClose(op(...inputs), expected, options.atol, options.rtol, `${layout.name} inputs`);
    }
  };
}

/** A gradcheck of `op` for inputs of `shapes`, in every layout that applies. */
export function gradient(
  op: (...xs: Tensor[]) => Tensor,
  shapes: number[][],
  options: GradientOptions = {},
): () => void {
  return () => {
    const rng = new Rng(options.seed ?? 1);
    for (const layout of layoutsFor(shapes)) {
      const inputs = leaves(shapes, layout, rng, options);
      const result = gradcheck((...xs) => op(...views(xs, shapes, layout)), inputs, options);
      assert.ok(result.ok, `${layout.name} inputs: ${result.report}`);
      assert.ok(result.checked > 0, `${layout.name} inputs: nothing was checked`);
    }
  };
}
