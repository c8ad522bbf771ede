/**
 * The GEMM kernels, written as TypeScript that emits WebAssembly (see `encoder.ts`).
 *
 * Every pointer argument is a byte address in the shared memory and every stride is in bytes.
 * Exported functions (the JS driver in `gemm.ts` and the workers call them):
 *
 * - `packAB(...)`: copies panels of op(A) and op(B) into the packed layout the micro-kernel
 *   reads (zero-padded to whole panels).
 * - `compute(...)`: the blocked loop nest over K blocks, M blocks and N/M panels, calling the
 *   register-blocked micro-kernel (`mr`×8 accumulators, kept in v128 locals).
 * - `dot(...)`, `dotRow(...)`: C = A·Bᵀ on unpacked operands whose rows both run along K, as
 *   tiles of vector dot products (dotRows × dotCols, or 1 × gemvCols with two accumulators per
 *   element for m = 1): the Linear forward layout, narrow N included.
 * - `gemvN(...)`: m = 1 with B stored [k, n]: x·B straight off the unpacked rows of B.
 *
 * Every export is a work-sharing job (see {@link KernelExports}): threads claim chunks with an
 * atomic counter in the shared memory, so a late or descheduled thread just does less.
 *
 * Rounding contract, which makes results independent of how work is split between threads:
 * every element of C is produced by the same sequence of operations whichever tile (full or edge)
 * or thread computes it. In the packed path and gemvN an element is Σ over K blocks (block sums
 * start from zero, accumulate with madd in k order, then are added to C); in the dot path lanes
 * accumulate k ≡ lane (mod 4), the K tail goes to lane 0, and lanes are summed (l0+l2)+(l1+l3);
 * `dotRow` (m = 1) uses two accumulators per element over k mod 8 (see `emitGemvDotTile`).
 * The conv, elementwise and optimizer kernels (`conv_kernels.ts`, `elementwise_kernels.ts`,
 * `optim_kernels.ts`) are emitted into the same module and follow the same rule.
 * `relaxed_madd` may be fused on one CPU and not on another, so bits can differ between
 * machines, but not between threads or runs on one machine (V8's baseline and optimising
 * compilers were checked to agree).
 *
 * @module
 */

import { F32, type FunctionBuilder, I32, type Local, ModuleBuilder, V128 } from "./encoder.ts";
import { addConst, addLocal, chunkLoop, setMin, setMinPush, whileLoop } from "./emit.ts";
import { CONV_JOB_NAMES, emitConvKernels } from "./conv_kernels.ts";
import { ELEMENTWISE_JOB_NAMES, emitElementwiseKernels } from "./elementwise_kernels.ts";
import { emitOptimKernels, OPTIM_JOB_NAMES } from "./optim_kernels.ts";
import { emitQuantizedKernels, QUANTIZED_JOB_NAMES } from "./quantized_kernels.ts";

/** Width of the micro-kernel tile in columns of C (two f32x4 accumulators per row). */
export const NR = 8;

/** Which instructions and tile sizes a kernel module is generated for. */
export interface KernelConfig {
  /** Use `f32x4.relaxed_madd` (one instruction, fused where the CPU has FMA) instead of mul+add. */
  relaxed: boolean;
  /** Rows of the packed micro-kernel tile (accumulators = mr × 2 v128). */
  mr: number;
  /**
   * The micro-kernel reads the first four A values of a k step with one v128 load and splats
   * them by shuffles (the rest by load-splats), instead of one load-splat each.
   */
  splatFromVector: boolean;
  /** Rows of A per dot-product tile (the dot path keeps dotRows × dotCols accumulators). */
  dotRows: number;
  /** Rows of B per dot-product tile. */
  dotCols: number;
  /** Rows of B per tile in the m = 1 dot path. */
  gemvCols: number;
}

/**
 * The configuration for a runtime with relaxed SIMD: 5×8 packed tile, 6×2 dot tile. A 6×8 tile
 * would leave no register for the vector of four A rows that the tile splats from (see
 * `emitTile`), and spilling costs more than the sixth row gains.
 */
export const RELAXED_CONFIG: KernelConfig = {
  relaxed: true,
  mr: 5,
  splatFromVector: true,
  dotRows: 6,
  dotCols: 2,
  gemvCols: 4,
};

/**
 * The fallback without relaxed SIMD: mul+add needs a temporary register per update, so the dot
 * tile shrinks to 4×2 to keep every accumulator in a vector register, and the 5×8 packed tile
 * loads A by load-splats only.
 */
export const PLAIN_CONFIG: KernelConfig = {
  relaxed: false,
  mr: 5,
  splatFromVector: false,
  dotRows: 4,
  dotCols: 2,
  gemvCols: 4,
};

/** Names of the exported kernel functions, in the order workers index them. */
export const JOB_NAMES = [
  "packAB",
  "compute",
  "dot",
  "dotRow",
  "gemvN",
  ...CONV_JOB_NAMES,
  ...ELEMENTWISE_JOB_NAMES,
  ...OPTIM_JOB_NAMES,
  ...QUANTIZED_JOB_NAMES,
] as const;

/** The name of one exported kernel function (a job the worker pool can run). */
export type JobName = typeof JOB_NAMES[number];

/**
 * The functions a kernel instance exports (all arguments are i32; pointers are byte addresses,
 * strides are in bytes). Each is a work-sharing job: every participating thread makes the same
 * call, and chunks of `chunk` units are handed out by an atomic increment of the i32 at `counter`
 * (which the caller zeroes before the job). Results do not depend on who computes which chunk.
 */
