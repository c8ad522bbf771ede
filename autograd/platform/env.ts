/**
 * Environment variables and the process id, where the runtime has them.
 *
 * In Deno a variable is read only when `--allow-env` already grants it: asking would prompt
 * the user in the middle of a training run, so an ungranted variable reads as unset.
 *
 * @module
 */

import { nodeProcessObject, runtime } from "./runtime.ts";

/** The value of environment variable `name`, or undefined when unset, empty or not readable. */
export function readEnv(name: string): string | undefined {
  try {
    if (runtime === "deno") {
      if (Deno.permissions.querySync?.({ name: "env", variable: name }).state !== "granted") {
        return undefined;
      }
      return Deno.env.get(name) || undefined;
    }
    return nodeProcessObject()?.env?.[name] || undefined;
  } catch {
    return undefined;
  }
}

const randomId = Math.floor(Math.random() * 2 ** 31);

/** This process's id (Deno, Node); a random number fixed per page load in a browser. */
export function processId(): number {
  if (runtime === "deno") return Deno.pid;
  return nodeProcessObject()?.pid ?? randomId;
}
