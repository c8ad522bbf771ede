/**
 * `deno task sample --ckpt PATH`: generated first names from a `names-gpt` or `names-mlp`
 * checkpoint, one per line.
 *
 * @module
 */

import { Rng } from "../autograd/mod.ts";
import {
  type FlagSpec,
  formatHelp,
  numberFlag,
  parseFlags,
  runTask,
  SHARED_FLAGS,
  UsageError,
} from "./common.ts";
import { loadNamesModel, sampleNames } from "./names.ts";
import { enterCallerDirectory } from "./report.ts";

const FLAGS: Record<string, FlagSpec> = {
  ckpt: {
    type: "string",
    value: "PATH",
    help: "checkpoint of a names run: model.safetensors, best or last (required)",
  },
  count: { type: "string", value: "N", help: "names to generate (default 20)" },
  temperature: {
    type: "string",
    value: "T",
    help: "softmax temperature: below 1 safer, above 1 wilder (default 1)",
  },
  seed: { type: "string", value: "N", help: "seed of the draws (default 1)" },
  json: { type: "boolean", help: "print one JSON object instead of one name per line" },
  help: SHARED_FLAGS.help,
};

const USAGE = "Usage: deno task sample --ckpt PATH [--count 20] [--temperature 1] [--seed 1]";
const DESCRIPTION =
  "Generates first names from a checkpoint of deno task train --config names-gpt or names-mlp:\n" +
  "each name starts at the boundary token and draws one character at a time from the model's\n" +
  "softmax(logits / temperature) until it predicts the end. The same seed gives the same names.";

async function main(): Promise<number> {
  const { values } = parseFlags(Deno.args, FLAGS);
  if (values.help) {
    console.log(formatHelp(USAGE, DESCRIPTION, FLAGS));
    return 0;
  }
  enterCallerDirectory();
  const path = values.ckpt;
  if (typeof path !== "string" || path === "") throw new UsageError("--ckpt PATH is required");
  const count = numberFlag(values, "count", { min: 1, max: 100_000, integer: true }) ?? 20;
  const temperature = numberFlag(values, "temperature", { min: 1e-3, max: 100 }) ?? 1;
  const seed = numberFlag(values, "seed", { integer: true }) ?? 1;
  const loaded = await loadNamesModel(path);
  const names = sampleNames(loaded, { count, temperature, rng: new Rng(seed) });
  if (values.json === true) {
    console.log(
      JSON.stringify({ checkpoint: path, model: loaded.modelName, temperature, seed, names }),
    );
  } else {
    for (const name of names) console.log(name === "" ? "(empty)" : name);
  }
  return 0;
}

if (import.meta.main) await runTask("sample", main);
