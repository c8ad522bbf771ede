/**
 * Dynamically quantized Linear layers, written as TypeScript that emits WebAssembly (same module
 * as the GEMM, so the worker pool can share it): the three steps of
 * `autograd/kernels/quantized.ts`, each a work-sharing job over rows.
 *
 * `qinput(src, out, scales, zeros, rows, cols, kp, chunk, counter)`: each row of `cols` floats to
 * `kp` bytes 0..127 (the padding zeroed), its scale and zero point, in the same float32 steps as
 * `quantizeInputs` (f32x4 pmin/pmax, multiply, add, clamp, truncate, two narrows to bytes).
 *
 * `qoutput(sums, out, sx, zeros, sw, rowSums, bias, m, n, hasBias, relu, chunk, counter)`:
 * y = f32(s) · (sx · sw) + b with s = sum − zero · rowSum, then ReLU when asked, as
 * `dequantizeInto` (pmax(0, y) is y > 0 ? y : +0, NaN included).
 *
 * `qdot(x, w, out, m, n, kp, chunk, counter)`: out[i, j] = Σₚ x[i, p] · w[j, p] for x bytes
 * [m, kp] holding 0..127, w int8 [n, kp] holding −127..127 and out int32 [m, n], all row-major
 * and contiguous; kp is a multiple of 16. Units are tiles of four rows of w; a tile runs two
 * rows of x at a time, keeping the eight sums in i32x4 accumulators, so each 16-byte load of x
 * feeds four dot products and each load of w two.
 * - With relaxed SIMD, one `i32x4.relaxed_dot_i8x16_i7x16_add_s` multiplies and accumulates 16
 *   bytes (pmaddubsw + pmaddwd on x86 without VNNI, one instruction with it, sdot on ARM). Its
 *   results are implementation-defined only for bytes of x above 127 or pair sums beyond ±2¹⁵,
 *   which these ranges rule out (2 · 127 · 127 = 32,258).
 * - Without it, 16 bytes are widened to i16 and multiplied with `i32x4.dot_i16x8_s`.
 * Every product and sum is exact in i32 (the caller keeps kp · 127² below 2³¹), so both give the
 * reference kernel's result bit for bit, whatever the summation order or thread count.
 *
 * The point is the bytes: at batch 1 a Linear layer reads each weight once, and an int8 weight is
 * a quarter of a float32 one.
 *
 * @module
 */

import {
  F32,
  type FunctionBuilder as F,
  I32,
  type Local,
  type ModuleBuilder,
  V128,
} from "./encoder.ts";
import { addConst, chunkLoop, forRange, whileLoop } from "./emit.ts";

/** Names of the quantized exports. */
export const QUANTIZED_JOB_NAMES = ["qdot", "qinput", "qoutput"] as const;

/** Rows of w per tile (one accumulator per row of w and row of x). */
const TILE_ROWS = 4;

/** Rows of x a tile runs against at once: each 16-byte load of w then feeds two dot products. */
const X_ROWS = 2;

/** One row of w in a tile: its address and its accumulators, one per row of x in the group. */
interface TileRow {
  w: Local;
  acc: Local[];
}

/**
 * Emits `acc[r] += Σ x_r[p..p+16] · w[p..p+16]` (four partial sums per accumulator) for every
 * row of the tile and every row address in `xs`, loading each row of x once and each row of w
 * once for all of them.
 */