export interface KernelExports {
  /**
   * Packs op(A) into panels of mr rows and op(B) into panels of 8 columns (units: A panels then
   * B panels). `aKContig`/`bKContig` say the stored rows run along K (A untransposed, B
   * transposed).
   */
  packAB(
    aSrc: number,
    lda: number,
    aKContig: number,
    aDst: number,
    m: number,
    bSrc: number,
    ldb: number,
    bKContig: number,
    bDst: number,
    n: number,
    k: number,
    kcMax: number,
    chunk: number,
    counter: number,
  ): void;
  /**
   * The packed-panel GEMM; units are M panels when `byRows`, else N panels.
   */
  compute(
    aPack: number,
    bPack: number,
    c: number,
    ldc: number,
    m: number,
    n: number,
    k: number,
    kcMax: number,
    mcPanels: number,
    byRows: number,
    chunk: number,
    counter: number,
    beta: number,
  ): void;
  /** C = A·Bᵀ (+ C) by dot-product tiles; units are rows of C when `byRows`, else columns. */
  dot: DotJob;
  /** Same contract as `dot`, with 1×gemvCols tiles for m = 1. */
  dotRow: DotJob;
  /** m = 1, B stored [k, n]: c = x·B (+ c); units are columns. */
  gemvN(
    x: number,
    b: number,
    ldb: number,
    c: number,
    n: number,
    k: number,
    kcMax: number,
    chunk: number,
    counter: number,
    beta: number,
  ): void;
}

/** The signature of the `dot` and `dotRow` exports. */
export type DotJob = (
  a: number,
  lda: number,
  b: number,
  ldb: number,
  c: number,
  ldc: number,
  k: number,
  m: number,
  n: number,
  byRows: number,
  chunk: number,
  counter: number,
  beta: number,
) => void;

type F = FunctionBuilder;

/** Emits `acc = a·b + acc` for the two v128 operands already on the stack. */
function madd(f: F, cfg: KernelConfig, acc: Local): void {
  if (cfg.relaxed) f.get(acc).f32x4RelaxedMadd().set(acc);
  else f.f32x4Mul().get(acc).f32x4Add().set(acc);
}

/** Emits the micro-kernel: one mr×NR tile of C from packed panels over kc steps. */
function emitTile(mod: ModuleBuilder, cfg: KernelConfig): number {
  const MR = cfg.mr;
  const NV = NR / 4;
  const UNROLL = 4;
  return mod.func(
    null,
    [I32, I32, I32, I32, I32, I32, I32, I32],
    [],
    (f, [a, b, kc, c, ldc, accumulate, mr, nr]) => {
      const acc: Local[][] = [];
      for (let i = 0; i < MR; i++) {
        acc.push([]);
        for (let v = 0; v < NV; v++) acc[i].push(f.local(V128));
      }
      const bv: Local[] = [];
      for (let v = 0; v < NV; v++) bv.push(f.local(V128));
      const a4 = f.local(V128);
      const av = f.local(V128);
      for (const row of acc) for (const x of row) f.v128Zero().set(x);

      // One k step of the rank-1 update, reading at a static offset so unrolling is free. The
      // first four rows of A come in with one v128 load and are splatted by shuffles; only the
      // rows after them are load-splats. Deno runs wasm without a trap handler, so every load
      // carries an explicit bounds check (a compare, a branch and an address computation);
      // loading A's lanes one by one made those, not the FMAs, the limit on 6-wide x64 cores.
      // mul+add has no such headroom (it needs a temporary as well), and measured 3% slower
      // with the shuffles, so the plain configuration keeps its load-splats.
      const splatFromVector = cfg.splatFromVector && MR >= 4;
      const step = (u: number): void => {
        for (let v = 0; v < NV; v++) f.get(b).v128Load((u * NR + 4 * v) * 4).set(bv[v]);
        if (splatFromVector) f.get(a).v128Load(u * MR * 4).set(a4);
        for (let i = 0; i < MR; i++) {
          if (splatFromVector && i < 4) f.get(a4).get(a4).i32x4Shuffle([i, i, i, i]).set(av);
          else f.get(a).v128Load32Splat((u * MR + i) * 4).set(av);
          for (let v = 0; v < NV; v++) {
            f.get(av).get(bv[v]);
            madd(f, cfg, acc[i][v]);
          }
        }
      };
      whileLoop(f, () => f.get(kc).i32Const(UNROLL).i32GeS(), () => {
        for (let u = 0; u < UNROLL; u++) step(u);
        addConst(f, a, UNROLL * MR * 4);
        addConst(f, b, UNROLL * NR * 4);
        addConst(f, kc, -UNROLL);
      });
      whileLoop(f, () => f.get(kc).i32Const(0).i32GtS(), () => {
        step(0);
        addConst(f, a, MR * 4);
        addConst(f, b, NR * 4);
        addConst(f, kc, -1);
      });

      // Full tile: vector stores straight into C.
      f.get(mr).i32Const(MR).i32Eq().get(nr).i32Const(NR).i32Eq().i32And();
      f.ifElse(() => {
        f.get(accumulate);
        f.ifElse(() => {
          for (let i = 0; i < MR; i++) {
            for (let v = 0; v < NV; v++) {
              f.get(c).get(c).v128Load(v * 16).get(acc[i][v]).f32x4Add().v128Store(v * 16);
            }
            if (i < MR - 1) addLocal(f, c, ldc);
          }
        }, () => {
          for (let i = 0; i < MR; i++) {
            for (let v = 0; v < NV; v++) f.get(c).get(acc[i][v]).v128Store(v * 16);
            if (i < MR - 1) addLocal(f, c, ldc);
          }
        });
      }, () => {
        // Edge tile: lane by lane, only what lies inside C (same f32 add as the vector path).
        const val = f.local(F32);
        for (let i = 0; i < MR; i++) {
          f.get(mr).i32Const(i).i32GtS();
          f.if(() => {
            for (let col = 0; col < NR; col++) {
              f.get(nr).i32Const(col).i32GtS();
              f.if(() => {
                f.get(acc[i][col >> 2]).f32x4ExtractLane(col & 3).set(val);
                f.get(accumulate).if(() => f.get(c).f32Load(col * 4).get(val).f32Add().set(val));
                f.get(c).get(val).f32Store(col * 4);
              });
            }
          });
          if (i < MR - 1) addLocal(f, c, ldc);
        }
      });
    },
  );
}

