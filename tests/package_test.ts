/**
 * What the JSR package ships, checked against `deno publish --dry-run` itself rather than a copy
 * of its rules: only the library's sources, the few top-level files and the README's pictures,
 * nothing large, none of the models, data, scripts, tests, benchmarks, CLI or lock file; every export present; a README
 * whose relative links lead to files the package holds (jsr.io shows it without the rest of the
 * repository); and every code example in the shipped doc comments runs (`deno test --doc`).
 */

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ROOT } from "./helpers/cli.ts";

/** A file the package would hold, with its size. */
interface Shipped {
  /** Path relative to the repository root, with `/`. */
  path: string;
  /** Size in bytes, as the dry run states it (rounded). */
  bytes: number;
}

/** Largest single file allowed (the biggest source file is about a third of this). */
const MAX_FILE_BYTES = 100_000;
/** Largest package allowed. */
const MAX_TOTAL_BYTES = 2_000_000;
/** The README's pictures, which jsr.io shows only if the package holds them. */
const README_IMAGE = /^docs\/[\w.-]+\.(png|jpg)$/;
/** Largest README picture allowed. */
const MAX_IMAGE_BYTES = 200_000;
/** What may ship: the top-level files, the library's TypeScript and the README's pictures. */
const ALLOWED = [
  /^(LICENSE|README\.md|deno\.json|mod\.ts)$/,
  /^(autograd|nn|data|util)\/[\w/.-]+\.ts$/,
  README_IMAGE,
];

let listed: Promise<Shipped[]> | undefined;

/** The files of the dry run's "Simulating publish … with files:" list. */
function shippedFiles(): Promise<Shipped[]> {
  listed ??= (async () => {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["publish", "--dry-run", "--allow-dirty"],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
    assert.equal(code, 0, `deno publish --dry-run failed:\n${text}`);
    const units: Record<string, number> = { B: 1, KB: 1024, MB: 1024 * 1024 };
    const files = [...text.matchAll(/^\s+(file:\/\/\S+) \(([\d.]+)(B|KB|MB)\)$/gm)].map((m) => ({
      path: relative(ROOT, fileURLToPath(m[1])).replaceAll("\\", "/"),
      bytes: Math.round(Number(m[2]) * units[m[3]]),
    }));
    assert.ok(files.length > 0, `no file list in the dry run's output:\n${text}`);
    return files;
  })();
  return listed;
}

Deno.test("package: only the library ships, and nothing large", async () => {
  const files = await shippedFiles();
  const unexpected = files.filter((f) => !ALLOWED.some((re) => re.test(f.path)));
  assert.deepEqual(
    unexpected.map((f) => f.path),
    [],
    "files outside the library would ship; add them to deno.json publish.exclude",
  );
  const large = files.filter((f) =>
    f.bytes > (README_IMAGE.test(f.path) ? MAX_IMAGE_BYTES : MAX_FILE_BYTES)
  );
  assert.deepEqual(large.map((f) => `${f.path} (${f.bytes} bytes)`), []);
  const total = files.reduce((n, f) => n + f.bytes, 0);
  assert.ok(total <= MAX_TOTAL_BYTES, `the package would be ${total} bytes`);

  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const paths = new Set(files.map((f) => f.path));
  for (const [name, target] of Object.entries(config.exports as Record<string, string>)) {
    assert.ok(paths.has(target.replace(/^\.\//, "")), `export ${name} (${target}) is not shipped`);
  }
});

Deno.test("package: the README links only to files the package ships", async () => {
  const paths = new Set((await shippedFiles()).map((f) => f.path));
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const targets = [
    ...readme.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g),
    ...readme.matchAll(/\b(?:src|href)="([^"]+)"/g),
  ].map((m) => m[1]);
  const broken = targets
    .filter((t) => !/^([a-z][a-z+.-]*:|#)/i.test(t)) // absolute URLs and anchors are fine
    .map((t) => t.replace(/[#?].*$/, "").replace(/^\.\//, ""))
    .filter((t) => !paths.has(t));
  assert.deepEqual(
    broken,
    [],
    "jsr.io shows the README without these files: link to them by absolute URL, or not at all",
  );
});

Deno.test("package: the examples in the shipped doc comments run", async () => {
  const files: string[] = [];
  for (const { path } of await shippedFiles()) {
    if (!path.endsWith(".ts")) continue;
    if ((await Deno.readTextFile(join(ROOT, path))).includes("```ts")) files.push(path);
  }
  assert.ok(files.length > 0);
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["test", "--doc", "--allow-read", "--allow-write", "--allow-env", ...files],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  // Name the files whose examples fail, so the message says where to look.
  const failing = new Set<string>();
  for (const line of text.split("\n")) {
    if (!/FAILED|^\s+at /.test(line)) continue;
    for (const m of line.matchAll(/(file:\/\/\S+?\.ts)#\d+-\d+/g)) {
      failing.add(relative(ROOT, fileURLToPath(m[1])));
    }
  }
  assert.equal(
    code,
    0,
    `deno test --doc failed${failing.size ? ` (${[...failing].join(", ")})` : ""}:\n` +
      text.split("\n").filter((l) => !/^\s+at /.test(l)).slice(-40).join("\n"),
  );
});