function accumulate(f: F, rows: TileRow[], xs: Local[], p: Local, relaxed: boolean): void {
  const xv = xs.map(() => f.local(V128));
  const wv = f.local(V128);
  xs.forEach((x, r) => f.get(x).get(p).i32Add().v128Load().set(xv[r]));
  if (relaxed) {
    for (const { w, acc } of rows) {
      f.get(w).get(p).i32Add().v128Load().set(wv);
      xv.forEach((x, r) => {
        f.get(wv).get(x).get(acc[r]).i32x4RelaxedDotI8x16I7x16AddS().set(acc[r]);
      });
    }
    return;
  }
  const xl = xs.map(() => f.local(V128));
  const xh = xs.map(() => f.local(V128));
  const wl = f.local(V128);
  const wh = f.local(V128);
  xv.forEach((x, r) => {
    f.get(x).i16x8ExtendLowI8x16S().set(xl[r]);
    f.get(x).i16x8ExtendHighI8x16S().set(xh[r]);
  });
  for (const { w, acc } of rows) {
    f.get(w).get(p).i32Add().v128Load().set(wv);
    f.get(wv).i16x8ExtendLowI8x16S().set(wl);
    f.get(wv).i16x8ExtendHighI8x16S().set(wh);
    xs.forEach((_, r) => {
      f.get(acc[r]);
      f.get(wl).get(xl[r]).i32x4DotI16x8S().i32x4Add();
      f.get(wh).get(xh[r]).i32x4DotI16x8S().i32x4Add();
      f.set(acc[r]);
    });
  }
}

/**
 * Adds the quantized exports ({@link QUANTIZED_JOB_NAMES}) to `mod`, with relaxed SIMD's dot
 * product when `relaxed`.
 */
export function emitQuantizedKernels(mod: ModuleBuilder, relaxed: boolean): void {
  emitInputKernel(mod);
  emitOutputKernel(mod);
  mod.func("qdot", new Array(8).fill(I32), [], (f, [x, w, out, m, n, kp, chunk, counter]) => {
    const tiles = f.local(I32);
    const t = f.local(I32);
    const j = f.local(I32);
    const i = f.local(I32);
    const p = f.local(I32);
    const xRows = Array.from({ length: X_ROWS }, () => f.local(I32));
    const outAt = f.local(I32);
    const wRows = Array.from({ length: TILE_ROWS }, () => f.local(I32));
    const tileRows: TileRow[] = wRows.map((wRow) => ({
      w: wRow,
      acc: Array.from({ length: X_ROWS }, () => f.local(V128)),
    }));

    /**
     * Every row of x against the rows of w in `used`, X_ROWS rows at a time and then one: zero
     * the accumulators, run the K loop, then `store(r)` with `outAt` at out[i + r, j].
     */
    const overRowsOfX = (used: TileRow[], store: (r: number) => void): void => {
      const group = (size: number): void => {
        for (let r = 0; r < size; r++) {
          f.get(x).get(i).i32Const(r).i32Add().get(kp).i32Mul().i32Add().set(xRows[r]);
        }
        for (const { acc } of used) for (let r = 0; r < size; r++) f.v128Zero().set(acc[r]);
        forRange(f, p, () => f.i32Const(0), () => f.get(kp), 16, () => {
          accumulate(f, used, xRows.slice(0, size), p, relaxed);
        });
        for (let r = 0; r < size; r++) {
          // out + 4·((i + r)·n + j)
          f.get(out).get(i).i32Const(r).i32Add().get(n).i32Mul().get(j).i32Add().i32Const(2)
            .i32Shl().i32Add().set(outAt);
          store(r);
        }
        addConst(f, i, size);
      };
      f.i32Const(0).set(i);
      whileLoop(f, () => f.get(i).i32Const(X_ROWS).i32Add().get(m).i32LeS(), () => group(X_ROWS));
      whileLoop(f, () => f.get(i).get(m).i32LtS(), () => group(1));
    };
    /** Pushes the lane-wise sum of two shuffles of (a, b). */
    const addShuffles = (a: Local, b: Local, lo: Lanes, hi: Lanes): void => {
      f.get(a).get(b).i32x4Shuffle(lo).get(a).get(b).i32x4Shuffle(hi).i32x4Add();
    };

    f.get(n).i32Const(TILE_ROWS - 1).i32Add().i32Const(2).i32ShrU().set(tiles);
    chunkLoop(f, counter, chunk, tiles, (lo, hi) => {
      forRange(f, t, () => f.get(lo), () => f.get(hi), 1, () => {
        f.get(t).i32Const(2).i32Shl().set(j);
        f.get(j).i32Const(TILE_ROWS).i32Add().get(n).i32LeS();
        f.ifElse(
          () => {
            // A whole tile: four rows of w against every row of x.
            for (let r = 0; r < TILE_ROWS; r++) {
              f.get(w).get(j).i32Const(r).i32Add().get(kp).i32Mul().i32Add().set(wRows[r]);
            }
            overRowsOfX(tileRows, (r) => {
              // Transpose-and-add: the lanes become the four rows' totals.
              const [a0, a1, a2, a3] = tileRows.map(({ acc }) => acc[r]);
              addShuffles(a0, a1, [0, 4, 1, 5], [2, 6, 3, 7]);
              f.set(a0);
              addShuffles(a2, a3, [0, 4, 1, 5], [2, 6, 3, 7]);
              f.set(a2);
              f.get(outAt);
              addShuffles(a0, a2, [0, 1, 4, 5], [2, 3, 6, 7]);
              f.v128Store();
            });
          },
          () => {
            // The last, partial tile: one row of w at a time.
            forRange(f, j, () => f.get(j), () => f.get(n), 1, () => {
              f.get(w).get(j).get(kp).i32Mul().i32Add().set(wRows[0]);
              overRowsOfX([tileRows[0]], (r) => {
                const a = tileRows[0].acc[r];
                addShuffles(a, a, [2, 3, 0, 1], [0, 1, 2, 3]);
                f.set(a);
                f.get(outAt);
                addShuffles(a, a, [1, 0, 3, 2], [0, 1, 2, 3]);
                f.v128Store32Lane(0);
              });
            });
          },
        );
      });
    });
  });
}

