/**
 * Finding and opening a system BLAS through Deno's FFI (`autograd/platform/ffi.ts`, guarded by
 * permission queries that never prompt), so this module imports (and {@linkcode loadBlas} simply
 * reports "unavailable") in Node, in browsers, and in Deno without `--allow-ffi`.
 *
 * The library comes from `TAPEGRAD_BLAS=/path` when set (read only when `--allow-env` already
 * grants it), else from the usual names: OpenBLAS (`libopenblas.so.0`, `libopenblas.so`), the
 * system `libblas.so.3` only when it is OpenBLAS or BLIS (the reference BLAS it may also be is
 * slower than the WebAssembly kernels), MKL's `libmkl_rt.so`, BLIS (`libblis.so.4`), macOS
 * Accelerate. Only `cblas_sgemm` and `cblas_sgemv` are required; the thread-count and version
 * entry points are optional and looked up by vendor.
 *
 * Tensors' memory goes to BLAS as `"buffer"` parameters: a `Float32Array` on the JavaScript heap
 * or a view of the shared `WebAssembly.Memory` is passed as a pointer to its first element, read
 * and written in place, no copy.
 *
 * @module
 */

import {
  ffiUnavailable,
  type ForeignLibrary,
  type ForeignSymbols,
  openLibrary,
  readCString,
  readEnv,
  withEnvDefault,
} from "../../platform/mod.ts";

/** CBLAS enum values (cblas.h). */
export const CBLAS = { rowMajor: 101, noTrans: 111, trans: 112 } as const;

/** An opened BLAS library: the two products tapegrad calls and its thread control. */
export interface Blas {
  /** The path or name the library was opened under. */
  readonly path: string;
  /** Vendor and build, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH … Zen (core Zen)". */
  readonly description: string;
  /** Whether {@linkcode Blas.setThreads} changes anything (false for Accelerate). */
  readonly canSetThreads: boolean;
  /** CBLAS `cblas_sgemm` over row-major operands given as views (pointer = first element). */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    lda: number,
    b: Float32Array,
    ldb: number,
    beta: number,
    c: Float32Array,
    ldc: number,
  ): void;
  /** CBLAS `cblas_sgemv`: y = op(A)·x + beta·y, A row-major [rows, cols]. */
  sgemv(
    trans: boolean,
    rows: number,
    cols: number,
    a: Float32Array,
    lda: number,
    x: Float32Array,
    incx: number,
    beta: number,
    y: Float32Array,
  ): void;
  /** Sets how many threads the library's own products use (no-op when it cannot). */
  setThreads(n: number): void;
  /** The library's current thread count, or `null` when it does not say. */
  getThreads(): number | null;
}

/** What {@linkcode loadBlas} found: the library, or why there is none. */
export type BlasLoad =
  | { readonly blas: Blas; readonly reason: string }
  | { readonly blas: null; readonly reason: string };

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  cblas_sgemv: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
  bli_thread_set_num_threads: { parameters: ["i64"], result: "void", optional: true },
  bli_thread_get_num_threads: { parameters: [], result: "i64", optional: true },
  bli_info_get_version_str: { parameters: [], result: "pointer", optional: true },
  MKL_Set_Num_Threads: { parameters: ["i32"], result: "void", optional: true },
  MKL_Get_Max_Threads: { parameters: [], result: "i32", optional: true },
} as const satisfies ForeignSymbols;

type Library = ForeignLibrary<typeof SYMBOLS>;

/** Library names tried in order when `TAPEGRAD_BLAS` is not set. */
export const BLAS_CANDIDATES: readonly string[] = [
  "libopenblas.so.0",
  "libopenblas.so",
  "libblas.so.3",
  "libmkl_rt.so",
  "libmkl_rt.so.2",
  "libblis.so.4",
  "libopenblas.dylib",
  "/System/Library/Frameworks/Accelerate.framework/Accelerate",
  "libopenblas.dll",
];

/** The value of env `name` when reading it needs no prompt (granted), else undefined. */
export const envIfGranted: (name: string) => string | undefined = readEnv;

const cString = readCString;

/** Describes an opened library, or returns null when it is not a BLAS worth using. */
function identify(lib: Library, path: string): { description: string } | null {
  const s = lib.symbols;
  if (s.openblas_get_config !== null) {
    const config = cString(s.openblas_get_config());
    const core = s.openblas_get_corename !== null ? cString(s.openblas_get_corename()) : "";
    return { description: `${config}${core ? ` (core ${core})` : ""}` };
  }
  if (s.bli_info_get_version_str !== null) {
    return { description: `BLIS ${cString(s.bli_info_get_version_str())}` };
  }
  if (s.MKL_Set_Num_Threads !== null) return { description: "Intel MKL" };
  if (path.includes("Accelerate")) return { description: "Apple Accelerate" };
  // A generic libblas.so.3 without vendor entry points is the reference BLAS (or unknown):
  // slower than the WebAssembly kernels, so it is not used.
  return null;
}