/**
 * Packs one full panel (all W rows present) from a source whose rows are contiguous in K: four
 * K steps at a time, 4×4 blocks are transposed with shuffles so every store is a vector store
 * (W mod 4 leftover rows go out as lane pairs or single lanes).
 */
function emitTransposedPanel(
  f: F,
  W: number,
  src: Local,
  ld: Local,
  d0: Local,
  k0: Local,
  kc: Local,
  panel: Local,
): void {
  const rows: Local[] = [];
  for (let w = 0; w < W; w++) {
    const r = f.local(I32);
    f.get(src).get(d0).i32Const(w).i32Add().get(ld).i32Mul().i32Add()
      .get(k0).i32Const(2).i32Shl().i32Add().set(r);
    rows.push(r);
  }
  const p = f.local(I32);
  const kk = f.local(I32);
  const v = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const t = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  f.get(panel).set(p);
  f.i32Const(0).set(kk);
  whileLoop(f, () => f.get(kk).i32Const(4).i32Add().get(kc).i32LeS(), () => {
    const groups = Math.floor(W / 4);
    for (let g = 0; g < groups; g++) {
      for (let l = 0; l < 4; l++) f.get(rows[4 * g + l]).v128Load().set(v[l]);
      // v_l = row l, k steps 0..3  →  output l = k step l, rows 0..3
      f.get(v[0]).get(v[1]).i32x4Shuffle([0, 4, 1, 5]).set(t[0]);
      f.get(v[0]).get(v[1]).i32x4Shuffle([2, 6, 3, 7]).set(t[1]);
      f.get(v[2]).get(v[3]).i32x4Shuffle([0, 4, 1, 5]).set(t[2]);
      f.get(v[2]).get(v[3]).i32x4Shuffle([2, 6, 3, 7]).set(t[3]);
      const out: [Local, Local, [number, number, number, number]][] = [
        [t[0], t[2], [0, 1, 4, 5]],
        [t[0], t[2], [2, 3, 6, 7]],
        [t[1], t[3], [0, 1, 4, 5]],
        [t[1], t[3], [2, 3, 6, 7]],
      ];
      out.forEach(([x, y, lanes], l) => {
        f.get(p).get(x).get(y).i32x4Shuffle(lanes).v128Store((l * W + 4 * g) * 4);
      });
    }
    const base = 4 * groups;
    const rem = W - base;
    if (rem === 2) {
      f.get(rows[base]).v128Load().set(v[0]);
      f.get(rows[base + 1]).v128Load().set(v[1]);
      f.get(v[0]).get(v[1]).i32x4Shuffle([0, 4, 1, 5]).set(t[0]);
      f.get(v[0]).get(v[1]).i32x4Shuffle([2, 6, 3, 7]).set(t[1]);
      for (let l = 0; l < 4; l++) {
        f.get(p).get(t[l >> 1]).v128Store64Lane(l & 1, (l * W + base) * 4);
      }
    } else {
      for (let r = 0; r < rem; r++) {
        f.get(rows[base + r]).v128Load().set(v[0]);
        for (let l = 0; l < 4; l++) {
          f.get(p).get(v[0]).f32x4ExtractLane(l).f32Store((l * W + base + r) * 4);
        }
      }
    }
    for (const r of rows) addConst(f, r, 16);
    addConst(f, p, 16 * W);
    addConst(f, kk, 4);
  });
  whileLoop(f, () => f.get(kk).get(kc).i32LtS(), () => {
    for (let w = 0; w < W; w++) {
      f.get(p).get(rows[w]).f32Load().f32Store(w * 4);
      addConst(f, rows[w], 4);
    }
    addConst(f, p, 4 * W);
    addConst(f, kk, 1);
  });
}

/**
 * Packs one panel from a source whose rows are contiguous in K, row by row: rows past the end
 * of the operand (w ≥ wv) become zeros.
 */
