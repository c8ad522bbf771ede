/**
 * {@linkcode Module}: the base class of layers and models. It finds its parameters and sub-modules
 * by looking at its own properties, so a model is written like a PyTorch `nn.Module`:
 *
 * ```ts
 * import { relu, type Tensor } from "@tapegrad/tapegrad/autograd";
 * import { Linear, Module } from "@tapegrad/tapegrad/nn";
 *
 * class Net extends Module {
 *   fc1 = new Linear(784, 128);
 *   fc2 = new Linear(128, 10);
 *   override forward(x: Tensor): Tensor {
 *     return this.fc2.call(relu(this.fc1.call(x.flatten(1))));
 *   }
 * }
 * console.log(new Net().numParameters()); // 101770
 * ```
 *
 * Naming: own enumerable properties are scanned in creation order (JavaScript lists integer-like
 * keys such as `"0"`, `"1"` first, in ascending order, which is what `Sequential` relies on). A
 * property holding a {@linkcode Parameter} is a parameter, one holding a `Module` is a child, one
 * registered with {@linkcode Module.registerBuffer} is a buffer (saved in the state dict, never
 * trained); anything else (numbers, plain tensors, generators) is ignored. Names are joined with
 * dots, PyTorch style: `fc1.weight`, `features.0.bias`.
 *
 * @module
 */

import {
  type AnyTensor,
  contiguousStrides,
  type DType,
  kernels,
  type Shape,
  Tensor,
} from "../autograd/mod.ts";
import { dtypeOf, storageFor } from "../autograd/dtype.ts";
import type { Device } from "../autograd/device.ts";
import { relocate } from "../autograd/tensor.ts";
import { Parameter } from "./parameter.ts";
import type { StoredTensor } from "./serialize.ts";

/**
 * A state dict: every parameter and buffer by dotted name, as `Module.stateDict()` returns it.
 * Parameters are float32; a buffer keeps its dtype (BatchNorm's `num_batches_tracked` is int32).
 */
export type StateDict = Record<string, AnyTensor>;

/** What `Module.loadStateDict` accepts: tensors, or plain `{shape, data}` as read from safetensors. */
export type StateDictSource = Record<string, AnyTensor | StoredTensor>;

/** A key present on both sides whose shapes differ. */
export interface ShapeMismatch {
  /** The dotted name. */
  key: string;
  /** The shape the module has. */
  expected: number[];
  /** The shape the state dict has. */
  actual: number[];
}

/**
 * A state dict that does not fit a module. Lists every missing, unexpected and shape-mismatched key
 * by name, so one error tells the whole story (e.g. a checkpoint of another architecture).
 */
export class StateDictError extends Error {
  /** Keys the module has and the state dict lacks. */
  readonly missing: string[];
  /** Keys the state dict has and the module lacks. */
  readonly unexpected: string[];
  /** Keys whose shapes differ. */
  readonly mismatched: ShapeMismatch[];

  /**
   * Builds a message naming every problem.
   *
   * @param moduleName Class name of the module being loaded (shown in the message).
   * @param missing Keys absent from the state dict (only listed when they are errors).
   * @param unexpected Keys the module does not have (only listed when they are errors).
   * @param mismatched Keys whose shapes differ.
   */
  constructor(
    moduleName: string,
    missing: string[],
    unexpected: string[],
    mismatched: ShapeMismatch[],
  ) {
    const lines = [`Error(s) in loading state dict for ${moduleName}:`];
    const quote = (keys: string[]) => keys.map((k) => JSON.stringify(k)).join(", ");
    if (missing.length > 0) lines.push(`  Missing key(s): ${quote(missing)}`);
    if (unexpected.length > 0) lines.push(`  Unexpected key(s): ${quote(unexpected)}`);
    for (const m of mismatched) {
      lines.push(
        `  Shape mismatch for ${JSON.stringify(m.key)}: the module has [${
          m.expected.join(", ")
        }], the state dict has [${m.actual.join(", ")}]`,
      );
    }
    super(lines.join("\n"));
    this.name = "StateDictError";
    this.missing = missing;
    this.unexpected = unexpected;
    this.mismatched = mismatched;
  }
}

/** Options of {@linkcode Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /**
   * Require the keys to match exactly (default true). With false, missing and unexpected keys are
   * reported in the result instead of thrown; shape mismatches are always an error, as in PyTorch.
   */
  strict?: boolean;
}

