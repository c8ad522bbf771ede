/**
 * A small encoder for the WebAssembly binary format: just enough of it (integer, float and SIMD
 * instructions, structured control flow, one imported shared memory, exported functions) to
 * write the GEMM kernels as TypeScript that emits instructions, so the repository carries no
 * binary blob and needs no external compiler.
 *
 * A {@link FunctionBuilder} appends instructions to a byte list through chainable methods named
 * after the text format (`i32Add` is `i32.add`). Branches take the label object returned by
 * `block`/`loop`, and the relative depth the binary format wants is computed from the label
 * stack, which is where hand-written wasm usually goes wrong.
 *
 * @module
 */

/** Value type `i32`. */
export const I32 = 0x7f;
/** Value type `f32`. */
export const F32 = 0x7d;
/** Value type `f64`. */
export const F64 = 0x7c;
/** Value type `v128` (SIMD). */
export const V128 = 0x7b;

/** One of the value types this encoder knows. */
export type ValueType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

/** Appends the unsigned LEB128 encoding of `value` (0 ≤ value < 2³²) to `out`. */
export function writeU32(out: number[], value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`encoder.writeU32: ${value} is not a u32`);
  }
  let v = value;
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
}

/** Appends the signed LEB128 encoding of `value` (−2³¹ ≤ value < 2³²; wraps to i32) to `out`. */
export function writeI32(out: number[], value: number): void {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0xffffffff) {
    throw new RangeError(`encoder.writeI32: ${value} is not an i32`);
  }
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const signBitClear = (byte & 0x40) === 0;
    if ((v === 0 && signBitClear) || (v === -1 && !signBitClear)) {
      out.push(byte);
      return;
    }
    out.push(byte | 0x80);
  }
}

/** Appends a length-prefixed UTF-8 name to `out`. */
function writeName(out: number[], name: string): void {
  const bytes = new TextEncoder().encode(name);
  writeU32(out, bytes.length);
  for (const b of bytes) out.push(b);
}

/** Appends section `id` with `body` (the section size is written first). */
function writeSection(out: number[], id: number, body: number[]): void {
  out.push(id);
  writeU32(out, body.length);
  for (const b of body) out.push(b);
}

/** A branch target handed out by {@link FunctionBuilder.block} and {@link FunctionBuilder.loop}. */
export interface Label {
  /** Which construct opened it; `loop` labels branch back to the loop head. */
  readonly kind: "block" | "loop" | "if";
}

/** A local variable (parameters included) of the function being built. */
export interface Local {
  /** Its index in the function's local space. */
  readonly index: number;
  /** Its value type. */
  readonly type: ValueType;
}

// SIMD opcodes (after the 0xFD prefix), named as in the text format.
const SIMD = {
  "v128.load": 0x00,
  "v128.load32_splat": 0x09,
  "v128.load64_splat": 0x0a,
  "v128.store": 0x0b,
  "v128.const": 0x0c,
  "i8x16.shuffle": 0x0d,
  "i32x4.splat": 0x11,
  "f32x4.splat": 0x13,
  "f64x2.splat": 0x14,
  "f32x4.extract_lane": 0x1f,
  "f64x2.extract_lane": 0x21,
  "f32x4.ne": 0x42,
  "f32x4.lt": 0x43,
  "f32x4.gt": 0x44,
  "f32x4.ge": 0x46,
  "v128.and": 0x4e,
  "v128.or": 0x50,
  "v128.bitselect": 0x52,
  "v128.any_true": 0x53,
  "v128.store32_lane": 0x5a,
  "v128.store64_lane": 0x5b,
  "v128.load32_zero": 0x5c,
  "v128.load64_zero": 0x5d,
  "f32x4.demote_f64x2_zero": 0x5e,
  "f64x2.promote_low_f32x4": 0x5f,
  "f32x4.nearest": 0x6a,
  "i8x16.narrow_i16x8_u": 0x66,
  "i16x8.narrow_i32x4_s": 0x85,
  "i16x8.extend_low_i8x16_s": 0x87,
  "i16x8.extend_high_i8x16_s": 0x88,
  "i32x4.shl": 0xab,
  "i32x4.shr_s": 0xac,
  "i32x4.add": 0xae,
  "i32x4.sub": 0xb1,
  "i32x4.mul": 0xb5,
  "i32x4.dot_i16x8_s": 0xba,
  "f32x4.abs": 0xe0,
  "f32x4.add": 0xe4,
  "f32x4.sub": 0xe5,
  "f32x4.mul": 0xe6,
  "f32x4.div": 0xe7,
  "f32x4.min": 0xe8,
  "f32x4.max": 0xe9,
  "f32x4.pmin": 0xea,
  "f32x4.pmax": 0xeb,
  "f64x2.sqrt": 0xef,
  "f64x2.add": 0xf0,
  "f64x2.sub": 0xf1,
  "f64x2.mul": 0xf2,
  "f64x2.div": 0xf3,
  "i32x4.trunc_sat_f32x4_s": 0xf8,
  "f32x4.convert_i32x4_s": 0xfa,
  "f32x4.relaxed_madd": 0x105,
  "i32x4.relaxed_dot_i8x16_i7x16_add_s": 0x113,
} as const;

