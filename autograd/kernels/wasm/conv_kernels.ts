/**
 * The convolution kernels, written as TypeScript that emits WebAssembly (like `kernels.ts`, into
 * the same module, so the GEMM's worker pool runs them as jobs too).
 *
 * A convolution runs as one GEMM over the whole batch on an *implicit* im2col matrix: the input is
 * first laid out NHWC with its zero padding materialised (`nchwToNhwc`), so that the window of
 * output pixel r under kernel row i is one contiguous run of kw·Cp floats (Cp ≥ C channels,
 * chosen so that kw·Cp is a multiple of 4). Element (r, kk) of the im2col matrix, for
 * kk = (i·kw + j)·Cp + c, then lives at `base + rowOff[r] + kOff[kk / 4] + 4·(kk mod 4)` (byte
 * offsets from two small tables), and every group of four kk is four adjacent floats. The packers
 * below read that matrix straight into the GEMM's packed panels (so im2col costs no pass of its
 * own), `col2imIdx` is its adjoint for the input gradient, and `nhwcToNchw` brings results back to
 * the tensors' NCHW layout with the bias and ReLU fused in.
 *
 * Exports (all work-sharing jobs: threads claim chunks of units from the i32 at `counter`):
 *
 * - `packAIdx(base, rowOff, kOff, dst, m, k, kcMax, chunk, counter)`: A panels (mr rows × K
 *   blocks) of the implicit matrix, in `packAB`'s layout; units are panels.
 * - `packBIdx(base, rowOff, dOff, dst, n, k, kcMax, chunk, counter)`: B panels (8 columns) of
 *   op(B)[kk][d] at `base + rowOff[kk] + dOff[d / 4] + 4·(d mod 4)` (the im2col matrix as the B of
 *   the filter gradient); n must be a multiple of 4; units are panels.
 * - `nchwToNhwc(src, dst, mask, C, H, W, Cp, Hp, Wp, padH, padW, images, chunk, counter)`: per
 *   image, [C, H, W] → [Hp, Wp, Cp] at offset (padH, padW), zeros elsewhere; with `mask` ≠ 0 each
 *   value is kept only where the same element of `mask` is > 0 (the ReLU backward); units are
 *   images.
 * - `nhwcToNchw(src, dst, bias, relu, C, H, W, Cp, Hp, Wp, padH, padW, images, chunk, counter)`:
 *   the inverse crop and transpose, adding `bias[c]` (when ≠ 0) and applying ReLU (when `relu`);
 *   units are images.
 * - `col2imIdx(src, ldSrc, dst, rowOff, kOff, kBytes, pixels, imageBytes, images, chunk,
 *   counter)`: zeroes each image of `dst` and adds the rows of `src` ([images·pixels, K]) back
 *   through the same tables; units are images, so every element sums in one fixed order.
 * - `gyRows(src, dst, mask, biasGrad, O, P, images, chunk, counter)`: [N, O, P] → [O, N·P]
 *   (masked like `nchwToNhwc`), and when `biasGrad` ≠ 0 the sum of each row; units are rows.
 * - `im2row(base, rowOff, kOff, kBytes, dst, ldDst, m, chunk, counter)`: the implicit matrix
 *   written out, row r of K = kBytes floats at `dst + r·ldDst` (for a BLAS GEMM, which needs
 *   explicit operands); units are rows. `col2imIdx` is its adjoint.

 *
 * Every output element is produced by one thread in an order fixed by the shapes alone, so
 * results are bitwise identical for any thread count.
 *
 * @module
 */

import { type FunctionBuilder, I32, type Local, type ModuleBuilder, V128 } from "./encoder.ts";
import { addConst, addLocal, chunkLoop, forRange, setMin, whileLoop } from "./emit.ts";

type F = FunctionBuilder;

/** Names of the convolution exports, in the order they follow the GEMM jobs. */
export const CONV_JOB_NAMES = [
  "packAIdx",
  "packBIdx",
  "nchwToNhwc",
  "nhwcToNchw",
  "col2imIdx",
  "gyRows",
  "im2row",
] as const;

/**
 * Emits a 4×4 transpose: `rows[l]` holds lanes (x0..x3) of row l; afterwards `cols[q]` holds
 * element q of every row (cols may not alias rows).
 */
