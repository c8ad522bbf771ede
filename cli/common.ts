/**
 * What every task shares: flag parsing with usage errors (exit code 2), and a top-level handler
 * that prints user mistakes (bad flags, missing data, corrupt files, wrong checkpoints) as one clear
 * message without a stack trace, and keeps the stack trace for bugs.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  BACKEND_REQUESTS,
  type BackendChoice,
  backendFromEnv,
  type BackendRequest,
  BackendUnavailableError,
  currentBackend,
  getThreads,
  kernels,
  setThreads,
  useBackend,
} from "../autograd/kernels/mod.ts";
import type { Device } from "../autograd/device.ts";
import { DEVICE_REQUESTS, type DeviceRequest, useDevice } from "../autograd/use_device.ts";
import { DataError, errorText } from "../data/errors.ts";
import { CheckpointError } from "../nn/checkpoint.ts";
import { StateDictError } from "../nn/module.ts";
import { SafetensorsError } from "../nn/serialize.ts";
import { FileWriteError, isEnvironmentError } from "../util/atomic.ts";
import { RunFolderError } from "./run_files.ts";

/** Exit code of a usage error (unknown flag, bad value, missing argument). */
export const EXIT_USAGE = 2;

/** A mistake in how the task was called; printed with the usage hint, exit code 2. */
export class UsageError extends Error {
  /** Creates a usage error with a message saying what is wrong and what is valid. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A flag of a task: its type, default, and help text. */
export interface FlagSpec {
  /** "string" for valued flags, "boolean" for switches. */
  type: "string" | "boolean";
  /** One-letter alias. */
  short?: string;
  /** Placeholder shown in the help, e.g. "N" or "PATH". */
  value?: string;
  /** One line of help. */
  help: string;
  /** May be given several times (strings only). */
  multiple?: boolean;
}

/** Flags that mean the same in every task that takes them, worded once. */
export const SHARED_FLAGS: {
  readonly dataDir: FlagSpec;
  readonly help: FlagSpec;
  readonly backend: FlagSpec;
  readonly threads: FlagSpec;
  readonly device: FlagSpec;
} = {
  dataDir: {
    type: "string",
    value: "DIR",
    help: "folder with the four dataset files (IDX, raw or .gz)",
  },
  help: { type: "boolean", short: "h", help: "show this help" },
  backend: {
    type: "string",
    value: "NAME",
    help: `kernels: ${
      BACKEND_REQUESTS.join(" | ")
    } (default auto: native BLAS when one loads, else wasm; or TAPEGRAD_BACKEND)`,
  },
  threads: {
    type: "string",
    value: "N",
    help: "compute threads (default: all cores; or TAPEGRAD_THREADS)",
  },
  device: {
    type: "string",
    value: "NAME",
    help: `where tensors live: ${
      DEVICE_REQUESTS.join(" | ")
    } (default cpu; auto: webgpu where an adapter exists; or TAPEGRAD_DEVICE)`,
  },
};

/** Parsed flags (strings, booleans, string lists) and positional arguments. */
export interface ParsedArgs {
  /** Flag values by name (kebab-case, as typed). */
  values: Record<string, string | boolean | string[] | undefined>;
  /** Arguments that are not flags. */
  positionals: string[];
}

/** Parses `args` against `flags`; an unknown flag or a missing value is a {@linkcode UsageError}. */
export function parseFlags(
  args: readonly string[],
  flags: Readonly<Record<string, FlagSpec>>,
  allowPositionals = false,
): ParsedArgs {
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = {};
  for (const [name, spec] of Object.entries(flags)) {
    options[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true } : {}),
    };
  }
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options,
      allowPositionals,
      strict: true,
    });
    return { values: values as ParsedArgs["values"], positionals };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const known = Object.keys(flags).map((f) => `--${f}`).join(", ");
    throw new UsageError(
      `${message.replace(/\. To specify a positional argument.*$/s, "")}\nvalid flags: ${known}`,
    );
  }
}

