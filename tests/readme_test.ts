/**
 * The README's code runs as printed: the opening example and each TypeScript block of "The library"
 * is run as a user would run it (package specifiers mapped to this checkout), the quick-start for one epoch instead of
 * three, and what the blocks say they print is what they print.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "./helpers/cli.ts";

/** The ```ts blocks of the README section titled `heading`. */
function blocks(heading: string): string[] {
  const readme = Deno.readTextFileSync(join(ROOT, "README.md"));
  const section = readme.split(/^## /m).find((s) => s.startsWith(heading)) ?? "";
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
}

/** Runs a README block in a fresh folder, with "@tapegrad/tapegrad[/x]" pointing at this checkout. */
async function runBlock(
  code: string,
): Promise<{ code: number; stdout: string; stderr: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "tapegrad-readme-" });
  const entry = (sub: string) => pathToFileURL(join(ROOT, sub, "mod.ts")).href;
  const source = code.replace(
    /"@tapegrad\/tapegrad(\/(\w+))?"/g,
    (_, _s, sub) => JSON.stringify(entry(sub ?? ".")),
  );
  Deno.writeTextFileSync(join(dir, "main.ts"), source);
  const { code: status, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--config",
      join(ROOT, "deno.json"),
      "main.ts",
    ],
    cwd: dir,
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code: status, stdout: text.decode(stdout), stderr: text.decode(stderr), dir };
}

Deno.test("README: the opening example fits its line and prints what it says", async () => {
  const [opening] = blocks("# tapegrad");
  const run = await runBlock(opening);
  try {
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), /\/\/ (.*)$/m.exec(opening.trim().split("\n").at(-1)!)![1]);
  } finally {
    await Deno.remove(run.dir, { recursive: true });
  }
});

Deno.test("README: the quick-start trains the MLP (one epoch here) and saves it", async () => {
  const [quickStart] = blocks("The library");
  assert.match(quickStart, /const epochs = 3;/);
  const run = await runBlock(quickStart.replace("const epochs = 3;", "const epochs = 1;"));
  try {
    assert.equal(run.code, 0, run.stderr);
    const accuracy = Number(/epoch 1: test accuracy ([\d.]+)%/.exec(run.stdout)?.[1]);
    assert.ok(accuracy > 96, run.stdout);
    assert.ok(Deno.statSync(join(run.dir, "mlp.safetensors")).size > 3_000_000);
  } finally {
    await Deno.remove(run.dir, { recursive: true });
  }
});

Deno.test("README: the gradient example prints what its comment says", async () => {
  const [, example] = blocks("The library");
  const expected = [...example.matchAll(/^\/\/ (.*)$/gm)].map((m) => m[1]).join("\n");
  const run = await runBlock(example);
  try {
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), expected);
  } finally {
    await Deno.remove(run.dir, { recursive: true });
  }
});

Deno.test("README: the library's other examples print what their comments say", async () => {
  const examples = blocks("The library").slice(2);
  assert.ok(examples.length >= 2, "the dtype / gradient / extending examples are there");
  for (const example of examples) {
    // Each `console.log(...); // text` line promises one line of output.
    const expected = [...example.matchAll(/console\.log\(.*\); \/\/ (.*)$/gm)].map((m) => m[1]);
    const run = await runBlock(example);
    try {
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(run.stdout.trim().split("\n"), expected, example);
    } finally {
      await Deno.remove(run.dir, { recursive: true });
    }
  }
});

Deno.test({
  name: "README: the GPU example trains on the device it opens and prints what it says",
  sanitizeResources: false,
  async fn() {
    const [example] = blocks("GPU (WebGPU)");
    const expected = [...example.matchAll(/console\.log\(.*\); \/\/ (.*)$/gm)].map((m) => m[1]);
    const run = await runBlock(example);
    try {
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(run.stdout.trim().split("\n"), expected, run.stdout);
    } finally {
      await Deno.remove(run.dir, { recursive: true });
    }
  },
});
