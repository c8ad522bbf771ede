/**
 * The library as one JavaScript file, for a browser page, a Web Worker or Node: `deno bundle`
 * (esbuild underneath) over `mod.ts`, or over another entry module such as a test harness.
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
 * returns its source text. Needs `--allow-run` (it runs `deno bundle`) and `--allow-read`.
 *
 * @throws {Error} When `deno bundle` fails; the message carries its error output.
 *
 * @example Serve the library to a page
 * ```ts ignore
 * const source = await bundleLibrary();
 * Deno.serve(() => new Response(source, { headers: { "content-type": "text/javascript" } }));
 * ```
 */
export async function bundleLibrary(options: BundleOptions = {}): Promise<string> {
  const entry = new URL(options.entry ?? "mod.ts", ROOT);
  const args = ["bundle", "--quiet", "--platform=browser", "--format=esm"];
  if (options.minify) args.push("--minify");
  args.push(fileUrlToPath(entry));
  const result = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: fileUrlToPath(ROOT),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(result.stderr).trim();
  if (!result.success) {
    throw new Error(`deno bundle ${entry.pathname} failed (exit ${result.code}): ${stderr}`);
  }
  const source = new TextDecoder().decode(result.stdout);
  if (source.trim() === "") {
    throw new Error(`deno bundle ${entry.pathname} wrote nothing: ${stderr}`);
  }
  return source;
}