/**
 * Builds one function body. Parameters are locals 0..n−1; {@link FunctionBuilder.local} declares
 * more. Every emitter returns `this`, so a line of TypeScript reads like a line of the text format.
 */
export class FunctionBuilder {
  /** Encoded instructions so far (without the trailing `end`). */
  readonly code: number[] = [];
  /** The declared non-parameter locals, in order. */
  readonly extraLocals: ValueType[] = [];
  /** The parameters, as locals. */
  readonly params: Local[];
  private readonly labels: Label[] = [];

  /** Starts a function with the given parameter and result types. */
  constructor(readonly paramTypes: ValueType[], readonly resultTypes: ValueType[]) {
    this.params = paramTypes.map((type, index) => ({ index, type }));
  }

  /** Declares a new local of `type`. */
  local(type: ValueType): Local {
    const index = this.paramTypes.length + this.extraLocals.length;
    this.extraLocals.push(type);
    return { index, type };
  }

  /** Appends raw opcode bytes. */
  private op(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }

  /** Appends a memory immediate: log2 alignment hint, then offset. */
  private memarg(align: number, offset: number): this {
    writeU32(this.code, align);
    writeU32(this.code, offset);
    return this;
  }

  /** Appends a 0xFD-prefixed SIMD opcode. */
  private simd(name: keyof typeof SIMD): this {
    this.code.push(0xfd);
    writeU32(this.code, SIMD[name]);
    return this;
  }

  // ---- control flow ----

  /** Opens a structured construct, runs `body` inside it and closes it. */
  private open(kind: Label["kind"], opcode: number, body: (label: Label) => void): this {
    const label: Label = { kind };
    this.op(opcode, 0x40); // empty block type
    this.labels.push(label);
    body(label);
    if (this.labels.pop() !== label) throw new Error("encoder: unbalanced structured control");
    return this.op(0x0b);
  }

  /** `block … end`; branching to the label exits the block. */
  block(body: (label: Label) => void): this {
    return this.open("block", 0x02, body);
  }

  /** `loop … end`; branching to the label jumps back to the loop head. */
  loop(body: (label: Label) => void): this {
    return this.open("loop", 0x03, body);
  }

  /** `if … end` consuming an i32 condition from the stack. */
  if(body: () => void): this {
    return this.open("if", 0x04, () => body());
  }

  /** `if … else … end` consuming an i32 condition from the stack. */
  ifElse(then: () => void, otherwise: () => void): this {
    const label: Label = { kind: "if" };
    this.op(0x04, 0x40);
    this.labels.push(label);
    then();
    this.op(0x05);
    otherwise();
    if (this.labels.pop() !== label) throw new Error("encoder: unbalanced structured control");
    return this.op(0x0b);
  }

