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

/**
 * Runs `fn` with environment variable `name` set to `value` when it is unset and may be written
 * (in Deno: `--allow-env` grants it), restoring it afterwards; a value the user set is left as
 * it is. For libraries that read their settings from the environment as they load.
 */
export function withEnvDefault<T>(name: string, value: string, fn: () => T): T {
  let set = false;
  try {
    if (runtime === "deno") {
      if (
        Deno.permissions.querySync?.({ name: "env", variable: name }).state === "granted" &&
        Deno.env.get(name) === undefined
      ) {
        Deno.env.set(name, value);
        set = true;
      }
    } else {
      const env = nodeProcessObject()?.env;
      if (env !== undefined && env[name] === undefined) {
        env[name] = value;
        set = true;
      }
    }
  } catch {
    set = false;
  }
  try {
    return fn();
  } finally {
    if (set) {
      if (runtime === "deno") Deno.env.delete(name);
      else delete nodeProcessObject()?.env?.[name];
    }
  }
}

const randomId = Math.floor(Math.random() * 2 ** 31);

/** This process's id (Deno, Node); a random number fixed per page load in a browser. */
export function processId(): number {
  if (runtime === "deno") return Deno.pid;
  return nodeProcessObject()?.pid ?? randomId;
}