/** Help text listing every flag with its placeholder and description. */
export function formatHelp(
  usage: string,
  description: string,
  flags: Readonly<Record<string, FlagSpec>>,
): string {
  const rows = Object.entries(flags).map(([name, spec]) => {
    const left = `  ${spec.short ? `-${spec.short}, ` : "    "}--${name}${
      spec.value ? ` ${spec.value}` : ""
    }`;
    return [left, spec.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return `${usage}\n\n${description}\n\nOptions:\n${
    rows.map(([l, h]) => l.padEnd(width) + h).join("\n")
  }\n`;
}

/** A string flag parsed as a number in [min, max] (integer when `integer`), or undefined if absent. */
export function numberFlag(
  values: ParsedArgs["values"],
  name: string,
  options: { min?: number; max?: number; integer?: boolean } = {},
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const text = String(raw).trim();
  const value = Number(text);
  const { min = -Infinity, max = Infinity, integer = false } = options;
  if (
    text === "" || !Number.isFinite(value) || (integer && !Number.isSafeInteger(value)) ||
    value < min || value > max
  ) {
    const range = `${integer ? "an integer" : "a number"}${min > -Infinity ? ` >= ${min}` : ""}${
      max < Infinity ? ` <= ${max}` : ""
    }`;
    throw new UsageError(`--${name} must be ${range}, got "${raw}"`);
  }
  return value;
}

/** A string flag that must be one of `choices`, or undefined if absent. */
export function choiceFlag<T extends string>(
  values: ParsedArgs["values"],
  name: string,
  choices: readonly T[],
): T | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (!choices.includes(raw as T)) {
    throw new UsageError(`--${name} must be one of ${choices.join(", ")}; got "${raw}"`);
  }
  return raw as T;
}

/**
 * Applies `--threads` and `--backend` (else env `TAPEGRAD_BACKEND`, else "auto") and returns
 * what runs: the thread count first, so the backend starts with it. A backend named outright
 * that cannot run is a {@linkcode BackendUnavailableError} (exit code 1, the reason printed).
 * Tasks print {@linkcode describeBackend} of the result in their report.
 */
export function applyComputeFlags(values: ParsedArgs["values"], task: string): BackendChoice {
  const threads = numberFlag(values, "threads", { min: 1, max: 64, integer: true });
  if (threads !== undefined) {
    const cores = globalThis.navigator?.hardwareConcurrency ?? 0;
    if (cores > 0 && threads > cores) {
      console.error(
        `${task}: warning: --threads ${threads} exceeds the ${cores} cores of this machine; ` +
          `threads beyond the cores make training much slower (try --threads ${cores})`,
      );
    }
    setThreads(threads);
  }
  let request = choiceFlag<BackendRequest>(values, "backend", BACKEND_REQUESTS);
  if (request === undefined) {
    try {
      request = backendFromEnv() ?? "auto";
    } catch (error) {
      throw new UsageError(error instanceof Error ? error.message : String(error));
    }
  }
  return useBackend(request);
}

/**
 * One line saying which backend runs, on how many threads, and why, e.g. "native-blas+wasm-simd,
 * 2 thread(s) (auto: OpenBLAS 0.3.21 … from libopenblas.so.0)".
 */
export function describeBackend(choice: BackendChoice = currentBackend()): string {
  return `${kernels.name}, ${getThreads()} thread(s) (${
    choice.requested === "auto" ? "auto: " : ""
  }${choice.reason})`;
}

/**
 * A device named outright (`--device webgpu`) that cannot be opened: a user's environment, not a
 * bug (exit code 1, the reason printed on one line).
 */
export class DeviceUnavailableError extends Error {
  /** Creates the error for `device` with the reason it cannot be opened. */
  constructor(readonly device: Device, reason: string) {
    super(`--device ${device}: ${reason.split("\n")[0]}`);
    this.name = "DeviceUnavailableError";
  }
}

/** The device a task runs on, what it asked for, and why (see {@linkcode describeDevice}). */
export interface DeviceChoice {
  /** What was asked for (flag, env or the default "cpu"). */
  requested: DeviceRequest;
  /** Where tensors live. */
  device: Device;
  /** What runs it, e.g. "webgpu: llvmpipe (…) (software adapter)" or "cpu". */
  description: string;
  /** With "auto" on the CPU: why WebGPU was not used. */
  reason?: string;
}

/**
 * Opens the device of `--device` (else env `TAPEGRAD_DEVICE`, else "cpu": the CPU stays the
 * default). An unknown name is a {@linkcode UsageError}; `webgpu` without an adapter is a
 * {@linkcode DeviceUnavailableError}; `auto` falls back to the CPU and keeps the reason.
 */
export async function applyDeviceFlag(values: ParsedArgs["values"]): Promise<DeviceChoice> {
  let requested = choiceFlag<DeviceRequest>(values, "device", DEVICE_REQUESTS);
  if (requested === undefined) {
    const env = Deno.env.get("TAPEGRAD_DEVICE")?.trim();
    if (env !== undefined && env !== "" && !DEVICE_REQUESTS.includes(env as DeviceRequest)) {
      throw new UsageError(
        `TAPEGRAD_DEVICE must be one of ${DEVICE_REQUESTS.join(", ")}; got "${env}"`,
      );
    }
    requested = env ? env as DeviceRequest : "cpu";
  }
  try {
    return { requested, ...await useDevice(requested) };
  } catch (error) {
    if (requested === "cpu" || requested === "auto") throw error;
    throw new DeviceUnavailableError(
      requested,
      error instanceof Error ? error.message : String(error),
    );
  }
}

/**
 * One line saying which device runs, e.g. "webgpu: NVIDIA H200", "cpu", or with auto
 * "cpu (auto: webgpu: no adapter …)".
 */
export function describeDevice(choice: DeviceChoice): string {
  if (choice.requested !== "auto") return choice.description;
  return `${choice.description} (auto${choice.reason ? `: ${choice.reason.split("\n")[0]}` : ""})`;
}

/** Most keys an error message lists before it counts the rest. */
export const MAX_LISTED_KEYS = 20;

/**
 * The message of a {@linkcode StateDictError} with each list capped at {@linkcode MAX_LISTED_KEYS}
 * keys and the total given: a file of a million stray tensors gives a few lines, not megabytes.
 */
export function describeStateDictError(error: StateDictError): string {
  const capped = (keys: string[]) =>
    keys.slice(0, MAX_LISTED_KEYS).map((k) => JSON.stringify(k)).join(", ") +
    (keys.length > MAX_LISTED_KEYS
      ? `, … and ${keys.length - MAX_LISTED_KEYS} more (${keys.length} in all)`
      : "");
  const lines = [error.message.split("\n")[0]];
  if (error.missing.length > 0) {
    lines.push(`  Missing key(s): ${capped(error.missing)}`);
  }
  if (error.unexpected.length > 0) {
    lines.push(`  Unexpected key(s): ${capped(error.unexpected)}`);
  }
  for (const m of error.mismatched.slice(0, MAX_LISTED_KEYS)) {
    lines.push(
      `  Shape mismatch for ${JSON.stringify(m.key)}: the module has [${
        m.expected.join(", ")
      }], the state dict has [${m.actual.join(", ")}]`,
    );
  }
  if (error.mismatched.length > MAX_LISTED_KEYS) {
    lines.push(`  … and ${error.mismatched.length - MAX_LISTED_KEYS} more shape mismatches`);
  }
  return lines.join("\n");
}

/** Whether an error is a user mistake (printed without a stack trace) rather than a bug. */
export function isUserError(error: unknown): boolean {
  return error instanceof UsageError || error instanceof DataError ||
    error instanceof BackendUnavailableError || error instanceof DeviceUnavailableError ||
    error instanceof SafetensorsError ||
    error instanceof CheckpointError || error instanceof StateDictError ||
    error instanceof FileWriteError || error instanceof RunFolderError ||
    error instanceof Deno.errors.NotFound ||
    error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.IsADirectory ||
    isEnvironmentError(error);
}

/**
 * Runs a task's main function: exits with its return code; prints user errors as "error: …"
 * (exit 2 for usage errors, 1 otherwise) and anything else with its stack trace (a bug).
 */
export async function runTask(name: string, main: () => Promise<number>): Promise<never> {
  let code: number;
  try {
    code = await main();
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${name}: ${error.message}\nRun with --help for the options.`);
      code = EXIT_USAGE;
    } else if (error instanceof StateDictError) {
      console.error(`${name}: error: ${describeStateDictError(error)}`);
      code = 1;
    } else if (isUserError(error)) {
      console.error(`${name}: error: ${errorText(error)}`);
      code = 1;
    } else {
      console.error(`${name}: internal error (a bug; please report it with the trace below)`);
      console.error(error);
      code = 70;
    }
  }
  Deno.exit(code);
}
