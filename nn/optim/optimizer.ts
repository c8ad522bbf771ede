/**
 * The {@linkcode Optimizer} base class: parameter groups with their own hyper-parameters, per
 * parameter state (momentum buffers, moment estimates, step counts), `zeroGrad()`, `step()` and a
 * state dict from which a resumed run continues bitwise like an uninterrupted one.
 *
 * @module
 */

import { kernels, noGrad, Tensor } from "../../autograd/mod.ts";
import {
  type Device,
  type DeviceBackend,
  deviceBackend,
  type DeviceStorage,
} from "../../autograd/device.ts";

/** Hyper-parameters every optimizer has; schedulers change `lr` per group. */
export interface HyperParams {
  /** Learning rate. */
  lr: number;
  /** Weight decay (L2 penalty, or decoupled decay for AdamW). */
  weightDecay: number;
}

/** A parameter group: tensors that share hyper-parameters `H`. */
export type ParamGroup<H extends HyperParams> = H & {
  /** The tensors updated with these hyper-parameters. */
  params: Tensor[];
  /** The learning rate the first scheduler attached to this optimizer started from. */
  initialLr?: number;
};

/** A group as passed to a constructor: its tensors, and any hyper-parameter that overrides the defaults. */
export type ParamGroupSpec<H extends HyperParams> = Partial<H> & {
  /** The tensors of this group. */
  params: readonly Tensor[];
};

/** What optimizers accept: a list of tensors (one group) or a list of groups. */
export type ParamsInput<H extends HyperParams> = readonly Tensor[] | readonly ParamGroupSpec<H>[];

/** Per-parameter state: how many updates it has had and its named Float32 buffers. */
export interface ParamState {
  /** Number of `step()` calls that updated this parameter. */
  step: number;
  /** Buffers by PyTorch's names (`momentum_buffer`, `exp_avg`, `exp_avg_sq`), parameter-sized. */
  buffers: Record<string, Float32Array>;
  /**
   * The same buffers while the parameter lives on a device (they replace `buffers` there until
   * {@linkcode Optimizer.to} brings them back).
   */
  deviceBuffers?: Record<string, DeviceStorage>;
}

/**
 * The device copy of state buffer `name` of a parameter on a device: the existing one, the host
 * buffer moved there (state that followed its parameter), or a new zeroed one (`created` true).
 */
export function deviceStateBuffer(
  backend: DeviceBackend,
  state: ParamState,
  name: string,
  size: number,
): { buffer: DeviceStorage; created: boolean } {
  const on = state.deviceBuffers ??= {};
  const existing = on[name];
  if (existing !== undefined) return { buffer: existing, created: false };
  const host = state.buffers[name];
  if (host !== undefined) {
    on[name] = backend.upload(host);
    delete state.buffers[name];
    return { buffer: on[name], created: false };
  }
  on[name] = backend.zeros("float32", size);
  return { buffer: on[name], created: true };
}

/** The backend of a parameter's device. */
export function backendOf(param: Tensor): DeviceBackend {
  return deviceBackend(param.device as Exclude<Device, "cpu">);
}

/** A hyper-parameter value as stored in a state dict (JSON-serialisable). */
export type HyperValue = number | boolean | number[];

/** One group in a state dict: parameter indices and hyper-parameters. */
export interface ParamGroupState {
  /** Indices of the group's parameters in the optimizer's flat parameter order. */
  params: number[];
  /** Every hyper-parameter of the group (and `initialLr` when a scheduler set it). */
  hyper: Record<string, HyperValue>;
}

/** The state of one parameter in a state dict. */
export interface ParamStateEntry {
  /** Index in the optimizer's flat parameter order. */
  param: number;
  /** Step count. */
  step: number;
  /** Buffers (copies), each as long as the parameter. */
  buffers: Record<string, Float32Array>;
}

/**
 * Everything needed to resume an optimizer exactly: `type` and `paramGroups` are plain JSON,
 * `state` holds Float32 buffers (for a safetensors file) next to JSON step counts.
 */
export interface OptimizerStateDict {
  /** The optimizer's kind: "SGD", "Adam" or "AdamW". */
  type: string;
  /** Hyper-parameters and parameter indices of each group. */
  paramGroups: ParamGroupState[];
  /** State of each parameter that has been updated at least once. */
  state: ParamStateEntry[];
}

/** Options of {@linkcode Optimizer.zeroGrad}. */
export interface OptimizerZeroGradOptions {
  /** Drop the gradient tensors instead of zeroing them in place (default false: keep storage). */
  setToNone?: boolean;
}

function describe(t: Tensor): string {
  return `[${t.shape.join(", ")}]`;
}

/**
 * Base class of the optimizers.
 *
 * @typeParam H The hyper-parameters of each group.
 */
