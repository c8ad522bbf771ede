/**
 * The integer product of dynamically quantized Linear layers, written as TypeScript that emits
 * WebAssembly (same module as the GEMM, so the worker pool can share it):
 *
 * `qdot(x, w, out, m, n, kp, chunk, counter)`: out[i, j] = Σₚ x[i, p] · w[j, p] for x bytes
 * [m, kp] holding 0..127, w int8 [n, kp] holding −127..127 and out int32 [m, n], all row-major
 * and contiguous; kp is a multiple of 16. Units are tiles of four rows of w; a tile keeps its
 * rows' sums in four i32x4 accumulators and shares each 16-byte load of x between them.
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

import { type FunctionBuilder as F, I32, type Local, type ModuleBuilder, V128 } from "./encoder.ts";
import { chunkLoop, forRange } from "./emit.ts";

/** Names of the quantized exports. */
export const QUANTIZED_JOB_NAMES = ["qdot"] as const;

/** Rows of w per tile (one accumulator each). */
const TILE_ROWS = 4;

/** One row of w in a tile: its address and its accumulator. */
interface TileRow {
  w: Local;
  acc: Local;
}

/**
 * Emits `acc += Σ x[p..p+16] · w[p..p+16]` (four partial sums per accumulator) for every row of
 * the tile, loading x once.
 */
function accumulate(f: F, rows: TileRow[], x: Local, p: Local, relaxed: boolean): void {
  const xv = f.local(V128);
  const xl = f.local(V128);
  const xh = f.local(V128);
  const wv = f.local(V128);
  f.get(x).get(p).i32Add().v128Load().set(xv);
  if (relaxed) {
    for (const { w, acc } of rows) {
      f.get(w).get(p).i32Add().v128Load().get(xv).get(acc).i32x4RelaxedDotI8x16I7x16AddS();
      f.set(acc);
    }
    return;
  }
  f.get(xv).i16x8ExtendLowI8x16S().set(xl);
  f.get(xv).i16x8ExtendHighI8x16S().set(xh);
  for (const { w, acc } of rows) {
    f.get(w).get(p).i32Add().v128Load().set(wv);
    f.get(acc);
    f.get(wv).i16x8ExtendLowI8x16S().get(xl).i32x4DotI16x8S().i32x4Add();
    f.get(wv).i16x8ExtendHighI8x16S().get(xh).i32x4DotI16x8S().i32x4Add();
    f.set(acc);
  }
}

/**
 * Adds `qdot` ({@link QUANTIZED_JOB_NAMES}) to `mod`, with relaxed SIMD's dot product when
 * `relaxed`.
 */
export function emitQuantizedKernels(mod: ModuleBuilder, relaxed: boolean): void {
  mod.func("qdot", new Array(8).fill(I32), [], (f, [x, w, out, m, n, kp, chunk, counter]) => {
    const tiles = f.local(I32);
    const t = f.local(I32);
    const j = f.local(I32);
    const i = f.local(I32);
    const p = f.local(I32);
    const xRow = f.local(I32);
    const outAt = f.local(I32);
    const wRows = Array.from({ length: TILE_ROWS }, () => f.local(I32));
    const accs = Array.from({ length: TILE_ROWS }, () => f.local(V128));
    const tileRows = wRows.map((wRow, r) => ({ w: wRow, acc: accs[r] }));

    /** For each row i of x: zero the used accumulators, run the K loop, then `store`. */
    const overRowsOfX = (used: TileRow[], store: () => void): void => {
      forRange(f, i, () => f.i32Const(0), () => f.get(m), 1, () => {
        f.get(x).get(i).get(kp).i32Mul().i32Add().set(xRow);
        for (const { acc } of used) f.v128Zero().set(acc);
        forRange(f, p, () => f.i32Const(0), () => f.get(kp), 16, () => {
          accumulate(f, used, xRow, p, relaxed);
        });
        // out + 4·(i·n + j)
        f.get(out).get(i).get(n).i32Mul().get(j).i32Add().i32Const(2).i32Shl().i32Add();
        f.set(outAt);
        store();
      });
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
            overRowsOfX(tileRows, () => {
              // Transpose-and-add: the lanes become the four rows' totals.
              const [a0, a1, a2, a3] = accs;
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
              overRowsOfX([tileRows[0]], () => {
                const a = accs[0];
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