function emitRowByRowPanel(
  f: F,
  W: number,
  src: Local,
  ld: Local,
  d0: Local,
  k0: Local,
  kc: Local,
  panel: Local,
  wv: Local,
): void {
  const w = f.local(I32);
  const p = f.local(I32);
  const s = f.local(I32);
  const kk = f.local(I32);
  f.i32Const(0).set(w);
  whileLoop(f, () => f.get(w).i32Const(W).i32LtS(), () => {
    f.get(panel).get(w).i32Const(2).i32Shl().i32Add().set(p);
    f.i32Const(0).set(kk);
    f.get(w).get(wv).i32LtS();
    f.ifElse(() => {
      f.get(src).get(d0).get(w).i32Add().get(ld).i32Mul().i32Add()
        .get(k0).i32Const(2).i32Shl().i32Add().set(s);
      // Four at a time: one v128 load, four scalar stores.
      whileLoop(f, () => f.get(kk).i32Const(4).i32Add().get(kc).i32LeS(), () => {
        const t = f.local(V128);
        f.get(s).v128Load().set(t);
        for (let l = 0; l < 4; l++) f.get(p).get(t).f32x4ExtractLane(l).f32Store(l * W * 4);
        addConst(f, s, 16);
        addConst(f, p, 16 * W);
        addConst(f, kk, 4);
      });
      whileLoop(f, () => f.get(kk).get(kc).i32LtS(), () => {
        f.get(p).get(s).f32Load().f32Store();
        addConst(f, s, 4);
        addConst(f, p, 4 * W);
        addConst(f, kk, 1);
      });
    }, () => {
      whileLoop(f, () => f.get(kk).get(kc).i32LtS(), () => {
        f.get(p).f32Const(0).f32Store();
        addConst(f, p, 4 * W);
        addConst(f, kk, 1);
      });
    });
    addConst(f, w, 1);
  });
}

/**
 * Emits a packer for panels of width `W` of a logical [K, D] operand X (D = m for A, n for B).
 * `kContig` selects the source layout: X[kk][d] at src + d·ld + 4·kk (rows contiguous in K, e.g.
 * A untransposed) or at src + kk·ld + 4·d (contiguous in D, e.g. B untransposed). The packed
 * block of K rows k0..k0+kc starts at dst + 4·k0·Dpad; panel q of it holds kc × W floats.
 */
function emitPack(mod: ModuleBuilder, W: number, kContig: boolean): number {
  return mod.func(
    null,
    [I32, I32, I32, I32, I32, I32, I32, I32],
    [],
    (f, [src, ld, dst, D, K, KC, q0, q1]) => {
      const dpad = f.local(I32);
      const k0 = f.local(I32);
      const kc = f.local(I32);
      const q = f.local(I32);
      const d0 = f.local(I32);
      const wv = f.local(I32);
      const panel = f.local(I32);
      const s = f.local(I32);
      const p = f.local(I32);
      const kk = f.local(I32);
      const w = f.local(I32);
      // dpad = ceil(D / W) · W
      f.get(D).i32Const(W - 1).i32Add().i32Const(W).i32DivU().i32Const(W).i32Mul().set(dpad);
      f.i32Const(0).set(k0);
      whileLoop(f, () => f.get(k0).get(K).i32LtS(), () => {
        setMin(f, kc, () => f.get(KC), () => f.get(K).get(k0).i32Sub());
        f.get(q0).set(q);
        whileLoop(f, () => f.get(q).get(q1).i32LtS(), () => {
          // panel = dst + 4·(k0·dpad + q·W·kc)
          f.get(dst).get(k0).get(dpad).i32Mul().get(q).i32Const(W).i32Mul().get(kc).i32Mul()
            .i32Add()
            .i32Const(2).i32Shl().i32Add().set(panel);
          f.get(q).i32Const(W).i32Mul().set(d0);
          setMin(f, wv, () => f.i32Const(W), () => f.get(D).get(d0).i32Sub());
          if (kContig) {
            f.get(wv).i32Const(W).i32Eq();
            f.ifElse(() => emitTransposedPanel(f, W, src, ld, d0, k0, kc, panel), () => {
              emitRowByRowPanel(f, W, src, ld, d0, k0, kc, panel, wv);
            });
          } else {
            f.get(src).get(k0).get(ld).i32Mul().i32Add().get(d0).i32Const(2).i32Shl().i32Add().set(
              s,
            );
            f.get(panel).set(p);
            f.i32Const(0).set(kk);
            f.get(wv).i32Const(W).i32Eq();
            f.ifElse(() => {
              whileLoop(f, () => f.get(kk).get(kc).i32LtS(), () => {
                let off = 0;
                for (; off + 4 <= W; off += 4) f.get(p).get(s).v128Load(off * 4).v128Store(off * 4);
                for (; off < W; off++) f.get(p).get(s).f32Load(off * 4).f32Store(off * 4);
                addLocal(f, s, ld);
                addConst(f, p, 4 * W);
                addConst(f, kk, 1);
              });
            }, () => {
              whileLoop(f, () => f.get(kk).get(kc).i32LtS(), () => {
                let off = 0;
                for (; off + 4 <= W; off += 4) f.get(p).v128Zero().v128Store(off * 4);
                for (; off < W; off++) f.get(p).f32Const(0).f32Store(off * 4);
                f.i32Const(0).set(w);
                whileLoop(f, () => f.get(w).get(wv).i32LtS(), () => {
                  f.get(p).get(w).i32Const(2).i32Shl().i32Add();
                  f.get(s).get(w).i32Const(2).i32Shl().i32Add().f32Load();
                  f.f32Store();
                  addConst(f, w, 1);
                });
                addLocal(f, s, ld);
                addConst(f, p, 4 * W);
                addConst(f, kk, 1);
              });
            });
          }
          addConst(f, q, 1);
        });
        addLocal(f, k0, kc);
      });
    },
  );
}

/**
 * Emits one dot-product tile of `ra` rows of A by `rb` rows of B (both contiguous in K). Every
 * element follows the same rounding sequence whatever ra and rb are (see the module comment).
 */