  /** The relative branch depth of `label` from the current position. */
  private depth(label: Label): number {
    const i = this.labels.lastIndexOf(label);
    if (i < 0) throw new Error("encoder: branch to a label that is not open");
    return this.labels.length - 1 - i;
  }

  /** `br label`. */
  br(label: Label): this {
    this.op(0x0c);
    writeU32(this.code, this.depth(label));
    return this;
  }

  /** `br_if label` (pops an i32 condition). */
  brIf(label: Label): this {
    this.op(0x0d);
    writeU32(this.code, this.depth(label));
    return this;
  }

  /** `call` of the function with index `fn`. */
  call(fn: number): this {
    this.op(0x10);
    writeU32(this.code, fn);
    return this;
  }

  // ---- locals and constants ----

  /** `local.get`. */
  get(l: Local): this {
    this.op(0x20);
    writeU32(this.code, l.index);
    return this;
  }

  /** `local.set`. */
  set(l: Local): this {
    this.op(0x21);
    writeU32(this.code, l.index);
    return this;
  }

  /** `local.tee`. */
  tee(l: Local): this {
    this.op(0x22);
    writeU32(this.code, l.index);
    return this;
  }

  /** `i32.const`. */
  i32Const(v: number): this {
    this.op(0x41);
    writeI32(this.code, v);
    return this;
  }

  // ---- i32 arithmetic ----

  /** `i32.eqz`. */
  i32Eqz(): this {
    return this.op(0x45);
  }
  /** `i32.eq`. */
  i32Eq(): this {
    return this.op(0x46);
  }
  /** `i32.ne`. */
  i32Ne(): this {
    return this.op(0x47);
  }
  /** `i32.lt_s`. */
  i32LtS(): this {
    return this.op(0x48);
  }
  /** `i32.gt_s`. */
  i32GtS(): this {
    return this.op(0x4a);
  }
  /** `i32.le_s`. */
  i32LeS(): this {
    return this.op(0x4c);
  }
  /** `i32.ge_s`. */
  i32GeS(): this {
    return this.op(0x4e);
  }
  /** `i32.add`. */
  i32Add(): this {
    return this.op(0x6a);
  }
  /** `i32.sub`. */
  i32Sub(): this {
    return this.op(0x6b);
  }
  /** `i32.mul`. */
  i32Mul(): this {
    return this.op(0x6c);
  }
  /** `i32.div_u`. */
  i32DivU(): this {
    return this.op(0x6e);
  }
  /** `i32.and`. */
  i32And(): this {
    return this.op(0x71);
  }
  /** `i32.or`. */
  i32Or(): this {
    return this.op(0x72);
  }
  /** `i32.shl`. */
  i32Shl(): this {
    return this.op(0x74);
  }
  /** `i32.shr_u`. */
  i32ShrU(): this {
    return this.op(0x76);
  }
  /** `i32.load` (align 4). */
  i32Load(offset = 0): this {
    return this.op(0x28).memarg(2, offset);
  }
  /** `i32.store` (align 4). */
  i32Store(offset = 0): this {
    return this.op(0x36).memarg(2, offset);
  }
  /** `memory.fill` (bulk memory): pops dst, byte value, length. */
  memoryFill(): this {
    this.op(0xfc);
    writeU32(this.code, 11);
    return this.op(0x00);
  }
  /** `memory.copy` (bulk memory): pops dst, src, length (regions may overlap). */
  memoryCopy(): this {
    this.op(0xfc);
    writeU32(this.code, 10);
    return this.op(0x00, 0x00);
  }
  /**
   * `i32.atomic.rmw.add` (threads proposal): atomically adds the top i32 to the aligned i32 at the
   * address below it and pushes the old value.
   */
  i32AtomicRmwAdd(offset = 0): this {
    this.op(0xfe);
    writeU32(this.code, 0x1e);
    return this.memarg(2, offset);
  }
  /** `select` (pops c, b, a; pushes c ? a : b). */
  select(): this {
    return this.op(0x1b);
  }

  // ---- f32 scalar ----

