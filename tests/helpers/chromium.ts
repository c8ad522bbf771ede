/**
 * Headless Chromium for the browser tests: Debian's `chromium` driven by `npm:playwright-core`,
 * with a fresh profile folder, no network services of its own, and a reason instead of a browser
 * where it cannot start (the tests then skip, saying why).
 *
 * @module
 */

import type { BrowserContext } from "playwright-core";

/** Where Debian installs Chromium (`.ci/run` installs the package when it is missing). */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** A started browser and the way to close it (which also removes its profile folder). */
export interface StartedChromium {
  /** The browser's one context (a persistent context over the fresh profile folder). */
  context: BrowserContext;
  /** Closes the browser and removes its profile folder. */
  close(): Promise<void>;
}

/**
 * Starts headless Chromium, or returns why it cannot (no binary, playwright-core missing, a
 * launch failure), in one line.
 *
 * @param extraArgs More command-line switches (e.g. for WebGPU).
 */
export async function startChromium(extraArgs: string[] = []): Promise<StartedChromium | string> {
  try {
    const info = await Deno.stat(CHROMIUM_PATH);
    if (!info.isFile) return `${CHROMIUM_PATH} is not a file`;
  } catch {
    return `${CHROMIUM_PATH} not found (install the Debian package chromium)`;
  }
  let chromium: typeof import("playwright-core").chromium;
  // On import, playwright-core's bundled is-wsl probes /proc/sys/fs/binfmt_misc/WSLInterop,
  // which Deno grants only under --allow-all. With __IS_WSL_TEST__ set, is-wsl defers the probe
  // (it is only used to open desktop apps, never to launch a browser), so the test permissions
  // suffice. The variable is set for the import only.
  const had = Deno.env.get("__IS_WSL_TEST__");
  try {
    Deno.env.set("__IS_WSL_TEST__", "1");
    ({ chromium } = await import("playwright-core"));
  } catch (error) {
    return `npm:playwright-core cannot be loaded: ${String(error).split("\n")[0]}`;
  } finally {
    if (had === undefined) Deno.env.delete("__IS_WSL_TEST__");
    else Deno.env.set("__IS_WSL_TEST__", had);
  }
  const profile = await Deno.makeTempDir({ prefix: "tapegrad_chromium_" });
  try {
    // Playwright takes the profile folder (--user-data-dir) only through a persistent context.
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      timeout: 60_000,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        ...extraArgs,
      ],
    });
    return {
      context,
      close: async () => {
        await context.close();
        await Deno.remove(profile, { recursive: true }).catch(() => {});
      },
    };
  } catch (error) {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
    return `Chromium did not start: ${String(error).split("\n")[0]}`;
  }
}
