/**
 * {@linkcode ModelSpec}: how a model built by the registry describes itself, so a checkpoint can
 * record which architecture its weights belong to and rebuild it.
 *
 * @module
 */

import { defaultRng, Rng } from "../../autograd/mod.ts";
import type { JsonObject } from "../json.ts";

/** A model's registry name and the JSON options that rebuild it with `createModel`. */
export interface ModelSpec {
  /** Registry name, e.g. "mlp". */
  name: string;
  /** Options as JSON (no generator objects). */
  options: JsonObject;
}

/** A model that can describe itself (the registry's models do). */
export interface DescribedModel {
  /** The name and options that rebuild this architecture. */
  readonly spec: ModelSpec;
}

/** Whether `model` carries a {@linkcode ModelSpec}. */
export function hasSpec(model: object): model is DescribedModel {
  const spec = (model as { spec?: unknown }).spec;
  return typeof spec === "object" && spec !== null &&
    typeof (spec as ModelSpec).name === "string" && typeof (spec as ModelSpec).options === "object";
}

/** The generator for initial weights: `rng` if given, else a new one from `seed`, else the default. */
export function initRng(options: { rng?: Rng; seed?: number }): Rng {
  if (options.rng !== undefined) return options.rng;
  return options.seed !== undefined ? new Rng(options.seed) : defaultRng();
}
