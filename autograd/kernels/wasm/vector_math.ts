/**
 * Float32 transcendental functions for four lanes at a time, as emitters for the SIMD kernels.
 * WebAssembly has no `exp`, and JavaScript's `Math.exp` costs 15–25 ns per element here, so the
 * kernels that need one (GELU) build it from arithmetic:
 *
 * exp(a + b) = 2ᵏ·e^r with k = nearest((a + b)·log₂e) (rounded by adding 1.5·2²³, which leaves k
 * in the low mantissa bits as well) and r = (a − k·ln2ₕ) − k·ln2ₗ + b, where ln2ₕ has 12
 * significant bits (so k·ln2ₕ is exact) and e^r on |r| ≤ ln2/2 is the degree-7 Taylor polynomial
 * (truncation 5e-9 relative), evaluated by {@link estrin}. The argument comes in two parts because
 * the callers' big part `a` is exact (−x²/2 with x split so that its square is exact), and rounding
 * a + b first would cost up to 4e-6 relative at x² ≈ 100. 2ᵏ is built in the exponent bits, so k
 * must stay in [−126, 127]: the callers mask the lanes whose results would be below 2⁻¹²⁶ (about
 * 1e-38).
 *
 * @module
 */

import { type Local, V128 } from "./encoder.ts";
import type { FunctionBuilder } from "./encoder.ts";

type F = FunctionBuilder;

/** ln 2 to 12 significant bits, so that k·LN2_HI is exact for |k| < 2¹². */
const LN2_HI = 0.693145751953125;
/** ln 2 − LN2_HI. */
const LN2_LO = Math.LN2 - LN2_HI;
/** 1.5·2²³ (bits 0x4b400000): x + SHIFTER rounds x to an integer kept in the low mantissa bits. */
const SHIFTER = 12582912;
/** 1/n! for n = 0..7: the Taylor coefficients of e^r. */
const EXP_TAYLOR = [1, 1, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040];

/** A new v128 local holding `value` (rounded to f32) in every lane. */
export function splatF32(f: F, value: number): Local {
  const local = f.local(V128);
  f.f32Const(value).f32x4Splat().set(local);
  return local;
}

/** A new v128 local holding the i32 `value` in every lane. */
export function splatI32(f: F, value: number): Local {
  const local = f.local(V128);
  f.i32Const(value).i32x4Splat().set(local);
  return local;
}

/** Locals for the coefficients c₀, c₁, … of a polynomial. */
export function polynomial(f: F, coefficients: readonly number[]): Local[] {
  return coefficients.map((c) => splatF32(f, c));
}

/**
 * Pushes c₀ + c₁x + … + cₙxⁿ by Estrin's scheme: pairs c₂ᵢ + c₂ᵢ₊₁·x, then pairs of those with x²,
 * x⁴, …, so the dependency chain is log₂(n + 1) multiply-adds deep instead of Horner's n. A
 * kernel of a few long Horner chains waits on latency (the out-of-order window holds barely one
 * loop iteration), so this runs about twice as fast as Horner's rule for the same accuracy (within an ulp).
 */
export function estrin(f: F, x: Local, c: readonly Local[]): void {
  let terms: Local[] = [...c];
  let power = x;
  while (terms.length > 1) {
    const next: Local[] = [];
    for (let i = 0; i < terms.length; i += 2) {
      if (i + 1 === terms.length) {
        next.push(terms[i]);
        continue;
      }
      const sum = f.local(V128);
      f.get(terms[i]).get(terms[i + 1]).get(power).f32x4Mul().f32x4Add().set(sum);
      next.push(sum);
    }
    terms = next;
    if (terms.length > 1) {
      const square = f.local(V128);
      f.get(power).get(power).f32x4Mul().set(square);
      power = square;
    }
  }
  f.get(terms[0]);
}

/** Pushes the lanes of `x` with the low 12 mantissa bits cleared (12 significant bits left). */
export function high12(f: F, x: Local, mask: Local): void {
  f.get(x).get(mask).v128And();
}

/** The constants of {@link emitExp2}, splatted once before a loop. */
export interface ExpConstants {
  log2e: Local;
  ln2Hi: Local;
  ln2Lo: Local;
  taylor: Local[];
  bias: Local;
  shifter: Local;
  shifterBits: Local;
}

/** Splats the constants {@link emitExp2} needs. */
export function expConstants(f: F): ExpConstants {
  return {
    log2e: splatF32(f, Math.LOG2E),
    ln2Hi: splatF32(f, LN2_HI),
    ln2Lo: splatF32(f, LN2_LO),
    taylor: polynomial(f, EXP_TAYLOR),
    bias: splatI32(f, 127),
    shifter: splatF32(f, SHIFTER),
    shifterBits: splatI32(f, 0x4b400000),
  };
}

/**
 * Pushes exp(a + b) for the lanes of `a` and `b` (see the module doc); where the result is used,
 * `a + b` must lie in [−87, 88]: callers mask the lanes outside that range.
 */
export function emitExp2(f: F, a: Local, b: Local, c: ExpConstants): void {
  const m = f.local(V128);
  const k = f.local(V128);
  const r = f.local(V128);
  const ki = f.local(V128);
  // Adding 1.5·2²³ rounds to an integer (ties to even) and leaves it in the low mantissa bits.
  f.get(a).get(b).f32x4Add().get(c.log2e).f32x4Mul().get(c.shifter).f32x4Add().set(m);
  f.get(m).get(c.shifter).f32x4Sub().set(k);
  f.get(m).get(c.shifterBits).i32x4Sub().set(ki);
  f.get(a).get(k).get(c.ln2Hi).f32x4Mul().f32x4Sub();
  f.get(k).get(c.ln2Lo).f32x4Mul().f32x4Sub();
  f.get(b).f32x4Add().set(r);
  estrin(f, r, c.taylor);
  scaleByPowerOfTwo(f, ki, c.bias);
  f.f32x4Mul();
}

/** Pushes 2ᵉ for i32 lanes `e` in [−126, 127] (the exponent field (e + 127) << 23). */
function scaleByPowerOfTwo(f: F, e: Local, bias: Local): void {
  f.get(e).get(bias).i32x4Add().i32Const(23).i32x4Shl();
}