  /** `f32.const` (the value is rounded to f32). */
  f32Const(v: number): this {
    this.op(0x43);
    const bytes = new Uint8Array(new Float32Array([v]).buffer);
    for (const b of bytes) this.code.push(b);
    return this;
  }
  /** `f32.load` (align 4). */
  f32Load(offset = 0): this {
    return this.op(0x2a).memarg(2, offset);
  }
  /** `f32.store` (align 4). */
  f32Store(offset = 0): this {
    return this.op(0x38).memarg(2, offset);
  }
  /** `f32.add`. */
  f32Add(): this {
    return this.op(0x92);
  }
  /** `f32.mul`. */
  f32Mul(): this {
    return this.op(0x94);
  }
  /** `f32.gt` (pushes an i32). */
  f32Gt(): this {
    return this.op(0x5e);
  }
  /** `f32.ne` (pushes an i32; true for a NaN against itself). */
  f32Ne(): this {
    return this.op(0x5c);
  }
  /** `f32.sub`. */
  f32Sub(): this {
    return this.op(0x93);
  }
  /** `f32.div`. */
  f32Div(): this {
    return this.op(0x95);
  }
  /** `f32.min` (NaN if either is NaN). */
  f32Min(): this {
    return this.op(0x96);
  }
  /** `f32.max` (NaN if either is NaN). */
  f32Max(): this {
    return this.op(0x97);
  }
  /** `f32.floor`. */
  f32Floor(): this {
    return this.op(0x8e);
  }
  /** `f32.convert_i32_s` (rounds to nearest, ties to even). */
  f32ConvertI32S(): this {
    return this.op(0xb2);
  }
  /** `i32.trunc_sat_f32_s` (toward zero, saturating; NaN gives 0). */
  i32TruncSatF32S(): this {
    this.op(0xfc);
    writeU32(this.code, 0);
    return this;
  }
  /** `i32.store8` (the low byte). */
  i32Store8(offset = 0): this {
    return this.op(0x3a).memarg(0, offset);
  }
  /** `f64.load` (align 8). */
  f64Load(offset = 0): this {
    return this.op(0x2b).memarg(3, offset);
  }
  /** `f64.promote_f32`. */
  f64PromoteF32(): this {
    return this.op(0xbb);
  }
  /** `f32.demote_f64`. */
  f32DemoteF64(): this {
    return this.op(0xb6);
  }
  /** `f64.add`. */
  f64Add(): this {
    return this.op(0xa0);
  }
  /** `f64.sub`. */
  f64Sub(): this {
    return this.op(0xa1);
  }
  /** `f64.mul`. */
  f64Mul(): this {
    return this.op(0xa2);
  }

  // ---- SIMD ----

