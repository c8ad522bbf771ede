/**
 * `deno task serve`: the digit pad, a page where you draw a digit and see the shipped MLP's and
 * AlexNet's predictions live, computed in the page by the bundled library, and where you can train
 * an MLP on MNIST in a Web Worker. This file is the server: flags, `Deno.serve` on loopback by
 * default, and the headers that make the page cross-origin isolated so its threads can share
 * memory. The page itself is cli/web/.
 *
 * @module
 */

import { type Asset, buildSite, type Site } from "./web/site.ts";
import {
  type FlagSpec,
  formatHelp,
  numberFlag,
  parseFlags,
  runTask,
  SHARED_FLAGS,
  UsageError,
} from "./common.ts";

const FLAGS: Record<string, FlagSpec> = {
  "port": {
    type: "string",
    value: "N",
    help: "port to listen on (default 8000; 0: any free port, printed at start)",
  },
  "host": {
    type: "string",
    value: "HOST",
    help: "address to listen on (default 127.0.0.1: this machine only)",
  },
  "data-dir": {
    ...SHARED_FLAGS.dataDir,
    help: "folder with the four MNIST files for training in the page (default: the built-in copy)",
  },
  help: SHARED_FLAGS.help,
};

const USAGE = "Usage: deno task serve [options]";
const DESCRIPTION =
  "Serves the digit pad: draw a digit (mouse, pen or finger) or drop an image and see the\n" +
  "shipped MLP's and AlexNet's predictions, computed in the page by tapegrad; train an MLP on\n" +
  "MNIST in the browser and draw against it. Nothing is computed on the server.";

/** Headers on every response. */
const HEADERS: Readonly<Record<string, string>> = {
  // Cross-origin isolation: without both, the page gets no SharedArrayBuffer and the library
  // runs on one thread.
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
  "x-content-type-options": "nosniff",
  // Revalidate every time; the service worker answers from its cache when the server is gone.
  "cache-control": "no-cache",
};

/** A response with the common headers. */
function respond(body: BodyInit | null, status: number, type: string): Response {
  return new Response(body, { status, headers: { ...HEADERS, "content-type": type } });
}

async function sendAsset(asset: Asset, head: boolean): Promise<Response> {
  if (asset.bytes) {
    return respond(head ? null : asset.bytes as Uint8Array<ArrayBuffer>, 200, asset.type);
  }
  const file = await Deno.open(asset.path!);
  const { size } = await file.stat();
  if (head) file.close();
  const response = respond(head ? null : file.readable, 200, asset.type);
  response.headers.set("content-length", String(size));
  return response;
}

/**
 * The request handler: static assets, and MNIST files looked up on first use. Requests that
 * arrive while the site is still being built wait for it.
 */
export function handler(building: Promise<Site>): (request: Request) => Promise<Response> {
  return async (request) => {
    const site = await building;
    if (request.method !== "GET" && request.method !== "HEAD") {
      const response = respond("only GET and HEAD\n", 405, "text/plain; charset=utf-8");
      response.headers.set("allow", "GET, HEAD");
      return response;
    }
    const head = request.method === "HEAD";
    const { pathname } = new URL(request.url);
    const asset = site.assets.get(pathname);
    if (asset) return await sendAsset(asset, head);
    if (pathname.startsWith("/mnist/")) {
      const found = await site.mnist(pathname.slice("/mnist/".length));
      if ("asset" in found) return await sendAsset(found.asset, head);
      return respond(found.missing + "\n", 404, "text/plain; charset=utf-8");
    }
    return respond(`not found: ${pathname}\n`, 404, "text/plain; charset=utf-8");
  };
}

/** The URL a browser opens for `host` and `port` (IPv6 addresses in brackets). */
function pageUrl(host: string, port: number): string {
  const name = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return `http://${name.includes(":") ? `[${name}]` : name}:${port}/`;
}

async function main(): Promise<number> {
  const { values } = parseFlags(Deno.args, FLAGS);
  if (values.help) {
    console.log(formatHelp(USAGE, DESCRIPTION, FLAGS));
    return 0;
  }
  const port = numberFlag(values, "port", { min: 0, max: 65535, integer: true }) ?? 8000;
  const host = (values.host as string | undefined) ?? "127.0.0.1";
  if (host === "") throw new UsageError("--host needs an address, e.g. 127.0.0.1");
  // The port is taken before the page is bundled, so a port in use is reported at once.
  const building = buildSite({ dataDir: values["data-dir"] as string | undefined });
  building.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
  const serve = handler(building);
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: host,
      port,
      onListen: () => {},
      onError: (error) => {
        console.error(`serve: ${error instanceof Error ? error.message : String(error)}`);
        return respond("internal error\n", 500, "text/plain; charset=utf-8");
      },
    }, serve);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new UsageError(
        `port ${port} on ${host} is in use (another server?); pass --port N for another port, ` +
          `or --port 0 for any free one`,
      );
    }
    if (error instanceof Deno.errors.PermissionDenied && !String(error).includes("--allow-net")) {
      throw new UsageError(
        `cannot listen on ${host}:${port}: ${(error as Error).message}; ports below 1024 need ` +
          `privileges, pass --port N with N ≥ 1024`,
      );
    }
    if (error instanceof Deno.errors.AddrNotAvailable || error instanceof TypeError) {
      throw new UsageError(`cannot listen on ${host}:${port}: ${(error as Error).message}`);
    }
    throw error;
  }
  try {
    await building;
  } catch (error) {
    await server.shutdown();
    throw error;
  }
  console.log(`digit pad: ${pageUrl(host, server.addr.port)}  (Ctrl-C stops it)`);
  if (!/^(127\.|::1$|localhost$)/.test(host)) {
    console.log(`listening on ${host}: other machines on the network can open it too`);
  }
  await server.finished;
  return 0;
}

if (import.meta.main) await runTask("serve", main);
