/**
 * A static file server over a folder, on 127.0.0.1 and a free port, serving what a registry
 * serves: the files as they are, with content types Deno uses to decide how to load a module.
 *
 * @module
 */

const TYPES: Record<string, string> = {
  ".ts": "application/typescript; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".html": "text/html; charset=utf-8",
};

/** A running server; `close()` stops it. */
export interface StaticServer {
  /** The server's root URL, ending in `/`. */
  url: string;
  /** Requests served, by path (what the importer fetched). */
  served: Set<string>;
  /** Stops the server. */
  close(): Promise<void>;
}

/** Serves the files under `root` (a folder path) read-only; anything else is a 404. */
export function serveFolder(root: string): StaticServer {
  const served = new Set<string>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (req.method !== "GET" || path.split("/").includes("..")) {
      return new Response("not found", { status: 404 });
    }
    try {
      const body = await Deno.readFile(root + path);
      served.add(path);
      const ext = path.slice(path.lastIndexOf("."));
      return new Response(body, {
        headers: { "content-type": TYPES[ext] ?? "application/octet-stream" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    served,
    close: () => server.shutdown(),
  };
}
