/**
 * The error function and its complement in float64, accurate to about 1e-12 relative on the whole
 * line (erfc keeps its relative accuracy far into the tail, where erf rounds to ±1): far more than
 * float32 needs, so exact GELU and its gradient round correctly.
 *
 * Method: a table of Taylor expansions at the nodes c = k/32, 0 ≤ c ≤ 10, built once at load. The
 * n-th derivative of erfc is −(2/√π)·(−1)ⁿ⁻¹·Hₙ₋₁(c)·e^(−c²) (Hermite polynomials), so every
 * coefficient is exact up to rounding, and with |z − c| ≤ 1/64 ten terms reach 1e-12 even at
 * c = 10. The values erfc(c) at the nodes come from the positive series
 * erf(z) = (2/√π)·e^(−z²)·Σ (2z²)ⁿ·z / (2n+1)!! for c < 2.5 and from the continued fraction of
 * erfc otherwise. Past 10, erfc(z) < 2e-45 is 0 in float32.
 *
 * @module
 */

const STEP = 32;
const LAST = 10 * STEP;
const TERMS = 10;
const TWO_OVER_SQRT_PI = 1.1283791670955126;

/** erf(z) by its positive series (no cancellation), for 0 ≤ z < 3. */
function erfSeries(z: number): number {
  const z2 = 2 * z * z;
  let term = z;
  let sum = z;
  for (let n = 1; n < 400 && term > 1e-18 * sum; n++) {
    term *= z2 / (2 * n + 1);
    sum += term;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-z * z) * sum;
}

/** erfc(z) by its continued fraction, evaluated from the bottom, for z ≥ 2.5. */
function erfcFraction(z: number): number {
  let f = z;
  for (let n = 1500; n >= 1; n--) f = z + (n / 2) / f;
  return Math.exp(-z * z) / (Math.sqrt(Math.PI) * f);
}

/** Per node: erf(c), erfc(c), then the Taylor coefficients of erf for powers 1..TERMS−1. */
const TABLE = (() => {
  const table = new Float64Array((LAST + 1) * (TERMS + 1));
  const hermite = new Float64Array(TERMS);
  for (let k = 0; k <= LAST; k++) {
    const c = k / STEP;
    const erfc = c < 2.5 ? 1 - erfSeries(c) : erfcFraction(c);
    const base = k * (TERMS + 1);
    table[base] = c < 2.5 ? erfSeries(c) : 1 - erfc;
    table[base + 1] = erfc;
    hermite[0] = 1;
    hermite[1] = 2 * c;
    for (let n = 1; n + 1 < TERMS; n++) {
      hermite[n + 1] = 2 * c * hermite[n] - 2 * n * hermite[n - 1];
    }
    // erf⁽ⁿ⁾(c) = (2/√π)·(−1)ⁿ⁻¹·Hₙ₋₁(c)·e^(−c²); divided by n! for the Taylor coefficient.
    let scale = TWO_OVER_SQRT_PI * Math.exp(-c * c);
    for (let n = 1; n < TERMS; n++) {
      scale /= n;
      table[base + 1 + n] = (n % 2 === 1 ? 1 : -1) * hermite[n - 1] * scale;
    }
  }
  return table;
})();

/** Σₙ₌₁ erf⁽ⁿ⁾(c)/n!·hⁿ at the node of `base` (Horner, unrolled for TERMS = 10). */
function tail(base: number, h: number): number {
  const t = TABLE;
  let s = t[base + 10];
  s = s * h + t[base + 9];
  s = s * h + t[base + 8];
  s = s * h + t[base + 7];
  s = s * h + t[base + 6];
  s = s * h + t[base + 5];
  s = s * h + t[base + 4];
  s = s * h + t[base + 3];
  s = s * h + t[base + 2];
  return s * h;
}

/** The error function erf(x) = (2/√π)∫₀ˣ e^(−t²) dt. */
export function erf(x: number): number {
  const z = Math.abs(x);
  if (!(z <= 10)) return x !== x ? x : Math.sign(x);
  const k = (z * STEP + 0.5) | 0;
  const base = k * (TERMS + 1);
  const v = TABLE[base] + tail(base, z - k / STEP);
  return x < 0 ? -v : v;
}

/** The complementary error function erfc(x) = 1 − erf(x), accurate relative to itself for large x. */
export function erfc(x: number): number {
  const z = Math.abs(x);
  let v: number;
  if (!(z <= 10)) v = z !== z ? z : 0;
  else {
    const k = (z * STEP + 0.5) | 0;
    const base = k * (TERMS + 1);
    v = TABLE[base + 1] - tail(base, z - k / STEP);
  }
  return x < 0 ? 2 - v : v;
}
