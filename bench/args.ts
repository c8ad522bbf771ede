// Flag handling shared by the benchmark tasks: `--help` and unknown flags answer as the other
// tasks do (exit 0 with the usage, exit 2 with the error), not with a stack trace.

import { fileURLToPath } from "node:url";

/**
 * Runs a bench's `parse` (its `parseArgs` call, which must declare a boolean `help` flag). With
 * `--help` it prints the header comment of the file at `url` (its usage) and exits 0; a flag
 * `parseArgs` rejects is printed with the hint to pass --help, and the process exits 2.
 */
export function benchFlags<R extends { values: { help?: boolean } }>(
  url: string,
  parse: () => R,
): R {
  const name = url.slice(url.lastIndexOf("/") + 1);
  let parsed: R;
  try {
    parsed = parse();
  } catch (error) {
    console.error(`bench/${name}: ${(error as Error).message} (--help lists the flags)`);
    Deno.exit(2);
  }
  if (parsed.values.help) {
    const lines = Deno.readTextFileSync(fileURLToPath(url)).split("\n");
    const header = lines.slice(0, lines.findIndex((l) => !l.startsWith("//")));
    console.log(header.map((l) => l.replace(/^\/\/ ?/, "")).join("\n"));
    Deno.exit(0);
  }
  return parsed;
}