function transpose4(f: F, rows: Local[], cols: Local[], tmp: Local[]): void {
  f.get(rows[0]).get(rows[1]).i32x4Shuffle([0, 4, 1, 5]).set(tmp[0]);
  f.get(rows[0]).get(rows[1]).i32x4Shuffle([2, 6, 3, 7]).set(tmp[1]);
  f.get(rows[2]).get(rows[3]).i32x4Shuffle([0, 4, 1, 5]).set(tmp[2]);
  f.get(rows[2]).get(rows[3]).i32x4Shuffle([2, 6, 3, 7]).set(tmp[3]);
  f.get(tmp[0]).get(tmp[2]).i32x4Shuffle([0, 1, 4, 5]).set(cols[0]);
  f.get(tmp[0]).get(tmp[2]).i32x4Shuffle([2, 3, 6, 7]).set(cols[1]);
  f.get(tmp[1]).get(tmp[3]).i32x4Shuffle([0, 1, 4, 5]).set(cols[2]);
  f.get(tmp[1]).get(tmp[3]).i32x4Shuffle([2, 3, 6, 7]).set(cols[3]);
}

/**
 * Stores W row vectors (row w holds K steps kk..kk+3) into a packed panel at `p` whose layout is
 * [kk][w]: element (l, w) goes to p + 4·(l·W + w).
 */
function storePanelStep(f: F, W: number, v: Local[], p: Local, t: Local[], u: Local[]): void {
  const groups = Math.floor(W / 4);
  for (let g = 0; g < groups; g++) {
    transpose4(f, v.slice(4 * g, 4 * g + 4), u, t);
    for (let l = 0; l < 4; l++) f.get(p).get(u[l]).v128Store((l * W + 4 * g) * 4);
  }
  const base = 4 * groups;
  const rem = W - base;
  if (rem === 2) {
    f.get(v[base]).get(v[base + 1]).i32x4Shuffle([0, 4, 1, 5]).set(t[0]);
    f.get(v[base]).get(v[base + 1]).i32x4Shuffle([2, 6, 3, 7]).set(t[1]);
    for (let l = 0; l < 4; l++) {
      f.get(p).get(t[l >> 1]).v128Store64Lane(l & 1, (l * W + base) * 4);
    }
  } else {
    for (let r = 0; r < rem; r++) {
      for (let l = 0; l < 4; l++) {
        f.get(p).get(v[base + r]).v128Store32Lane(l, (l * W + base + r) * 4);
      }
    }
  }
}

/** Emits `packAIdx` for panels of `MR` rows. */
function emitPackAIdx(mod: ModuleBuilder, MR: number): void {
  mod.func(
    "packAIdx",
    new Array(9).fill(I32),
    [],
    (f, [base, rowOff, kOff, dst, m, k, kcMax, chunk, counter]) => {
      const mp = f.local(I32);
      const mpad = f.local(I32);
      const q = f.local(I32);
      const k0 = f.local(I32);
      const kc = f.local(I32);
      const p = f.local(I32);
      const g = f.local(I32);
      const gEnd = f.local(I32);
      const off = f.local(I32);
      const r = f.local(I32);
      const rows: Local[] = [];
      for (let w = 0; w < MR; w++) rows.push(f.local(I32));
      const v: Local[] = [];
      for (let w = 0; w < MR; w++) v.push(f.local(V128));
      const t = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
      const u = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
      f.get(m).i32Const(MR - 1).i32Add().i32Const(MR).i32DivU().tee(mp).i32Const(MR).i32Mul()
        .set(mpad);
      chunkLoop(f, counter, chunk, mp, (lo, hi) => {
        f.get(lo).set(q);
        whileLoop(f, () => f.get(q).get(hi).i32LtS(), () => {
          // Rows past m repeat the last row: they only feed rows of C that are never stored.
          for (let w = 0; w < MR; w++) {
            setMin(f, r, () => f.get(q).i32Const(MR).i32Mul().i32Const(w).i32Add(), () => {
              f.get(m).i32Const(1).i32Sub();
            });
            f.get(base).get(rowOff).get(r).i32Const(2).i32Shl().i32Add().i32Load().i32Add()
              .set(rows[w]);
          }
          f.i32Const(0).set(k0);
          whileLoop(f, () => f.get(k0).get(k).i32LtS(), () => {
            setMin(f, kc, () => f.get(kcMax), () => f.get(k).get(k0).i32Sub());
            // panel = dst + 4·(k0·mpad + q·MR·kc)
            f.get(dst).get(k0).get(mpad).i32Mul().get(q).i32Const(MR).i32Mul().get(kc).i32Mul()
              .i32Add().i32Const(2).i32Shl().i32Add().set(p);
            // The kOff entry of kk (a multiple of 4) is at byte kk of the table.
            f.get(kOff).get(k0).i32Add().tee(g).get(kc).i32Add().set(gEnd);
            whileLoop(f, () => f.get(g).get(gEnd).i32LtS(), () => {
              f.get(g).i32Load().set(off);
              for (let w = 0; w < MR; w++) f.get(rows[w]).get(off).i32Add().v128Load().set(v[w]);
              storePanelStep(f, MR, v, p, t, u);
              addConst(f, p, 16 * MR);
              addConst(f, g, 4);
            });
            addLocal(f, k0, kc);
          });
          addConst(f, q, 1);
        });
      });
    },
  );
}

