/**
 * The file operations the library needs (whole-file reads, handles read or written in order,
 * fsync, rename, remove, stat, mkdir), over `Deno.*` in Deno and `node:fs` in Node. A browser has
 * no file system: each call there throws an error that says to pass bytes instead.
 *
 * Errors are the runtime's own, so their `code` (`"ENOENT"`, `"ENOSPC"`, …) is the same in both.
 *
 * @module
 */

import { nodeProcessObject, requireBuiltin, runtime } from "./runtime.ts";

type NodeFs = typeof import("node:fs");

/** A file opened by {@linkcode openFile}, read or written from the start in order. */
export interface FileHandle {
  /** Reads into `into`; the number of bytes read, or `null` at the end of the file. */
  read(into: Uint8Array): Promise<number | null>;
  /** Writes some of `bytes` (at least one); returns how many. */
  write(bytes: Uint8Array): Promise<number>;
  /** Flushes the file's data to the disk. */
  sync(): Promise<void>;
  /** The file's size in bytes now. */
  size(): Promise<number>;
  /** Releases the file; later calls fail. */
  close(): void;
}

/** The synchronous twin of {@linkcode FileHandle}, for writing only. */
export interface SyncFileHandle {
  /** Writes some of `bytes` (at least one); returns how many. */
  write(bytes: Uint8Array): number;
  /** Flushes the file's data to the disk. */
  sync(): void;
  /** Releases the file. */
  close(): void;
}

/** What {@linkcode statSync} and {@linkcode lstatSync} report. */
export interface FileInfo {
  /** A regular file. */
  isFile: boolean;
  /** A folder. */
  isDirectory: boolean;
  /** A symbolic link (only {@linkcode lstatSync} sees links). */
  isSymlink: boolean;
  /** Size in bytes. */
  size: number;
}

/** How a file is opened: `"read"`, or `"write"` (created or truncated). */
export type OpenMode = "read" | "write";

function fs(what: string): NodeFs {
  return requireBuiltin<NodeFs>("fs", what);
}

/** Calls a node callback-style function as a promise. */
function call<T>(start: (done: (error: Error | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    start((error, value) => error ? reject(error) : resolve(value));
  });
}

/** Opens `path` for reading, or for writing (created, truncated). */
export async function openFile(path: string, mode: OpenMode): Promise<FileHandle> {
  if (runtime === "deno") {
    const file = await Deno.open(
      path,
      mode === "read" ? { read: true } : { write: true, create: true, truncate: true },
    );
    return {
      read: (into) => file.read(into),
      write: (bytes) => file.write(bytes),
      sync: () => file.sync(),
      size: async () => (await file.stat()).size,
      close: () => file.close(),
    };
  }
  const f = fs(`opening ${path}`);
  const fd = await call<number>((done) => f.open(path, mode === "read" ? "r" : "w", done));
  return {
    read: async (into) => {
      const n = await call<number>((done) => f.read(fd, into, 0, into.length, null, done));
      return n === 0 && into.length > 0 ? null : n;
    },
    write: (bytes) => call<number>((done) => f.write(fd, bytes, 0, bytes.length, null, done)),
    sync: () => call<void>((done) => f.fsync(fd, (e) => done(e, undefined))),
    size: async () => (await call<{ size: number }>((done) => f.fstat(fd, done))).size,
    close: () => f.closeSync(fd),
  };
}

/** Opens `path` for writing (created, truncated), synchronously. */
export function openFileSync(path: string): SyncFileHandle {
  if (runtime === "deno") {
    const file = Deno.openSync(path, { write: true, create: true, truncate: true });
    return {
      write: (bytes) => file.writeSync(bytes),
      sync: () => file.syncSync(),
      close: () => file.close(),
    };
  }
  const f = fs(`opening ${path}`);
  const fd = f.openSync(path, "w");
  return {
    write: (bytes) => f.writeSync(fd, bytes, 0, bytes.length, null),
    sync: () => f.fsyncSync(fd),
    close: () => f.closeSync(fd),
  };
}

/** Reads the whole file at `path`. */
export async function readFile(path: string): Promise<Uint8Array> {
  if (runtime === "deno") return await Deno.readFile(path);
  const buffer = await fs(`reading ${path}`).promises.readFile(path);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** Renames `from` to `to`, replacing `to` (atomic on one file system). */
export async function rename(from: string, to: string): Promise<void> {
  if (runtime === "deno") return await Deno.rename(from, to);
  await fs(`renaming ${from}`).promises.rename(from, to);
}

/** Synchronous {@linkcode rename}. */
export function renameSync(from: string, to: string): void {
  if (runtime === "deno") return Deno.renameSync(from, to);
  fs(`renaming ${from}`).renameSync(from, to);
}

/** Removes a file or an empty folder. */
export async function remove(path: string): Promise<void> {
  if (runtime === "deno") return await Deno.remove(path);
  const f = fs(`removing ${path}`);
  if ((await f.promises.lstat(path)).isDirectory()) await f.promises.rmdir(path);
  else await f.promises.unlink(path);
}

/** Synchronous {@linkcode remove}. */
export function removeSync(path: string): void {
  if (runtime === "deno") return Deno.removeSync(path);
  const f = fs(`removing ${path}`);
  if (f.lstatSync(path).isDirectory()) f.rmdirSync(path);
  else f.unlinkSync(path);
}

/** Creates the folder `path` and its missing parents. */
export async function mkdirAll(path: string): Promise<void> {
  if (runtime === "deno") return await Deno.mkdir(path, { recursive: true });
  await fs(`creating ${path}`).promises.mkdir(path, { recursive: true });
}

/** What `path` is, following symbolic links. Throws the runtime's error (`code`) when it fails. */
export function statSync(path: string): FileInfo {
  if (runtime === "deno") {
    const s = Deno.statSync(path);
    return { isFile: s.isFile, isDirectory: s.isDirectory, isSymlink: s.isSymlink, size: s.size };
  }
  return nodeInfo(fs(`reading ${path}`).statSync(path));
}

/** What `path` itself is (a link is not followed). */
export function lstatSync(path: string): FileInfo {
  if (runtime === "deno") {
    const s = Deno.lstatSync(path);
    return { isFile: s.isFile, isDirectory: s.isDirectory, isSymlink: s.isSymlink, size: s.size };
  }
  return nodeInfo(fs(`reading ${path}`).lstatSync(path));
}

function nodeInfo(
  s: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; size: number },
): FileInfo {
  return {
    isFile: s.isFile(),
    isDirectory: s.isDirectory(),
    isSymlink: s.isSymbolicLink(),
    size: s.size,
  };
}

/** The current working folder (Deno, Node); throws in a browser. */
export function cwd(): string {
  if (runtime === "deno") return Deno.cwd();
  const cwd = nodeProcessObject()?.cwd;
  if (!cwd) throw new Error(`the working folder needs Deno or Node; this runtime is ${runtime}`);
  return cwd();
}

/**
 * The bytes of `file` from where it stands to its end, as a stream that closes the file when it
 * ends or is cancelled.
 */
export function streamFile(file: FileHandle, chunkBytes = 1 << 16): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = new Uint8Array(chunkBytes);
      let n: number | null;
      try {
        n = await file.read(chunk);
      } catch (error) {
        file.close();
        controller.error(error);
        return;
      }
      if (n === null) {
        file.close();
        controller.close();
      } else {
        controller.enqueue(chunk.subarray(0, n));
      }
    },
    cancel() {
      file.close();
    },
  });
}
