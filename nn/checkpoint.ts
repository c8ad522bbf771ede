/**
 * Checkpoints: a model's weights, optionally with its optimizer and scheduler state, in ONE
 * safetensors file, written atomically (a crash leaves the old file or the new one).
 *
 * Layout of the file:
 *
 * - Model parameters and buffers under their PyTorch names, as plain keys (`fc1.weight`,
 *   `conv1.bias`, …), the shapes PyTorch uses: float32 values as F32 (or F16/BF16 when
 *   {@linkcode saveModel} is asked for them), `num_batches_tracked` counters as I64 (PyTorch's
 *   dtype for them, so `load_state_dict` takes the file as is), other int32 buffers as I32, bool
 *   buffers as BOOL.
 * - Optimizer buffers, when an optimizer is saved, under
 *   `optimizer.state.<parameter name>.<buffer>` with the parameter's shape, buffer names as in
 *   PyTorch (`momentum_buffer`, `exp_avg`, `exp_avg_sq`).
 * - `__metadata__` (strings only): `format` = "pt"; `tapegrad` = "checkpoint-v1"; `model` (registry
 *   name) and `model_options` (JSON); `epoch`; `metrics` (JSON); `optimizer` (JSON: type,
 *   hyper-parameters and parameter names per group, step count and buffer names per parameter);
 *   `scheduler` (JSON state dict); plus any extra entries the caller adds.
 *
 * One file rather than a model file and a sibling optimizer file, so that the weights and the
 * optimizer state of a resumed run can never come from two different moments. A file saved with
 * {@linkcode saveModel} (no optimizer) loads in PyTorch as is:
 * `model.load_state_dict(safetensors.torch.load_file(path))`. For a full checkpoint, drop the
 * optimizer keys first: `{k: v for k, v in sd.items() if not k.startswith("optimizer.")}`.
 *
 * @module
 */

import type { Tensor } from "../autograd/mod.ts";
import { isJsonObject, type JsonObject, type JsonValue } from "./json.ts";
import {
  type LoadStateDictResult,
  type Module,
  type ShapeMismatch,
  StateDictError,
} from "./module.ts";
import { createModel, type ModelOptions } from "./models/registry.ts";
import { hasSpec, type ModelSpec } from "./models/spec.ts";
import type { HyperParams, HyperValue, Optimizer, OptimizerStateDict } from "./optim/optimizer.ts";
import type { LRScheduler, SchedulerStateDict } from "./schedule.ts";
import { loadSafetensors, saveSafetensors, type StoredTensor } from "./serialize.ts";

/** Prefix of the optimizer buffer keys in a checkpoint. */
export const OPTIMIZER_KEY_PREFIX = "optimizer.state.";

/** Value of the `tapegrad` metadata entry: the layout version of checkpoints written here. */
export const CHECKPOINT_VERSION = "checkpoint-v1";

const RESERVED_METADATA = [
  "format",
  "tapegrad",
  "model",
  "model_options",
  "epoch",
  "metrics",
  "optimizer",
  "scheduler",
];

/** A checkpoint whose contents do not fit what it is loaded into, or that is malformed. */
export class CheckpointError extends Error {
  /**
   * Creates a CheckpointError.
   *
   * @param source The file (or description) at fault.
   * @param problem What is wrong.
   */
  constructor(source: string, problem: string) {
    super(`${source}: ${problem}`);
    this.name = "CheckpointError";
  }
}

/** How a checkpoint stores float32 model values: exact F32, or half the bytes in F16 or BF16. */
export type CheckpointFloatDType = "f32" | "f16" | "bf16";

/** PyTorch keeps these buffers as int64; writing them as I64 lets `load_state_dict` take them. */
const INT64_BUFFER_SUFFIX = "num_batches_tracked";