  /** `v128.load` (natural alignment hint 16; unaligned addresses are still legal). */
  v128Load(offset = 0): this {
    return this.simd("v128.load").memarg(4, offset);
  }
  /** `v128.store`. */
  v128Store(offset = 0): this {
    return this.simd("v128.store").memarg(4, offset);
  }
  /** `v128.store64_lane`: stores 64-bit lane `lane` (0 or 1), i.e. two adjacent f32 lanes. */
  v128Store64Lane(lane: number, offset = 0): this {
    this.simd("v128.store64_lane").memarg(3, offset);
    this.code.push(lane);
    return this;
  }
  /** `v128.load32_splat`: one f32 from memory broadcast to four lanes. */
  v128Load32Splat(offset = 0): this {
    return this.simd("v128.load32_splat").memarg(2, offset);
  }
  /** `v128.load32_zero`: one f32 into lane 0, other lanes zero. */
  v128Load32Zero(offset = 0): this {
    return this.simd("v128.load32_zero").memarg(2, offset);
  }
  /** `v128.const` with all sixteen bytes zero. */
  v128Zero(): this {
    this.simd("v128.const");
    for (let i = 0; i < 16; i++) this.code.push(0);
    return this;
  }
  /** `i8x16.shuffle` expressed on 32-bit lanes (0..3 first operand, 4..7 second). */
  i32x4Shuffle(lanes: [number, number, number, number]): this {
    this.simd("i8x16.shuffle");
    for (const lane of lanes) {
      if (lane < 0 || lane > 7) throw new RangeError(`encoder: shuffle lane ${lane} out of 0..7`);
      for (let b = 0; b < 4; b++) this.code.push(lane * 4 + b);
    }
    return this;
  }
  /** `i32x4.splat`. */
  i32x4Splat(): this {
    return this.simd("i32x4.splat");
  }
  /** `f32x4.splat`. */
  f32x4Splat(): this {
    return this.simd("f32x4.splat");
  }
  /** `f32x4.extract_lane`. */
  f32x4ExtractLane(lane: number): this {
    this.simd("f32x4.extract_lane");
    this.code.push(lane);
    return this;
  }
  /** `f32x4.add`. */
  f32x4Add(): this {
    return this.simd("f32x4.add");
  }
  /** `f32x4.sub`. */
  f32x4Sub(): this {
    return this.simd("f32x4.sub");
  }
  /** `f32x4.gt` (lane mask: all ones where a > b). */
  f32x4Gt(): this {
    return this.simd("f32x4.gt");
  }
  /** `f32x4.pmax` (b > a ? b : a per lane: pmax(0, x) is max(x, 0) with NaN and −0 giving 0). */
  f32x4Pmax(): this {
    return this.simd("f32x4.pmax");
  }
  /** `f32x4.pmin` (b < a ? b : a per lane: one instruction, where `f32x4.min` needs NaN fix-ups). */
  f32x4Pmin(): this {
    return this.simd("f32x4.pmin");
  }
  /** `f32x4.ne` (lane mask: all ones where a ≠ b, so where a lane of x is NaN for ne(x, x)). */
  f32x4Ne(): this {
    return this.simd("f32x4.ne");
  }
  /** `v128.or`. */
  v128Or(): this {
    return this.simd("v128.or");
  }
  /** `v128.any_true` (i32 1 when any bit of the vector is set). */
  v128AnyTrue(): this {
    return this.simd("v128.any_true");
  }
  /** `v128.and`. */
  v128And(): this {
    return this.simd("v128.and");
  }
  /** `v128.bitselect` (pops a, b, mask; bits of a where mask is 1, else of b). */
  v128Bitselect(): this {
    return this.simd("v128.bitselect");
  }
  /** `v128.store32_lane`: stores one f32 lane. */
  v128Store32Lane(lane: number, offset = 0): this {
    this.simd("v128.store32_lane").memarg(2, offset);
    this.code.push(lane);
    return this;
  }
  /** `v128.load64_zero`: two adjacent f32 into lanes 0–1, other lanes zero. */
  v128Load64Zero(offset = 0): this {
    return this.simd("v128.load64_zero").memarg(3, offset);
  }
  /** `v128.load64_splat`: one f64 (or two f32) from memory broadcast to both 64-bit lanes. */
  v128Load64Splat(offset = 0): this {
    return this.simd("v128.load64_splat").memarg(3, offset);
  }
  /** `f64x2.splat`. */
  f64x2Splat(): this {
    return this.simd("f64x2.splat");
  }
  /** `f64x2.extract_lane`. */
  f64x2ExtractLane(lane: number): this {
    this.simd("f64x2.extract_lane");
    this.code.push(lane);
    return this;
  }
  /** `f64x2.promote_low_f32x4`: lanes 0–1 of an f32x4 as two f64. */
  f64x2PromoteLowF32x4(): this {
    return this.simd("f64x2.promote_low_f32x4");
  }
  /** `f32x4.demote_f64x2_zero`: two f64 rounded to f32 in lanes 0–1, lanes 2–3 zero. */
  f32x4DemoteF64x2Zero(): this {
    return this.simd("f32x4.demote_f64x2_zero");
  }
  /** `f64x2.add`. */
  f64x2Add(): this {
    return this.simd("f64x2.add");
  }
  /** `f64x2.sub`. */
  f64x2Sub(): this {
    return this.simd("f64x2.sub");
  }
  /** `f64x2.mul`. */
  f64x2Mul(): this {
    return this.simd("f64x2.mul");
  }
  /** `f64x2.div`. */
  f64x2Div(): this {
    return this.simd("f64x2.div");
  }
  /** `f64x2.sqrt`. */
  f64x2Sqrt(): this {
    return this.simd("f64x2.sqrt");
  }
  /** `f32x4.mul`. */
  f32x4Mul(): this {
    return this.simd("f32x4.mul");
  }
  /** `f32x4.div`. */
  f32x4Div(): this {
    return this.simd("f32x4.div");
  }
  /** `f32x4.min` (NaN if either lane is NaN). */
  f32x4Min(): this {
    return this.simd("f32x4.min");
  }
  /** `f32x4.max` (NaN if either lane is NaN). */
  f32x4Max(): this {
    return this.simd("f32x4.max");
  }
  /** `f32x4.abs` (clears the sign bit). */
  f32x4Abs(): this {
    return this.simd("f32x4.abs");
  }
  /** `f32x4.nearest` (round to the nearest integer, ties to even). */
  f32x4Nearest(): this {
    return this.simd("f32x4.nearest");
  }
  /** `f32x4.lt` (lane mask: all ones where a < b). */
  f32x4Lt(): this {
    return this.simd("f32x4.lt");
  }
  /** `f32x4.ge` (lane mask: all ones where a ≥ b). */
  f32x4Ge(): this {
    return this.simd("f32x4.ge");
  }
  /** `i32x4.trunc_sat_f32x4_s` (f32 lanes to i32 toward zero, saturating; NaN gives 0). */
  i32x4TruncSatF32x4S(): this {
    return this.simd("i32x4.trunc_sat_f32x4_s");
  }
  /** `i8x16.narrow_i16x8_u` (two i16x8 to sixteen bytes, saturating to 0..255). */
  i8x16NarrowI16x8U(): this {
    return this.simd("i8x16.narrow_i16x8_u");
  }
  /** `i16x8.narrow_i32x4_s` (two i32x4 to eight i16, saturating). */
  i16x8NarrowI32x4S(): this {
    return this.simd("i16x8.narrow_i32x4_s");
  }
  /** `i32x4.mul` (wrapping). */
  i32x4Mul(): this {
    return this.simd("i32x4.mul");
  }
  /** `f32x4.convert_i32x4_s` (rounds to nearest, ties to even). */
  f32x4ConvertI32x4S(): this {
    return this.simd("f32x4.convert_i32x4_s");
  }
  /** `i32x4.add`. */
  i32x4Add(): this {
    return this.simd("i32x4.add");
  }
  /** `i32x4.sub`. */
  i32x4Sub(): this {
    return this.simd("i32x4.sub");
  }
  /** `i16x8.extend_low_i8x16_s` (the low eight i8 lanes, sign-extended to i16). */
  i16x8ExtendLowI8x16S(): this {
    return this.simd("i16x8.extend_low_i8x16_s");
  }
  /** `i16x8.extend_high_i8x16_s` (the high eight i8 lanes, sign-extended to i16). */
  i16x8ExtendHighI8x16S(): this {
    return this.simd("i16x8.extend_high_i8x16_s");
  }
  /** `i32x4.dot_i16x8_s` (products of adjacent i16 lane pairs, summed into i32 lanes; exact). */
  i32x4DotI16x8S(): this {
    return this.simd("i32x4.dot_i16x8_s");
  }
  /** `i32x4.shl` by an i32 count (pops the vector, then the count). */
  i32x4Shl(): this {
    return this.simd("i32x4.shl");
  }
  /** `i32x4.shr_s` by an i32 count (arithmetic: the sign is kept). */
  i32x4ShrS(): this {
    return this.simd("i32x4.shr_s");
  }
  /**
   * `i32x4.relaxed_dot_i8x16_i7x16_add_s` (relaxed SIMD): each i32 lane of c plus four adjacent
   * products of a's signed bytes with b's bytes. Exact, and the same on every engine, when b's
   * bytes are 0..127 and no product of a pair reaches ±2¹⁵ (a in −127..127).
   */
  i32x4RelaxedDotI8x16I7x16AddS(): this {
    return this.simd("i32x4.relaxed_dot_i8x16_i7x16_add_s");
  }
  /** `f32x4.relaxed_madd` (a·b + c, fused or not at the engine's choice; relaxed-SIMD). */
  f32x4RelaxedMadd(): this {
    return this.simd("f32x4.relaxed_madd");
  }
}