/** Emits `packBIdx` (panels of 8 columns). */
function emitPackBIdx(mod: ModuleBuilder): void {
  const NR = 8;
  mod.func(
    "packBIdx",
    new Array(9).fill(I32),
    [],
    (f, [base, rowOff, dOff, dst, n, k, kcMax, chunk, counter]) => {
      const np = f.local(I32);
      const npad = f.local(I32);
      const q = f.local(I32);
      const off0 = f.local(I32);
      const off1 = f.local(I32);
      const k0 = f.local(I32);
      const kc = f.local(I32);
      const p = f.local(I32);
      const rp = f.local(I32);
      const rEnd = f.local(I32);
      const a = f.local(I32);
      f.get(n).i32Const(NR - 1).i32Add().i32Const(NR).i32DivU().tee(np).i32Const(NR).i32Mul()
        .set(npad);
      chunkLoop(f, counter, chunk, np, (lo, hi) => {
        f.get(lo).set(q);
        whileLoop(f, () => f.get(q).get(hi).i32LtS(), () => {
          // Entry d/4 of dOff is at byte d of the table (d a multiple of 4).
          f.get(dOff).get(q).i32Const(NR).i32Mul().i32Add().i32Load().set(off0);
          // A half-empty last panel repeats its first half (columns never stored). The table
          // is padded, so reading the entry after the last is harmless.
          f.get(dOff).get(q).i32Const(NR).i32Mul().i32Add().i32Load(4);
          f.get(off0);
          f.get(q).i32Const(NR).i32Mul().i32Const(4).i32Add().get(n).i32LtS();
          f.select().set(off1);
          f.i32Const(0).set(k0);
          whileLoop(f, () => f.get(k0).get(k).i32LtS(), () => {
            setMin(f, kc, () => f.get(kcMax), () => f.get(k).get(k0).i32Sub());
            f.get(dst).get(k0).get(npad).i32Mul().get(q).i32Const(NR).i32Mul().get(kc).i32Mul()
              .i32Add().i32Const(2).i32Shl().i32Add().set(p);
            f.get(rowOff).get(k0).i32Const(2).i32Shl().i32Add().tee(rp).get(kc).i32Const(2)
              .i32Shl().i32Add().set(rEnd);
            whileLoop(f, () => f.get(rp).get(rEnd).i32LtS(), () => {
              f.get(base).get(rp).i32Load().i32Add().set(a);
              f.get(p).get(a).get(off0).i32Add().v128Load().v128Store();
              f.get(p).get(a).get(off1).i32Add().v128Load().v128Store(16);
              addConst(f, p, 4 * NR);
              addConst(f, rp, 4);
            });
            addLocal(f, k0, kc);
          });
          addConst(f, q, 1);
        });
      });
    },
  );
}