/** What to write into a checkpoint. */
export interface SaveCheckpointOptions {
  /** The model whose parameters and buffers are saved under their dotted names. */
  model: Module<unknown[], unknown>;
  /** An optimizer over (some of) the model's parameters: its buffers and hyper-parameters. */
  optimizer?: Optimizer<HyperParams>;
  /** A scheduler: its state dict (JSON). */
  scheduler?: LRScheduler;
  /** Registry name and options of the model (default: the model's own `spec`, when it has one). */
  spec?: ModelSpec;
  /** The epoch the checkpoint was taken after. */
  epoch?: number;
  /** Metrics (accuracy, loss, …) as JSON. */
  metrics?: JsonObject;
  /** Extra string entries for `__metadata__` (the reserved keys above are refused). */
  metadata?: Record<string, string>;
  /**
   * How the model's float32 values are stored (default "f32", exact). "f16" and "bf16" halve the
   * file and round each value to the nearest of the smaller format; they are refused with an
   * optimizer, whose exact resume needs exact weights.
   */
  dtype?: CheckpointFloatDType;
}

/** The optimizer part of a checkpoint, with parameters identified by name rather than index. */
export interface NamedOptimizerState {
  /** "SGD", "Adam" or "AdamW". */
  type: string;
  /** Each group's parameter names and hyper-parameters. */
  paramGroups: { params: string[]; hyper: Record<string, HyperValue> }[];
  /** Step count and buffers of each parameter that has state. */
  state: { param: string; step: number; buffers: Record<string, Float32Array> }[];
}

/** A checkpoint as read from disk. */
export interface Checkpoint {
  /** Model tensors by PyTorch name (optimizer keys excluded). */
  modelState: Record<string, StoredTensor>;
  /** Registry name and options of the model, when recorded. */
  spec?: ModelSpec;
  /** The recorded epoch. */
  epoch?: number;
  /** The recorded metrics. */
  metrics?: JsonObject;
  /** The optimizer state, when saved. */
  optimizer?: NamedOptimizerState;
  /** The scheduler state, when saved. */
  scheduler?: SchedulerStateDict;
  /** The raw `__metadata__` map, including any extra entries. */
  metadata: Record<string, string>;
}

/** Where to restore a checkpoint. */
export interface RestoreTargets {
  /** Receives the weights (required to restore an optimizer: it maps names to parameters). */
  model?: Module<unknown[], unknown>;
  /** Receives buffers, step counts and hyper-parameters. */
  optimizer?: Optimizer<HyperParams>;
  /** Receives its state. */
  scheduler?: LRScheduler;
  /** Model keys must match exactly (default true). */
  strict?: boolean;
}

/** Options of {@linkcode saveModel}. */
export type SaveModelOptions = Omit<SaveCheckpointOptions, "model" | "optimizer" | "scheduler">;

/** Options of {@linkcode loadModel}. */
export interface LoadModelOptions {
  /** Keys must match exactly (default true). */
  strict?: boolean;
}

/** A model loaded from a file with the rest of the checkpoint. */
export interface LoadedModel {
  /** The model holding the file's weights. */
  model: Module<[Tensor], Tensor>;
  /** Everything the file held. */
  checkpoint: Checkpoint;
}

function parameterNames(model: Module<unknown[], unknown>): Map<Tensor, string> {
  return new Map(model.namedParameters().map(([name, p]) => [p as Tensor, name]));
}

function toNamedOptimizerState(
  state: OptimizerStateDict,
  optimizer: Optimizer<HyperParams>,
  model: Module<unknown[], unknown>,
  where: string,
): NamedOptimizerState {
  const names = parameterNames(model);
  const byIndex = optimizer.params.map((p, i) => {
    const name = names.get(p);
    if (name === undefined) {
      throw new CheckpointError(
        where,
        `optimizer parameter ${i} [${p.shape.join(", ")}] is not a parameter of the model`,
      );
    }
    return name;
  });
  return {
    type: state.type,
    paramGroups: state.paramGroups.map((g) => ({
      params: g.params.map((i) => byIndex[i]),
      hyper: g.hyper,
    })),
    state: state.state.map((s) => ({ param: byIndex[s.param], step: s.step, buffers: s.buffers })),
  };
}

