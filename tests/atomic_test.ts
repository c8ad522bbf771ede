/**
 * Atomic writes: a process killed in the middle of writeFileAtomic leaves the previous file intact
 * under its name (the partial data only in the temporary file), and a finished write replaces it
 * without leftovers.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic.ts";
import { ROOT } from "./helpers/cli.ts";
import { withTempDir } from "./helpers/temp.ts";

Deno.test("writeFileAtomic replaces the file and leaves no temporary file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "f.json");
    await writeFileAtomic(path, "old");
    await writeFileAtomic(path, new TextEncoder().encode("new"));
    assert.equal(Deno.readTextFileSync(path), "new");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["f.json"]);
  });
});

Deno.test("SIGKILL in the middle of writeFileAtomic leaves the previous file whole", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "checkpoint.bin");
    Deno.writeTextFileSync(path, "the previous checkpoint");
    // A child that writes 512 MiB in 1 MiB chunks, slowly enough to be caught mid-write.
    const script = join(dir, "writer.ts");
    Deno.writeTextFileSync(
      script,
      `import { writeFileAtomic } from ${
        JSON.stringify(`file://${join(ROOT, "util", "atomic.ts")}`)
      };\n` +
        `await writeFileAtomic(${JSON.stringify(path)}, new Uint8Array(512 * 2 ** 20).fill(7));\n`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", script],
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Wait until the temporary file exists and has data, then kill the writer.
    let partial = "";
    for (let i = 0; i < 2000 && partial === ""; i++) {
      await new Promise((r) => setTimeout(r, 5));
      for (const entry of Deno.readDirSync(dir)) {
        if (entry.name.endsWith(".tmp") && Deno.statSync(join(dir, entry.name)).size > 0) {
          partial = entry.name;
        }
      }
    }
    child.kill("SIGKILL");
    await child.status;
    assert.notEqual(partial, "", "the writer was caught while writing its temporary file");
    assert.equal(Deno.readTextFileSync(path), "the previous checkpoint");
    assert.ok(
      Deno.statSync(join(dir, partial)).size < 512 * 2 ** 20,
      "the temporary file is the partial one",
    );
  });
});
