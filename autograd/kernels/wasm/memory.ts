/**
 * The one shared `WebAssembly.Memory` every kernel instance (main thread and workers) imports,
 * and a small allocator over it.
 *
 * - The memory is `shared: true` so worker threads see it; growing it never moves or invalidates
 *   existing views (a shared buffer cannot be detached: `memory.buffer` becomes a new, longer
 *   `SharedArrayBuffer` object over the same bytes, and old views keep working; tested).
 * - Address 0..{@link HEAP_BASE} is never handed out, so 0 is never a valid block.
 * - Blocks are 64-byte aligned (a cache line; also what v128 loads like) and tracked on the JS side
 *   (no in-memory headers a stray kernel write could corrupt). Free blocks are kept sorted by
 *   address and coalesced; allocation is first fit, then the heap top grows the memory.
 * - {@link wasmFloat32} returns a view that frees its block when the view object is garbage
 *   collected (FinalizationRegistry). Limits: finalizers run only when the event loop turns, and
 *   at the engine's leisure (maybe never before exit), so a tight synchronous loop allocating
 *   views grows the memory until it yields; and only the returned view object is tracked: a
 *   `subarray` of it does NOT keep the block alive, so keep the original view referenced while
 *   any derived view is used. {@link freeWasmFloat32} releases a block at once.
 * - Memory is never returned to the system (wasm memories cannot shrink).
 *
 * @module
 */

import { threadSupport } from "../../platform/threads.ts";

/** Bytes per wasm page. */
const PAGE = 65536;
/** Largest size, in pages, the memory may grow to (2 GiB keeps every address a positive i32). */
export const MAX_PAGES = 32768;
/** The first address the allocator hands out; below it is a null guard. */
export const HEAP_BASE = 1024;
/** Alignment (and size granularity) of every block, in bytes. */
export const ALIGN = 64;

function createMemory(): WebAssembly.Memory | null {
  try {
    if (typeof SharedArrayBuffer !== "function") return null;
    const m = new WebAssembly.Memory({ initial: 64, maximum: MAX_PAGES, shared: true });
    return m.buffer instanceof SharedArrayBuffer ? m : null;
  } catch {
    return null;
  }
}

/** The shared memory, or `null` when this runtime lacks shared wasm memories. */
export const memory: WebAssembly.Memory | null = createMemory();
if (!memory) {
  // The one line that says why everything runs in the TypeScript kernels on one thread.
  const { reason } = threadSupport();
  console.info(
    `tapegrad: no shared WebAssembly memory${reason ? ` (${reason})` : ""}; ` +
      "the TypeScript kernels run on one thread",
  );
}

// Every SharedArrayBuffer object `memory.buffer` has returned: after a grow, old views still hold
// the old (shorter) object, and pointerOf must recognise them as living in the memory too.
const knownBuffers = new WeakSet<ArrayBufferLike>();
let currentBuffer: ArrayBufferLike | null = null;
let f32View: Float32Array = new Float32Array(0);

function refresh(): void {
  if (!memory) return;
  const buf = memory.buffer;
  if (buf !== currentBuffer) {
    currentBuffer = buf;
    knownBuffers.add(buf);
    f32View = new Float32Array(buf);
  }
}
refresh();

/** A Float32Array over the whole current memory (refreshed after every grow). */
export function heapF32(): Float32Array {
  refresh();
  return f32View;
}

/**
 * The byte address of `array`'s first element inside the shared memory, or −1 when the array
 * lives elsewhere (an ordinary typed array, or a memory this module does not own).
 */
export function pointerOf(array: ArrayBufferView): number {
  if (!memory) return -1;
  const buf = array.buffer;
  if (knownBuffers.has(buf)) return array.byteOffset;
  refresh();
  return buf === currentBuffer ? array.byteOffset : -1;
}

// ---- allocator ----

let heapTop = HEAP_BASE;
// Free blocks, sorted by address, never adjacent (coalesced on free).
const freeStarts: number[] = [];
const freeSizes: number[] = [];
const liveSizes = new Map<number, number>();

