/**
 * The platform layer: the only part of the library that touches `Deno.*`, `node:*` modules,
 * `Worker`, `navigator` or files. Everything is chosen at run time from {@linkcode runtime}, and
 * nothing is imported statically from `node:`, so the same modules load in Deno, Node ≥ 20 and
 * browsers (and bundle for any of them).
 *
 * - `runtime.ts`: which runtime this is; Node built-ins without a static import.
 * - `files.ts`: file reads, ordered handles, fsync, rename, remove, stat (Deno, Node).
 * - `threads.ts`: threads (node:worker_threads in Deno and Node, Web Workers in a
 *   cross-origin-isolated page), core count, whether this thread may block.
 * - `env.ts`: environment variables, process id.
 * - `paths.ts`: path joining, file URLs, where an npm package is on disk.
 * - `ffi.ts`: foreign functions (Deno's dlopen), for the native backend.
 *
 * @module
 */

export * from "./runtime.ts";
export * from "./files.ts";
export * from "./threads.ts";
export * from "./env.ts";
export * from "./paths.ts";
export * from "./ffi.ts";
