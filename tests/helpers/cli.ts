/**
 * Running the tasks as child processes, the way a user does: `deno run` with the task's
 * permissions, from the repository root, without colours.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../..", import.meta.url));

/** Permissions of each task, as in deno.json. */
const PERMISSIONS: Record<string, string[]> = {
  train: ["--allow-read", "--allow-write", "--allow-env", "--allow-net"],
  eval: ["--allow-read", "--allow-write", "--allow-env", "--allow-net"],
  demo: ["--allow-read", "--allow-env"],
  samples: ["--allow-read", "--allow-write", "--allow-env"],
  sample: ["--allow-read", "--allow-env"],
};

/** What a finished child printed and returned. */
export interface TaskRun {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

function command(task: string, args: string[], env: Record<string, string>): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS[task], `cli/${task}.ts`, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", INIT_CWD: "", ...env },
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs `deno task <task> <args>` to completion. */
export async function runTask(
  task: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<TaskRun> {
  const { code, stdout, stderr } = await command(task, args, env).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

/** A task started in the background, with its output collected as it comes. */
export interface RunningTask {
  /** The child process. */
  child: Deno.ChildProcess;
  /** Resolves when stdout has printed a line matching `pattern`. */
  waitFor(pattern: RegExp): Promise<void>;
  /** Waits for the exit; resolves with everything printed. */
  finished(): Promise<TaskRun>;
}

/** Starts a task without waiting for it (for signal and kill tests). */
export function startTask(
  task: string,
  args: string[],
  env: Record<string, string> = {},
): RunningTask {
  const child = command(task, args, env).spawn();
  let stdout = "";
  let stderr = "";
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>, into: (s: string) => void) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      into(decoder.decode(chunk, { stream: true }));
      for (const w of [...waiters]) {
        if (w.pattern.test(stdout)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    }
  };
  const done = Promise.all([
    pump(child.stdout, (s) => (stdout += s)),
    pump(child.stderr, (s) => (stderr += s)),
  ]);
  return {
    child,
    waitFor: (pattern) =>
      pattern.test(stdout)
        ? Promise.resolve()
        : new Promise((resolve) => waiters.push({ pattern, resolve })),
    finished: async () => {
      const status = await child.status;
      await done;
      return { code: status.code, stdout, stderr };
    },
  };
}

/** Asserts-style check that a user error printed no stack trace. */
export function hasStackTrace(run: TaskRun): boolean {
  return /^\s+at /m.test(run.stdout + run.stderr);
}
