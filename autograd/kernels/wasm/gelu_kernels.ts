/**
 * The exact GELU x·Φ(x) and its gradient for four lanes at a time, in float32 (the reference
 * kernel works in float64 with a tabulated erf; the test suite holds this one to it: at most 8
 * ulp apart, 7 and 5e-7 relative seen at worst, in the far negative tail).
 *
 * Φ(x) = 1 − ½erfc(z) for x ≥ 0 and ½erfc(z) below, z = |x|/√2, with
 * erfc(z) = t·exp(P(t) − x²/2), t = 2/(2 + z), P a degree-11 fit in t − 7/12 (2.6e-9 absolute on
 * 0 ≤ z ≤ 10, made for this kernel by least squares on Chebyshev nodes against the
 * double-precision erfc). The square is taken exactly: with h = x's top 12 bits,
 * x² = h² + (x − h)(x + h) where h² has no rounding, and the exponential gets h² apart from the
 * rest (`vector_math.ts`). Results below 1e-38 (x < −13) are flushed to 0, where the reference
 * still has a few denormal bits. The gradient is Φ(x) + x·φ(x) with Φ = y/x from the forward
 * output (as the reference) and φ(x) = e^(−x²/2)/√(2π) from the same split exponential.
 *
 * - `gelu(x, out, n, chunk, counter)`
 * - `geluBackward(gy, x, y, gx, n, chunk, counter)`
 *
 * @module
 */

import { I32, type Local, type ModuleBuilder, V128 } from "./encoder.ts";
import type { FunctionBuilder } from "./encoder.ts";
import { chunkLoop, elementLoop } from "./emit.ts";
import {
  emitExp2,
  estrin,
  expConstants,
  high12,
  polynomial,
  splatF32,
  splatI32,
} from "./vector_math.ts";

type F = FunctionBuilder;

/** Names of the GELU exports. */
export const GELU_JOB_NAMES = ["gelu", "geluBackward"] as const;

/** The centre of t's range [1/6, 1] for {@link ERFC_LOG}. */
const ERFC_CENTRE = 0.5833333333333334;
/** ln(erfc(z)/t) + z² as a polynomial in t − ERFC_CENTRE, t = 2/(2 + z), 0 ≤ z ≤ 10. */
const ERFC_LOG = [
  -0.5585953537279242,
  1.368737168773114,
  0.09069162665512828,
  -0.4074119484127815,
  -0.03468890056087086,
  0.29566439371746955,
  -0.052736998559484195,
  -0.2510150104790654,
  0.14295284499906966,
  0.17920445647807517,
  -0.1449133073439655,
  -0.07178895935286725,
];
/** Past this z = |x|/√2, ½erfc(z) < 1e-38 is taken as 0 (its exponential would leave f32's range). */
const TAIL_Z = 9.2;
/** Past this |x|, φ(x) < 1e-37 is taken as 0, for the same reason. */
const TAIL_X = 13;
const INV_SQRT_2PI = 0.3989422804014327;

/** Loads four lanes (or one, zero-extended) of the array at `base` + byte offset `i`. */
function load(f: F, base: Local, i: Local, lanes: 4 | 1): void {
  f.get(base).get(i).i32Add();
  if (lanes === 4) f.v128Load();
  else f.v128Load32Zero();
}

/** Stores the vector on the stack (under the address pushed first) as four lanes or one. */
function store(f: F, lanes: 4 | 1): void {
  if (lanes === 4) f.v128Store();
  else f.v128Store32Lane(0);
}

/** Pushes −½·x² as two parts into `big` (exact) and `small`, from |x| in `ax`. */
function negHalfSquare(f: F, ax: Local, big: Local, small: Local, mask: Local, minusHalf: Local) {
  const h = f.local(V128);
  high12(f, ax, mask);
  f.set(h);
  f.get(h).get(h).f32x4Mul().get(minusHalf).f32x4Mul().set(big);
  f.get(ax).get(h).f32x4Sub().get(ax).get(h).f32x4Add().f32x4Mul().get(minusHalf).f32x4Mul()
    .set(small);
}