/** Emits `nchwToNhwc`. */
function emitNchwToNhwc(mod: ModuleBuilder): void {
  mod.func(
    "nchwToNhwc",
    new Array(14).fill(I32),
    [],
    (f, [src, dst, mask, C, H, W, Cp, Hp, Wp, padH, padW, images, chunk, counter]) => {
      const n = f.local(I32);
      const s = f.local(I32);
      const d = f.local(I32);
      const mk = f.local(I32);
      const c = f.local(I32);
      const y = f.local(I32);
      const x = f.local(I32);
      const sRow = f.local(I32);
      const mRow = f.local(I32);
      const dRow = f.local(I32);
      const inPlane = f.local(I32);
      const cpBytes = f.local(I32);
      const v = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
      const t = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
      const u = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
      const zero = f.local(V128);
      f.v128Zero().set(zero);
      f.get(H).get(W).i32Mul().i32Const(2).i32Shl().set(inPlane);
      f.get(Cp).i32Const(2).i32Shl().set(cpBytes);
      chunkLoop(f, counter, chunk, images, (lo, hi) => {
        forRange(f, n, () => f.get(lo), () => f.get(hi), 1, () => {
          f.get(src).get(n).get(C).i32Mul().get(inPlane).i32Mul().i32Add().set(s);
          f.get(mask).get(n).get(C).i32Mul().get(inPlane).i32Mul().i32Add().set(mk);
          f.get(dst).get(n).get(Hp).i32Mul().get(Wp).i32Mul().get(Cp).i32Mul().i32Const(2)
            .i32Shl().i32Add().set(d);
          // Zero the padding (and the padded channels) unless the image fills the block.
          f.get(Hp).get(Wp).i32Mul().get(Cp).i32Mul().get(H).get(W).i32Mul().get(C).i32Mul()
            .i32Ne();
          f.if(() => {
            f.get(d).i32Const(0).get(Hp).get(Wp).i32Mul().get(Cp).i32Mul().i32Const(2).i32Shl()
              .memoryFill();
          });
          f.i32Const(0).set(c);
          // Four channels at a time: load 4 channel rows × 4 pixels, transpose, store 4 pixels.
          whileLoop(f, () => f.get(c).i32Const(4).i32Add().get(C).i32LeS(), () => {
            forRange(f, y, () => f.i32Const(0), () => f.get(H), 1, () => {
              f.get(s).get(c).get(inPlane).i32Mul().i32Add().get(y).get(W).i32Mul().i32Const(2)
                .i32Shl().i32Add().set(sRow);
              f.get(mk).get(c).get(inPlane).i32Mul().i32Add().get(y).get(W).i32Mul().i32Const(2)
                .i32Shl().i32Add().set(mRow);
              f.get(d).get(y).get(padH).i32Add().get(Wp).i32Mul().get(padW).i32Add().get(cpBytes)
                .i32Mul().i32Add().get(c).i32Const(2).i32Shl().i32Add().set(dRow);
              f.i32Const(0).set(x);
              whileLoop(f, () => f.get(x).i32Const(4).i32Add().get(W).i32LeS(), () => {
                for (let q = 0; q < 4; q++) {
                  f.get(sRow).get(inPlane).i32Const(q).i32Mul().i32Add().v128Load().set(v[q]);
                }
                f.get(mask).if(() => {
                  for (let q = 0; q < 4; q++) {
                    f.get(v[q]);
                    f.get(mRow).get(inPlane).i32Const(q).i32Mul().i32Add().v128Load().get(zero)
                      .f32x4Gt();
                    f.v128And().set(v[q]);
                  }
                });
                transpose4(f, v, u, t);
                for (let l = 0; l < 4; l++) {
                  f.get(dRow).get(cpBytes).i32Const(l).i32Mul().i32Add().get(u[l]).v128Store();
                }
                addConst(f, sRow, 16);
                addConst(f, mRow, 16);
                f.get(dRow).get(cpBytes).i32Const(2).i32Shl().i32Add().set(dRow);
                addConst(f, x, 4);
              });
              // Leftover pixels of the row: one pixel (4 channels) at a time.
              whileLoop(f, () => f.get(x).get(W).i32LtS(), () => {
                for (let q = 0; q < 4; q++) {
                  f.get(dRow).get(sRow).get(inPlane).i32Const(q).i32Mul().i32Add().f32Load();
                  f.f32Store(4 * q);
                }
                f.get(mask).if(() => {
                  for (let q = 0; q < 4; q++) {
                    // Store again, masked: the value where mask > 0, else 0.
                    f.get(dRow);
                    f.get(dRow).f32Load(4 * q).f32Const(0);
                    f.get(mRow).get(inPlane).i32Const(q).i32Mul().i32Add().f32Load().f32Const(0)
                      .f32Gt();
                    f.select().f32Store(4 * q);
                  }
                });
                addConst(f, sRow, 4);
                addConst(f, mRow, 4);
                addLocal(f, dRow, cpBytes);
                addConst(f, x, 1);
              });
            });
            addConst(f, c, 4);
          });
          // Leftover channels (C mod 4), one at a time.
          whileLoop(f, () => f.get(c).get(C).i32LtS(), () => {
            forRange(f, y, () => f.i32Const(0), () => f.get(H), 1, () => {
              f.get(s).get(c).get(inPlane).i32Mul().i32Add().get(y).get(W).i32Mul().i32Const(2)
                .i32Shl().i32Add().set(sRow);
              f.get(mk).get(c).get(inPlane).i32Mul().i32Add().get(y).get(W).i32Mul().i32Const(2)
                .i32Shl().i32Add().set(mRow);
              f.get(d).get(y).get(padH).i32Add().get(Wp).i32Mul().get(padW).i32Add().get(cpBytes)
                .i32Mul().i32Add().get(c).i32Const(2).i32Shl().i32Add().set(dRow);
              forRange(f, x, () => f.i32Const(0), () => f.get(W), 1, () => {
                f.get(dRow).get(sRow).f32Load().f32Store();
                f.get(mask).if(() => {
                  f.get(dRow);
                  f.get(dRow).f32Load().f32Const(0);
                  f.get(mRow).f32Load().f32Const(0).f32Gt();
                  f.select().f32Store();
                });
                addConst(f, sRow, 4);
                addConst(f, mRow, 4);
                addLocal(f, dRow, cpBytes);
              });
            });
            addConst(f, c, 1);
          });
        });
      });
    },
  );
}