export abstract class Optimizer<H extends HyperParams = HyperParams> {
  /** The kind, as written in state dicts ("SGD", "Adam", "AdamW"). */
  readonly type: string;
  /** The parameter groups; change `lr` (or any hyper-parameter) here between steps. */
  readonly paramGroups: ParamGroup<H>[] = [];
  /** Default hyper-parameters for groups that do not set them. */
  readonly defaults: Readonly<H>;
  readonly #state = new Map<Tensor, ParamState>();

  /**
   * Creates a Optimizer.
   *
   * @param type Name written in state dicts.
   * @param params Tensors, or groups of tensors with their own hyper-parameters.
   * @param defaults Hyper-parameters of groups that do not override them.
   */
  protected constructor(type: string, params: ParamsInput<H>, defaults: H) {
    this.type = type;
    this.defaults = Object.freeze({ ...defaults });
    const list = [...params];
    if (list.length === 0) throw new RangeError(`${type}: got an empty parameter list`);
    const isTensorList = list.every((item) => !("params" in item));
    if (isTensorList) {
      this.addParamGroup({ params: list as Tensor[] } as unknown as ParamGroupSpec<H>);
    } else {
      for (const item of list) {
        if (!("params" in item)) {
          throw new TypeError(`${type}: mix of tensors and parameter groups in the parameter list`);
        }
        this.addParamGroup(item);
      }
    }
  }

  /** Checks a group's hyper-parameters; throws a RangeError naming the bad one. */
  protected abstract validate(group: ParamGroup<H>): void;

  /**
   * Updates one parameter in place from its (contiguous) gradient.
   *
   * @param param The parameter (contiguous).
   * @param grad Its gradient (contiguous, same shape).
   * @param group Its group's hyper-parameters.
   * @param state Its state, created empty on first use; buffers are added by the subclass.
   */
  protected abstract update(
    param: Tensor,
    grad: Tensor,
    group: ParamGroup<H>,
    state: ParamState,
  ): void;

  /** Adds a group of parameters with its own hyper-parameters (others from the defaults). */
  addParamGroup(spec: ParamGroupSpec<H>): void {
    const { params, ...overrides } = spec;
    for (const key of Object.keys(overrides)) {
      if (!Object.hasOwn(this.defaults, key) && key !== "initialLr") {
        throw new RangeError(
          `${this.type}: unknown hyper-parameter "${key}" in a parameter group (known: ${
            Object.keys(this.defaults).join(", ")
          })`,
        );
      }
    }
    const seen = new Set(this.params);
    const tensors = [...params];
    tensors.forEach((p, i) => {
      if (!p.isLeaf) {
        throw new TypeError(
          `${this.type}: parameter ${i} ${describe(p)} is not a leaf tensor (computed by an op)`,
        );
      }
      if (!p.isContiguous()) {
        throw new TypeError(`${this.type}: parameter ${i} ${describe(p)} is not contiguous`);
      }
      if (seen.has(p)) {
        throw new RangeError(
          `${this.type}: parameter ${i} ${describe(p)} appears twice (in one group or in two)`,
        );
      }
      seen.add(p);
    });
    const defined = Object.fromEntries(
      Object.entries(overrides).filter(([, v]) => v !== undefined),
    );
    const group = { ...this.defaults, ...defined, params: tensors } as ParamGroup<H>;
    this.validate(group);
    this.paramGroups.push(group);
  }

