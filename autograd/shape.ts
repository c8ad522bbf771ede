/**
 * Shape arithmetic shared by tensors, ops and kernels: sizes, row-major strides, broadcasting and
 * dimension normalisation. Everything here is pure and allocation-light.
 *
 * @module
 */

/** A tensor shape: one non-negative integer per dimension, outermost first. */
export type Shape = readonly number[];

/**
 * The shape arguments of `reshape`, `view`, `permute`, `expand` and the factories: separate numbers
 * (`x.reshape(2, 3)`) or one array (`x.reshape([2, 3])`), as PyTorch takes them.
 */
export type ShapeArgs = number[] | [Shape];

/** The shape that {@linkcode ShapeArgs} describe. */
export function shapeArgs(args: ShapeArgs): number[] {
  if (args.length === 1 && Array.isArray(args[0])) return [...args[0]];
  return args as number[];
}

/** Number of elements of a tensor with this shape (1 for a scalar `[]`). */
export function sizeOf(shape: Shape): number {
  let size = 1;
  for (const d of shape) size *= d;
  return size;
}

/** Row-major (C-order) strides of a contiguous tensor with this shape. */
export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = step;
    step *= shape[i];
  }
  return strides;
}

/** Formats a shape the way error messages print it: `[2, 3]`. */
export function formatShape(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

/** Whether two shapes are equal dimension by dimension. */
export function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Checks that `shape` holds non-negative integers; `op` names the caller in the error. */
export function checkShape(shape: Shape, op: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(
        `${op}: invalid shape ${formatShape(shape)}: dimensions must be integers >= 0`,
      );
    }
  }
}

/**
 * The shape two operands broadcast to, NumPy/PyTorch rules: align trailing dimensions; each pair must
 * be equal or one of them 1.
 */
export function broadcastShapes(a: Shape, b: Shape, op: string): number[] {
  const ndim = Math.max(a.length, b.length);
  const out = new Array<number>(ndim);
  for (let i = 0; i < ndim; i++) {
    const da = a.length - ndim + i >= 0 ? a[a.length - ndim + i] : 1;
    const db = b.length - ndim + i >= 0 ? b[b.length - ndim + i] : 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(
        `${op}: shapes ${formatShape(a)} and ${formatShape(b)} cannot be broadcast ` +
          `(dimension ${i} of the result: ${da} vs ${db})`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Turns a possibly negative dimension index into `0..ndim-1`, or throws naming `op`. */
export function normalizeDim(dim: number, ndim: number, op: string): number {
  const d = dim < 0 ? dim + ndim : dim;
  if (!Number.isInteger(dim) || d < 0 || d >= ndim) {
    throw new RangeError(
      `${op}: dimension ${dim} is out of range for a tensor with ${ndim} dimensions`,
    );
  }
  return d;
}

/**
 * Normalises a dims argument (one dim, a list, or undefined for all dims) into a sorted list of
 * distinct non-negative dims.
 */
export function normalizeDims(
  dims: number | readonly number[] | undefined,
  ndim: number,
  op: string,
): number[] {
  if (dims === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof dims === "number" ? [dims] : dims;
  const seen = new Set<number>();
  for (const d of list) {
    const n = normalizeDim(d, ndim, op);
    if (seen.has(n)) {
      throw new RangeError(`${op}: dimension ${d} appears twice in [${list.join(", ")}]`);
    }
    seen.add(n);
  }
  return [...seen].sort((x, y) => x - y);
}
