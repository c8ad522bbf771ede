/**
 * Optimizer update loops written as TypeScript that emits WebAssembly, bitwise equal to the
 * TypeScript reference loops in `../optim.ts`. SGD computes in float32, operation by operation,
 * four elements at a time in f32x4 lanes, as the reference does with `Math.fround`. Adam computes
 * in float64 and rounds to float32 where it stores (or calls `Math.fround`), two elements at a time
 * in f64x2 lanes. IEEE arithmetic is the same operation in both languages, and no step is fused.
 *
 * - `sgd(param, grad, buffer, n, hyper, flags, chunk, counter)`: hyper → f32 [lr, weightDecay,
 *   momentum, 1 − dampening]; flags: 1 momentum, 2 nesterov, 4 first step, 8 weight decay ≠ 0.
 * - `adam(param, grad, expAvg, expAvgSq, n, hyper, flags, chunk, counter)`: hyper → f64
 *   [decay, l2, beta1, 1 − beta1, beta2, 1 − beta2, √(1 − beta2ᵗ), eps, lr / (1 − beta1ᵗ)];
 *   flags: 1 decoupled decay ≠ 1, 2 l2 ≠ 0.
 *
 * Units are elements; Adam's chunks must be even so that pairs never straddle two threads.
 *
 * @module
 */

import { I32, type Local, type ModuleBuilder, V128 } from "./encoder.ts";
import type { FunctionBuilder } from "./encoder.ts";
import { addConst, chunkLoop, whileLoop } from "./emit.ts";

type F = FunctionBuilder;

/** Names of the optimizer exports. */
export const OPTIM_JOB_NAMES = ["sgd", "adam"] as const;

/**
 * Emits the loop over [lo, hi) `lanes` elements at a time, then one at a time. `body(i, full)`
 * handles the elements at byte offset i: `lanes` of them, or one (in lane 0) when `full` is false.
 */
function laneLoop(
  f: F,
  lo: Local,
  hi: Local,
  lanes: 2 | 4,
  body: (i: Local, full: boolean) => void,
): void {
  const i = f.local(I32);
  const end = f.local(I32);
  f.get(lo).i32Const(2).i32Shl().set(i);
  f.get(hi).i32Const(2).i32Shl().set(end);
  whileLoop(f, () => f.get(i).i32Const(4 * lanes).i32Add().get(end).i32LeS(), () => {
    body(i, true);
    addConst(f, i, 4 * lanes);
  });
  whileLoop(f, () => f.get(i).get(end).i32LtS(), () => {
    body(i, false);
    addConst(f, i, 4);
  });
}

/** Pushes the four f32 values (or one, in lane 0) at `ptr + i`. */
function load(f: F, ptr: Local, i: Local, four: boolean): void {
  f.get(ptr).get(i).i32Add();
  if (four) f.v128Load();
  else f.v128Load32Zero();
}

/** Stores the f32x4 in `v` at `ptr + i` (four elements, or lane 0). */
function store(f: F, ptr: Local, i: Local, v: Local, four: boolean): void {
  f.get(ptr).get(i).i32Add().get(v);
  if (four) f.v128Store();
  else f.v128Store32Lane(0);
}

/** Pushes the f32 pair (or single) at `ptr + i` promoted to f64x2. */
function load2(f: F, ptr: Local, i: Local, two: boolean): void {
  f.get(ptr).get(i).i32Add();
  if (two) f.v128Load64Zero();
  else f.v128Load32Zero();
  f.f64x2PromoteLowF32x4();
}

/** Stores the f64x2 in `v`, rounded to f32, at `ptr + i` (two elements or one). */
function store2(f: F, ptr: Local, i: Local, v: Local, two: boolean): void {
  f.get(ptr).get(i).i32Add().get(v).f32x4DemoteF64x2Zero();
  if (two) f.v128Store64Lane(0);
  else f.v128Store32Lane(0);
}

/** `v = fround(v)` lane-wise: through f32 and back. */
function fround(f: F, v: Local): void {
  f.get(v).f32x4DemoteF64x2Zero().f64x2PromoteLowF32x4().set(v);
}

