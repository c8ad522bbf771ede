/**
 * Atomic file writes: the data goes to a temporary file beside the target, is flushed to disk,
 * then renamed over the target. A crash at any moment leaves either the old file or the new one
 * under the final name, never a truncated mix. Works in Deno and Node (through the platform
 * layer, `autograd/platform/files.ts`); a browser has no files and gets a clear error.
 *
 * @module
 */

import { processId } from "../autograd/platform/env.ts";
import {
  openFile,
  openFileSync,
  remove,
  removeSync,
  rename,
  renameSync,
} from "../autograd/platform/files.ts";

let counter = 0;

/**
 * Error codes of failures that come from the machine or the user's choice of path rather than from
 * a bug: disk full, quota, read-only file system, no permission, a file where a folder is needed
 * (or the reverse), a missing folder, a symlink loop, a name too long.
 */
export const ENVIRONMENT_ERROR_CODES: ReadonlySet<string> = new Set([
  "ENOSPC",
  "EDQUOT",
  "EROFS",
  "EACCES",
  "EPERM",
  "EEXIST",
  "ENOTDIR",
  "EISDIR",
  "ENOENT",
  "ELOOP",
  "ENAMETOOLONG",
  "EFBIG",
  "EIO",
]);

/** Whether `error` is a file-system failure caused by the environment (see the codes above). */
export function isEnvironmentError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && ENVIRONMENT_ERROR_CODES.has(code);
}

/**
 * A file could not be written for a reason outside the program (disk full, read-only folder, ...):
 * the message names the file and the system's reason; the previous file, if any, is untouched.
 */
export class FileWriteError extends Error {
  /** The file that could not be written. */
  readonly path: string;
  /** The system's error code, e.g. `"ENOSPC"`. */
  readonly code: string | undefined;

  /** Wraps `cause`, the failure while writing `path`. */
  constructor(path: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`cannot write ${path}: ${reason}`, { cause });
    this.name = "FileWriteError";
    this.path = path;
    this.code = (cause as { code?: string } | null)?.code;
  }
}

function wrapped(path: string, error: unknown): unknown {
  return isEnvironmentError(error) && !(error instanceof FileWriteError)
    ? new FileWriteError(path, error)
    : error;
}

/** The temporary name used while writing `path`: unique per process and call. */
function temporaryName(path: string): string {
  counter += 1;
  return `${path}.${processId()}.${counter}.tmp`;
}

/**
 * Writes `data` to `path` atomically (temporary file, fsync, rename).
 *
 * @param path Destination file; its folder must exist.
 * @param data Bytes, or a string written as UTF-8.
 * @throws {FileWriteError} When the environment refuses the write (disk full, read-only, ...).
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = temporaryName(path);
  try {
    const file = await openFile(tmp, "write");
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await rename(tmp, path);
  } catch (error) {
    await remove(tmp).catch(() => {});
    throw wrapped(path, error);
  }
}

/** Synchronous twin of {@linkcode writeFileAtomic}, for exit paths that cannot await. */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = temporaryName(path);
  try {
    const file = openFileSync(tmp);
    try {
      let written = 0;
      while (written < bytes.length) written += file.write(bytes.subarray(written));
      file.sync();
    } finally {
      file.close();
    }
    renameSync(tmp, path);
  } catch (error) {
    try {
      removeSync(tmp);
    } catch {
      // The temporary file may never have been created.
    }
    throw wrapped(path, error);
  }
}
