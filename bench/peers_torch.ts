// The PyTorch peer of bench/peers.ts: bench/peers_torch.py as a child process serving timing
// rounds (same models, batch and round protocol), so that peers.ts can alternate its rounds with
// tapegrad's; or why it cannot run, and how to add it. Also the CPU line every speed table states.

import { cpus } from "node:os";
import { fileURLToPath } from "node:url";

/** A running PyTorch child that times one round of a task per request. */
export interface TorchPeer {
  /** e.g. "pytorch 1.13.0". */
  name: string;
  /** The BLAS library torch loaded. */
  blas: string;
  /** The widest x86 vector extension /proc/cpuinfo lists, or "". */
  cpu: string;
  /** torch.get_num_threads() before anything set it: PyTorch's default here (0 if unknown). */
  defaultThreads: number;
  /**
   * Seconds per call over one round of at least `roundS` seconds of `task` ("mlp train step",
   * "alexnet forward 1", ...) with torch.set_num_threads(`threads`); an untimed round comes before
   * a task's first round on a thread count.
   */
  round(task: string, threads: number, roundS: number): Promise<number>;
  /** Ends the child. */
  close(): Promise<void>;
}

const HOW_TO =
  "to compare with PyTorch: apt-get install python3-torch libopenblas0-pthread, then run " +
  "deno task bench:peers again (it needs --allow-run for the python; the task grants it)";

/** Reads a child's stdout line by line. */
class Lines {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #decoder = new TextDecoder();
  #buffer = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** The next line, or null at the end of the stream. */
  async next(): Promise<string | null> {
    while (!this.#buffer.includes("\n")) {
      const { value, done } = await this.#reader.read();
      if (done) return null;
      this.#buffer += this.#decoder.decode(value, { stream: true });
    }
    const i = this.#buffer.indexOf("\n");
    const line = this.#buffer.slice(0, i);
    this.#buffer = this.#buffer.slice(i + 1);
    return line;
  }
}

/**
 * Starts bench/peers_torch.py --serve with `python`, or says why it could not (and how to add
 * PyTorch). Never throws.
 */
export async function startTorchPeer(
  options: { python: string; batch: number },
): Promise<TorchPeer | { missing: string }> {
  const { python } = options;
  if (Deno.permissions.querySync({ name: "run", command: python }).state !== "granted") {
    return { missing: `not run: --allow-run=${python} is not granted; ${HOW_TO}` };
  }
  const script = fileURLToPath(new URL("./peers_torch.py", import.meta.url));
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(python, {
      args: [script, "--serve", "--batch", String(options.batch)],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      // PyTorch's threads spin after their work like OpenBLAS's; tapegrad is idle meanwhile (the
      // two alternate), so the defaults stand.
    }).spawn();
  } catch (e) {
    return { missing: `${python} cannot be run (${(e as Error).message}); ${HOW_TO}` };
  }
  const stderr = child.stderr.getReader();
  const errDecoder = new TextDecoder();
  let errText = "";
  const drain = (async () => {
    for (;;) {
      const { value, done } = await stderr.read();
      if (done) return;
      errText = (errText + errDecoder.decode(value, { stream: true })).slice(-2000);
    }
  })();
  const lines = new Lines(child.stdout);
  const writer = child.stdin.getWriter();
  const failed = async (what: string) => {
    await writer.close().catch(() => {});
    const status = await child.status;
    await drain;
    const err = errText.trim().split("\n").slice(-3).join(" | ");
    return `bench/peers_torch.py ${what} (exit ${status.code}): ${err}`;
  };
  const first = await lines.next();
  let hello:
    | { error?: string; name?: string; blas?: string; cpu?: string; default_threads?: number }
    | null = null;
  try {
    hello = first === null ? null : JSON.parse(first);
  } catch {
    hello = null;
  }
  if (hello?.error !== undefined) {
    await failed("stopped");
    return { missing: `${hello.error}; ${HOW_TO}` };
  }
  if (hello === null || hello.name === undefined) return { missing: await failed("failed") };
  const encoder = new TextEncoder();
  return {
    name: hello.name,
    blas: hello.blas ?? "unknown",
    cpu: hello.cpu ?? "",
    defaultThreads: hello.default_threads ?? 0,
    async round(task, threads, roundS) {
      try {
        await writer.write(
          encoder.encode(JSON.stringify({ task, threads, round_s: roundS }) + "\n"),
        );
      } catch {
        throw new Error(await failed(`exited before ${task}`));
      }
      const line = await lines.next();
      const reply = line === null ? null : JSON.parse(line) as { seconds?: number };
      if (typeof reply?.seconds !== "number") throw new Error(await failed(`failed on ${task}`));
      return reply.seconds;
    },
    async close() {
      await writer.close().catch(() => {});
      await child.status;
      await drain;
    },
  };
}

/**
 * The CPU model and core count from `node:os` (needs `--allow-sys=cpus`, which the bench tasks
 * grant; without it, only the core count). `vector` may add what the PyTorch child read from
 * /proc/cpuinfo (Deno itself may not read /proc without --allow-all).
 */
export function cpuDescription(vector = ""): string {
  const cores = navigator.hardwareConcurrency;
  let model = "";
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "cpus" }).state === "granted") {
      model = cpus()[0]?.model?.trim() ?? "";
    }
  } catch {
    model = "";
  }
  const what = model || `${Deno.build.arch} ${Deno.build.os} CPU (model unknown: --allow-sys=cpus)`;
  return `${what}${vector ? ` (${vector})` : ""}, ${cores} cores`;
}
