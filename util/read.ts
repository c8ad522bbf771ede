/**
 * Reading a file in order when its size must be known before its contents are: checkpoint readers
 * check a length prefix against the file size before they allocate for what it announces. The
 * one place the readers touch the file system; it goes through the platform layer
 * (`autograd/platform/files.ts`), so it works in Deno and Node.
 *
 * @module
 */

import { openFile } from "../autograd/platform/files.ts";

/** A file open for reading from the start, in order. */
export interface SequentialFile {
  /** Size in bytes when opened. */
  readonly size: number;
  /**
   * The next `length` bytes; shorter only when the file ends first (it changed while being read).
   */
  read(length: number): Promise<Uint8Array>;
  /** Releases the file; later reads fail. */
  close(): void;
}

/**
 * Opens `path` for {@link SequentialFile} reads.
 *
 * @throws The runtime's error when the file cannot be opened (missing, a folder, no permission).
 */
export async function openSequential(path: string): Promise<SequentialFile> {
  const file = await openFile(path, "read");
  try {
    const size = await file.size();
    return {
      size,
      async read(length: number): Promise<Uint8Array> {
        const buffer = new Uint8Array(length);
        let filled = 0;
        while (filled < length) {
          const n = await file.read(buffer.subarray(filled));
          if (n === null) return buffer.subarray(0, filled);
          filled += n;
        }
        return buffer;
      },
      close: () => file.close(),
    };
  } catch (error) {
    file.close();
    throw error;
  }
}