function emitDotTile(mod: ModuleBuilder, cfg: KernelConfig, ra: number, rb: number): number {
  return mod.func(
    null,
    [I32, I32, I32, I32, I32, I32, I32, I32],
    [],
    (f, [a, lda, b, ldb, c, ldc, k, beta]) => {
      const ap: Local[] = [];
      const bp: Local[] = [];
      for (let i = 0; i < ra; i++) ap.push(f.local(I32));
      for (let j = 0; j < rb; j++) bp.push(f.local(I32));
      const acc: Local[][] = [];
      for (let i = 0; i < ra; i++) {
        acc.push([]);
        for (let j = 0; j < rb; j++) acc[i].push(f.local(V128));
      }
      const bv: Local[] = [];
      for (let j = 0; j < rb; j++) bv.push(f.local(V128));
      const av = f.local(V128);
      for (let i = 0; i < ra; i++) {
        f.get(a);
        if (i > 0) f.get(lda).i32Const(i).i32Mul().i32Add();
        f.set(ap[i]);
      }
      for (let j = 0; j < rb; j++) {
        f.get(b);
        if (j > 0) f.get(ldb).i32Const(j).i32Mul().i32Add();
        f.set(bp[j]);
      }
      for (const row of acc) for (const x of row) f.v128Zero().set(x);

      const step = (off: number, zeroLanes: boolean): void => {
        for (let j = 0; j < rb; j++) {
          f.get(bp[j]);
          if (zeroLanes) f.v128Load32Zero(off);
          else f.v128Load(off);
          f.set(bv[j]);
        }
        for (let i = 0; i < ra; i++) {
          f.get(ap[i]);
          if (zeroLanes) f.v128Load32Zero(off);
          else f.v128Load(off);
          f.set(av);
          for (let j = 0; j < rb; j++) {
            f.get(av).get(bv[j]);
            madd(f, cfg, acc[i][j]);
          }
        }
      };
      const advance = (bytes: number): void => {
        for (const p of ap) addConst(f, p, bytes);
        for (const p of bp) addConst(f, p, bytes);
      };
      whileLoop(f, () => f.get(k).i32Const(8).i32GeS(), () => {
        step(0, false);
        step(16, false);
        advance(32);
        addConst(f, k, -8);
      });
      f.get(k).i32Const(4).i32GeS();
      f.if(() => {
        step(0, false);
        advance(16);
        addConst(f, k, -4);
      });
      whileLoop(f, () => f.get(k).i32Const(0).i32GtS(), () => {
        step(0, true);
        advance(4);
        addConst(f, k, -1);
      });

      const t = f.local(V128);
      const s = f.local(F32);
      for (let i = 0; i < ra; i++) {
        for (let j = 0; j < rb; j++) {
          const x = acc[i][j];
          f.get(x).get(x).get(x).i32x4Shuffle([2, 3, 0, 1]).f32x4Add().set(t);
          f.get(t).get(t).get(t).i32x4Shuffle([1, 0, 3, 2]).f32x4Add().f32x4ExtractLane(0).set(s);
          f.get(beta).if(() => f.get(c).f32Load(j * 4).get(s).f32Add().set(s));
          f.get(c).get(s).f32Store(j * 4);
        }
        if (i < ra - 1) addLocal(f, c, ldc);
      }
    },
  );
}

/**
 * Emits the m = 1 dot tile: x (one row of A) against `rb` rows of B, with two accumulators per
 * row (K steps of 8 floats: the first four lanes into one, the next four into the other) so that
 * twice as many independent multiply-add chains hide the instruction latency. Rounding contract
 * of this path: lane l of accumulator h sums k ≡ 4h + l (mod 8) in k order (a K tail of 4 to 7
 * goes to the first accumulator, the last k mod 4 elements to its lane 0), then
 * s = acc0 + acc1 and lanes are summed (l0 + l2) + (l1 + l3); the same for every row, tile
 * width and thread.
 */
function emitGemvDotTile(mod: ModuleBuilder, cfg: KernelConfig, rb: number): number {
  return mod.func(
    null,
    [I32, I32, I32, I32, I32, I32, I32, I32],
    [],
    (f, [a, _lda, b, ldb, c, _ldc, k, beta]) => {
      const bp: Local[] = [];
      for (let j = 0; j < rb; j++) bp.push(f.local(I32));
      const acc: Local[][] = [];
      for (let j = 0; j < rb; j++) acc.push([f.local(V128), f.local(V128)]);
      const a0 = f.local(V128);
      const a1 = f.local(V128);
      const ap = f.local(I32);
      f.get(a).set(ap);
      for (let j = 0; j < rb; j++) {
        f.get(b);
        if (j > 0) f.get(ldb).i32Const(j).i32Mul().i32Add();
        f.set(bp[j]);
        f.v128Zero().set(acc[j][0]);
        f.v128Zero().set(acc[j][1]);
      }
      const advance = (bytes: number): void => {
        addConst(f, ap, bytes);
        for (const p of bp) addConst(f, p, bytes);
      };
      whileLoop(f, () => f.get(k).i32Const(8).i32GeS(), () => {
        f.get(ap).v128Load().set(a0);
        f.get(ap).v128Load(16).set(a1);
        for (let j = 0; j < rb; j++) {
          f.get(a0).get(bp[j]).v128Load();
          madd(f, cfg, acc[j][0]);
          f.get(a1).get(bp[j]).v128Load(16);
          madd(f, cfg, acc[j][1]);
        }
        advance(32);
        addConst(f, k, -8);
      });
      f.get(k).i32Const(4).i32GeS();
      f.if(() => {
        f.get(ap).v128Load().set(a0);
        for (let j = 0; j < rb; j++) {
          f.get(a0).get(bp[j]).v128Load();
          madd(f, cfg, acc[j][0]);
        }
        advance(16);
        addConst(f, k, -4);
      });
      whileLoop(f, () => f.get(k).i32Const(0).i32GtS(), () => {
        f.get(ap).v128Load32Zero().set(a0);
        for (let j = 0; j < rb; j++) {
          f.get(a0).get(bp[j]).v128Load32Zero();
          madd(f, cfg, acc[j][0]);
        }
        advance(4);
        addConst(f, k, -1);
      });
      const t = f.local(V128);
      const s = f.local(F32);
      for (let j = 0; j < rb; j++) {
        f.get(acc[j][0]).get(acc[j][1]).f32x4Add().set(t);
        f.get(t).get(t).get(t).i32x4Shuffle([2, 3, 0, 1]).f32x4Add().set(t);
        f.get(t).get(t).get(t).i32x4Shuffle([1, 0, 3, 2]).f32x4Add().f32x4ExtractLane(0).set(s);
        f.get(beta).if(() => f.get(c).f32Load(j * 4).get(s).f32Add().set(s));
        f.get(c).get(s).f32Store(j * 4);
      }
    },
  );
}

