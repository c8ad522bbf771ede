/**
 * Element types. A tensor's dtype follows from its storage: `float32` is a `Float32Array`, `int32`
 * an `Int32Array` (indices, labels, counts), `bool` a `Uint8Array` of 0s and 1s (masks, the results
 * of comparisons). Gradients flow only through float32 tensors.
 *
 * @module
 */

/** The element types a tensor can hold. */
export type DType = "float32" | "int32" | "bool";

/** The typed array that stores elements of dtype `D`. */
export type StorageOf<D extends DType> = D extends "float32" ? Float32Array
  : D extends "int32" ? Int32Array
  : Uint8Array;

/** Storage of any dtype. */
export type AnyStorage = Float32Array | Int32Array | Uint8Array;

/** Every dtype, in the order errors list them. */
export const DTYPES: readonly DType[] = Object.freeze(["float32", "int32", "bool"]);

/** The dtype a typed array stores. */
export function dtypeOf(data: AnyStorage): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Uint8Array) return "bool";
  throw new TypeError(
    `tensor storage must be a Float32Array, Int32Array or Uint8Array, got ${
      Object.prototype.toString.call(data)
    }`,
  );
}

/** Zeroed storage for `n` elements of `dtype` on the JS heap. */
export function storageFor<D extends DType>(dtype: D, n: number): StorageOf<D> {
  switch (dtype) {
    case "float32":
      return new Float32Array(n) as StorageOf<D>;
    case "int32":
      return new Int32Array(n) as StorageOf<D>;
    case "bool":
      return new Uint8Array(n) as StorageOf<D>;
  }
  throw new TypeError(
    `unknown dtype ${JSON.stringify(dtype)}: expected one of ${DTYPES.join(", ")}`,
  );
}

/** Throws unless `dtype` is one of the dtypes. */
export function checkDTypeName(dtype: unknown, op: string): asserts dtype is DType {
  if (!DTYPES.includes(dtype as DType)) {
    throw new TypeError(
      `${op}: unknown dtype ${JSON.stringify(dtype)}: expected one of ${DTYPES.join(", ")}`,
    );
  }
}

/** Throws a TypeError naming `op` unless every operand's dtype is in `allowed`. */
export function expectDType(
  op: string,
  operands: readonly { readonly dtype: DType }[],
  allowed: readonly DType[],
): void {
  for (const t of operands) {
    if (!allowed.includes(t.dtype)) {
      const got = operands.map((o) => o.dtype).join(", ");
      throw new TypeError(
        `${op}: expected ${allowed.join(" or ")} tensors, got ${got}` +
          (allowed.includes("float32") && t.dtype !== "float32"
            ? ` (convert with .to("float32"))`
            : ""),
      );
    }
  }
}
