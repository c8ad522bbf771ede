/**
 * A small seeded random number generator, so that the same seed gives the same initialisation,
 * shuffling and dropout masks on every machine.
 *
 * Generator: xoshiro128** 1.1 (Blackman & Vigna), 128 bits of state, period 2^128 − 1, fast with
 * 32-bit integer arithmetic only. Seeding: the integer seed is expanded into the four state words
 * with SplitMix64, as the xoshiro authors recommend, so nearby seeds give unrelated streams.
 * Normal variates: the Box–Muller transform, which turns two uniforms into two independent standard
 * normals; the second one is cached for the next call.
 *
 * @module
 */

/** Serializable generator state: the four xoshiro words and a cached normal, if any. */
export interface RngState {
  /** The four 32-bit words of xoshiro128** state, as unsigned integers. */
  s: [number, number, number, number];
  /** The second Box–Muller variate waiting to be returned, or null. */
  spareNormal: number | null;
}

const MASK64 = (1n << 64n) - 1n;

/** One SplitMix64 step: advances `state` and returns the next 64-bit output. */
function splitMix64(state: { x: bigint }): bigint {
  state.x = (state.x + 0x9e3779b97f4a7c15n) & MASK64;
  let z = state.x;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** Seeded xoshiro128** generator with uniform, integer, normal and permutation helpers. */
export class Rng {
  #s0 = 0;
  #s1 = 0;
  #s2 = 0;
  #s3 = 0;
  #spare: number | null = null;

  /** Creates a generator from an integer seed (any safe integer; negative seeds are fine). */
  constructor(seed = 0) {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`Rng: seed must be a safe integer, got ${seed}`);
    }
    const state = { x: BigInt.asUintN(64, BigInt(seed)) };
    const a = splitMix64(state);
    const b = splitMix64(state);
    this.#s0 = Number(a & 0xffffffffn);
    this.#s1 = Number(a >> 32n);
    this.#s2 = Number(b & 0xffffffffn);
    this.#s3 = Number(b >> 32n);
    // xoshiro's state must not be all zero; SplitMix64 makes that astronomically unlikely but cheap to rule out.
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** Creates a generator positioned exactly at a saved state. */
  static fromState(state: RngState): Rng {
    const rng = new Rng(0);
    rng.setState(state);
    return rng;
  }

  /** The current state, to be saved in a checkpoint and restored with {@linkcode Rng.fromState}. */
  getState(): RngState {
    return {
      s: [this.#s0 >>> 0, this.#s1 >>> 0, this.#s2 >>> 0, this.#s3 >>> 0],
      spareNormal: this.#spare,
    };
  }

  /** Moves the generator to a saved state. */
  setState(state: RngState): void {
    const [a, b, c, d] = state.s;
    if ((a | b | c | d) === 0) {
      throw new RangeError("Rng: the all-zero state is invalid for xoshiro128**");
    }
    this.#s0 = a | 0;
    this.#s1 = b | 0;
    this.#s2 = c | 0;
    this.#s3 = d | 0;
    this.#spare = state.spareNormal;
  }

  /** The next 32-bit output as an unsigned integer in [0, 2^32). */
  nextUint32(): number {
    const s1 = this.#s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result >>> 0;
  }

  /**
   * Fills `out` with the next `out.length` outputs of {@linkcode Rng.nextUint32}, exactly as that
   * many calls would, in one tight loop (for dropout masks and other bulk draws).
   */
  fillUint32(out: Uint32Array): void {
    let s0 = this.#s0;
    let s1 = this.#s1;
    let s2 = this.#s2;
    let s3 = this.#s3;
    for (let i = 0; i < out.length; i++) {
      out[i] = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
    }
    this.#s0 = s0;
    this.#s1 = s1;
    this.#s2 = s2;
    this.#s3 = s3;
  }

  /** A uniform float in [0, 1) with 24 random bits: every value is exactly representable in float32. */
  uniform(): number {
    return (this.nextUint32() >>> 8) * 5.960464477539063e-8; // 2^-24
  }

  /** A uniform integer in [0, n), without modulo bias (draws above the last multiple of n are rejected). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x100000000) {
      throw new RangeError(`Rng.int: bound must be an integer in 1..2^32, got ${n}`);
    }
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** A standard normal variate (mean 0, variance 1) by the Box–Muller transform. */
  normal(): number {
    if (this.#spare !== null) {
      const spare = this.#spare;
      this.#spare = null;
      return spare;
    }
    // u1 in (0, 1]: log(u1) stays finite.
    const u1 = (this.nextUint32() + 1) * 2.3283064365386963e-10; // 2^-32
    const u2 = this.nextUint32() * 2.3283064365386963e-10;
    const radius = Math.sqrt(-2 * Math.log(u1));
    const angle = 2 * Math.PI * u2;
    this.#spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /** A random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = out[i];
      out[i] = out[j];
      out[j] = t;
    }
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

let globalRng = new Rng(0);

/** Re-seeds the library's default generator (used when no `Rng` is passed), like `torch.manual_seed`. */
export function manualSeed(seed: number): void {
  globalRng = new Rng(seed);
}

/** The library's default generator. */
export function defaultRng(): Rng {
  return globalRng;
}