function toIndexedOptimizerState(
  named: NamedOptimizerState,
  optimizer: Optimizer<HyperParams>,
  model: Module<unknown[], unknown>,
  where: string,
): OptimizerStateDict {
  const names = parameterNames(model);
  const index = new Map<string, number>();
  optimizer.params.forEach((p, i) => {
    const name = names.get(p);
    if (name === undefined) {
      throw new CheckpointError(
        where,
        `optimizer parameter ${i} [${p.shape.join(", ")}] is not a parameter of the model`,
      );
    }
    index.set(name, i);
  });
  const lookup = (name: string): number => {
    const i = index.get(name);
    if (i === undefined) {
      throw new CheckpointError(
        where,
        `the saved optimizer state names parameter "${name}", which this optimizer does not hold`,
      );
    }
    return i;
  };
  return {
    type: named.type,
    paramGroups: named.paramGroups.map((g) => ({ params: g.params.map(lookup), hyper: g.hyper })),
    state: named.state.map((s) => ({ param: lookup(s.param), step: s.step, buffers: s.buffers })),
  };
}

/**
 * Writes a checkpoint atomically (see the module comment for the layout).
 *
 * @throws {CheckpointError} When an optimizer parameter does not belong to the model, a metadata
 *   key is reserved, or a model key collides with the optimizer prefix.
 */
export async function saveCheckpoint(path: string, options: SaveCheckpointOptions): Promise<void> {
  const { model, optimizer, scheduler } = options;
  const floatDType = options.dtype ?? "f32";
  if (!["f32", "f16", "bf16"].includes(floatDType)) {
    throw new CheckpointError(path, `dtype must be "f32", "f16" or "bf16", got ${floatDType}`);
  }
  if (floatDType !== "f32" && optimizer !== undefined) {
    throw new CheckpointError(
      path,
      `dtype "${floatDType}" rounds the weights, so it is for saveModel; a checkpoint with an ` +
        `optimizer is saved as f32 for an exact resume`,
    );
  }
  const tensors: Record<string, StoredTensor> = {};
  for (const [name, t] of Object.entries(model.stateDict())) {
    if (optimizer !== undefined && name.startsWith(OPTIMIZER_KEY_PREFIX)) {
      throw new CheckpointError(
        path,
        `model key "${name}" collides with the optimizer keys ("${OPTIMIZER_KEY_PREFIX}…")`,
      );
    }
    const stored: StoredTensor = { shape: [...t.shape], data: t.data };
    if (t.dtype === "float32") {
      stored.dtype = floatDType === "f32" ? "F32" : floatDType === "f16" ? "F16" : "BF16";
    } else if (
      t.dtype === "int32" &&
      (name === INT64_BUFFER_SUFFIX || name.endsWith(`.${INT64_BUFFER_SUFFIX}`))
    ) {
      stored.dtype = "I64";
    }
    tensors[name] = stored;
  }

  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(options.metadata ?? {})) {
    if (RESERVED_METADATA.includes(key)) {
      throw new CheckpointError(
        path,
        `metadata key "${key}" is reserved for the checkpoint itself`,
      );
    }
    metadata[key] = value;
  }
  metadata.format = "pt";
  metadata.tapegrad = CHECKPOINT_VERSION;
  const spec = options.spec ?? (hasSpec(model) ? model.spec : undefined);
  if (spec !== undefined) {
    metadata.model = spec.name;
    metadata.model_options = JSON.stringify(spec.options);
  }
  if (options.epoch !== undefined) {
    if (!Number.isSafeInteger(options.epoch) || options.epoch < 0) {
      throw new CheckpointError(path, `epoch must be an integer >= 0, got ${options.epoch}`);
    }
    metadata.epoch = String(options.epoch);
  }
  if (options.metrics !== undefined) metadata.metrics = JSON.stringify(options.metrics);

  if (optimizer !== undefined) {
    const named = toNamedOptimizerState(optimizer.stateDict(), optimizer, model, path);
    const shapes = new Map(model.namedParameters().map(([name, p]) => [name, [...p.shape]]));
    for (const entry of named.state) {
      for (const [buffer, data] of Object.entries(entry.buffers)) {
        tensors[`${OPTIMIZER_KEY_PREFIX}${entry.param}.${buffer}`] = {
          shape: shapes.get(entry.param)!,
          data,
        };
      }
    }
    metadata.optimizer = JSON.stringify({
      type: named.type,
      paramGroups: named.paramGroups,
      state: named.state.map((s) => ({
        param: s.param,
        step: s.step,
        buffers: Object.keys(s.buffers),
      })),
    });
  }
  if (scheduler !== undefined) metadata.scheduler = JSON.stringify(scheduler.stateDict());

  await saveSafetensors(path, tensors, metadata);
}

