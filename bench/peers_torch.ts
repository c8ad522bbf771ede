// The PyTorch peer of bench/peers.ts: runs bench/peers_torch.py as a child process (same models,
// batch and timing protocol) and returns its rows, or says why it could not and how to add it.
// Also the CPU line every speed table states.

import { cpus } from "node:os";
import { fileURLToPath } from "node:url";

/** Seconds per call of one task, as peers.ts records them. */
export interface TorchRow {
  /** e.g. "mlp train step". */
  what: string;
  /** Images per call. */
  batch: number;
  /** Median seconds per call. */
  seconds: number;
}

/** What {@linkcode runTorchPeer} measured, or why it measured nothing. */
export type TorchResult =
  | { name: string; blas: string; cpu: string; rows: TorchRow[] }
  | { missing: string };

const HOW_TO =
  "to compare with PyTorch: apt-get install python3-torch libopenblas0-pthread, then run " +
  "deno task bench:peers again (it needs --allow-run for the python; the task grants it)";

/** Runs bench/peers_torch.py with `python` and the protocol's settings. Never throws. */
export async function runTorchPeer(options: {
  python: string;
  threads: number;
  batch: number;
  roundS: number;
  rounds: number;
}): Promise<TorchResult> {
  const { python } = options;
  if (Deno.permissions.querySync({ name: "run", command: python }).state !== "granted") {
    return { missing: `not run: --allow-run=${python} is not granted; ${HOW_TO}` };
  }
  const script = fileURLToPath(new URL("./peers_torch.py", import.meta.url));
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(python, {
      args: [
        script,
        "--threads",
        String(options.threads),
        "--batch",
        String(options.batch),
        "--round-s",
        String(options.roundS),
        "--rounds",
        String(options.rounds),
      ],
      stdout: "piped",
      stderr: "piped",
      // Each of PyTorch's threads spins after its work like OpenBLAS's; nothing of tapegrad runs
      // meanwhile, so the defaults stand.
    }).output();
  } catch (e) {
    return { missing: `${python} cannot be run (${(e as Error).message}); ${HOW_TO}` };
  }
  const text = new TextDecoder();
  const lines = text.decode(output.stdout).trim().split("\n");
  let parsed:
    | { error?: string; name?: string; blas?: string; cpu?: string; rows?: TorchRow[] }
    | null = null;
  try {
    parsed = JSON.parse(lines[lines.length - 1]);
  } catch {
    parsed = null;
  }
  if (parsed?.error !== undefined) return { missing: `${parsed.error}; ${HOW_TO}` };
  if (output.code !== 0 || parsed === null || parsed.rows === undefined) {
    const err = text.decode(output.stderr).trim().split("\n").slice(-3).join(" | ");
    return { missing: `bench/peers_torch.py failed (exit ${output.code}): ${err}` };
  }
  return {
    name: parsed.name ?? "pytorch",
    blas: parsed.blas ?? "unknown",
    cpu: parsed.cpu ?? "",
    rows: parsed.rows,
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
