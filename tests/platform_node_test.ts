/**
 * Node on the bundled library: `bundleLibrary` (deno bundle) turns the shared training steps and
 * the library into one ES module, and Node (≥ 20, on PATH) runs it: a few steps on two threads
 * (node:worker_threads, loaded at run time), saveModel and loadModel by path (atomic writes
 * through node:fs), the same losses as Deno. Skips with a message where there is no Node.
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