function parseJson(source: string, key: string, text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new CheckpointError(source, `metadata "${key}" is not valid JSON: ${detail}`);
  }
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

function isHyperValue(value: unknown): value is HyperValue {
  return typeof value === "number" || typeof value === "boolean" ||
    (Array.isArray(value) && value.every((v) => typeof v === "number"));
}

function parseOptimizer(
  source: string,
  text: string,
  tensors: Record<string, StoredTensor>,
): NamedOptimizerState {
  const bad = (problem: string) => new CheckpointError(source, `metadata "optimizer": ${problem}`);
  const raw = parseJson(source, "optimizer", text);
  if (!isJsonObject(raw) || typeof raw.type !== "string") throw bad("expected {type, …}");
  if (!Array.isArray(raw.paramGroups) || !Array.isArray(raw.state)) {
    throw bad("expected paramGroups and state lists");
  }
  const paramGroups = raw.paramGroups.map((g, i) => {
    if (!isJsonObject(g) || !isStringArray(g.params) || !isJsonObject(g.hyper)) {
      throw bad(`group ${i} must be {params: [names], hyper: {…}}`);
    }
    const hyper: Record<string, HyperValue> = {};
    for (const [key, value] of Object.entries(g.hyper)) {
      if (!isHyperValue(value)) throw bad(`group ${i} hyper-parameter "${key}" is ${value}`);
      hyper[key] = value;
    }
    return { params: g.params, hyper };
  });
  const state = raw.state.map((s, i) => {
    if (
      !isJsonObject(s) || typeof s.param !== "string" || typeof s.step !== "number" ||
      !isStringArray(s.buffers)
    ) {
      throw bad(`state entry ${i} must be {param, step, buffers: [names]}`);
    }
    const buffers: Record<string, Float32Array> = {};
    for (const buffer of s.buffers) {
      const key = `${OPTIMIZER_KEY_PREFIX}${s.param}.${buffer}`;
      const stored = tensors[key];
      if (stored === undefined || !Object.hasOwn(tensors, key)) {
        throw new CheckpointError(source, `optimizer buffer tensor "${key}" is missing`);
      }
      if (!(stored.data instanceof Float32Array)) {
        throw new CheckpointError(
          source,
          `optimizer buffer tensor "${key}" is ${stored.dtype}; optimizer state is floating point`,
        );
      }
      buffers[buffer] = stored.data;
    }
    return { param: s.param, step: s.step, buffers };
  });
  return { type: raw.type, paramGroups, state };
}

/** Largest width accepted for a layer in recorded model options (2^20 units). */
const MAX_WIDTH = 1 << 20;