/** Emits the loop of dot tiles of at most R×C over rows [m0, m1) × columns [n0, n1) of C. */
function emitDotRange(
  mod: ModuleBuilder,
  cfg: KernelConfig,
  R: number,
  C: number,
  tile: (ra: number, rb: number) => number = (ra, rb) => emitDotTile(mod, cfg, ra, rb),
): number {
  const tiles: number[][] = [];
  for (let ra = 1; ra <= R; ra++) {
    tiles.push([]);
    for (let rb = 1; rb <= C; rb++) tiles[ra - 1].push(tile(ra, rb));
  }
  return mod.func(
    null,
    [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32],
    [],
    (f, [a, lda, b, ldb, c, ldc, k, m0, m1, n0, n1, beta]) => {
      const i = f.local(I32);
      const j = f.local(I32);
      const ra = f.local(I32);
      const rb = f.local(I32);
      f.get(n0).set(j);
      whileLoop(f, () => f.get(j).get(n1).i32LtS(), () => {
        setMin(f, rb, () => f.i32Const(C), () => f.get(n1).get(j).i32Sub());
        f.get(m0).set(i);
        whileLoop(f, () => f.get(i).get(m1).i32LtS(), () => {
          setMin(f, ra, () => f.i32Const(R), () => f.get(m1).get(i).i32Sub());
          const args = (): void => {
            f.get(a).get(i).get(lda).i32Mul().i32Add().get(lda);
            f.get(b).get(j).get(ldb).i32Mul().i32Add().get(ldb);
            f.get(c).get(i).get(ldc).i32Mul().i32Add().get(j).i32Const(2).i32Shl().i32Add().get(
              ldc,
            );
            f.get(k).get(beta);
          };
          // The full tile first (the common case), then every edge shape.
          f.block((done) => {
            for (let x = R; x >= 1; x--) {
              for (let y = C; y >= 1; y--) {
                f.get(ra).i32Const(x).i32Eq().get(rb).i32Const(y).i32Eq().i32And();
                f.if(() => {
                  args();
                  f.call(tiles[x - 1][y - 1]).br(done);
                });
              }
            }
          });
          addConst(f, i, R);
        });
        addConst(f, j, C);
      });
    },
  );
}

/**
 * Emits the gemvN range: c[j0..j1) (=|+=) x·B[:, j0..j1) for B stored [k, n], straight off B's rows, in
 * column groups of 16, then 4, then single columns (each in lane 0 of a vector so that it rounds
 * exactly like the others). K blocks of kcMax follow the packed path's order.
 */
function emitGemvRange(mod: ModuleBuilder, cfg: KernelConfig): number {
  return mod.func(
    null,
    [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32],
    [],
    (f, [x, b, ldb, c, _n, k, kcMax, j0, j1, beta]) => {
      const k0 = f.local(I32);
      const kc = f.local(I32);
      const accum = f.local(I32);
      const j = f.local(I32);
      const xp = f.local(I32);
      const bp = f.local(I32);
      const kk = f.local(I32);
      const xv = f.local(V128);
      const acc: Local[] = [];
      for (let v = 0; v < 4; v++) acc.push(f.local(V128));

      const group = (vectors: number, singleLane: boolean): void => {
        for (let v = 0; v < vectors; v++) f.v128Zero().set(acc[v]);
        f.get(x).get(k0).i32Const(2).i32Shl().i32Add().set(xp);
        f.get(b).get(k0).get(ldb).i32Mul().i32Add().get(j).i32Const(2).i32Shl().i32Add().set(bp);
        f.i32Const(0).set(kk);
        whileLoop(f, () => f.get(kk).get(kc).i32LtS(), () => {
          f.get(xp).v128Load32Splat().set(xv);
          for (let v = 0; v < vectors; v++) {
            f.get(xv).get(bp);
            if (singleLane) f.v128Load32Zero();
            else f.v128Load(v * 16);
            madd(f, cfg, acc[v]);
          }
          addConst(f, xp, 4);
          addLocal(f, bp, ldb);
          addConst(f, kk, 1);
        });
        const cp = f.local(I32);
        f.get(c).get(j).i32Const(2).i32Shl().i32Add().set(cp);
        if (singleLane) {
          const s = f.local(F32);
          f.get(acc[0]).f32x4ExtractLane(0).set(s);
          f.get(accum).if(() => f.get(cp).f32Load().get(s).f32Add().set(s));
          f.get(cp).get(s).f32Store();
        } else {
          f.get(accum);
          f.ifElse(() => {
            for (let v = 0; v < vectors; v++) {
              f.get(cp).get(cp).v128Load(v * 16).get(acc[v]).f32x4Add().v128Store(v * 16);
            }
          }, () => {
            for (let v = 0; v < vectors; v++) f.get(cp).get(acc[v]).v128Store(v * 16);
          });
        }
      };

      f.i32Const(0).set(k0);
      whileLoop(f, () => f.get(k0).get(k).i32LtS(), () => {
        setMin(f, kc, () => f.get(kcMax), () => f.get(k).get(k0).i32Sub());
        f.get(beta).get(k0).i32Or().set(accum);
        f.get(j0).set(j);
        whileLoop(f, () => f.get(j).i32Const(16).i32Add().get(j1).i32LeS(), () => {
          group(4, false);
          addConst(f, j, 16);
        });
        whileLoop(f, () => f.get(j).i32Const(4).i32Add().get(j1).i32LeS(), () => {
          group(1, false);
          addConst(f, j, 4);
        });
        whileLoop(f, () => f.get(j).get(j1).i32LtS(), () => {
          group(1, true);
          addConst(f, j, 1);
        });
        addLocal(f, k0, kc);
      });
    },
  );
}