/** Emits `nhwcToNchw`. */
function emitNhwcToNchw(mod: ModuleBuilder): void {
  mod.func(
    "nhwcToNchw",
    new Array(15).fill(I32),
    [],
    (f, [src, dst, bias, relu, C, H, W, Cp, Hp, Wp, padH, padW, images, chunk, counter]) => {
      const n = f.local(I32);
      const s = f.local(I32);
      const d = f.local(I32);
      const c = f.local(I32);
      const y = f.local(I32);
      const x = f.local(I32);
      const sRow = f.local(I32);
      const dRow = f.local(I32);
      const outPlane = f.local(I32);
      const cpBytes = f.local(I32);
      const v = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
      const t = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
      const u = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
      const b = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
      const zero = f.local(V128);
      f.v128Zero().set(zero);
      f.get(H).get(W).i32Mul().i32Const(2).i32Shl().set(outPlane);
      f.get(Cp).i32Const(2).i32Shl().set(cpBytes);
      const epilogue = (val: Local, biasVec: Local): void => {
        f.get(bias).if(() => f.get(val).get(biasVec).f32x4Add().set(val));
        f.get(relu).if(() => f.get(zero).get(val).f32x4Pmax().set(val));
      };
      chunkLoop(f, counter, chunk, images, (lo, hi) => {
        forRange(f, n, () => f.get(lo), () => f.get(hi), 1, () => {
          f.get(src).get(n).get(Hp).i32Mul().get(Wp).i32Mul().get(Cp).i32Mul().i32Const(2)
            .i32Shl().i32Add().set(s);
          f.get(dst).get(n).get(C).i32Mul().get(outPlane).i32Mul().i32Add().set(d);
          f.i32Const(0).set(c);
          whileLoop(f, () => f.get(c).i32Const(4).i32Add().get(C).i32LeS(), () => {
            f.get(bias).if(() => {
              for (let l = 0; l < 4; l++) {
                f.get(bias).get(c).i32Const(2).i32Shl().i32Add().v128Load32Splat(4 * l).set(b[l]);
              }
            });
            forRange(f, y, () => f.i32Const(0), () => f.get(H), 1, () => {
              f.get(s).get(y).get(padH).i32Add().get(Wp).i32Mul().get(padW).i32Add().get(cpBytes)
                .i32Mul().i32Add().get(c).i32Const(2).i32Shl().i32Add().set(sRow);
              f.get(d).get(c).get(outPlane).i32Mul().i32Add().get(y).get(W).i32Mul().i32Const(2)
                .i32Shl().i32Add().set(dRow);
              f.i32Const(0).set(x);
              whileLoop(f, () => f.get(x).i32Const(4).i32Add().get(W).i32LeS(), () => {
                for (let q = 0; q < 4; q++) {
                  f.get(sRow).get(cpBytes).i32Const(q).i32Mul().i32Add().v128Load().set(v[q]);
                }
                transpose4(f, v, u, t);
                for (let l = 0; l < 4; l++) {
                  epilogue(u[l], b[l]);
                  f.get(dRow).get(outPlane).i32Const(l).i32Mul().i32Add().get(u[l]).v128Store();
                }
                f.get(sRow).get(cpBytes).i32Const(2).i32Shl().i32Add().set(sRow);
                addConst(f, dRow, 16);
                addConst(f, x, 4);
              });
              whileLoop(f, () => f.get(x).get(W).i32LtS(), () => {
                // One pixel: its 4 channels as a vector, each lane to its own plane.
                f.get(sRow).v128Load().set(v[0]);
                f.get(bias).if(() => {
                  f.get(bias).get(c).i32Const(2).i32Shl().i32Add().v128Load().set(v[1]);
                  f.get(v[0]).get(v[1]).f32x4Add().set(v[0]);
                });
                f.get(relu).if(() => f.get(zero).get(v[0]).f32x4Pmax().set(v[0]));
                for (let l = 0; l < 4; l++) {
                  f.get(dRow).get(outPlane).i32Const(l).i32Mul().i32Add().get(v[0])
                    .v128Store32Lane(l);
                }
                addLocal(f, sRow, cpBytes);
                addConst(f, dRow, 4);
                addConst(f, x, 1);
              });
            });
            addConst(f, c, 4);
          });
          // Leftover channels, one at a time (scalar, in lane 0 so it rounds like the rest).
          whileLoop(f, () => f.get(c).get(C).i32LtS(), () => {
            f.v128Zero().set(b[0]);
            f.get(bias).if(() => {
              f.get(bias).get(c).i32Const(2).i32Shl().i32Add().v128Load32Zero().set(b[0]);
            });
            forRange(f, y, () => f.i32Const(0), () => f.get(H), 1, () => {
              f.get(s).get(y).get(padH).i32Add().get(Wp).i32Mul().get(padW).i32Add().get(cpBytes)
                .i32Mul().i32Add().get(c).i32Const(2).i32Shl().i32Add().set(sRow);
              f.get(d).get(c).get(outPlane).i32Mul().i32Add().get(y).get(W).i32Mul().i32Const(2)
                .i32Shl().i32Add().set(dRow);
              forRange(f, x, () => f.i32Const(0), () => f.get(W), 1, () => {
                f.get(sRow).v128Load32Zero().set(v[0]);
                epilogue(v[0], b[0]);
                f.get(dRow).get(v[0]).v128Store32Lane(0);
                addLocal(f, sRow, cpBytes);
                addConst(f, dRow, 4);
              });
            });
            addConst(f, c, 1);
          });
        });
      });
    },
  );
}