/** Adds the optimizer exports ({@link OPTIM_JOB_NAMES}) to `mod`. */
export function emitOptimKernels(mod: ModuleBuilder): void {
  mod.func(
    "sgd",
    new Array(8).fill(I32),
    [],
    (f, [param, grad, buffer, n, hyper, flags, chunk, counter]) => {
      const [lr, wd, mom, keep] = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
      [lr, wd, mom, keep].forEach((l, k) => f.get(hyper).v128Load32Splat(4 * k).set(l));
      const hasMomentum = f.local(I32);
      const nesterov = f.local(I32);
      const first = f.local(I32);
      const hasWd = f.local(I32);
      f.get(flags).i32Const(1).i32And().set(hasMomentum);
      f.get(flags).i32Const(2).i32And().set(nesterov);
      f.get(flags).i32Const(4).i32And().set(first);
      f.get(flags).i32Const(8).i32And().set(hasWd);
      const p = f.local(V128);
      const g = f.local(V128);
      const b = f.local(V128);
      const dir = f.local(V128);
      chunkLoop(f, counter, chunk, n, (lo, hi) => {
        laneLoop(f, lo, hi, 4, (i, four) => {
          load(f, param, i, four);
          f.set(p);
          load(f, grad, i, four);
          f.set(g);
          f.get(hasWd).if(() => f.get(g).get(wd).get(p).f32x4Mul().f32x4Add().set(g));
          f.get(hasMomentum).ifElse(() => {
            f.get(first).ifElse(() => f.get(g).set(b), () => {
              f.get(mom);
              load(f, buffer, i, four);
              f.f32x4Mul().get(keep).get(g).f32x4Mul().f32x4Add().set(b);
            });
            store(f, buffer, i, b, four);
            f.get(nesterov).ifElse(
              () => f.get(g).get(mom).get(b).f32x4Mul().f32x4Add().set(dir),
              () => f.get(b).set(dir),
            );
          }, () => f.get(g).set(dir));
          f.get(p).get(lr).get(dir).f32x4Mul().f32x4Sub().set(p);
          store(f, param, i, p, four);
        });
      });
    },
  );

  mod.func(
    "adam",
    new Array(9).fill(I32),
    [],
    (f, [param, grad, expAvg, expAvgSq, n, hyper, flags, chunk, counter]) => {
      const h: Local[] = [];
      for (let k = 0; k < 9; k++) {
        const l = f.local(V128);
        f.get(hyper).v128Load64Splat(8 * k).set(l);
        h.push(l);
      }
      const [decay, l2, beta1, keep1, beta2, keep2, bc2, eps, stepSize] = h;
      const hasDecay = f.local(I32);
      const hasL2 = f.local(I32);
      f.get(flags).i32Const(1).i32And().set(hasDecay);
      f.get(flags).i32Const(2).i32And().set(hasL2);
      const p = f.local(V128);
      const g = f.local(V128);
      const m = f.local(V128);
      const v = f.local(V128);
      const den = f.local(V128);
      chunkLoop(f, counter, chunk, n, (lo, hi) => {
        laneLoop(f, lo, hi, 2, (i, two) => {
          load2(f, param, i, two);
          f.set(p);
          f.get(hasDecay).if(() => {
            f.get(p).get(decay).f64x2Mul().set(p);
            fround(f, p);
          });
          load2(f, grad, i, two);
          f.set(g);
          f.get(hasL2).if(() => {
            f.get(g).get(l2).get(p).f64x2Mul().f64x2Add().set(g);
            fround(f, g);
          });
          f.get(beta1);
          load2(f, expAvg, i, two);
          f.f64x2Mul().get(keep1).get(g).f64x2Mul().f64x2Add().set(m);
          store2(f, expAvg, i, m, two);
          fround(f, m);
          f.get(beta2);
          load2(f, expAvgSq, i, two);
          f.f64x2Mul().get(keep2).get(g).f64x2Mul().get(g).f64x2Mul().f64x2Add().set(v);
          store2(f, expAvgSq, i, v, two);
          fround(f, v);
          f.get(v).f64x2Sqrt().get(bc2).f64x2Div().get(eps).f64x2Add().set(den);
          fround(f, den);
          f.get(p).get(stepSize).get(m).get(den).f64x2Div().f64x2Mul().f64x2Sub().set(p);
          store2(f, param, i, p, two);
        });
      });
    },
  );
}