interface FunctionEntry {
  name: string | null;
  builder: FunctionBuilder;
}

/** Assembles a module: one imported (optionally shared) memory, functions, exports. */
export class ModuleBuilder {
  private readonly functions: FunctionEntry[] = [];
  private memoryImport:
    | { module: string; field: string; min: number; max: number; shared: boolean }
    | null = null;

  /** Imports memory `module.field` with limits in 64 KiB pages. */
  importMemory(module: string, field: string, min: number, max: number, shared: boolean): this {
    this.memoryImport = { module, field, min, max, shared };
    return this;
  }

  /**
   * Reserves a function index now (so others can `call` it before its body exists) and returns
   * it; `define` fills the body later. `name` exports it; `null` keeps it internal.
   */
  declare(name: string | null, params: ValueType[], results: ValueType[]): {
    index: number;
    builder: FunctionBuilder;
  } {
    const builder = new FunctionBuilder(params, results);
    this.functions.push({ name, builder });
    return { index: this.functions.length - 1, builder };
  }

  /** Declares and builds a function in one step; returns its index. */
  func(
    name: string | null,
    params: ValueType[],
    results: ValueType[],
    body: (f: FunctionBuilder, params: Local[]) => void,
  ): number {
    const { index, builder } = this.declare(name, params, results);
    body(builder, builder.params);
    return index;
  }

