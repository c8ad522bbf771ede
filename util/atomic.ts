/**
 * Atomic file writes: the data goes to a temporary file beside the target, is flushed to disk,
 * then renamed over the target. A crash at any moment leaves either the old file or the new one
 * under the final name, never a truncated mix.
 *
 * @module
 */

let counter = 0;

/** The temporary name used while writing `path`: unique per process and call. */
function temporaryName(path: string): string {
  counter += 1;
  return `${path}.${Deno.pid}.${counter}.tmp`;
}

/**
 * Writes `data` to `path` atomically (temporary file, fsync, rename).
 *
 * @param path Destination file; its folder must exist.
 * @param data Bytes, or a string written as UTF-8.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = temporaryName(path);
  try {
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}

/** Synchronous twin of {@linkcode writeFileAtomic}, for exit paths that cannot await. */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tmp = temporaryName(path);
  try {
    const file = Deno.openSync(tmp, { write: true, create: true, truncate: true });
    try {
      let written = 0;
      while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
      file.syncSync();
    } finally {
      file.close();
    }
    Deno.renameSync(tmp, path);
  } catch (error) {
    try {
      Deno.removeSync(tmp);
    } catch {
      // The temporary file may never have been created.
    }
    throw error;
  }
}