/** Emits `col2imIdx`. */
function emitCol2imIdx(mod: ModuleBuilder): void {
  mod.func(
    "col2imIdx",
    new Array(11).fill(I32),
    [],
    (f, [src, ldSrc, dst, rowOff, kOff, kBytes, pixels, imageBytes, images, chunk, counter]) => {
      const n = f.local(I32);
      const r = f.local(I32);
      const rEnd = f.local(I32);
      const rb = f.local(I32);
      const s = f.local(I32);
      const g = f.local(I32);
      const gEnd = f.local(I32);
      const a = f.local(I32);
      chunkLoop(f, counter, chunk, images, (lo, hi) => {
        forRange(f, n, () => f.get(lo), () => f.get(hi), 1, () => {
          f.get(dst).get(n).get(imageBytes).i32Mul().i32Add().i32Const(0).get(imageBytes)
            .memoryFill();
          f.get(n).get(pixels).i32Mul().tee(r).get(pixels).i32Add().set(rEnd);
          whileLoop(f, () => f.get(r).get(rEnd).i32LtS(), () => {
            f.get(dst).get(rowOff).get(r).i32Const(2).i32Shl().i32Add().i32Load().i32Add().set(rb);
            f.get(src).get(r).get(ldSrc).i32Mul().i32Add().set(s);
            f.get(kOff).tee(g).get(kBytes).i32Add().set(gEnd);
            whileLoop(f, () => f.get(g).get(gEnd).i32LtS(), () => {
              f.get(rb).get(g).i32Load().i32Add().tee(a);
              f.get(a).v128Load().get(s).v128Load().f32x4Add().v128Store();
              addConst(f, s, 16);
              addConst(f, g, 4);
            });
            addConst(f, r, 1);
          });
        });
      });
    },
  );
}