/** Four 32-bit lanes of a two-operand shuffle (0..3 the first operand, 4..7 the second). */
type Lanes = [number, number, number, number];

/** Largest quantized input, as an f32 constant. */
const U7 = 127;

/** `qinput`: see the module comment. Pointers are byte addresses; units are rows. */
function emitInputKernel(mod: ModuleBuilder): void {
  const args = new Array(9).fill(I32);
  mod.func("qinput", args, [], (f, [src, out, scales, zeros, rows, cols, kp, chunk, counter]) => {
    const r = f.local(I32);
    const c = f.local(I32);
    const sp = f.local(I32);
    const op = f.local(I32);
    const vlo = f.local(V128);
    const vhi = f.local(V128);
    const vnan = f.local(V128);
    const vx = f.local(V128);
    const lo = f.local(F32);
    const hi = f.local(F32);
    const scale = f.local(F32);
    const inverse = f.local(F32);
    const zero = f.local(I32);
    const zeroHalf = f.local(F32);
    const vinv = f.local(V128);
    const vzh = f.local(V128);
    const v127 = f.local(V128);
    const vzero = f.local(V128);
    f.f32Const(U7).f32x4Splat().set(v127);
    f.v128Zero().set(vzero);
    /**
     * Pushes trunc(min(max(x · inverse + zeroHalf, 0), 127)) of the vector at address `at`. The
     * row is finite here, so pmax and pmin (one instruction each) clamp as max and min would.
     */
    const quantizeVector = (at: () => void): void => {
      at();
      f.v128Load().get(vinv).f32x4Mul().get(vzh).f32x4Add().get(vzero).f32x4Pmax().get(v127);
      f.f32x4Pmin().i32x4TruncSatF32x4S();
    };
    chunkLoop(f, counter, chunk, rows, (from, to) => {
      forRange(f, r, () => f.get(from), () => f.get(to), 1, () => {
        f.get(src).get(r).get(cols).i32Mul().i32Const(2).i32Shl().i32Add().set(sp);
        f.get(out).get(r).get(kp).i32Mul().i32Add().set(op);
        f.get(op).i32Const(0).get(kp).memoryFill();
        // The row's range, including 0: x < lo ? x : lo per lane (pmin, as the reference
        // compares; NaN never enters) and the same for hi, NaN lanes noted apart; then the
        // lanes, then the leftovers. f32x4.min and max would find NaN themselves, but cost V8
        // several instructions each on x64.
        f.v128Zero().set(vlo);
        f.v128Zero().set(vhi);
        f.v128Zero().set(vnan);
        f.i32Const(0).set(c);
        whileLoop(f, () => f.get(c).i32Const(4).i32Add().get(cols).i32LeS(), () => {
          f.get(sp).get(c).i32Const(2).i32Shl().i32Add().v128Load().set(vx);
          f.get(vlo).get(vx).f32x4Pmin().set(vlo);
          f.get(vhi).get(vx).f32x4Pmax().set(vhi);
          f.get(vnan).get(vx).get(vx).f32x4Ne().v128Or().set(vnan);
          addConst(f, c, 4);
        });
        f.get(vlo).f32x4ExtractLane(0).set(lo);
        f.get(vhi).f32x4ExtractLane(0).set(hi);
        for (let lane = 1; lane < 4; lane++) {
          f.get(lo).get(vlo).f32x4ExtractLane(lane).f32Min().set(lo);
          f.get(hi).get(vhi).f32x4ExtractLane(lane).f32Max().set(hi);
        }
        whileLoop(f, () => f.get(c).get(cols).i32LtS(), () => {
          f.get(lo).get(sp).get(c).i32Const(2).i32Shl().i32Add().f32Load().f32Min().set(lo);
          f.get(hi).get(sp).get(c).i32Const(2).i32Shl().i32Add().f32Load().f32Max().set(hi);
          addConst(f, c, 1);
        });
        f.get(vnan).v128AnyTrue().if(() => f.f32Const(NaN).set(lo));
        // scale = (hi − lo) / 127, NaN when the range is not finite (x − x ≠ 0 for NaN and ±∞).
        f.f32Const(NaN);
        f.get(hi).get(lo).f32Sub().f32Const(U7).f32Div();
        f.get(hi).get(lo).f32Sub().tee(scale).get(scale).f32Sub().f32Const(0).f32Ne();
        f.select().set(scale);
        f.get(scales).get(r).i32Const(2).i32Shl().i32Add().get(scale).f32Store();
        f.get(zeros).get(r).i32Const(2).i32Shl().i32Add().i32Const(0).i32Store();
        f.get(scale).f32Const(0).f32Gt();
        f.if(() => {
          f.f32Const(1).get(scale).f32Div().set(inverse);
          f.f32Const(0).get(lo).f32Sub().get(inverse).f32Mul().f32Const(0.5).f32Add().f32Floor();
          f.f32Const(0).f32Max().f32Const(U7).f32Min().i32TruncSatF32S().set(zero);
          f.get(zeros).get(r).i32Const(2).i32Shl().i32Add().get(zero).i32Store();
          f.get(zero).f32ConvertI32S().f32Const(0.5).f32Add().set(zeroHalf);
          f.get(inverse).f32x4Splat().set(vinv);
          f.get(zeroHalf).f32x4Splat().set(vzh);
          f.i32Const(0).set(c);
          whileLoop(f, () => f.get(c).i32Const(16).i32Add().get(cols).i32LeS(), () => {
            f.get(op).get(c).i32Add(); // the 16 bytes' address
            const at = (q: number) => () =>
              f.get(sp).get(c).i32Const(2).i32Shl().i32Add().i32Const(16 * q).i32Add();
            quantizeVector(at(0));
            quantizeVector(at(1));
            f.i16x8NarrowI32x4S();
            quantizeVector(at(2));
            quantizeVector(at(3));
            f.i16x8NarrowI32x4S();
            f.i8x16NarrowI16x8U().v128Store();
            addConst(f, c, 16);
          });
          whileLoop(f, () => f.get(c).get(cols).i32LtS(), () => {
            f.get(op).get(c).i32Add();
            f.get(sp).get(c).i32Const(2).i32Shl().i32Add().f32Load().get(inverse).f32Mul();
            f.get(zeroHalf).f32Add().f32Const(0).f32Max().f32Const(U7).f32Min();
            f.i32TruncSatF32S().i32Store8();
            addConst(f, c, 1);
          });
        });
      });
    });
  });
}