/**
 * Checks the recorded options of a registry model (`mlp`, `alexnet`) by type and range, before
 * anything is built from them: widths positive integers up to 2^20, `leakyRelu` a finite number,
 * `dropout` in [0, 1), `seed` a safe integer, no other keys. Other model names pass unchecked
 * (the registry refuses names it does not know).
 *
 * @param source Named in the error (the file).
 * @param spec The recorded name and options.
 * @throws {CheckpointError} Naming the option, what was expected and what was found.
 */
export function checkModelOptions(source: string, spec: ModelSpec): void {
  const allowed: Record<string, readonly string[]> = {
    mlp: ["inFeatures", "hidden", "numClasses", "leakyRelu", "seed"],
    alexnet: ["numClasses", "dropout", "leakyRelu", "seed"],
  };
  const keys = allowed[spec.name];
  if (keys === undefined || !Object.hasOwn(allowed, spec.name)) return;
  const options = spec.options as Record<string, unknown>;
  const bad = (key: string, expected: string) =>
    new CheckpointError(
      source,
      `metadata "model_options": "${key}" must be ${expected}, got ${
        JSON.stringify(options[key])?.slice(0, 80)
      }`,
    );
  const width = (key: string, value: unknown) => {
    if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > MAX_WIDTH) {
      throw bad(key, `an integer in 1..${MAX_WIDTH}`);
    }
  };
  for (const key of Object.keys(options)) {
    if (!keys.includes(key)) {
      throw new CheckpointError(
        source,
        `metadata "model_options": model "${spec.name}" has no option "${key}" (options: ${
          keys.join(", ")
        })`,
      );
    }
    const value = options[key];
    switch (key) {
      case "inFeatures":
      case "numClasses":
        width(key, value);
        break;
      case "hidden":
        if (!Array.isArray(value) || value.length !== 2) {
          throw bad(key, "a list of two widths");
        }
        value.forEach((v) => width(key, v));
        break;
      case "leakyRelu":
        if (typeof value !== "number" || !Number.isFinite(value)) throw bad(key, "a finite number");
        break;
      case "dropout":
        if (typeof value !== "number" || !(value >= 0 && value < 1)) {
          throw bad(key, "a number in [0, 1)");
        }
        break;
      case "seed":
        if (!Number.isSafeInteger(value)) throw bad(key, "a safe integer");
        break;
    }
  }
}

/**
 * The parameter shapes a registry model's options imply, by PyTorch name, computed without
 * building the model; undefined for a model this function does not know.
 *
 * @param spec The name and (checked) options.
 */
export function impliedShapes(spec: ModelSpec): Record<string, number[]> | undefined {
  const o = spec.options as Record<string, number & number[]>;
  if (spec.name === "mlp") {
    const inFeatures = o.inFeatures ?? 784;
    const [h1, h2] = o.hidden ?? [512, 1024];
    const classes = o.numClasses ?? 10;
    return {
      "fc1.weight": [h1, inFeatures],
      "fc1.bias": [h1],
      "fc2.weight": [h2, h1],
      "fc2.bias": [h2],
      "fc3.weight": [classes, h2],
      "fc3.bias": [classes],
    };
  }
  if (spec.name === "alexnet") {
    const classes = o.numClasses ?? 10;
    return {
      "conv1.weight": [32, 1, 4, 4],
      "conv1.bias": [32],
      "conv2.weight": [64, 32, 3, 3],
      "conv2.bias": [64],
      "conv3.weight": [128, 64, 3, 3],
      "conv3.bias": [128],
      "fc1.weight": [1024, 2048],
      "fc1.bias": [1024],
      "fc2.weight": [classes, 1024],
      "fc2.bias": [classes],
    };
  }
  return undefined;
}

/** Longest list of keys an error message spells out; the rest are counted. */
export const MAX_KEYS_LISTED = 20;

/** `a, b, c and 997 more`: at most {@linkcode MAX_KEYS_LISTED} items, then a count. */
export function listCapped(items: readonly string[], max = MAX_KEYS_LISTED): string {
  if (items.length <= max) return items.join(", ");
  return `${items.slice(0, max).join(", ")} and ${items.length - max} more`;
}