/** What {@linkcode Module.loadStateDict} did not use or did not find (non-strict loading). */
export interface LoadStateDictResult {
  /** Module keys the state dict lacked (left unchanged). */
  missingKeys: string[];
  /** State dict keys the module does not have (ignored). */
  unexpectedKeys: string[];
}

/** Options of {@linkcode Module.zeroGrad}. */
export interface ZeroGradOptions {
  /** Drop the gradient tensors instead of zeroing them in place (default false: keep storage). */
  setToNone?: boolean;
}

function joinName(prefix: string, name: string): string {
  return prefix === "" ? name : `${prefix}.${name}`;
}

function shapeOf(value: AnyTensor | StoredTensor): number[] {
  return [...value.shape];
}

/** The tapegrad dtype of a state-dict value. */
function dtypeOfValue(value: AnyTensor | StoredTensor): DType {
  return value instanceof Tensor ? value.dtype : dtypeOf(value.data);
}

/**
 * Why `value` cannot be copied into a `target` tensor of another dtype, or undefined when it can:
 * converting is allowed where it is exact, as PyTorch's `copy_` of a checkpoint's int64
 * `num_batches_tracked` into a buffer, or an old file's float32 count into an int32 buffer.
 */
function conversionProblem(
  data: ArrayLike<number>,
  from: DType,
  to: DType,
): string | undefined {
  if (from === to) return undefined;
  if (from === "bool" || to === "bool") return `cannot convert ${from} to ${to}`;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    const exact = to === "int32"
      ? Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31
      : Math.abs(v) <= 2 ** 24;
    if (!exact) return `element ${i} (${v}) is not exactly representable as ${to}`;
  }
  return undefined;
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Base class of layers and models.
 *
 * @typeParam I The arguments of `forward` (default: one tensor).
 * @typeParam O What `forward` returns (default: a tensor).
 */
export abstract class Module<I extends unknown[] = [Tensor], O = Tensor> {
  /** Training mode (true) or evaluation mode (false); changes layers such as `Dropout`. */
  training = true;
  readonly #buffers = new Set<string>();

  /** The computation. Call it through {@linkcode Module.call}. */
  abstract forward(...inputs: I): O;

  /** Runs {@linkcode Module.forward}; the counterpart of calling a PyTorch module. */
  call(...inputs: I): O {
    return this.forward(...inputs);
  }

