// The benchmark tasks answer --help and bad flags as the other tasks do (bench/args.ts).

import assert from "node:assert/strict";
import { ROOT } from "./helpers/cli.ts";

async function runBench(file: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "--allow-sys=cpus", `bench/${file}`, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

for (const [file, task] of [["tiles.ts", "bench:tiles"], ["threads.ts", "bench:threads"]]) {
  Deno.test(`${task}: --help prints the usage and exits 0; an unknown flag exits 2`, async () => {
    const help = await runBench(file, ["--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.ok(help.stdout.includes(`deno task ${task}`), help.stdout);
    assert.ok(!help.stdout.includes("//"), "the comment markers are stripped");
    const bad = await runBench(file, ["--no-such-flag"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, new RegExp(`bench/${file}: .*no-such-flag.*--help lists the flags`));
    assert.ok(!bad.stderr.includes("    at "), "no stack trace");
  });
}