/**
 * Checks a registry model's recorded options ({@linkcode checkModelOptions}) and that the
 * parameter shapes they imply are the shapes of the file's tensors, before the model is built: a
 * file whose metadata names a model far bigger than its weights is refused without allocating it.
 *
 * @param source Named in the error (the file).
 * @param spec The recorded (or configured) name and options.
 * @param tensors The file's model tensors.
 * @throws {CheckpointError} When the options are malformed.
 * @throws {StateDictError} Naming the missing, unexpected and mismatched tensors, as
 *   `loadStateDict` would after building the model.
 */
export function checkModelSpec(
  source: string,
  spec: ModelSpec,
  tensors: Record<string, StoredTensor>,
): void {
  checkModelOptions(source, spec);
  const shapes = impliedShapes(spec);
  if (shapes === undefined) return;
  const missing: string[] = [];
  const mismatched: ShapeMismatch[] = [];
  for (const [key, expected] of Object.entries(shapes)) {
    const stored = Object.hasOwn(tensors, key) ? tensors[key] : undefined;
    if (stored === undefined) missing.push(key);
    else if (stored.shape.join(",") !== expected.join(",")) {
      mismatched.push({ key, expected, actual: [...stored.shape] });
    }
  }
  const unexpected = Object.keys(tensors).filter((key) => !Object.hasOwn(shapes, key));
  if (missing.length > 0 || unexpected.length > 0 || mismatched.length > 0) {
    throw new StateDictError(MODEL_CLASSES[spec.name], missing, unexpected, mismatched);
  }
}

/** Class names of the registry models, as a StateDictError names them. */
const MODEL_CLASSES: Record<string, string> = { mlp: "MLP", alexnet: "AlexNet" };

