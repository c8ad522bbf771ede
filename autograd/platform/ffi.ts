/**
 * Foreign functions, which only Deno has (`Deno.dlopen`, behind `--allow-ffi`): the native
 * backend opens the system BLAS through this. Elsewhere, or without the permission, nothing here
 * prompts or throws: {@linkcode ffiUnavailable} says why.
 *
 * @module
 */

import { runtime } from "./runtime.ts";

/** A library's symbol table, as `Deno.dlopen` takes it. */
export type ForeignSymbols = Deno.ForeignLibraryInterface;
/** An opened library with its symbols bound. */
export type ForeignLibrary<S extends ForeignSymbols> = Deno.DynamicLibrary<S>;
/** A raw pointer a foreign function returned (null for NULL). */
export type ForeignPointer = Deno.PointerValue;

/** Why foreign functions cannot be used here, in words, or null when they can. Never prompts. */
export function ffiUnavailable(): string | null {
  if (runtime !== "deno" || typeof Deno.dlopen !== "function") {
    return "this runtime has no Deno.dlopen (not Deno)";
  }
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted"
      ? null
      : "--allow-ffi is not granted";
  } catch (e) {
    return `the ffi permission cannot be queried (${e instanceof Error ? e.message : e})`;
  }
}

/** Opens the shared library at `path` with `symbols`; throws the loader's error. */
export function openLibrary<S extends ForeignSymbols>(path: string, symbols: S): ForeignLibrary<S> {
  return Deno.dlopen(path, symbols);
}

/** The NUL-terminated string at `pointer` ("" for NULL). */
export function readCString(pointer: ForeignPointer): string {
  return pointer === null ? "" : Deno.UnsafePointerView.getCString(pointer);
}

/** The pointer at address `address` (what a foreign function wrote into an out-parameter). */
export function pointerAt(address: bigint): ForeignPointer {
  return Deno.UnsafePointer.create(address);
}

/** The address of `pointer` (0 for NULL), e.g. to lay pointers out in an argument array. */
export function addressOf(pointer: ForeignPointer): bigint {
  return BigInt(Deno.UnsafePointer.value(pointer));
}

/** Copies `into.length` bytes from `pointer` into `into`. */
export function copyFromPointer(pointer: NonNullable<ForeignPointer>, into: Uint8Array): void {
  new Deno.UnsafePointerView(pointer).copyInto(into);
}

/** The 32-bit integer (signed, or unsigned with `unsigned`) at byte `offset` from `pointer`. */
export function readInt32(
  pointer: NonNullable<ForeignPointer>,
  offset: number,
  unsigned = false,
): number {
  const view = new Deno.UnsafePointerView(pointer);
  return unsigned ? view.getUint32(offset) : view.getInt32(offset);
}
