/**
 * Which JavaScript runtime this is, decided once at load time, and synchronous access to Node's
 * built-in modules where the runtime has them (Node, and Deno's Node compatibility layer).
 *
 * Built-ins are reached through `process.getBuiltinModule` (Node ≥ 20.16, Deno 2), so the core
 * holds no `import "node:…"` a browser or a bundler would trip over. On older Node 20 releases
 * the few modules the platform layer uses are imported dynamically as this module loads;
 * {@linkcode builtinsReady} resolves when they are there.
 *
 * @module
 */

/** The runtimes tapegrad tells apart: a browser page or worker is `"browser"`. */
export type Runtime = "deno" | "node" | "browser";

interface DenoLike {
  version?: { deno?: string };
}
interface ProcessLike {
  versions?: { node?: string };
  getBuiltinModule?: (name: string) => unknown;
  env?: Record<string, string | undefined>;
  pid?: number;
  cwd?: () => string;
}

const deno = (globalThis as { Deno?: DenoLike }).Deno;
// Deno 2 also has a global `process` (with versions.node), so Deno is recognised first.
const nodeProcess = (globalThis as { process?: ProcessLike }).process;

/** The runtime this code runs in. */
export const runtime: Runtime = typeof deno?.version?.deno === "string"
  ? "deno"
  : typeof nodeProcess?.versions?.node === "string"
  ? "node"
  : "browser";

/** Node's `process` object (Node, and Deno's global `process`), else undefined. */
export function nodeProcessObject(): ProcessLike | undefined {
  return runtime === "browser" ? undefined : nodeProcess;
}

/** The names of the Node built-ins the platform layer uses. */
export type BuiltinName = "fs" | "os" | "path" | "worker_threads" | "module" | "url" | "crypto";
const BUILTINS: readonly BuiltinName[] = [
  "fs",
  "os",
  "path",
  "worker_threads",
  "module",
  "url",
  "crypto",
];

const loaded = new Map<BuiltinName, unknown>();

let settled = runtime !== "node" || typeof nodeProcess?.getBuiltinModule === "function";

/** Whether {@linkcode builtinsReady} has resolved (always true but on an old Node 20). */
export function builtinsSettled(): boolean {
  return settled;
}

/**
 * Resolves once the Node built-ins can be had synchronously through {@linkcode nodeBuiltin}
 * (at once on Node ≥ 20.16, Deno and browsers; after a dynamic import on older Node 20).
 */
export const builtinsReady: Promise<void> = (async () => {
  if (settled) return;
  await Promise.all(BUILTINS.map(async (name) => {
    // A computed specifier: bundlers leave it alone, so a browser bundle never tries to resolve it.
    const specifier = "node:" + name;
    try {
      loaded.set(name, await import(specifier));
    } catch {
      // Left unset: nodeBuiltin() says the module is unavailable.
    }
  }));
  settled = true;
})();

/**
 * Node's built-in module `name` (typed by the caller), or undefined in a browser, or on an old
 * Node 20 before {@linkcode builtinsReady} has resolved.
 */
export function nodeBuiltin<T>(name: BuiltinName): T | undefined {
  if (runtime === "browser") return undefined;
  const get = nodeProcess?.getBuiltinModule;
  if (typeof get === "function") return get.call(nodeProcess, "node:" + name) as T;
  return loaded.get(name) as T | undefined;
}

/** Like {@linkcode nodeBuiltin}, but throws a clear error where the module is unavailable. */
export function requireBuiltin<T>(name: BuiltinName, what: string): T {
  const mod = nodeBuiltin<T>(name);
  if (mod === undefined) {
    throw new Error(
      `${what} needs Deno or Node (node:${name}); this runtime (${runtime}) has no file system ` +
        `or threads of that kind`,
    );
  }
  return mod;
}