/** `qoutput`: see the module comment. Pointers are byte addresses; units are rows. */
function emitOutputKernel(mod: ModuleBuilder): void {
  const args = new Array(13).fill(I32);
  mod.func(
    "qoutput",
    args,
    [],
    (f, [sums, out, sx, zeros, sw, rowSums, bias, m, n, hasBias, relu, chunk, counter]) => {
      const i = f.local(I32);
      const j = f.local(I32);
      const rowAt = f.local(I32);
      const at = f.local(I32);
      const vsx = f.local(V128);
      const vz = f.local(V128);
      const y = f.local(V128);
      const sxi = f.local(F32);
      const zi = f.local(I32);
      const ys = f.local(F32);
      chunkLoop(f, counter, chunk, m, (from, to) => {
        forRange(f, i, () => f.get(from), () => f.get(to), 1, () => {
          f.get(sx).get(i).i32Const(2).i32Shl().i32Add().f32Load().tee(sxi).f32x4Splat().set(vsx);
          f.get(zeros).get(i).i32Const(2).i32Shl().i32Add().i32Load().tee(zi).i32x4Splat().set(vz);
          f.get(i).get(n).i32Mul().i32Const(2).i32Shl().set(rowAt);
          f.i32Const(0).set(j);
          whileLoop(f, () => f.get(j).i32Const(4).i32Add().get(n).i32LeS(), () => {
            f.get(j).i32Const(2).i32Shl().set(at);
            // s = sum − zero · rowSum (i32), then f32(s) · (sx · sw)
            f.get(sums).get(rowAt).i32Add().get(at).i32Add().v128Load();
            f.get(vz).get(rowSums).get(at).i32Add().v128Load().i32x4Mul().i32x4Sub();
            f.f32x4ConvertI32x4S();
            f.get(vsx).get(sw).get(at).i32Add().v128Load().f32x4Mul().f32x4Mul().set(y);
            f.get(hasBias).if(() => {
              f.get(y).get(bias).get(at).i32Add().v128Load().f32x4Add().set(y);
            });
            f.get(relu).if(() => {
              f.v128Zero().get(y).f32x4Pmax().set(y);
            });
            f.get(out).get(rowAt).i32Add().get(at).i32Add().get(y).v128Store();
            addConst(f, j, 4);
          });
          whileLoop(f, () => f.get(j).get(n).i32LtS(), () => {
            f.get(j).i32Const(2).i32Shl().set(at);
            f.get(sums).get(rowAt).i32Add().get(at).i32Add().i32Load();
            f.get(zi).get(rowSums).get(at).i32Add().i32Load().i32Mul().i32Sub();
            f.f32ConvertI32S();
            f.get(sxi).get(sw).get(at).i32Add().f32Load().f32Mul().f32Mul().set(ys);
            f.get(hasBias).if(() => {
              f.get(ys).get(bias).get(at).i32Add().f32Load().f32Add().set(ys);
            });
            f.get(relu).if(() => {
              f.get(ys).f32Const(0).get(ys).f32Const(0).f32Gt().select().set(ys);
            });
            f.get(out).get(rowAt).i32Add().get(at).i32Add().get(ys).f32Store();
            addConst(f, j, 1);
          });
        });
      });
    },
  );
}