function wrap(lib: Library, path: string, description: string): Blas {
  const s = lib.symbols;
  const setThreads = s.openblas_set_num_threads !== null
    ? (n: number) => s.openblas_set_num_threads!(n)
    : s.bli_thread_set_num_threads !== null
    ? (n: number) => s.bli_thread_set_num_threads!(BigInt(n))
    : s.MKL_Set_Num_Threads !== null
    ? (n: number) => s.MKL_Set_Num_Threads!(n)
    : null;
  const getThreads = s.openblas_get_num_threads !== null
    ? () => s.openblas_get_num_threads!()
    : s.bli_thread_get_num_threads !== null
    ? () => Number(s.bli_thread_get_num_threads!())
    : s.MKL_Get_Max_Threads !== null
    ? () => s.MKL_Get_Max_Threads!()
    : () => null;
  const { rowMajor, noTrans, trans } = CBLAS;
  return {
    path,
    description,
    canSetThreads: setThreads !== null,
    sgemm: (transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc) =>
      s.cblas_sgemm(
        rowMajor,
        transA ? trans : noTrans,
        transB ? trans : noTrans,
        m,
        n,
        k,
        1,
        a,
        lda,
        b,
        ldb,
        beta,
        c,
        ldc,
      ),
    sgemv: (t, rows, cols, a, lda, x, incx, beta, y) =>
      s.cblas_sgemv(rowMajor, t ? trans : noTrans, rows, cols, 1, a, lda, x, incx, beta, y, 1),
    setThreads: (n) => setThreads?.(n),
    getThreads,
  };
}

let cached: BlasLoad | null = null;

/**
 * Opens the system BLAS once (later calls return the same answer). Never throws and never
 * prompts: without Deno, without `--allow-ffi`, or when no candidate opens, the answer is
 * `{ blas: null, reason }` with the reason in words (the paths tried and the loader's errors).
 */
export function loadBlas(): BlasLoad {
  // OpenBLAS's idle threads spin about 0.1 s (2^28 cycles) after each product before they
  // sleep, on the cores where tapegrad's own pool runs the optimizer steps and convolution
  // passes next. 2^20 cycles (~0.4 ms) gives those the cores back soon, yet spans the short gaps
  // between one step's products, so BLAS rarely pays a wake-up: on the Intel Xeon it beat 2^16
  // (~25 µs) by 4% on the MLP step and 2^24 (one run) by 25%, AlexNet's step by 2–6%. OpenBLAS reads the
  // setting as it loads; one the user set is kept, and nothing leaks into child processes.
  cached ??= withEnvDefault(OPENBLAS_THREAD_TIMEOUT, "20", open);
  return cached;
}

/** The environment variable OpenBLAS takes its idle threads' spin from (log2 of cycles). */
const OPENBLAS_THREAD_TIMEOUT = "OPENBLAS_THREAD_TIMEOUT";

function open(): BlasLoad {
  const unavailable = ffiUnavailable();
  if (unavailable !== null) return { blas: null, reason: unavailable };
  const forced = envIfGranted("TAPEGRAD_BLAS");
  const candidates = forced ? [forced] : BLAS_CANDIDATES;
  const failures: string[] = [];
  for (const path of candidates) {
    const lib = tryOpen(path, SYMBOLS, failures);
    if (lib === null) continue;
    const id = identify(lib, path);
    if (id === null && !forced) {
      failures.push(`${path}: no OpenBLAS, BLIS or MKL entry points (a reference BLAS)`);
      lib.close();
      continue;
    }
    const description = id?.description ?? `BLAS at ${path}`;
    return { blas: wrap(lib, path, description), reason: `${description} from ${path}` };
  }
  const where = forced ? `TAPEGRAD_BLAS=${forced}` : "the usual names";
  return {
    blas: null,
    reason: `no BLAS library could be opened from ${where} (${failures.join("; ")})`,
  };
}

/**
 * Opens the library at `path` with `symbols`, or notes the loader's error in `failures` (as
 * "path: why") and returns null.
 */
export function tryOpen<S extends ForeignSymbols>(
  path: string,
  symbols: S,
  failures: string[],
): ForeignLibrary<S> | null {
  try {
    return openLibrary(path, symbols);
  } catch (e) {
    failures.push(`${path}: ${message(e).replace(/^(Could not open library: )+/, "")}`);
    return null;
  }
}

/** The first line of an error's message (a loader's error, for the reason strings). */
export function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}