/** Emits `gyRows`. */
function emitGyRows(mod: ModuleBuilder): void {
  mod.func(
    "gyRows",
    new Array(9).fill(I32),
    [],
    (f, [src, dst, mask, biasGrad, O, P, images, chunk, counter]) => {
      const o = f.local(I32);
      const n = f.local(I32);
      const d = f.local(I32);
      const s = f.local(I32);
      const mk = f.local(I32);
      const p = f.local(I32);
      const acc = f.local(V128);
      const v = f.local(V128);
      const zero = f.local(V128);
      const tail = f.local(V128);
      f.v128Zero().set(zero);
      chunkLoop(f, counter, chunk, O, (lo, hi) => {
        forRange(f, o, () => f.get(lo), () => f.get(hi), 1, () => {
          f.v128Zero().set(acc);
          f.v128Zero().set(tail);
          f.get(dst).get(o).get(images).i32Mul().get(P).i32Mul().i32Const(2).i32Shl().i32Add()
            .set(d);
          forRange(f, n, () => f.i32Const(0), () => f.get(images), 1, () => {
            f.get(n).get(O).i32Mul().get(o).i32Add().get(P).i32Mul().i32Const(2).i32Shl().set(s);
            f.get(mask).get(s).i32Add().set(mk);
            addLocal(f, s, src);
            f.i32Const(0).set(p);
            whileLoop(f, () => f.get(p).i32Const(4).i32Add().get(P).i32LeS(), () => {
              f.get(s).v128Load().set(v);
              f.get(mask).if(() => {
                f.get(v).get(mk).v128Load().get(zero).f32x4Gt().v128And().set(v);
              });
              f.get(d).get(v).v128Store();
              f.get(acc).get(v).f32x4Add().set(acc);
              addConst(f, s, 16);
              addConst(f, mk, 16);
              addConst(f, d, 16);
              addConst(f, p, 4);
            });
            whileLoop(f, () => f.get(p).get(P).i32LtS(), () => {
              f.get(s).v128Load32Zero().set(v);
              f.get(mask).if(() => {
                f.get(v).get(mk).v128Load32Zero().get(zero).f32x4Gt().v128And().set(v);
              });
              f.get(d).get(v).v128Store32Lane(0);
              f.get(tail).get(v).f32x4Add().set(tail);
              addConst(f, s, 4);
              addConst(f, mk, 4);
              addConst(f, d, 4);
              addConst(f, p, 1);
            });
          });
          f.get(biasGrad).if(() => {
            // (l0 + l2) + (l1 + l3), then the scalar tail: a fixed order.
            f.get(acc).get(acc).get(acc).i32x4Shuffle([2, 3, 0, 1]).f32x4Add().set(v);
            f.get(v).get(v).get(v).i32x4Shuffle([1, 0, 3, 2]).f32x4Add().get(tail).f32x4Add()
              .set(v);
            f.get(biasGrad).get(o).i32Const(2).i32Shl().i32Add().get(v).v128Store32Lane(0);
          });
        });
      });
    },
  );
}

/** Emits `im2row`. */
function emitIm2row(mod: ModuleBuilder): void {
  mod.func(
    "im2row",
    new Array(9).fill(I32),
    [],
    (f, [base, rowOff, kOff, kBytes, dst, ldDst, m, chunk, counter]) => {
      const r = f.local(I32);
      const rb = f.local(I32);
      const d = f.local(I32);
      const g = f.local(I32);
      const gEnd = f.local(I32);
      chunkLoop(f, counter, chunk, m, (lo, hi) => {
        forRange(f, r, () => f.get(lo), () => f.get(hi), 1, () => {
          f.get(base).get(rowOff).get(r).i32Const(2).i32Shl().i32Add().i32Load().i32Add().set(rb);
          f.get(dst).get(r).get(ldDst).i32Mul().i32Add().set(d);
          f.get(kOff).tee(g).get(kBytes).i32Add().set(gEnd);
          whileLoop(f, () => f.get(g).get(gEnd).i32LtS(), () => {
            f.get(d).get(rb).get(g).i32Load().i32Add().v128Load().v128Store();
            addConst(f, d, 16);
            addConst(f, g, 4);
          });
        });
      });
    },
  );
}

/** Adds the convolution exports ({@link CONV_JOB_NAMES}) to `mod` for packed panels of `mr` rows. */
export function emitConvKernels(mod: ModuleBuilder, mr: number): void {
  emitPackAIdx(mod, mr);
  emitPackBIdx(mod);
  emitNchwToNhwc(mod);
  emitNhwcToNchw(mod);
  emitCol2imIdx(mod);
  emitGyRows(mod);
  emitIm2row(mod);
}
