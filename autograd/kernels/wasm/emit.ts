/**
 * Small structured-code helpers shared by the kernel emitters (`kernels.ts`, `conv_kernels.ts`,
 * `elementwise_kernels.ts`): loops, min, local increments and the work-sharing chunk loop.
 *
 * @module
 */

import { type FunctionBuilder as F, I32, type Local } from "./encoder.ts";

/** Emits `dst = min(a, b)` for i32 locals/values pushed by the callbacks. */
export function setMin(f: F, dst: Local, a: () => void, b: () => void): void {
  a();
  b();
  a();
  b();
  f.i32LtS().select().set(dst);
}

/** Emits `local += delta` (a constant). */
export function addConst(f: F, l: Local, delta: number): void {
  f.get(l).i32Const(delta).i32Add().set(l);
}

/** Emits `local += other`. */
export function addLocal(f: F, l: Local, other: Local): void {
  f.get(l).get(other).i32Add().set(l);
}

/** Emits `while (cond) body` where cond pushes an i32. */
export function whileLoop(f: F, cond: () => void, body: () => void): void {
  f.block((exit) => {
    f.loop((top) => {
      cond();
      f.i32Eqz().brIf(exit);
      body();
      f.br(top);
    });
  });
}

/** Pushes min(a, b) for i32 values pushed by the callbacks. */
export function setMinPush(f: F, a: () => void, b: () => void): void {
  a();
  b();
  a();
  b();
  f.i32LtS().select();
}

/**
 * Emits the work-sharing loop of every exported kernel: claim chunk after chunk of `chunk` units
 * out of `total` from the shared counter at address `counter` (i32.atomic.rmw.add) until none
 * is left, running `body(lo, hi)` on each. Every thread of a job runs the same call, so a thread
 * that is late (asleep, descheduled) simply finds less work.
 */
export function chunkLoop(
  f: F,
  counter: Local,
  chunk: Local,
  total: Local,
  body: (lo: Local, hi: Local) => void,
): void {
  const lo = f.local(I32);
  const hi = f.local(I32);
  f.block((exit) => {
    f.loop((top) => {
      f.get(counter).i32Const(1).i32AtomicRmwAdd().get(chunk).i32Mul().tee(lo);
      f.get(total).i32GeS().brIf(exit);
      setMin(f, hi, () => f.get(lo).get(chunk).i32Add(), () => f.get(total));
      body(lo, hi);
      f.br(top);
    });
  });
}

/** Emits `for (i = from; i < to; i += step) body` over an i32 local `i` (from/to push values). */
export function forRange(
  f: F,
  i: Local,
  from: () => void,
  to: () => void,
  step: number,
  body: () => void,
): void {
  from();
  f.set(i);
  whileLoop(f, () => {
    f.get(i);
    to();
    f.i32LtS();
  }, () => {
    body();
    addConst(f, i, step);
  });
}

/**
 * Emits the element loop over [lo, hi): `vec(i)` for each whole vector (byte offset i), then
 * `one(i)` for each leftover element. `i` is a byte offset from the operands' starts.
 */
export function elementLoop(
  f: F,
  lo: Local,
  hi: Local,
  vec: (i: Local) => void,
  one: (i: Local) => void,
): void {
  const i = f.local(I32);
  const end = f.local(I32);
  f.get(lo).i32Const(2).i32Shl().set(i);
  f.get(hi).i32Const(2).i32Shl().set(end);
  whileLoop(f, () => f.get(i).i32Const(16).i32Add().get(end).i32LeS(), () => {
    vec(i);
    addConst(f, i, 16);
  });
  whileLoop(f, () => f.get(i).get(end).i32LtS(), () => {
    one(i);
    addConst(f, i, 4);
  });
}