  /**
   * Makes `tensor` a buffer named `name`: stored as a property, included in the state dict, never
   * returned by `parameters()` (running statistics, fixed masks).
   */
  registerBuffer(name: string, tensor: AnyTensor): void {
    if (tensor instanceof Parameter) {
      throw new TypeError(`registerBuffer: "${name}" is a Parameter; assign it as a property`);
    }
    Object.defineProperty(this, name, {
      value: tensor,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    this.#buffers.add(name);
  }

  /** This module's own parameters, buffers and children, by property name, in creation order. */
  #own(): {
    parameters: [string, Parameter][];
    buffers: [string, AnyTensor][];
    children: [string, Module<unknown[], unknown>][];
  } {
    const parameters: [string, Parameter][] = [];
    const buffers: [string, AnyTensor][] = [];
    const children: [string, Module<unknown[], unknown>][] = [];
    for (const [name, value] of Object.entries(this)) {
      if (value instanceof Parameter) parameters.push([name, value]);
      else if (value instanceof Module) children.push([name, value]);
      else if (value instanceof Tensor && this.#buffers.has(name)) buffers.push([name, value]);
    }
    return { parameters, buffers, children };
  }

  /** The direct sub-modules with their property names. */
  namedChildren(): [string, Module<unknown[], unknown>][] {
    return this.#own().children;
  }

  /** The direct sub-modules. */
  children(): Module<unknown[], unknown>[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /**
   * This module (named `""`) and every sub-module below it, depth first in registration order, each
   * once even when shared.
   */
  namedModules(): [string, Module<unknown[], unknown>][] {
    const out: [string, Module<unknown[], unknown>][] = [];
    const seen = new Set<Module<unknown[], unknown>>();
    const visit = (module: Module<unknown[], unknown>, prefix: string): void => {
      if (seen.has(module)) return;
      seen.add(module);
      out.push([prefix, module]);
      for (const [name, child] of module.namedChildren()) visit(child, joinName(prefix, name));
    };
    visit(this, "");
    return out;
  }

  /** This module and all its sub-modules. */
  modules(): Module<unknown[], unknown>[] {
    return this.namedModules().map(([, m]) => m);
  }

  /**
   * Every parameter with its dotted name (`fc1.weight`), each tensor once, in the order PyTorch's
   * `named_parameters()` gives for the same structure.
   */
  namedParameters(): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    const seen = new Set<Parameter>();
    for (const [prefix, module] of this.namedModules()) {
      for (const [name, p] of module.#own().parameters) {
        if (seen.has(p)) continue;
        seen.add(p);
        out.push([joinName(prefix, name), p]);
      }
    }
    return out;
  }

  /** Every parameter, each once: what an optimizer takes. */
  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Every registered buffer with its dotted name. */
  namedBuffers(): [string, AnyTensor][] {
    const out: [string, AnyTensor][] = [];
    for (const [prefix, module] of this.namedModules()) {
      for (const [name, b] of module.#own().buffers) out.push([joinName(prefix, name), b]);
    }
    return out;
  }

  /** Parameters and buffers by name, in PyTorch's `state_dict()` order (the live tensors). */
  #stateEntries(): [string, AnyTensor][] {
    const out: [string, AnyTensor][] = [];
    for (const [prefix, module] of this.namedModules()) {
      const own = module.#own();
      for (const [name, p] of own.parameters) out.push([joinName(prefix, name), p]);
      for (const [name, b] of own.buffers) out.push([joinName(prefix, name), b]);
    }
    return out;
  }

  /** Total number of parameter elements (shared parameters counted once). */
  numParameters(): number {
    let total = 0;
    for (const p of this.parameters()) total += p.size;
    return total;
  }

  /**
   * Moves every parameter and buffer to `device` in place and resolves to this module: the same
   * tensor objects, so an optimizer made before the move still updates them (and moves its own
   * state when it next steps). Gradients are dropped. Open a device first with
   * `await useDevice("webgpu")`; coming back to `"cpu"` waits for the device's values.
   *
   * @example Train on the GPU when there is one
   * ```ts ignore
   * import { Linear, useDevice } from "@tapegrad/tapegrad";
   *
   * await useDevice("webgpu");
   * const model = await new Linear(4, 2).to("webgpu");
   * ```
   */
  async to(device: Device): Promise<this> {
    for (const [, t] of this.#stateEntries()) await relocate(t, device);
    return this;
  }

  /** Where the parameters live (the first one's device; "cpu" for a module without any). */
  get device(): Device {
    return this.#stateEntries()[0]?.[1].device ?? "cpu";
  }

  /** Sets training mode on this module and every sub-module; returns this. */
  train(mode = true): this {
    for (const module of this.modules()) module.training = mode;
    return this;
  }

  /** Sets evaluation mode (`train(false)`): dropout off. Returns this. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Clears the gradients of every parameter: zeroed in place by default, so the next backward pass
   * accumulates into the same storage without allocating.
   */
  zeroGrad(options: ZeroGradOptions = {}): void {
    for (const p of this.parameters()) {
      if (p.grad === null) continue;
      if (options.setToNone === true || !p.grad.isContiguous() || p.grad.device !== "cpu") {
        p.grad = null;
      } else kernels.zero(p.grad.data, p.grad.offset, p.grad.size);
    }
  }

  /**
   * Every parameter and buffer by dotted name, as contiguous COPIES detached from the graph: the
   * snapshot does not change when training continues, and editing it does not change the module.
   * Key order and names are those of PyTorch's `state_dict()` for the same structure. Each value
   * keeps its dtype: parameters are float32, an integer buffer such as BatchNorm's
   * `num_batches_tracked` stays int32 (checkpoints write it as PyTorch's I64).
   */
  stateDict(): StateDict {
    const out: StateDict = {};
    for (const [name, t] of this.#stateEntries()) {
      const data = storageFor(t.dtype, t.size);
      kernels.copyStrided(
        t.shape,
        t.data,
        t.offset,
        t.strides,
        data,
        0,
        contiguousStrides(t.shape),
      );
      out[name] = new Tensor<DType>(data, t.shape);
    }
    return out;
  }

  /**
   * Copies values from `source` into this module's parameters and buffers, in place (optimizers
   * keep working on the same tensors). Everything is checked before anything is copied, so a
   * failed load leaves the module unchanged.
   *
   * @param source Tensors or `{shape, data}` by dotted name (e.g. from a safetensors file).
   * @param options `strict` (default true): missing or unexpected keys are errors.
   * @returns The keys that were missing or unexpected (empty lists when strict).
   * @throws {StateDictError} Naming every missing, unexpected and shape-mismatched key.
   */
  loadStateDict(source: StateDictSource, options: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = options.strict ?? true;
    const entries = this.#stateEntries();
    const own = new Set(entries.map(([name]) => name));
    const missing: string[] = [];
    const mismatched: ShapeMismatch[] = [];
    for (const [name, target] of entries) {
      if (!Object.hasOwn(source, name)) {
        missing.push(name);
        continue;
      }
      const value = source[name];
      if (!(value instanceof Tensor)) {
        let size = 1;
        for (const d of value.shape) size *= d;
        const data = value.data as unknown;
        if (
          !(data instanceof Float32Array || data instanceof Int32Array ||
            data instanceof Uint8Array) || data.length !== size
        ) {
          throw new RangeError(
            `loadStateDict: "${name}" has shape [${
              value.shape.join(", ")
            }] but ${value.data?.length} values`,
          );
        }
      }
      if (!sameShape(value.shape, target.shape)) {
        mismatched.push({ key: name, expected: [...target.shape], actual: shapeOf(value) });
        continue;
      }
      const from = dtypeOfValue(value);
      if (from !== target.dtype) {
        const dense = value instanceof Tensor ? value.contiguous() : value;
        const values = dense.data;
        const offset = value instanceof Tensor ? (dense as AnyTensor).offset : 0;
        const problem = conversionProblem(
          values.subarray(offset, offset + target.size),
          from,
          target.dtype,
        );
        if (problem !== undefined) {
          throw new TypeError(
            `loadStateDict: "${name}" is ${from} in the state dict and ${target.dtype} in the ` +
              `module: ${problem}`,
          );
        }
      }
    }
    const unexpected = Object.keys(source).filter((k) => !own.has(k));
    if (mismatched.length > 0 || (strict && (missing.length > 0 || unexpected.length > 0))) {
      const name = this.constructor.name;
      throw new StateDictError(
        name,
        strict ? missing : [],
        strict ? unexpected : [],
        mismatched,
      );
    }
    for (const [name, target] of entries) {
      if (!Object.hasOwn(source, name)) continue;
      const value = source[name];
      if (value instanceof Tensor) {
        kernels.copyStrided(
          target.shape,
          value.data,
          value.offset,
          value.strides,
          target.data,
          target.offset,
          target.strides,
        );
      } else {
        kernels.copyStrided(
          target.shape,
          value.data,
          0,
          contiguousStrides(value.shape),
          target.data,
          target.offset,
          target.strides,
        );
      }
    }
    for (const module of this.modules()) module.stateLoaded();
    return { missingKeys: missing, unexpectedKeys: unexpected };
  }

  /**
   * Called on this module and every sub-module after {@linkcode Module.loadStateDict} has copied
   * new values in: a module that keeps something derived from its tensors (a quantized layer's
   * int8 weights) rebuilds it here. Does nothing by default.
   */
  protected stateLoaded(): void {}

  /** Extra text inside this module's parentheses in {@linkcode Module.toString} (override it). */
  extraRepr(): string {
    return "";
  }

  /**
   * A PyTorch-like summary:
   *
   * ```text
   * MLP(
   *   (fc1): Linear(inFeatures=784, outFeatures=512, bias=true)
   *   …
   * )
   * ```
   */
  toString(): string {
    const name = this.constructor.name;
    const children = this.namedChildren();
    const extra = this.extraRepr();
    if (children.length === 0) return `${name}(${extra})`;
    const lines: string[] = [];
    if (extra !== "") lines.push(...extra.split("\n"));
    for (const [childName, child] of children) {
      lines.push(`(${childName}): ${child.toString().split("\n").join("\n  ")}`);
    }
    return `${name}(\n  ${lines.join("\n  ")}\n)`;
  }

  /** Shows the summary in `console.log` instead of the raw fields. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }
}

/**
 * Holds sub-modules in a list (PyTorch's `nn.ModuleList`): they are registered as children named
 * "0", "1", …, so their parameters are `0.weight`, `1.bias`, … and move with `train()`, `eval()`
 * and the state dict. It has no `forward`: iterate it in the owner's.
 *
 * @typeParam M The type of the items.
 */
export class ModuleList<M extends Module<never[], unknown> = Module<never[], unknown>>
  extends Module<[], never> {
  /**
   * Creates a list.
   *
   * @param modules The initial items, in order.
   */
  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  /** Number of items. */
  get length(): number {
    return this.children().length;
  }

  /** The item at `index` (negative counts from the end). */
  at(index: number): M {
    const items = this.children() as unknown as M[];
    const item = items.at(index);
    if (item === undefined) {
      throw new RangeError(`ModuleList.at: index ${index} is outside 0..${items.length - 1}`);
    }
    return item;
  }

  /** Adds an item at the end; returns this. */
  append(module: M): this {
    if (!(module instanceof Module)) {
      throw new TypeError(`ModuleList.append: item ${this.length} is not a Module`);
    }
    Object.defineProperty(this, String(this.length), {
      value: module,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    return this;
  }

  /** Adds every item of `modules` at the end; returns this. */
  extend(modules: Iterable<M>): this {
    for (const m of modules) this.append(m);
    return this;
  }

  /** The items in order. */
  [Symbol.iterator](): Iterator<M> {
    return (this.children() as unknown as M[])[Symbol.iterator]();
  }

  /** Always throws: a ModuleList is a container, not a layer. */
  forward(): never {
    throw new TypeError("ModuleList has no forward(); iterate over its modules instead");
  }
}

/**
 * Holds sub-modules by name (PyTorch's `nn.ModuleDict`): each is a child under its key, so its
 * parameters are `key.weight`, …, in insertion order (integer-like keys first, as JavaScript orders
 * them). Keys that are not identifiers-with-dots-free names, or that name a property of the dict
 * itself (`training`, `get`, …), are refused. It has no `forward`.
 *
 * @typeParam M The type of the items.
 */
export class ModuleDict<M extends Module<never[], unknown> = Module<never[], unknown>>
  extends Module<[], never> {
  /**
   * Creates a dict.
   *
   * @param modules The initial items, as an object or [key, module] pairs.
   */
  constructor(modules: Record<string, M> | Iterable<[string, M]> = {}) {
    super();
    const entries = Symbol.iterator in modules
      ? modules as Iterable<[string, M]>
      : Object.entries(modules as Record<string, M>);
    for (const [key, m] of entries) this.set(key, m);
  }

  /** Adds or replaces the item under `key`; returns this. */
  set(key: string, module: M): this {
    if (!(module instanceof Module)) {
      throw new TypeError(`ModuleDict.set: "${key}" is not a Module`);
    }
    const own = Object.getOwnPropertyDescriptor(this, key);
    if (
      key === "" || key.includes(".") || key in this && !(own?.value instanceof Module)
    ) {
      throw new RangeError(
        `ModuleDict.set: "${key}" cannot be a key (empty, dotted, or a property of the dict)`,
      );
    }
    Object.defineProperty(this, key, {
      value: module,
      enumerable: true,
      writable: true,
      configurable: true,
    });
    return this;
  }

  /** The item under `key`, or undefined. */
  get(key: string): M | undefined {
    const value = Object.getOwnPropertyDescriptor(this, key)?.value;
    return value instanceof Module ? value as unknown as M : undefined;
  }

  /** Whether there is an item under `key`. */
  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** Removes the item under `key`; returns whether there was one. */
  delete(key: string): boolean {
    if (!this.has(key)) return false;
    delete (this as unknown as Record<string, unknown>)[key];
    return true;
  }

  /** Number of items. */
  get size(): number {
    return this.namedChildren().length;
  }

  /** The keys in order. */
  keys(): string[] {
    return this.namedChildren().map(([k]) => k);
  }

  /** The items in order. */
  values(): M[] {
    return this.children() as unknown as M[];
  }

  /** [key, item] pairs in order. */
  entries(): [string, M][] {
    return this.namedChildren() as unknown as [string, M][];
  }

  /** Always throws: a ModuleDict is a container, not a layer. */
  forward(): never {
    throw new TypeError("ModuleDict has no forward(); look its modules up by key instead");
  }
}
