/**
 * Verified downloads: the body streams to a temporary file beside the destination while its MD5 is
 * computed; only a file whose checksum matches is flushed and renamed to the final name. A
 * corrupted or interrupted download never appears under the final name and its temporary file is
 * removed. Deno and Node only (files, and MD5 from `node:crypto`, through `autograd/platform/`).
 *
 * @module
 */

import { processId } from "../autograd/platform/env.ts";
import { type FileHandle, openFile, remove, rename } from "../autograd/platform/files.ts";
import { requireBuiltin } from "../autograd/platform/runtime.ts";
import { DataError, errorText } from "./errors.ts";
import { ProgressBar, type ProgressWriter } from "./progress.ts";

/** Options of {@linkcode downloadFile}. */
export interface DownloadOptions {
  /** Where a progress bar goes (`Deno.stderr` fits); default none: the library draws no bar. */
  progress?: ProgressWriter | null;
  /** Abort when no data arrives for this long, ms (default 30 000). */
  idleTimeoutMs?: number;
  /** The fetch implementation (default the global one). */
  fetch?: typeof fetch;
}

type NodeCrypto = typeof import("node:crypto");

function createMd5() {
  return requireBuiltin<NodeCrypto>("crypto", "MD5").createHash("md5");
}

/** The lowercase hex MD5 of `bytes` (Deno, Node). */
export function md5Hex(bytes: Uint8Array): string {
  return createMd5().update(bytes).digest("hex");
}

/**
 * Downloads `url` to `dest`, accepting it only if its MD5 is `expectedMd5`.
 *
 * @param url The address to fetch.
 * @param dest The final path; its folder must exist.
 * @param expectedMd5 The published checksum (hex, case-insensitive).
 * @param options Progress output, idle timeout, fetch implementation.
 * @throws {DataError} On HTTP or network failure, timeout, or checksum mismatch.
 */
export async function downloadFile(
  url: string,
  dest: string,
  expectedMd5: string,
  options: DownloadOptions = {},
): Promise<void> {
  const doFetch = options.fetch ?? fetch;
  const idleMs = options.idleTimeoutMs ?? 30_000;
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // An overall deadline would kill slow but healthy downloads; a stall is what must be caught.
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
  };
  const tmp = `${dest}.${processId()}.download.tmp`;
  let file: FileHandle | undefined;
  try {
    arm();
    let response: Response;
    try {
      response = await doFetch(url, { signal: controller.signal });
    } catch (error) {
      const reason = errorText(error).replace(`error sending request for url (${url}): `, "");
      throw new DataError(`download of ${url} failed: ${reason}`, { cause: error });
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new DataError(
        `download of ${url} failed: HTTP ${response.status} ${response.statusText}`.trimEnd(),
      );
    }
    const total = Number(response.headers.get("content-length") ?? 0);
    const bar = options.progress == null ? undefined : new ProgressBar(total, {
      label: url.slice(url.lastIndexOf("/") + 1),
      unit: "bytes",
      writer: options.progress,
    });
    const hash = createMd5();
    file = await openFile(tmp, "write");
    let received = 0;
    try {
      for await (const chunk of response.body) {
        arm();
        hash.update(chunk);
        let written = 0;
        while (written < chunk.length) written += await file.write(chunk.subarray(written));
        received += chunk.length;
        bar?.update(received);
      }
    } catch (error) {
      throw new DataError(
        `download of ${url} failed after ${received} bytes: ${errorText(error)}`,
        {
          cause: error,
        },
      );
    }
    bar?.finish();
    const actual = hash.digest("hex");
    if (actual !== expectedMd5.toLowerCase()) {
      throw new DataError(
        `download of ${url} is corrupted: MD5 ${actual}, expected ${expectedMd5.toLowerCase()} ` +
          `(${received} bytes received); the file was discarded`,
      );
    }
    await file.sync();
    file.close();
    file = undefined;
    await rename(tmp, dest);
  } catch (error) {
    file?.close();
    await remove(tmp).catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