function parseCheckpoint(
  source: string,
  tensors: Record<string, StoredTensor>,
  metadata: Record<string, string>,
): Checkpoint {
  const checkpoint: Checkpoint = { modelState: {}, metadata };
  if (metadata.model !== undefined) {
    const options = metadata.model_options === undefined
      ? {}
      : parseJson(source, "model_options", metadata.model_options);
    if (!isJsonObject(options)) {
      throw new CheckpointError(source, `metadata "model_options" must be a JSON object`);
    }
    checkpoint.spec = { name: metadata.model, options };
  }
  if (metadata.epoch !== undefined) {
    const epoch = Number(metadata.epoch);
    if (!Number.isSafeInteger(epoch) || epoch < 0) {
      throw new CheckpointError(source, `metadata "epoch" is ${JSON.stringify(metadata.epoch)}`);
    }
    checkpoint.epoch = epoch;
  }
  if (metadata.metrics !== undefined) {
    const metrics = parseJson(source, "metrics", metadata.metrics);
    if (!isJsonObject(metrics)) {
      throw new CheckpointError(source, `metadata "metrics" must be a JSON object`);
    }
    checkpoint.metrics = metrics;
  }
  const hasOptimizer = metadata.optimizer !== undefined;
  if (hasOptimizer) checkpoint.optimizer = parseOptimizer(source, metadata.optimizer, tensors);
  if (metadata.scheduler !== undefined) {
    const scheduler = parseJson(source, "scheduler", metadata.scheduler);
    if (
      !isJsonObject(scheduler) || typeof scheduler.type !== "string" ||
      typeof scheduler.lastStep !== "number" || !Array.isArray(scheduler.baseLrs) ||
      !isJsonObject(scheduler.settings)
    ) {
      throw new CheckpointError(
        source,
        `metadata "scheduler" must be {type, lastStep, baseLrs, settings}`,
      );
    }
    checkpoint.scheduler = scheduler as unknown as SchedulerStateDict;
  }
  for (const [name, t] of Object.entries(tensors)) {
    if (hasOptimizer && name.startsWith(OPTIMIZER_KEY_PREFIX)) continue;
    Object.defineProperty(checkpoint.modelState, name, {
      value: t,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return checkpoint;
}

/**
 * Restores a loaded checkpoint into a model, optimizer and scheduler. The model is checked by
 * `loadStateDict` (missing, unexpected and shape-mismatched keys by name); the optimizer's saved
 * parameter names must be parameters of the model held by the optimizer.
 *
 * @returns The model's missing/unexpected keys (non-strict), or undefined without a model.
 * @throws {StateDictError} When the weights do not fit the model.
 * @throws {CheckpointError} When the optimizer or scheduler part is absent or does not fit.
 */
export function restoreCheckpoint(
  checkpoint: Checkpoint,
  targets: RestoreTargets,
  source = "checkpoint",
): LoadStateDictResult | undefined {
  const { model, optimizer, scheduler } = targets;
  if (optimizer !== undefined) {
    if (model === undefined) {
      throw new CheckpointError(source, "restoring an optimizer needs the model too");
    }
    if (checkpoint.optimizer === undefined) {
      throw new CheckpointError(source, "the checkpoint holds no optimizer state");
    }
  }
  if (scheduler !== undefined && checkpoint.scheduler === undefined) {
    throw new CheckpointError(source, "the checkpoint holds no scheduler state");
  }
  // The weights first: for a checkpoint of another architecture, the key-by-key report of
  // loadStateDict says most about what is wrong.
  const result = model?.loadStateDict(checkpoint.modelState, { strict: targets.strict ?? true });
  if (optimizer !== undefined) {
    optimizer.loadStateDict(
      toIndexedOptimizerState(checkpoint.optimizer!, optimizer, model!, source),
    );
  }
  if (scheduler !== undefined) scheduler.loadStateDict(checkpoint.scheduler!);
  return result;
}

/**
 * Reads a checkpoint and, when `targets` are given, restores it into them (see
 * {@linkcode restoreCheckpoint}).
 *
 * @throws {SafetensorsError} When the file is not valid safetensors.
 * @throws {CheckpointError} When the metadata is malformed or does not fit the targets.
 * @throws {StateDictError} When the weights do not fit the model (another architecture).
 */
export async function loadCheckpoint(path: string, targets?: RestoreTargets): Promise<Checkpoint> {
  const { tensors, metadata } = await loadSafetensors(path);
  const checkpoint = parseCheckpoint(path, tensors, metadata);
  if (targets !== undefined) restoreCheckpoint(checkpoint, targets, path);
  return checkpoint;
}

/** Writes a model's weights (and optional spec, metrics, metadata) without optimizer state. */
export function saveModel(
  path: string,
  model: Module<unknown[], unknown>,
  options: SaveModelOptions = {},
): Promise<void> {
  return saveCheckpoint(path, { ...options, model });
}

/**
 * Loads weights from a model file or checkpoint into `model`, or, without one, into a new model
 * built by the registry from the file's recorded `model` and `model_options`.
 *
 * @throws {CheckpointError} When no model is given and the file does not name one.
 * @throws {StateDictError} When the weights do not fit the model.
 */
export async function loadModel(
  path: string,
  model?: Module<[Tensor], Tensor>,
  options: LoadModelOptions = {},
): Promise<LoadedModel> {
  const checkpoint = await loadCheckpoint(path);
  let target = model;
  if (target === undefined) {
    if (checkpoint.spec === undefined) {
      throw new CheckpointError(
        path,
        'the file does not record its model ("model" metadata); pass the model to load into',
      );
    }
    checkModelSpec(path, checkpoint.spec, checkpoint.modelState);
    target = createModel(checkpoint.spec.name, checkpoint.spec.options as ModelOptions);
  }
  restoreCheckpoint(checkpoint, { model: target, strict: options.strict }, path);
  return { model: target, checkpoint };
}
