/**
 * The integer product of dynamically quantized Linear layers, written as TypeScript that emits
 * WebAssembly (same module as the GEMM, so the worker pool can share it):
 *
 * `qdot(x, w, out, m, n, kp, chunk, counter)`: out[i, j] = Σₚ x[i, p] · w[j, p] for x int16
 * [m, kp] (int8 values, widened once per call so that one load serves four rows of w), w int8
 * [n, kp] and out int32 [m, n], all row-major and contiguous; kp is a multiple of 16. Units are
 * tiles of four rows of w; a tile holds its rows' dot products in four i32x4 accumulators,
 * widening 16 weights at a time to i16 and multiplying with `i32x4.dot_i16x8_s`. Every product
 * and sum is exact in i32 (the caller keeps kp · 127² below 2³¹), so the result is the reference
 * kernel's bit for bit, whatever the summation order or thread count.
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

/** Emits `acc += dot(w[16 bytes at wAddr], x[16 int16 at xAddr])` for each (wRow, acc) pair. */
function accumulate(
  f: F,
  rows: { w: Local; acc: Local }[],
  x: Local,
  p: Local,
  xl: Local,
  xh: Local,
  wv: Local,
): void {
  // x's 16 values as two i16x8 vectors, shared by every row of the tile.
  f.get(x).get(p).i32Add().get(p).i32Add().v128Load().set(xl);
  f.get(x).get(p).i32Add().get(p).i32Add().v128Load(16).set(xh);
  for (const { w, acc } of rows) {
    f.get(w).get(p).i32Add().v128Load().set(wv);
    f.get(acc);
    f.get(wv).i16x8ExtendLowI8x16S().get(xl).i32x4DotI16x8S().i32x4Add();
    f.get(wv).i16x8ExtendHighI8x16S().get(xh).i32x4DotI16x8S().i32x4Add();
    f.set(acc);
  }
}

/** Adds `qdot` ({@link QUANTIZED_JOB_NAMES}) to `mod`. */
export function emitQuantizedKernels(mod: ModuleBuilder): void {
  mod.func("qdot", new Array(8).fill(I32), [], (f, [x, w, out, m, n, kp, chunk, counter]) => {
    const tiles = f.local(I32);
    const t = f.local(I32);
    const j = f.local(I32);
    const i = f.local(I32);
    const p = f.local(I32);
    const xRow = f.local(I32);
    const outAt = f.local(I32);
    const xl = f.local(V128);
    const xh = f.local(V128);
    const wv = f.local(V128);
    const wRows = Array.from({ length: TILE_ROWS }, () => f.local(I32));
    const accs = Array.from({ length: TILE_ROWS }, () => f.local(V128));
    const tileRows = wRows.map((wRow, r) => ({ w: wRow, acc: accs[r] }));

    /** For each row i of x: zero the used accumulators, run the K loop, then `store`. */
    const overRowsOfX = (used: { w: Local; acc: Local }[], store: () => void): void => {
      forRange(f, i, () => f.i32Const(0), () => f.get(m), 1, () => {
        f.get(x).get(i).get(kp).i32Mul().i32Const(1).i32Shl().i32Add().set(xRow);
        for (const { acc } of used) f.v128Zero().set(acc);
        forRange(f, p, () => f.i32Const(0), () => f.get(kp), 16, () => {
          accumulate(f, used, xRow, p, xl, xh, wv);
        });
        // out + 4·(i·n + j)
        f.get(out).get(i).get(n).i32Mul().get(j).i32Add().i32Const(2).i32Shl().i32Add().set(
          outAt,
        );
        store();
      });
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
              // Transpose-and-add: lanes become the four rows' totals.
              const [a0, a1, a2, a3] = accs;
              f.get(outAt);
              f.get(a0).get(a1).i32x4Shuffle([0, 4, 1, 5]).get(a0).get(a1).i32x4Shuffle([
                2,
                6,
                3,
                7,
              ]).i32x4Add().set(a0);
              f.get(a2).get(a3).i32x4Shuffle([0, 4, 1, 5]).get(a2).get(a3).i32x4Shuffle([
                2,
                6,
                3,
                7,
              ]).i32x4Add().set(a2);
              f.get(a0).get(a2).i32x4Shuffle([0, 1, 4, 5]).get(a0).get(a2).i32x4Shuffle([
                2,
                3,
                6,
                7,
              ]).i32x4Add();
              f.v128Store();
            });
          },
          () => {
            // The last, partial tile: one row of w at a time.
            const one = [tileRows[0]];
            forRange(f, j, () => f.get(j), () => f.get(n), 1, () => {
              f.get(w).get(j).get(kp).i32Mul().i32Add().set(wRows[0]);
              overRowsOfX(one, () => {
                const a = accs[0];
                f.get(a).get(a).get(a).i32x4Shuffle([2, 3, 0, 1]).i32x4Add().set(a);
                f.get(outAt);
                f.get(a).get(a).get(a).i32x4Shuffle([1, 0, 3, 2]).i32x4Add();
                f.v128Store32Lane(0);
              });
            });
          },
        );
      });
    });
  });
}