/** Adds the GELU exports ({@link GELU_JOB_NAMES}) to `mod`. */
export function emitGeluKernels(mod: ModuleBuilder): void {
  mod.func("gelu", new Array(5).fill(I32), [], (f, [x, out, n, chunk, counter]) => {
    const exp = expConstants(f);
    const erfcLog = polynomial(f, ERFC_LOG);
    const mask = splatI32(f, 0xfffff000 | 0);
    const [zero, half, one, two, tail] = [0, 0.5, 1, 2, TAIL_Z].map((c) => splatF32(f, c));
    const minusHalf = splatF32(f, -0.5);
    const centre = splatF32(f, ERFC_CENTRE);
    const sqrt1_2 = splatF32(f, Math.SQRT1_2);
    const [v, ax, z, t, u, big, small, e] = Array.from({ length: 8 }, () => f.local(V128));
    chunkLoop(f, counter, chunk, n, (lo, hi) => {
      const body = (i: Local, lanes: 4 | 1): void => {
        load(f, x, i, lanes);
        f.set(v);
        f.get(v).f32x4Abs().set(ax);
        f.get(ax).get(sqrt1_2).f32x4Mul().set(z);
        // e = ½erfc(z) = ½t·exp(P(t − centre) − x²/2), 0 past the tail.
        f.get(two).get(two).get(z).f32x4Add().f32x4Div().set(t);
        f.get(t).get(centre).f32x4Sub().set(u);
        negHalfSquare(f, ax, big, small, mask, minusHalf);
        estrin(f, u, erfcLog);
        f.get(small).f32x4Add().set(small);
        f.get(zero);
        emitExp2(f, big, small, exp);
        f.get(t).f32x4Mul().get(half).f32x4Mul();
        f.get(z).get(tail).f32x4Gt().v128Bitselect().set(e);
        // x·Φ(x) with Φ = 1 − e for x ≥ 0, e below.
        f.get(out).get(i).i32Add();
        f.get(v);
        f.get(one).get(e).f32x4Sub();
        f.get(e);
        f.get(v).get(zero).f32x4Ge().v128Bitselect();
        f.f32x4Mul();
        store(f, lanes);
      };
      elementLoop(f, lo, hi, (i) => body(i, 4), (i) => body(i, 1));
    });
  });

  mod.func("geluBackward", new Array(7).fill(I32), [], (f, [gy, x, y, gx, n, chunk, counter]) => {
    const exp = expConstants(f);
    const mask = splatI32(f, 0xfffff000 | 0);
    const [zero, half, tail, tiny] = [0, 0.5, TAIL_X, 1e-30].map((c) => splatF32(f, c));
    const minusHalf = splatF32(f, -0.5);
    const density = splatF32(f, INV_SQRT_2PI);
    const [v, ax, big, small] = Array.from({ length: 4 }, () => f.local(V128));
    chunkLoop(f, counter, chunk, n, (lo, hi) => {
      const body = (i: Local, lanes: 4 | 1): void => {
        f.get(gx).get(i).i32Add();
        load(f, x, i, lanes);
        f.set(v);
        f.get(v).f32x4Abs().set(ax);
        // Φ = y/x, ½ where x is 0 (or too small to divide by).
        load(f, y, i, lanes);
        f.get(v).f32x4Div();
        f.get(half);
        f.get(ax).get(tiny).f32x4Gt().v128Bitselect();
        // + x·φ(x), φ = e^(−x²/2)/√(2π), 0 past the tail.
        negHalfSquare(f, ax, big, small, mask, minusHalf);
        f.get(zero);
        emitExp2(f, big, small, exp);
        f.get(ax).get(tail).f32x4Gt().v128Bitselect();
        f.get(density).f32x4Mul().get(v).f32x4Mul();
        f.f32x4Add();
        load(f, gy, i, lanes);
        f.f32x4Mul();
        store(f, lanes);
      };
      elementLoop(f, lo, hi, (i) => body(i, 4), (i) => body(i, 1));
    });
  });
}
