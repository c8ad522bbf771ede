/**
 * The files of a training run, all in one folder: `config.json`, `metrics.jsonl` (one JSON object
 * per epoch), `train.log` (every line the run printed), `last.safetensors` and `best.safetensors`
 * (checkpoints), `model.safetensors` (the final weights alone, written when the run completes),
 * and `curves.svg` / `curves.png` (loss and error per epoch). Everything but the log
 * is rewritten whole through a temporary file and a rename, so a crash never leaves a truncated
 * file under its final name.
 *
 * One process at a time: {@linkcode RunFiles} takes an exclusive lock on the folder before touching
 * anything in it: the file `.lock`, holding the owner's pid, locked with the operating system's
 * advisory file lock (`flock`), and refuses a folder another live process holds. The system drops
 * the lock of a process that dies (SIGKILL, crash), so a stale lock file is simply taken over; a
 * clean exit removes it.
 *
 * @module
 */

import { join } from "node:path";
import { FileWriteError, writeFileAtomic } from "../util/atomic.ts";
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

/** The run folder is missing, not a folder, or busy with another run; exit code 1. */
export class RunFolderError extends Error {
  /** Creates the error; the message names the folder and what to do. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RunFolderError";
  }
}

/** Name of the lock file inside a run folder. */
export const LOCK_FILE = ".lock";

/** Paths and writers of one run folder. */
export class RunFiles {
  /** The run folder. */
  readonly dir: string;
  #lockHandle: Deno.FsFile | undefined;
  readonly #release = () => this.close();

  /**
   * Uses (and creates) `dir` and locks it for this process; then stray temporary files of an
   * interrupted save (by a run that died) are removed.
   *
   * @throws {RunFolderError} When `dir` is not a folder or another live run holds it.
   * @throws {FileWriteError} When the folder cannot be created or written (read-only, disk full).
   */
  constructor(dir: string) {
    this.dir = dir;
    let info: Deno.FileInfo | undefined;
    try {
      info = Deno.statSync(dir);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        throw new RunFolderError(`--out ${dir}: cannot use this folder (${message(error)})`, {
          cause: error,
        });
      }
    }
    if (info !== undefined && !info.isDirectory) {
      throw new RunFolderError(
        `--out ${dir}: not a folder (it is an existing file); name a new or existing folder`,
      );
    }
    try {
      Deno.mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw new FileWriteError(dir, error);
    }
    this.#lock();
    // Only now, holding the lock, are temporary files known to be strays of a run that died: a
    // live run holds the lock for as long as it writes.
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isFile && entry.name.endsWith(".tmp")) Deno.removeSync(join(dir, entry.name));
    }
  }

  /** Path of the lock file. */
  get lockFile(): string {
    return join(this.dir, LOCK_FILE);
  }

  #lock(): void {
    for (let attempt = 0; attempt < 5; attempt++) {
      let file: Deno.FsFile;
      try {
        file = Deno.openSync(this.lockFile, { read: true, write: true, create: true });
      } catch (error) {
        throw new FileWriteError(this.lockFile, error);
      }
      let locked = false;
      try {
        locked = file.tryLockSync(true);
      } catch (error) {
        file.close();
        throw new FileWriteError(this.lockFile, error);
      }
      if (!locked) {
        file.close();
        const holder = readPid(this.lockFile);
        throw new RunFolderError(
          `${this.dir} is in use by another run (${
            holder === undefined ? "another process" : `process ${holder}`
          }, lock file ${this.lockFile}); wait for it to finish, stop it, or choose another --out`,
        );
      }
      // The previous owner may have removed the file between our open and our lock: then we hold
      // a lock on a file nobody else can see, and must start again.
      let same = false;
      try {
        same = Deno.statSync(this.lockFile).ino === file.statSync().ino;
      } catch {
        same = false;
      }
      if (!same) {
        file.close();
        continue;
      }
      try {
        file.truncateSync(0);
        file.writeSync(new TextEncoder().encode(JSON.stringify({ pid: Deno.pid }) + "\n"));
      } catch (error) {
        file.close();
        throw new FileWriteError(this.lockFile, error);
      }
      this.#lockHandle = file;
      globalThis.addEventListener("unload", this.#release);
      return;
    }
    throw new RunFolderError(`${this.dir}: could not take the lock ${this.lockFile}`);
  }

  /** Releases the lock (also done automatically when the process exits). */
  close(): void {
    const file = this.#lockHandle;
    if (file === undefined) return;
    this.#lockHandle = undefined;
    globalThis.removeEventListener("unload", this.#release);
    try {
      Deno.removeSync(this.lockFile); // removed while still locked, so no newcomer is fooled
    } catch {
      // Already gone.
    }
    file.close();
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
    try {
      Deno.writeTextFileSync(this.log, line + "\n", { append: true });
    } catch (error) {
      throw new FileWriteError(this.log, error);
    }
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

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The pid recorded in a lock file, if it can be read. */
function readPid(path: string): number | undefined {
  try {
    const pid = JSON.parse(Deno.readTextFileSync(path))?.pid;
    return typeof pid === "number" ? pid : undefined;
  } catch {
    return undefined;
  }
}