function roundUp(bytes: number): number {
  return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

function ensureCapacity(end: number): void {
  if (!memory) throw new Error("wasm/memory: shared WebAssembly memory is unavailable");
  const have = memory.buffer.byteLength;
  if (end <= have) return;
  const havePages = have / PAGE;
  const need = Math.ceil((end - have) / PAGE);
  if (havePages + need > MAX_PAGES) {
    const block = end - heapTop;
    throw new RangeError(
      `wasm/memory: cannot place an array of ${block} bytes (${Math.floor(block / 4)} floats, ${
        mib(block)
      }) in the shared wasm memory: it would grow to ${end} bytes, past its ` +
        `cap of ${MAX_PAGES * PAGE} bytes (${mib(MAX_PAGES * PAGE)}; ${mib(have)} in use). ` +
        `Tensors this large need the TypeScript kernels: useKernels(referenceKernels)`,
    );
  }
  // Grow at least geometrically (by a quarter) so a growing workload does not grow page by page.
  memory.grow(Math.min(Math.max(need, Math.ceil(havePages / 4)), MAX_PAGES - havePages));
  refresh();
}

/**
 * Allocates `bytes` (rounded up to {@link ALIGN}) in the shared memory and returns the block's
 * byte address. The contents are unspecified. Release it with {@link freeBytes}.
 */
export function allocBytes(bytes: number): number {
  if (!Number.isFinite(bytes) || bytes < 0) {
    throw new RangeError(`wasm/memory.allocBytes: invalid size ${bytes}`);
  }
  const size = roundUp(bytes);
  for (let i = 0; i < freeStarts.length; i++) {
    if (freeSizes[i] >= size) {
      const ptr = freeStarts[i];
      if (freeSizes[i] === size) {
        freeStarts.splice(i, 1);
        freeSizes.splice(i, 1);
      } else {
        freeStarts[i] += size;
        freeSizes[i] -= size;
      }
      liveSizes.set(ptr, size);
      return ptr;
    }
  }
  ensureCapacity(heapTop + size);
  const ptr = heapTop;
  heapTop += size;
  liveSizes.set(ptr, size);
  return ptr;
}

/** Releases a block from {@link allocBytes}. Freeing an unknown address throws. */
export function freeBytes(ptr: number): void {
  const size = liveSizes.get(ptr);
  if (size === undefined) throw new Error(`wasm/memory.freeBytes: ${ptr} is not a live block`);
  liveSizes.delete(ptr);
  // Binary search for the insertion point.
  let lo = 0;
  let hi = freeStarts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (freeStarts[mid] < ptr) lo = mid + 1;
    else hi = mid;
  }
  let start = ptr;
  let end = ptr + size;
  // Merge with the previous and next free blocks when they touch.
  if (lo > 0 && freeStarts[lo - 1] + freeSizes[lo - 1] === start) {
    lo--;
    start = freeStarts[lo];
    freeStarts.splice(lo, 1);
    freeSizes.splice(lo, 1);
  }
  if (lo < freeStarts.length && freeStarts[lo] === end) {
    end += freeSizes[lo];
    freeStarts.splice(lo, 1);
    freeSizes.splice(lo, 1);
  }
  if (end === heapTop) {
    heapTop = start; // give the tail back to the bump region
  } else {
    freeStarts.splice(lo, 0, start);
    freeSizes.splice(lo, 0, end - start);
  }
}

/** Allocator statistics (for tests and leak hunting): live blocks and bytes, heap top. */
export function heapStats(): { liveBlocks: number; liveBytes: number; heapTop: number } {
  let liveBytes = 0;
  for (const s of liveSizes.values()) liveBytes += s;
  return { liveBlocks: liveSizes.size, liveBytes, heapTop };
}

const registry = new FinalizationRegistry<number>((ptr) => {
  if (liveSizes.has(ptr)) freeBytes(ptr);
});
const viewBlocks = new WeakMap<Float32Array, number>();

