/**
 * The exact GELU x·Φ(x) and its gradient for four lanes at a time, in float32 (the reference
 * kernel works in float64 with a tabulated erf; the test suite holds this one to it: at most a
 * few ulp apart, 4e-7 relative at worst, in the far negative tail).
 *
 * Φ(x) = ½(1 + erf(x/√2)) for |x| < 1, where erf(z) = z·Q(z²) (a degree-6 fit, 2e-11 relative);
 * elsewhere Φ(x) = 1 − ½erfc(z) or ½erfc(z) with z = |x|/√2, erfc(z) = t·exp(P(t) − x²/2),
 * t = 2/(2 + z), P a degree-9 fit in t − 0.4537 (1.2e-9 absolute on 0.7 ≤ z ≤ 10, both fits made
 * for this kernel by least squares on Chebyshev nodes against the double-precision erf). The
 * square is taken exactly: with h = x's top 12 bits, x² = h² + (x − h)(x + h) where h² has no
 * rounding, and the exponential gets h² apart from the rest (`vector_math.ts`). Past z = 10,
 * erfc(z) < 2e-45 is 0. The gradient is Φ(x) + x·φ(x) with Φ = y/x from the forward output (as
 * the reference) and φ(x) = e^(−x²/2)/√(2π) from the same split exponential.
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
  expConstants,
  high12,
  horner,
  polynomial,
  splatF32,
  splatI32,
} from "./vector_math.ts";

type F = FunctionBuilder;

/** Names of the GELU exports. */
export const GELU_JOB_NAMES = ["gelu", "geluBackward"] as const;

/** erf(z)/z as a polynomial in z², for z < 1/√2. */
const ERF_SMALL = [
  1.1283791670893915,
  -0.37612638691944056,
  0.11283784220039514,
  -0.026865244942588004,
  0.005218609876560506,
  -0.0008389170872440661,
  9.684066513847804e-05,
];
/** The centre of t's range [1/6, 2/(2 + 0.7)] for {@link ERFC_LOG}. */
const ERFC_CENTRE = 0.45370370370370366;
/** ln(erfc(z)/t) + z² as a polynomial in t − ERFC_CENTRE, t = 2/(2 + z), 0.7 ≤ z ≤ 10. */
const ERFC_LOG = [
  -0.7336335278656788,
  1.3254085707747008,
  0.23917636880225265,
  -0.3401272145072208,
  -0.21864022952491016,
  0.23778642756856744,
  0.20292909233201625,
  -0.2524240859323722,
  -0.15939313949921738,
  0.254289890941642,
];
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
    const erfSmall = polynomial(f, ERF_SMALL);
    const erfcLog = polynomial(f, ERFC_LOG);
    const mask = splatI32(f, 0xfffff000 | 0);
    const [zero, half, one, two, ten] = [0, 0.5, 1, 2, 10].map((c) => splatF32(f, c));
    const minusHalf = splatF32(f, -0.5);
    const centre = splatF32(f, ERFC_CENTRE);
    const sqrt1_2 = splatF32(f, Math.SQRT1_2);
    const [v, ax, z, t, u, big, small, e, w, s, nonNegative] = Array.from(
      { length: 11 },
      () => f.local(V128),
    );
    chunkLoop(f, counter, chunk, n, (lo, hi) => {
      const body = (i: Local, lanes: 4 | 1): void => {
        load(f, x, i, lanes);
        f.set(v);
        f.get(v).f32x4Abs().set(ax);
        f.get(ax).get(sqrt1_2).f32x4Mul().set(z);
        f.get(v).get(zero).f32x4Ge().set(nonNegative);
        // Tail: e = erfc(z) = t·exp(P(t − centre) − x²/2), 0 past z = 10.
        f.get(two).get(two).get(z).f32x4Add().f32x4Div().set(t);
        f.get(t).get(centre).f32x4Sub().set(u);
        negHalfSquare(f, ax, big, small, mask, minusHalf);
        horner(f, u, erfcLog);
        f.get(small).f32x4Add().set(small);
        f.get(zero);
        emitExp2(f, big, small, exp);
        f.get(t).f32x4Mul();
        f.get(z).get(ten).f32x4Gt().v128Bitselect();
        f.get(half).f32x4Mul().set(e); // ½erfc(z)
        // Centre: s = ½erf(z) = ½z·Q(z²).
        f.get(z).get(z).f32x4Mul().set(w);
        horner(f, w, erfSmall);
        f.get(z).f32x4Mul().get(half).f32x4Mul().set(s);
        // Φ by sign and range, then x·Φ.
        f.get(out).get(i).i32Add();
        f.get(v);
        f.get(half).get(s).f32x4Add();
        f.get(half).get(s).f32x4Sub();
        f.get(nonNegative).v128Bitselect();
        f.get(one).get(e).f32x4Sub();
        f.get(e);
        f.get(nonNegative).v128Bitselect();
        f.get(z).get(sqrt1_2).f32x4Lt().v128Bitselect();
        f.f32x4Mul();
        store(f, lanes);
      };
      elementLoop(f, lo, hi, (i) => body(i, 4), (i) => body(i, 1));
    });
  });

  mod.func("geluBackward", new Array(7).fill(I32), [], (f, [gy, x, y, gx, n, chunk, counter]) => {
    const exp = expConstants(f);
    const mask = splatI32(f, 0xfffff000 | 0);
    const [zero, half, twenty, tiny] = [0, 0.5, 20, 1e-30].map((c) => splatF32(f, c));
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
        // + x·φ(x), φ = e^(−x²/2)/√(2π), 0 past |x| = 20.
        negHalfSquare(f, ax, big, small, mask, minusHalf);
        f.get(zero);
        emitExp2(f, big, small, exp);
        f.get(ax).get(twenty).f32x4Gt().v128Bitselect();
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
