/**
 * The library as one JavaScript file, for a browser page, a Web Worker or Node: `Deno.bundle`
 * (esbuild underneath) over `mod.ts`, or over another entry module such as a test harness or the
 * digit pad's page.
 *
 * The bundle is an ES module for `--platform=browser`; it runs unchanged in Node too, because the
 * library reaches Node's built-ins only at run time through `autograd/platform/` (no static
 * `node:` import survives into the bundle). Deno downloads esbuild from npm on its first bundle
 * and caches it.
 *
 * @module
 */

import { fileUrlToPath } from "../../autograd/platform/paths.ts";

/** The repository root (this file is `cli/web/bundle.ts`). */
const ROOT = new URL("../../", import.meta.url);

/** Options of {@linkcode bundleLibrary}. */
export interface BundleOptions {
  /** The module to bundle: a path relative to the repository root, or a file URL. Default `mod.ts`. */
  entry?: string | URL;
  /** Minify the output (smaller, unreadable stack traces). Default false. */
  minify?: boolean;
}

/**
 * Bundles `mod.ts` (or `options.entry`) with everything it imports into one ES module and
 * returns its source text. Runs `Deno.bundle` in this process, which needs `--unstable-bundle`
 * and read access to the sources (a child `deno bundle` would need `--allow-run`, the power to run
 * anything).
 *
 * @throws {Error} Naming the entry: when bundling fails (with esbuild's messages), or when
 * `Deno.bundle` is missing because `--unstable-bundle` was not given.
 *
 * @example Serve the library to a page
 * ```ts ignore
 * const source = await bundleLibrary();
 * Deno.serve(() => new Response(source, { headers: { "content-type": "text/javascript" } }));
 * ```
 */
export async function bundleLibrary(options: BundleOptions = {}): Promise<string> {
  const entry = new URL(options.entry ?? "mod.ts", ROOT);
  const path = fileUrlToPath(entry);
  const bundle = (Deno as { bundle?: typeof Deno.bundle }).bundle;
  if (typeof bundle !== "function") {
    throw new Error(`bundling ${path}: Deno.bundle is missing; run deno with --unstable-bundle`);
  }
  const result = await bundle({
    entrypoints: [path],
    platform: "browser",
    format: "esm",
    minify: options.minify ?? false,
    write: false,
  });
  const output = result.outputFiles?.[0]?.contents;
  if (!result.success || output === undefined) {
    const errors = result.errors.map((e) => e.text).join("; ");
    throw new Error(`bundling ${path} failed: ${errors || "no output"}`);
  }
  return new TextDecoder().decode(output);
}
