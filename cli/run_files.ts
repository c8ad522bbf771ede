/**
 * The files of a training run, all in one folder: `config.json`, `metrics.jsonl` (one JSON object
 * per epoch), `train.log` (every line the run printed), `last.safetensors` and `best.safetensors`
 * (checkpoints), `model.safetensors` (the final weights alone, written when the run completes),
 * and `curves.svg` / `curves.png` (loss and error per epoch). Everything but the log
 * is rewritten whole through a temporary file and a rename, so a crash never leaves a truncated
 * file under its final name.
 *
 * @module
 */

import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic.ts";
import { type EpochMetrics, writePlotFiles } from "./plot.ts";

/** One epoch's results as recorded in `metrics.jsonl` and in checkpoints. */
export interface EpochRecord extends EpochMetrics {
  /** Mean test loss. */
  testLoss: number;
  /** Learning rate at the end of the epoch. */
  lr: number;
  /** Seconds spent training (evaluation excluded). */
  seconds: number;
  /** Training throughput. */
  imagesPerSecond: number;
  /** Peak resident memory of the process so far, MiB (current resident memory where the peak is unknown). */
  peakRssMiB: number;
}

/**
 * The process's peak resident set size in MiB: VmHWM from /proc/self/status on Linux, else the
 * current RSS (the best the runtime reports elsewhere).
 */
export function peakRssMiB(): number {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const kib = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
    if (kib !== undefined) return Number(kib) / 1024;
  } catch {
    // Not Linux, or no permission: fall through.
  }
  return Deno.memoryUsage().rss / 2 ** 20;
}

/** Paths and writers of one run folder. */
export class RunFiles {
  /** The run folder. */
  readonly dir: string;

  /** Uses (and creates) `dir`; stray temporary files of an interrupted save are removed. */
  constructor(dir: string) {
    this.dir = dir;
    Deno.mkdirSync(dir, { recursive: true });
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isFile && entry.name.endsWith(".tmp")) Deno.removeSync(join(dir, entry.name));
    }
  }

  /** Path of the checkpoint written after every epoch (and on interruption). */
  get last(): string {
    return join(this.dir, "last.safetensors");
  }

  /** Path of the checkpoint with the lowest test error so far. */
  get best(): string {
    return join(this.dir, "best.safetensors");
  }

  /** Path of the final weights alone (no optimizer state): what PyTorch and `deno task demo` load. */
  get model(): string {
    return join(this.dir, "model.safetensors");
  }

  /** Path of the log. */
  get log(): string {
    return join(this.dir, "train.log");
  }

  /** Writes `config.json`. */
  writeConfig(config: unknown): Promise<void> {
    return writeFileAtomic(join(this.dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  }

  /** Appends a line to the log. */
  appendLog(line: string): void {
    Deno.writeTextFileSync(this.log, line + "\n", { append: true });
  }

  /** Rewrites `metrics.jsonl` from the whole history and redraws the curves. */
  async writeMetrics(history: readonly EpochRecord[], title: string): Promise<void> {
    await writeFileAtomic(
      join(this.dir, "metrics.jsonl"),
      history.map((r) => JSON.stringify(r) + "\n").join(""),
    );
    await writePlotFiles(join(this.dir, "curves"), history, { title });
  }
}
