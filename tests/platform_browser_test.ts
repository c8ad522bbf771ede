/**
 * Headless Chromium on the bundled library: a page served with COOP/COEP headers (so it is
 * cross-origin isolated and has shared memory) runs the shared training steps on two threads in
 * the page and in a Web Worker, with Deno's losses; a page without those headers runs them too,
 * on the TypeScript kernels and one thread, saying why in one console line instead of throwing.
 * Skips with a message where Chromium or playwright-core cannot start.
 *
 * @module
 */

import assert from "node:assert/strict";
import { bundleLibrary } from "../cli/web/bundle.ts";
import { startChromium } from "./helpers/chromium.ts";
import { checkSteps, denoReference } from "./helpers/platform_checks.ts";
import type { StepsReport } from "./helpers/platform_steps.ts";

const WORKER = `import { platformSteps } from "./steps.js";
self.onmessage = async (e) => {
  try {
    postMessage(await platformSteps(e.data));
  } catch (error) {
    postMessage({ error: String(error?.stack ?? error) });
  }
};
`;

/** Serves the bundle, the worker and an empty page; under /plain/ without COOP/COEP. */
function servePages(steps: string): { url: string; close(): Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    const plain = url.pathname.startsWith("/plain/");
    const path = plain ? url.pathname.slice("/plain".length) : url.pathname;
    const headers = new Headers({ "cache-control": "no-store" });
    if (!plain) {
      headers.set("cross-origin-opener-policy", "same-origin");
      headers.set("cross-origin-embedder-policy", "require-corp");
    }
    if (path === "/steps.js" || path === "/worker.js") {
      headers.set("content-type", "text/javascript; charset=utf-8");
      return new Response(path === "/steps.js" ? steps : WORKER, { headers });
    }
    if (path === "/") {
      headers.set("content-type", "text/html; charset=utf-8");
      return new Response("<!doctype html><title>tapegrad platform test</title>", { headers });
    }
    return new Response("not found", { status: 404, headers });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

type Outcome = StepsReport | { error: string };

function report(outcome: Outcome, label: string): StepsReport {
  if ("error" in outcome) assert.fail(`${label} threw: ${outcome.error}`);
  return outcome;
}

Deno.test({
  name: "Chromium: the steps in a page and a Web Worker, two threads when isolated, one when not",
  // playwright-core keeps its own connection machinery running between calls.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const chromium = await startChromium();
    if (typeof chromium === "string") {
      console.log(`skipped: ${chromium}`);
      return;
    }
    const reference = await denoReference();
    const server = servePages(await bundleLibrary({ entry: "tests/helpers/platform_steps.ts" }));
    try {
      for (const isolated of [true, false]) {
        const base = `${server.url}${isolated ? "" : "/plain"}`;
        const page = await chromium.context.newPage();
        const lines: string[] = [];
        page.on("console", (m) => lines.push(m.text()));
        page.on("pageerror", (e) => lines.push(`pageerror: ${e.message}`));
        await page.goto(`${base}/`);
        assert.equal(
          await page.evaluate(() =>
            (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated
          ),
          isolated,
        );
        const inPage = await page.evaluate(async (steps) => {
          try {
            const m = await import(steps);
            return await m.platformSteps({ threads: 2 });
          } catch (error) {
            return { error: String((error as Error)?.stack ?? error) };
          }
        }, `${base}/steps.js`) as Outcome;
        const inWorker = await page.evaluate((worker) =>
          new Promise((resolve) => {
            const w = new Worker(worker, { type: "module" });
            w.onmessage = (e) => resolve(e.data);
            w.onerror = (e) => resolve({ error: `worker error: ${e.message}` });
            w.postMessage({ threads: 2 });
          }), `${base}/worker.js`) as Outcome;
        await page.close();
        const where = isolated ? "isolated" : "not isolated";
        for (const [label, outcome] of [["page", inPage], ["Web Worker", inWorker]] as const) {
          const r = report(outcome, `Chromium ${label} (${where})`);
          assert.equal(r.runtime, "browser");
          if (isolated) {
            assert.match(r.kernels, /wasm/, `${label}: ${r.kernels}`);
            checkSteps(r, `Chromium ${label}`, { threads: 2, reference: reference.losses });
          } else {
            // No shared memory: the TypeScript kernels, whose sums run in another order.
            assert.equal(r.kernels, "typescript");
            checkSteps(r, `Chromium ${label} (${where})`, {
              threads: 1,
              reference: reference.losses,
              tolerance: 1e-5,
            });
          }
        }
        if (!isolated) {
          const said = lines.filter((l) => l.startsWith("tapegrad: no shared WebAssembly memory"));
          assert.equal(said.length, 2, `one line each in the page and the worker: ${lines}`);
          assert.match(said[0], /not cross-origin isolated/);
        }
        assert.deepEqual(lines.filter((l) => l.startsWith("pageerror")), []);
      }
    } finally {
      await server.close();
      await chromium.close();
    }
  },
});
