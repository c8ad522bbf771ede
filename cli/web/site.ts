/**
 * The files of the digit pad that `deno task serve` delivers: the page and its style, three
 * scripts bundled from TypeScript at start-up (the page, the training worker, the service worker
 * that keeps it working offline), the shipped models, the sample digits, and the MNIST files of
 * the built-in copy for training in the browser.
 *
 * @module
 */

import { bundleLibrary } from "./bundle.ts";
import { fileURLToPath } from "node:url";
import { FILE_NAMES, type FileRole, resolveDataset } from "../../data/datasets.ts";
import { errorText } from "../../data/errors.ts";

/** One thing the server can send. */
export interface Asset {
  /** The Content-Type header. */
  type: string;
  /** The body, held in memory (page files, bundles). */
  bytes?: Uint8Array;
  /** Or a file streamed from disk on each request (models, MNIST). */
  path?: string;
}

/** What a request for an MNIST file can get: the file, or why it is not there. */
export type MnistLookup = { asset: Asset } | { missing: string };

/** The site: fixed assets by URL path, and MNIST files resolved on first request. */
export interface Site {
  /** Assets by absolute URL path ("/", "/app.js", …). */
  assets: Map<string, Asset>;
  /** The MNIST file behind `/mnist/<name>`, or a sentence saying how to provide the data. */
  mnist(name: string): Promise<MnistLookup>;
  /** A hash of the bundles, page files and models: the service worker's cache version. */
  version: string;
}

/** Options of {@linkcode buildSite}. */
export interface SiteOptions {
  /** Folder holding the four MNIST files (`--data-dir`); default: the usual search. */
  dataDir?: string;
}

const WEB = new URL("./", import.meta.url);
const ROOT = new URL("../../", import.meta.url);

/** The three scripts and the modules they are bundled from. */
const SCRIPTS: Record<string, string> = {
  "/app.js": "app.ts",
  "/train_worker.js": "train_worker.ts",
  "/sw.js": "sw.ts",
};

const SAMPLE_FILE = /^digit-\d-test-\d+\.png$/;

/** Bundles `entry` (a file of this folder) for browsers, minified. */
async function bundle(entry: string): Promise<Uint8Array> {
  return new TextEncoder().encode(
    await bundleLibrary({ entry: new URL(entry, WEB), minify: true }),
  );
}

/** SHA-256 of the parts, as 16 hex digits. */
async function hashOf(parts: Uint8Array[]): Promise<string> {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Builds the site: reads the page files, bundles the scripts, lists the models and samples.
 * Takes about a second (the bundler); MNIST is looked up only when the page asks for it.
 *
 * @throws {Error} When bundling fails or a page file or shipped model is missing.
 */
export async function buildSite(options: SiteOptions = {}): Promise<Site> {
  const assets = new Map<string, Asset>();
  const page = await Deno.readFile(new URL("index.html", WEB));
  assets.set("/", { type: "text/html; charset=utf-8", bytes: page });
  assets.set("/index.html", { type: "text/html; charset=utf-8", bytes: page });
  assets.set("/style.css", {
    type: "text/css; charset=utf-8",
    bytes: await Deno.readFile(new URL("style.css", WEB)),
  });
  const bundles = await Promise.all(Object.values(SCRIPTS).map(bundle));
  Object.keys(SCRIPTS).forEach((path, i) => {
    assets.set(path, { type: "text/javascript; charset=utf-8", bytes: bundles[i] });
  });

  const modelStamps: Uint8Array[] = [];
  for (const name of ["mnist-mlp", "mnist-alexnet"]) {
    const path = fileURLToPath(new URL(`models/${name}.safetensors`, ROOT));
    const info = await Deno.stat(path); // a missing shipped model stops the server here
    modelStamps.push(new TextEncoder().encode(`${name}:${info.size}:${info.mtime?.getTime()}`));
    assets.set(`/models/${name}.safetensors`, { type: "application/octet-stream", path });
  }

  const samplesDir = new URL("data/samples/", ROOT);
  const samples: string[] = [];
  for await (const entry of Deno.readDir(samplesDir)) {
    if (entry.isFile && SAMPLE_FILE.test(entry.name)) samples.push(entry.name);
  }
  samples.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  for (const name of samples) {
    assets.set(`/samples/${name}`, {
      type: "image/png",
      path: fileURLToPath(new URL(name, samplesDir)),
    });
  }
  assets.set("/samples/index.json", {
    type: "application/json",
    bytes: new TextEncoder().encode(JSON.stringify(samples)),
  });

  const version = await hashOf([page, ...bundles, ...modelStamps]);
  // The service worker learns its cache version and what to fetch ahead from this prefix, so a
  // rebuilt page replaces the cached one instead of being shadowed by it.
  const precache = ["/", "/style.css", "/app.js", "/train_worker.js", "/samples/index.json"]
    .concat(samples.map((s) => `/samples/${s}`))
    .concat(["/models/mnist-mlp.safetensors", "/models/mnist-alexnet.safetensors"]);
  const sw = assets.get("/sw.js")!;
  sw.bytes = new Uint8Array([
    ...new TextEncoder().encode(`const BUILD = ${JSON.stringify({ version, precache })};\n`),
    ...sw.bytes!,
  ]);

  if (options.dataDir !== undefined) {
    // A folder named on the command line is checked now: a typo should stop the server with the
    // reason, not surface later as a failed training in the page.
    await resolveDataset("mnist", { dataDir: options.dataDir, download: false });
  }
  const roles = Object.entries(FILE_NAMES) as [FileRole, string][];
  const lookUp = async (): Promise<Record<string, MnistLookup>> => {
    try {
      // No download: the page must not make the server fetch 50 MB from the internet unasked.
      const source = await resolveDataset("mnist", {
        dataDir: options.dataDir,
        download: false,
        progress: null,
      });
      return Object.fromEntries(roles.map(([role, name]) => {
        const path = source.files[role];
        const gz = path.endsWith(".gz");
        return [name, {
          asset: { type: gz ? "application/gzip" : "application/octet-stream", path },
        }];
      }));
    } catch (error) {
      const missing = errorText(error);
      return Object.fromEntries(roles.map(([, name]) => [name, { missing }]));
    }
  };
  let table: Promise<Record<string, MnistLookup>> | undefined;
  return {
    assets,
    version,
    mnist(name: string): Promise<MnistLookup> {
      table ??= lookUp();
      return table.then((t) => t[name] ?? { missing: `no MNIST file is called ${name}` });
    },
  };
}