  /** The module's bytes. */
  encode(): Uint8Array {
    const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

    // Types: one entry per function (duplicates are legal and keep the encoder simple).
    const types: number[] = [];
    writeU32(types, this.functions.length);
    for (const { builder } of this.functions) {
      types.push(0x60);
      writeU32(types, builder.paramTypes.length);
      for (const t of builder.paramTypes) types.push(t);
      writeU32(types, builder.resultTypes.length);
      for (const t of builder.resultTypes) types.push(t);
    }
    writeSection(out, 1, types);

    if (this.memoryImport) {
      const { module, field, min, max, shared } = this.memoryImport;
      const imports: number[] = [];
      writeU32(imports, 1);
      writeName(imports, module);
      writeName(imports, field);
      imports.push(0x02, shared ? 0x03 : 0x01);
      writeU32(imports, min);
      writeU32(imports, max);
      writeSection(out, 2, imports);
    }

    const funcs: number[] = [];
    writeU32(funcs, this.functions.length);
    for (let i = 0; i < this.functions.length; i++) writeU32(funcs, i);
    writeSection(out, 3, funcs);

    const exports: number[] = [];
    const named = this.functions.map((f, i) => ({ name: f.name, i })).filter((f) =>
      f.name !== null
    );
    writeU32(exports, named.length);
    for (const { name, i } of named) {
      writeName(exports, name as string);
      exports.push(0x00);
      writeU32(exports, i);
    }
    writeSection(out, 7, exports);

    const code: number[] = [];
    writeU32(code, this.functions.length);
    for (const { builder } of this.functions) {
      const body: number[] = [];
      // Locals are run-length encoded by type.
      const runs: [number, ValueType][] = [];
      for (const t of builder.extraLocals) {
        const last = runs[runs.length - 1];
        if (last && last[1] === t) last[0]++;
        else runs.push([1, t]);
      }
      writeU32(body, runs.length);
      for (const [count, t] of runs) {
        writeU32(body, count);
        body.push(t);
      }
      for (const b of builder.code) body.push(b);
      body.push(0x0b);
      writeU32(code, body.length);
      for (const b of body) code.push(b);
    }
    writeSection(out, 10, code);
    return new Uint8Array(out);
  }
}