  /** Every parameter of every group, in order (the indices state dicts use). */
  get params(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** The state of `param` (step count and buffers), or undefined before its first update. */
  getState(param: Tensor): ParamState | undefined {
    return this.#state.get(param);
  }

  /** Clears every parameter's gradient: zeroed in place by default (storage kept for the next pass). */
  zeroGrad(options: OptimizerZeroGradOptions = {}): void {
    for (const p of this.params) {
      if (p.grad === null) continue;
      if (options.setToNone === true || !p.grad.isContiguous() || p.grad.device !== "cpu") {
        p.grad = null;
      } else kernels.zero(p.grad.data, p.grad.offset, p.grad.size);
    }
  }

  /**
   * Applies one update to every parameter that has a gradient, in place on its storage, with
   * recording off. Parameters without `.grad` are skipped (their state does not advance).
   */
  step(): void {
    noGrad(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          const grad = p.grad;
          if (grad === null) continue;
          if (grad.shape.length !== p.shape.length || grad.shape.some((d, i) => d !== p.shape[i])) {
            throw new RangeError(
              `${this.type}.step: gradient ${describe(grad)} does not match parameter ${
                describe(p)
              }`,
            );
          }
          let state = this.#state.get(p);
          if (state === undefined) {
            state = { step: 0, buffers: {} };
            this.#state.set(p, state);
          }
          this.update(p, grad.contiguous(), group, state);
        }
      }
    });
  }

  /**
   * Brings state buffers that live on a device back to the host (`"cpu"`), so
   * {@linkcode Optimizer.stateDict} can copy them; state moves to a device by itself when its
   * parameter is there at the next step. Resolves to this optimizer.
   */
  async to(device: Device): Promise<this> {
    if (device !== "cpu") return this;
    for (const state of this.#state.values()) {
      const on = state.deviceBuffers;
      if (on === undefined) continue;
      for (const [name, buffer] of Object.entries(on)) {
        state.buffers[name] = await new Tensor(buffer, [buffer.length]).read() as Float32Array;
      }
      delete state.deviceBuffers;
    }
    return this;
  }

  /**
   * A copy of the optimizer's state: hyper-parameters per group, step counts and buffers per
   * parameter (by index in {@linkcode Optimizer.params}).
   */
  stateDict(): OptimizerStateDict {
    for (const s of this.#state.values()) {
      if (s.deviceBuffers !== undefined && Object.keys(s.deviceBuffers).length > 0) {
        throw new Error(
          `${this.type}.stateDict: state lives on ${
            Object.values(s.deviceBuffers)[0].device
          }; bring it back first with \`await optimizer.to("cpu")\``,
        );
      }
    }
    const index = new Map(this.params.map((p, i) => [p, i]));
    const paramGroups = this.paramGroups.map((group) => {
      const hyper: Record<string, HyperValue> = {};
      for (const [key, value] of Object.entries(group)) {
        if (key === "params" || value === undefined) continue;
        hyper[key] = Array.isArray(value) ? [...value] : value as number | boolean;
      }
      return { params: group.params.map((p) => index.get(p)!), hyper };
    });
    const state: ParamStateEntry[] = [];
    this.params.forEach((p, i) => {
      const s = this.#state.get(p);
      if (s === undefined) return;
      const buffers: Record<string, Float32Array> = {};
      for (const [name, buffer] of Object.entries(s.buffers)) buffers[name] = buffer.slice();
      state.push({ param: i, step: s.step, buffers });
    });
    return { type: this.type, paramGroups, state };
  }

  /**
   * Restores a state dict saved from an optimizer of the same type over parameters of the same
   * shapes and grouping: hyper-parameters, step counts and buffers (copied). Checked fully before
   * anything changes.
   */
  loadStateDict(stateDict: OptimizerStateDict): void {
    const where = `${this.type}.loadStateDict`;
    if (stateDict.type !== this.type) {
      throw new TypeError(`${where}: the state dict is from ${stateDict.type}, not ${this.type}`);
    }
    if (stateDict.paramGroups.length !== this.paramGroups.length) {
      throw new RangeError(
        `${where}: the state dict has ${stateDict.paramGroups.length} parameter groups, the optimizer ${this.paramGroups.length}`,
      );
    }
    const params = this.params;
    let next = 0;
    const groups = stateDict.paramGroups.map((saved, g) => {
      const group = this.paramGroups[g];
      const expected = group.params.map(() => next++);
      if (
        saved.params.length !== expected.length || saved.params.some((p, i) => p !== expected[i])
      ) {
        throw new RangeError(
          `${where}: group ${g} has parameters [${saved.params}] in the state dict but [${expected}] here`,
        );
      }
      for (const key of Object.keys(saved.hyper)) {
        if (!Object.hasOwn(this.defaults, key) && key !== "initialLr") {
          throw new RangeError(`${where}: unknown hyper-parameter "${key}" in group ${g}`);
        }
      }
      const restored: Record<string, unknown> = { ...(group as object) };
      for (const [key, value] of Object.entries(saved.hyper)) {
        restored[key] = Array.isArray(value) ? [...value] : value;
      }
      this.validate(restored as unknown as ParamGroup<H>);
      return restored;
    });
    const states = new Map<Tensor, ParamState>();
    for (const entry of stateDict.state) {
      const p = params[entry.param];
      if (p === undefined) {
        throw new RangeError(
          `${where}: state for parameter ${entry.param}, but there are ${params.length}`,
        );
      }
      if (!Number.isSafeInteger(entry.step) || entry.step < 0) {
        throw new RangeError(
          `${where}: step count ${entry.step} of parameter ${entry.param} is invalid`,
        );
      }
      const buffers: Record<string, Float32Array> = {};
      for (const [name, buffer] of Object.entries(entry.buffers)) {
        if (!(buffer instanceof Float32Array) || buffer.length !== p.size) {
          throw new RangeError(
            `${where}: buffer "${name}" of parameter ${entry.param} ${
              describe(p)
            } has ${buffer?.length} values, expected ${p.size}`,
          );
        }
        buffers[name] = buffer.slice();
      }
      states.set(p, { step: entry.step, buffers });
    }
    groups.forEach((group, g) => Object.assign(this.paramGroups[g], group));
    this.#state.clear();
    for (const [p, s] of states) this.#state.set(p, s);
  }
}