/**
 * A zero-filled Float32Array of `n` elements living in the shared wasm memory, so kernels use it
 * in place. Its block is reclaimed when the returned view is garbage collected (see the module
 * comment for the limits) or by {@link freeWasmFloat32}. Falls back to an ordinary Float32Array
 * when shared wasm memory is unavailable.
 */
export function wasmFloat32(n: number): Float32Array {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(
      `wasm/memory.wasmFloat32: length must be a non-negative integer, got ${n}`,
    );
  }
  if (!memory) return new Float32Array(n);
  const ptr = allocBytes(n * 4);
  refresh();
  const view = new Float32Array(currentBuffer as SharedArrayBuffer, ptr, n);
  view.fill(0);
  registry.register(view, ptr, view);
  viewBlocks.set(view, ptr);
  return view;
}

/**
 * Frees the block behind a view returned by {@link wasmFloat32} now, instead of waiting for the
 * garbage collector. The view (and anything derived from it) must not be used afterwards.
 * Views not made by wasmFloat32 are ignored.
 */
export function freeWasmFloat32(view: Float32Array): void {
  const ptr = viewBlocks.get(view);
  if (ptr === undefined) return;
  viewBlocks.delete(view);
  registry.unregister(view);
  freeBytes(ptr);
}

// ---- long-lived tensor storage ----

/** Default cap on live persistent storage, in bytes (see {@link persistentFloat32}). */
export const DEFAULT_PERSISTENT_BUDGET = 256 * 1024 * 1024;
/** Arrays shorter than this are not worth a block: they stay on the JavaScript heap. */
export const PERSISTENT_MIN_LENGTH = 64;

let persistentBudget = DEFAULT_PERSISTENT_BUDGET;
let persistentLive = 0;
const persistentRegistry = new FinalizationRegistry<{ ptr: number; bytes: number }>(
  ({ ptr, bytes }) => {
    persistentLive -= bytes;
    if (liveSizes.has(ptr)) freeBytes(ptr);
  },
);

/**
 * Zeroed storage for a long-lived tensor (parameters, their gradients, optimizer state): a view
 * into the shared wasm memory, so kernels use it in place (no copy per call), while at most
 * {@link setPersistentBudget} bytes of such views are alive; past that, and for short arrays, an
 * ordinary Float32Array. A block is reclaimed only once its view has been garbage collected
 * (FinalizationRegistry), so memory stays bounded by the budget even in a synchronous loop that
 * never yields: allocations then simply fall back to the JavaScript heap.
 *
 * As with {@link wasmFloat32}, only the returned view keeps its block alive: code that keeps a
 * `subarray` (or another view over the same bytes) must keep the original view reachable too.
 */
export function persistentFloat32(n: number): Float32Array {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(
      `wasm/memory.persistentFloat32: length must be a non-negative integer, got ${n}`,
    );
  }
  if (!memory || n < PERSISTENT_MIN_LENGTH) return new Float32Array(n);
  const bytes = roundUp(4 * n);
  if (persistentLive + bytes > persistentBudget) return new Float32Array(n);
  let ptr: number;
  try {
    ptr = allocBytes(4 * n);
  } catch {
    return new Float32Array(n); // the memory cannot grow any further
  }
  persistentLive += bytes;
  refresh();
  const view = new Float32Array(currentBuffer as SharedArrayBuffer, ptr, n);
  view.fill(0);
  persistentRegistry.register(view, { ptr, bytes });
  return view;
}

/** Sets the cap on live persistent storage in bytes (0 keeps everything on the JavaScript heap). */
export function setPersistentBudget(bytes: number): void {
  if (!Number.isFinite(bytes) || bytes < 0) {
    throw new RangeError(`wasm/memory.setPersistentBudget: invalid budget ${bytes}`);
  }
  persistentBudget = bytes;
}

/** Bytes of persistent storage currently alive in the wasm memory, and the cap. */
export function persistentStats(): { liveBytes: number; budget: number } {
  return { liveBytes: persistentLive, budget: persistentBudget };
}