/**
 * Builds the kernel module for `cfg`, importing the shared memory `env.memory` with the given
 * page limits. Its exports are described by {@link KernelExports}.
 */
export function buildKernelModule(
  cfg: KernelConfig,
  minPages: number,
  maxPages: number,
): Uint8Array {
  const mod = new ModuleBuilder().importMemory("env", "memory", minPages, maxPages, true);
  const MR = cfg.mr;
  const tile = emitTile(mod, cfg);
  const packAK = emitPack(mod, MR, true);
  const packAD = emitPack(mod, MR, false);
  const packBK = emitPack(mod, NR, true);
  const packBD = emitPack(mod, NR, false);

  const packRange = mod.func(
    null,
    new Array(16).fill(I32),
    [],
    (f, [aSrc, lda, aK, aDst, m, bSrc, ldb, bK, bDst, n, k, kcMax, qa0, qa1, qb0, qb1]) => {
      f.get(qa0).get(qa1).i32LtS();
      f.if(() => {
        const args = (): void => {
          f.get(aSrc).get(lda).get(aDst).get(m).get(k).get(kcMax).get(qa0).get(qa1);
        };
        f.get(aK);
        f.ifElse(() => {
          args();
          f.call(packAK);
        }, () => {
          args();
          f.call(packAD);
        });
      });
      f.get(qb0).get(qb1).i32LtS();
      f.if(() => {
        const args = (): void => {
          f.get(bSrc).get(ldb).get(bDst).get(n).get(k).get(kcMax).get(qb0).get(qb1);
        };
        f.get(bK);
        f.ifElse(() => {
          args();
          f.call(packBK);
        }, () => {
          args();
          f.call(packBD);
        });
      });
    },
  );

  const computeRange = mod.func(
    null,
    new Array(14).fill(I32),
    [],
    (f, [aPack, bPack, c, ldc, m, n, k, kcMax, mcPanels, mp0, mp1, np0, np1, beta]) => {
      const mpad = f.local(I32);
      const npad = f.local(I32);
      const k0 = f.local(I32);
      const kc = f.local(I32);
      const accum = f.local(I32);
      const aBlock = f.local(I32);
      const bBlock = f.local(I32);
      const ic = f.local(I32);
      const icEnd = f.local(I32);
      const jr = f.local(I32);
      const ir = f.local(I32);
      const bp = f.local(I32);
      const nr = f.local(I32);
      const mr = f.local(I32);
      f.get(m).i32Const(MR - 1).i32Add().i32Const(MR).i32DivU().i32Const(MR).i32Mul().set(mpad);
      f.get(n).i32Const(NR - 1).i32Add().i32Const(NR).i32DivU().i32Const(NR).i32Mul().set(npad);
      f.i32Const(0).set(k0);
      whileLoop(f, () => f.get(k0).get(k).i32LtS(), () => {
        setMin(f, kc, () => f.get(kcMax), () => f.get(k).get(k0).i32Sub());
        f.get(beta).get(k0).i32Or().set(accum);
        f.get(aPack).get(k0).get(mpad).i32Mul().i32Const(2).i32Shl().i32Add().set(aBlock);
        f.get(bPack).get(k0).get(npad).i32Mul().i32Const(2).i32Shl().i32Add().set(bBlock);
        f.get(mp0).set(ic);
        whileLoop(f, () => f.get(ic).get(mp1).i32LtS(), () => {
          setMin(f, icEnd, () => f.get(ic).get(mcPanels).i32Add(), () => f.get(mp1));
          f.get(np0).set(jr);
          whileLoop(f, () => f.get(jr).get(np1).i32LtS(), () => {
            f.get(bBlock).get(jr).i32Const(NR * 4).i32Mul().get(kc).i32Mul().i32Add().set(bp);
            setMin(
              f,
              nr,
              () => f.i32Const(NR),
              () => f.get(n).get(jr).i32Const(NR).i32Mul().i32Sub(),
            );
            f.get(ic).set(ir);
            whileLoop(f, () => f.get(ir).get(icEnd).i32LtS(), () => {
              setMin(
                f,
                mr,
                () => f.i32Const(MR),
                () => f.get(m).get(ir).i32Const(MR).i32Mul().i32Sub(),
              );
              f.get(aBlock).get(ir).i32Const(MR * 4).i32Mul().get(kc).i32Mul().i32Add();
              f.get(bp).get(kc);
              f.get(c).get(ir).i32Const(MR).i32Mul().get(ldc).i32Mul().i32Add()
                .get(jr).i32Const(NR * 4).i32Mul().i32Add();
              f.get(ldc).get(accum).get(mr).get(nr);
              f.call(tile);
              addConst(f, ir, 1);
            });
            addConst(f, jr, 1);
          });
          f.get(icEnd).set(ic);
        });
        addLocal(f, k0, kc);
      });
    },
  );

  const dotRange = emitDotRange(mod, cfg, cfg.dotRows, cfg.dotCols);
  const dotRowRange = emitDotRange(
    mod,
    cfg,
    1,
    cfg.gemvCols,
    (_ra, rb) => emitGemvDotTile(mod, cfg, rb),
  );
  const gemvRange = emitGemvRange(mod, cfg);
  const ceilTo = (f: F, x: Local, unit: number): void => {
    f.get(x).i32Const(unit - 1).i32Add().i32Const(unit).i32DivU();
  };

  // ---- exports: each thread of a job runs the same call and claims chunks until none is left ----

  mod.func(
    "packAB",
    new Array(14).fill(I32),
    [],
    (f, [aSrc, lda, aK, aDst, m, bSrc, ldb, bK, bDst, n, k, kcMax, chunk, counter]) => {
      const mp = f.local(I32);
      const total = f.local(I32);
      ceilTo(f, m, MR);
      f.set(mp);
      ceilTo(f, n, NR);
      f.get(mp).i32Add().set(total);
      chunkLoop(f, counter, chunk, total, (lo, hi) => {
        // Units [0, mp) are A panels, [mp, mp + np) are B panels.
        f.get(aSrc).get(lda).get(aK).get(aDst).get(m).get(bSrc).get(ldb).get(bK).get(bDst).get(n);
        f.get(k).get(kcMax);
        f.get(lo);
        setMinPush(f, () => f.get(hi), () => f.get(mp));
        f.get(lo).get(mp).i32Sub().i32Const(0).get(lo).get(mp).i32GtS().select();
        f.get(hi).get(mp).i32Sub();
        f.call(packRange);
      });
    },
  );

  mod.func(
    "compute",
    new Array(13).fill(I32),
    [],
    (f, [aPack, bPack, c, ldc, m, n, k, kcMax, mcPanels, byRows, chunk, counter, beta]) => {
      const mp = f.local(I32);
      const np = f.local(I32);
      const total = f.local(I32);
      ceilTo(f, m, MR);
      f.set(mp);
      ceilTo(f, n, NR);
      f.set(np);
      f.get(mp).get(np).get(byRows).select().set(total);
      chunkLoop(f, counter, chunk, total, (lo, hi) => {
        const call = (m0: Local | 0, m1: Local, n0: Local | 0, n1: Local): void => {
          f.get(aPack).get(bPack).get(c).get(ldc).get(m).get(n).get(k).get(kcMax).get(mcPanels);
          if (m0 === 0) f.i32Const(0);
          else f.get(m0);
          f.get(m1);
          if (n0 === 0) f.i32Const(0);
          else f.get(n0);
          f.get(n1).get(beta).call(computeRange);
        };
        f.get(byRows).ifElse(() => call(lo, hi, 0, np), () => call(0, mp, lo, hi));
      });
    },
  );

  for (const [name, range] of [["dot", dotRange], ["dotRow", dotRowRange]] as const) {
    mod.func(
      name,
      new Array(13).fill(I32),
      [],
      (f, [a, lda, b, ldb, c, ldc, k, m, n, byRows, chunk, counter, beta]) => {
        const total = f.local(I32);
        f.get(m).get(n).get(byRows).select().set(total);
        chunkLoop(f, counter, chunk, total, (lo, hi) => {
          const call = (m0: Local | 0, m1: Local, n0: Local | 0, n1: Local): void => {
            f.get(a).get(lda).get(b).get(ldb).get(c).get(ldc).get(k);
            if (m0 === 0) f.i32Const(0);
            else f.get(m0);
            f.get(m1);
            if (n0 === 0) f.i32Const(0);
            else f.get(n0);
            f.get(n1).get(beta).call(range);
          };
          f.get(byRows).ifElse(() => call(lo, hi, 0, n), () => call(0, m, lo, hi));
        });
      },
    );
  }

  mod.func(
    "gemvN",
    new Array(10).fill(I32),
    [],
    (f, [x, b, ldb, c, n, k, kcMax, chunk, counter, beta]) => {
      chunkLoop(f, counter, chunk, n, (lo, hi) => {
        f.get(x).get(b).get(ldb).get(c).get(n).get(k).get(kcMax).get(lo).get(hi).get(beta);
        f.call(gemvRange);
      });
    },
  );
  emitConvKernels(mod, MR);
  emitElementwiseKernels(mod);
  emitOptimKernels(mod);
  emitQuantizedKernels(mod, cfg.relaxed);
  return mod.encode();
}

/** Whether this runtime validates 128-bit SIMD (`v128` locals and f32x4 arithmetic). */
export function simdSupported(): boolean {
  const mod = new ModuleBuilder();
  mod.func("f", [], [], (f) => {
    const v = f.local(V128);
    f.v128Zero().v128Zero().f32x4Add().set(v);
  });
  return WebAssembly.validate(mod.encode() as BufferSource);
}

/** Whether this runtime validates relaxed SIMD's `f32x4.relaxed_madd`. */
export function relaxedSimdSupported(): boolean {
  const mod = new ModuleBuilder();
  mod.func("f", [], [], (f) => {
    const v = f.local(V128);
    f.v128Zero().v128Zero().v128Zero().f32x4RelaxedMadd().set(v);
  });
  return WebAssembly.validate(mod.encode() as BufferSource);
}
