/**
 * Elementwise kernels written as TypeScript that emits WebAssembly (same module as the GEMM, so
 * the worker pool can share the large ones). Each one gives bitwise the reference kernel's result:
 *
 * - `relu(x, out, n, chunk, counter)`: out = pmax(0, x), i.e. x > 0 ? x : +0 (NaN → 0), exactly
 *   the reference's `v > 0 ? v : 0`.
 * - `reluBackward(gy, x, gx, n, chunk, counter)`: gx = x > 0 ? gy : +0 (a lane mask, no multiply).
 * - `leakyRelu(x, out, n, slope, chunk, counter)` and
 *   `leakyReluBackward(gy, x, gx, n, slope, chunk, counter)`: the product with the slope is done in
 *   f64 and rounded once, as JavaScript does (`slope` is the address of an f64).
 * - `addInto(dst, src, n, chunk, counter)`: dst += src (an f32 add is exact whichever precision
 *   computes it, so this matches `dst[i] += src[i]`).
 * - `zero(dst, n, chunk, counter)`: dst = +0 (`memory.fill`, much faster than
 *   `TypedArray.prototype.fill` on a shared buffer).
 * - `gelu` and `geluBackward` (`gelu_kernels.ts`): float32 arithmetic, a few ulp from the
 *   reference rather than bitwise.
 *
 * Units are elements; `chunk` must be a multiple of 4 so that every chunk but the last starts and
 * ends on a whole vector. Pointers are byte addresses.
 *
 * @module
 */

import { I32, type Local, type ModuleBuilder, V128 } from "./encoder.ts";
import { chunkLoop, elementLoop } from "./emit.ts";
import { emitGeluKernels, GELU_JOB_NAMES } from "./gelu_kernels.ts";
import type { FunctionBuilder } from "./encoder.ts";

type F = FunctionBuilder;

/** Names of the elementwise exports. */
export const ELEMENTWISE_JOB_NAMES = [
  "relu",
  "reluBackward",
  "leakyRelu",
  "leakyReluBackward",
  "addInto",
  "zero",
  ...GELU_JOB_NAMES,
] as const;

/** Adds the elementwise exports ({@link ELEMENTWISE_JOB_NAMES}) to `mod`. */
export function emitElementwiseKernels(mod: ModuleBuilder): void {
  emitGeluKernels(mod);
  mod.func("relu", new Array(5).fill(I32), [], (f, [x, out, n, chunk, counter]) => {
    const zero = f.local(V128);
    f.v128Zero().set(zero);
    chunkLoop(f, counter, chunk, n, (lo, hi) => {
      const body = (i: Local, lanes: 4 | 1): void => {
        f.get(out).get(i).i32Add();
        f.get(zero);
        f.get(x).get(i).i32Add();
        if (lanes === 4) f.v128Load();
        else f.v128Load32Zero();
        f.f32x4Pmax();
        if (lanes === 4) f.v128Store();
        else f.v128Store32Lane(0);
      };
      elementLoop(f, lo, hi, (i) => body(i, 4), (i) => body(i, 1));
    });
  });

  mod.func("reluBackward", new Array(6).fill(I32), [], (f, [gy, x, gx, n, chunk, counter]) => {
    const zero = f.local(V128);
    f.v128Zero().set(zero);
    chunkLoop(f, counter, chunk, n, (lo, hi) => {
      const body = (i: Local, lanes: 4 | 1): void => {
        f.get(gx).get(i).i32Add();
        f.get(gy).get(i).i32Add();
        if (lanes === 4) f.v128Load();
        else f.v128Load32Zero();
        f.get(x).get(i).i32Add();
        if (lanes === 4) f.v128Load();
        else f.v128Load32Zero();
        f.get(zero).f32x4Gt().v128And();
        if (lanes === 4) f.v128Store();
        else f.v128Store32Lane(0);
      };
      elementLoop(f, lo, hi, (i) => body(i, 4), (i) => body(i, 1));
    });
  });

  // leakyRelu: out = x > 0 ? x : f32(f64(x)·slope); the backward: gy or f32(f64(gy)·slope).
  const leaky = (name: string, backward: boolean): void => {
    const params = backward ? 7 : 6;
    mod.func(name, new Array(params).fill(I32), [], (f, args) => {
      const [gy, x, out, n, slopePtr, chunk, counter] = backward
        ? args
        : [args[0], args[0], args[1], args[2], args[3], args[4], args[5]];
      const zero = f.local(V128);
      const slope = f.local(V128);
      const v = f.local(V128);
      const scaled = f.local(V128);
      const lo2 = f.local(V128);
      const hi2 = f.local(V128);
      f.v128Zero().set(zero);
      f.get(slopePtr).v128Load64Splat().set(slope);
      chunkLoop(f, counter, chunk, n, (lo, hi) => {
        const body = (i: Local, lanes: 4 | 1): void => {
          f.get(gy).get(i).i32Add();
          if (lanes === 4) f.v128Load();
          else f.v128Load32Zero();
          f.set(v);
          // Lanes 0–1 and 2–3 through f64: promote, multiply, demote.
          f.get(v).f64x2PromoteLowF32x4().get(slope).f64x2Mul().f32x4DemoteF64x2Zero().set(lo2);
          f.get(v).get(v).i32x4Shuffle([2, 3, 2, 3]).f64x2PromoteLowF32x4().get(slope).f64x2Mul()
            .f32x4DemoteF64x2Zero().set(hi2);
          f.get(lo2).get(hi2).i32x4Shuffle([0, 1, 4, 5]).set(scaled);
          f.get(out).get(i).i32Add();
          f.get(v).get(scaled);
          f.get(x).get(i).i32Add();
          if (lanes === 4) f.v128Load();
          else f.v128Load32Zero();
          f.get(zero).f32x4Gt();
          f.v128Bitselect();
          if (lanes === 4) f.v128Store();
          else f.v128Store32Lane(0);
        };
        elementLoop(f, lo, hi, (i) => body(i, 4), (i) => body(i, 1));
      });
    });
  };
  leaky("leakyRelu", false);
  leaky("leakyReluBackward", true);

  mod.func("addInto", new Array(5).fill(I32), [], (f, [dst, src, n, chunk, counter]) => {
    chunkLoop(f, counter, chunk, n, (lo, hi) => {
      elementLoop(f, lo, hi, (i) => {
        f.get(dst).get(i).i32Add();
        f.get(dst).get(i).i32Add().v128Load();
        f.get(src).get(i).i32Add().v128Load();
        f.f32x4Add().v128Store();
      }, (i) => {
        f.get(dst).get(i).i32Add();
        f.get(dst).get(i).i32Add().f32Load();
        f.get(src).get(i).i32Add().f32Load();
        f.f32Add().f32Store();
      });
    });
  });

  mod.func("zero", new Array(4).fill(I32), [], (f, [dst, n, chunk, counter]) => {
    chunkLoop(f, counter, chunk, n, (lo, hi) => {
      f.get(dst).get(lo).i32Const(2).i32Shl().i32Add();
      f.i32Const(0);
      f.get(hi).get(lo).i32Sub().i32Const(2).i32Shl();
      f.memoryFill();
    });
  });
}
