/**
 * The WebGPU runtime every WGSL kernel goes through: one `GPUDevice`, device buffers that return to
 * a pool when their tensor is garbage collected, compute pipelines compiled once per kernel, and
 * a command stream that records dispatches without waiting on the host.
 *
 * A dispatch is recorded into one long compute pass; the pass is submitted when the caller asks
 * for values back ({@linkcode WebGpu.read}), at a step boundary ({@linkcode WebGpu.flush}), or
 * when the per-submit parameter arena is full. Nothing in between waits: a training step is a
 * handful of submits and no host round trip.
 *
 * Kernel parameters (sizes, offsets, strides, scalars) are u32 words in a storage buffer bound at
 * binding 0 with a dynamic offset, so every dispatch of a submit shares one parameter buffer that
 * is written once, just before the submit. Floats travel as their bits (`bitcast<f32>` in WGSL).
 *
 * @module
 */

import type { AnyStorage, DType } from "../../dtype.ts";

/** Element bytes on the device: bool and int32 are 32-bit words there (WGSL has no 8-bit type). */
const WORD = 4;
/** Threads per workgroup of a 1-D kernel ({@linkcode WebGpu.dispatch1d}). */
export const WORKGROUP_1D = 256;
/** Most workgroups in one grid dimension (WebGPU's guaranteed limit). */
const MAX_GROUPS = 65535;
/** u32 words of parameters one dispatch may pass (its slot in the arena). */
export const MAX_PARAMS = 64;
/** Bytes between parameter slots: the storage-offset alignment every adapter accepts. */
const SLOT_BYTES = 256;
/** Dispatches per submit before the arena is flushed. */
const SLOTS = 2048;
/** Bind groups kept before the cache starts over. */
const MAX_GROUPS_CACHED = 16384;

/**
 * A tensor's storage on the GPU: `length` elements of `dtype` in `buffer` (32-bit words). Opaque to
 * the library core; only the WebGPU backend reads it.
 */
export class GpuStorage {
  /** Always "webgpu": lets the core tell device storage from host typed arrays. */
  readonly device = "webgpu" as const;
  /**
   * @param buffer The device buffer (shared with the pool once this storage is collected).
   * @param dtype Element type.
   * @param length Elements.
   */
  constructor(
    readonly buffer: GPUBuffer,
    readonly dtype: DType,
    readonly length: number,
  ) {}
}

/** A compiled kernel: its pipeline and the layout of its bindings. */
export interface GpuKernel {
  /** Name in errors and profiles. */
  readonly name: string;
  /** The pipeline. */
  readonly pipeline: GPUComputePipeline;
  /** Its bind group layout (binding 0: parameters; then the read-only inputs; then outputs). */
  readonly layout: GPUBindGroupLayout;
  /** Read-only storage bindings after the parameters. */
  readonly inputs: number;
  /** Read-write storage bindings after the inputs. */
  readonly outputs: number;
}

/** Counters a profile reads: what one training step cost the device. */
export interface GpuStats {
  /** Compute dispatches recorded. */
  dispatches: number;
  /** Command buffers submitted. */
  submits: number;
  /** Host reads (each waits for the GPU). */
  reads: number;
  /** Buffers created (not taken from the pool). */
  buffersCreated: number;
  /** Bytes of device buffers alive or pooled. */
  bytesAllocated: number;
  /** Compute passes begun (each a scope the driver synchronises). */
  passes: number;
  /** Bind groups created (the rest came from the cache). */
  bindGroupsCreated: number;
}

/** The header every kernel's WGSL starts with: the parameter words and accessors for them. */
export const PARAMS_WGSL = `
@group(0) @binding(0) var<storage, read> params: array<u32>;
fn pu(i: u32) -> u32 { return params[i]; }
fn pi(i: u32) -> i32 { return bitcast<i32>(params[i]); }
fn pf(i: u32) -> f32 { return bitcast<f32>(params[i]); }
`;

/** The bits of a float32 as a u32 parameter word. */
export function f32Bits(x: number): number {
  F32[0] = x;
  return U32[0];
}
const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** One WebGPU device with its pools, pipelines and command stream. */
export class WebGpu {
  /** Counters since creation ({@linkcode GpuStats}). */
  readonly stats: GpuStats = {
    dispatches: 0,
    submits: 0,
    reads: 0,
    buffersCreated: 0,
    bytesAllocated: 0,
    passes: 0,
    bindGroupsCreated: 0,
  };
  /** The adapter's description, for the line saying which device runs. */
  readonly description: string;
  /** Whether it is a software (fallback) adapter such as lavapipe. */
  readonly isFallback: boolean;

  readonly #device: GPUDevice;
  readonly #kernels = new Map<string, GpuKernel>();
  /** Free buffers by byte size, returned by the finalizer of their storage. */
  readonly #pool = new Map<number, GPUBuffer[]>();
  readonly #finalizer: FinalizationRegistry<GPUBuffer>;
  readonly #params: GPUBuffer;
  readonly #paramWords = new Uint32Array((SLOTS * SLOT_BYTES) / WORD);
  #slot = 0;
  /** Bind groups by kernel and buffer ids ({@linkcode WebGpu.dispatch}). */
  readonly #groups = new Map<string, GPUBindGroup>();
  readonly #ids = new Map<GPUBuffer, number>();
  /** The pipeline last set in the open pass. */
  #pipeline: GPUComputePipeline | null = null;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #lost: string | null = null;
  #failure: string | null = null;

  /**
   * @param device An open device.
   * @param description What the adapter calls itself.
   * @param isFallback Whether it is a software adapter.
   */
  constructor(device: GPUDevice, description: string, isFallback: boolean) {
    this.#device = device;
    this.description = description;
    this.isFallback = isFallback;
    this.#params = device.createBuffer({
      size: SLOTS * SLOT_BYTES,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    this.#finalizer = new FinalizationRegistry((buffer) => this.#release(buffer));
    device.lost.then((info) => {
      this.#lost = `${info.reason}: ${info.message}`;
    });
    // A WGSL or validation error does not throw where it happens: it arrives here, and the rest
    // of that submit is dropped. Keep the first one so the next read fails with it instead of
    // returning zeros.
    device.addEventListener("uncapturederror", (event) => {
      this.#failure ??= (event as GPUUncapturedErrorEvent).error.message;
    });
  }

  /** The raw device (for tests and probes). */
  get device(): GPUDevice {
    return this.#device;
  }

  /**
   * Compiles `wgsl` once under `name` (later calls with the same name return the cached kernel).
   * The source must begin its bindings after {@linkcode PARAMS_WGSL}: `inputs` read-only storage
   * buffers at bindings 1…inputs, then `outputs` read-write ones.
   */
  kernel(name: string, wgsl: string, inputs: number, outputs: number): GpuKernel {
    const cached = this.#kernels.get(name);
    if (cached !== undefined) return cached;
    const entries: GPUBindGroupLayoutEntry[] = [{
      binding: 0,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: "read-only-storage", hasDynamicOffset: true },
    }];
    for (let i = 0; i < inputs + outputs; i++) {
      entries.push({
        binding: i + 1,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: i < inputs ? "read-only-storage" : "storage" },
      });
    }
    const layout = this.#device.createBindGroupLayout({ label: name, entries });
    const module = this.#device.createShaderModule({ label: name, code: PARAMS_WGSL + wgsl });
    const pipeline = this.#device.createComputePipeline({
      label: name,
      layout: this.#device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
    });
    const kernel = { name, pipeline, layout, inputs, outputs };
    this.#kernels.set(name, kernel);
    return kernel;
  }

  /** Kernels compiled so far. */
  get kernelCount(): number {
    return this.#kernels.size;
  }

  /**
   * New storage for `n` elements of `dtype`. Its contents are undefined when it comes from the
   * pool: pass `zero` to clear it (recorded like a kernel, so it costs no wait).
   */
  alloc(dtype: DType, n: number, zero = false): GpuStorage {
    const bytes = Math.max(WORD, Math.ceil((n * WORD) / 16) * 16);
    const free = this.#pool.get(bytes);
    let buffer = free?.pop();
    if (buffer === undefined) {
      buffer = this.#create(bytes);
    } else if (zero) {
      this.#fillWords(buffer, bytes / WORD, 0);
    }
    const storage = new GpuStorage(buffer, dtype, n);
    this.#finalizer.register(storage, buffer);
    return storage;
  }

  /** A new buffer holding `data` (bools and int32 widened to 32-bit words). */
  upload(data: AnyStorage): GpuStorage {
    const n = data.length;
    const bytes = Math.max(WORD, Math.ceil((n * WORD) / 16) * 16);
    // A fresh buffer, never a pooled one: the queue writes it before the recorded commands run,
    // and a pooled buffer may still be read by them.
    const buffer = this.#create(bytes);
    // Bools widen to words; values in shared (wasm) memory are copied out, as the queue takes
    // only unshared buffers.
    const words = data instanceof Uint8Array
      ? Uint32Array.from(data)
      : data.buffer instanceof ArrayBuffer
      ? data
      : data.slice();
    // Deno 2.9.6 panics on a write of nothing.
    if (n > 0) {
      this.#device.queue.writeBuffer(
        buffer,
        0,
        words.buffer as ArrayBuffer,
        words.byteOffset,
        n * WORD,
      );
    }
    const dtype: DType = data instanceof Float32Array
      ? "float32"
      : data instanceof Int32Array
      ? "int32"
      : "bool";
    const storage = new GpuStorage(buffer, dtype, n);
    this.#finalizer.register(storage, buffer);
    return storage;
  }

  /**
   * Records one dispatch of `kernel` over `groups` workgroups with `params` (u32 words) and the
   * storages in binding order (inputs, then outputs). Returns at once.
   */
  dispatch(
    kernel: GpuKernel,
    storages: readonly GpuStorage[],
    params: ArrayLike<number>,
    groups: readonly [number, number?, number?],
  ): void {
    if (this.#lost !== null) throw new Error(`webgpu: the device was lost (${this.#lost})`);
    if (storages.length !== kernel.inputs + kernel.outputs) {
      throw new Error(
        `webgpu ${kernel.name}: expected ${
          kernel.inputs + kernel.outputs
        } buffers, got ${storages.length}`,
      );
    }
    if (params.length > MAX_PARAMS) {
      throw new Error(
        `webgpu ${kernel.name}: ${params.length} parameter words (at most ${MAX_PARAMS})`,
      );
    }
    const [x, y = 1, z = 1] = groups;
    if (x === 0 || y === 0 || z === 0) return;
    if (this.#slot === SLOTS) this.flush();
    const slot = this.#slot++;
    this.#paramWords.set(params, (slot * SLOT_BYTES) / WORD);
    const group = this.#bindGroup(kernel, storages);
    const pass = this.#computePass();
    if (this.#pipeline !== kernel.pipeline) {
      pass.setPipeline(kernel.pipeline);
      this.#pipeline = kernel.pipeline;
    }
    pass.setBindGroup(0, group, [slot * SLOT_BYTES]);
    pass.dispatchWorkgroups(x, y, z);
    this.stats.dispatches++;
  }

  /**
   * Dispatches a kernel written for {@linkcode WORKGROUP_1D} threads per workgroup over `n`
   * threads; the WGSL finds its thread with `linearId(gid, groups)` and returns when ≥ n.
   */
  dispatch1d(
    kernel: GpuKernel,
    storages: readonly GpuStorage[],
    params: ArrayLike<number>,
    n: number,
  ): void {
    const groups = Math.ceil(n / WORKGROUP_1D);
    if (groups <= MAX_GROUPS) {
      this.dispatch(kernel, storages, params, [groups]);
    } else {
      const y = Math.ceil(groups / MAX_GROUPS);
      this.dispatch(kernel, storages, params, [Math.ceil(groups / y), y]);
    }
  }

  /** Submits what has been recorded (without waiting for it). */
  flush(): void {
    if (this.#encoder === null) return;
    this.#pass?.end();
    this.#pass = null;
    const used = this.#slot * SLOT_BYTES;
    if (used > 0) this.#device.queue.writeBuffer(this.#params, 0, this.#paramWords, 0, used / WORD);
    this.#device.queue.submit([this.#encoder.finish()]);
    this.#encoder = null;
    this.#slot = 0;
    this.stats.submits++;
  }

  /**
   * Reads `length` elements from `offset` of `storage` back to the host, after everything recorded
   * so far has run. This is the only call that waits on the GPU.
   */
  async read(
    storage: GpuStorage,
    offset = 0,
    length = storage.length - offset,
  ): Promise<AnyStorage> {
    const bytes = Math.ceil((length * WORD) / 4) * 4;
    const staging = this.#device.createBuffer({
      size: Math.max(WORD, bytes),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.#command().copyBufferToBuffer(storage.buffer, offset * WORD, staging, 0, bytes);
    this.flush();
    this.stats.reads++;
    await staging.mapAsync(GPUMapMode.READ);
    if (this.#lost !== null) throw new Error(`webgpu: the device was lost (${this.#lost})`);
    if (this.#failure !== null) {
      staging.destroy();
      throw new Error(
        `webgpu: a recorded command failed, so the values are not valid: ${this.#failure}`,
      );
    }
    const words = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    switch (storage.dtype) {
      case "float32":
        return new Float32Array(words);
      case "int32":
        return new Int32Array(words);
      case "bool":
        return Uint8Array.from(new Uint32Array(words));
    }
  }

  /**
   * The bind group of `kernel` over these buffers, made once: buffers are pooled, never destroyed,
   * so a training step finds the groups of the previous one (the per-dispatch host cost is what
   * makes small models slow on a GPU).
   */
  #bindGroup(kernel: GpuKernel, storages: readonly GpuStorage[]): GPUBindGroup {
    let key = kernel.name;
    for (let i = 0; i < storages.length; i++) key += ` ${this.#idOf(storages[i].buffer)}`;
    let group = this.#groups.get(key);
    if (group === undefined) {
      const entries: GPUBindGroupEntry[] = [{
        binding: 0,
        resource: { buffer: this.#params, size: MAX_PARAMS * WORD },
      }];
      for (let i = 0; i < storages.length; i++) {
        entries.push({ binding: i + 1, resource: { buffer: storages[i].buffer } });
      }
      group = this.#device.createBindGroup({ layout: kernel.layout, entries });
      if (this.#groups.size >= MAX_GROUPS_CACHED) this.#groups.clear();
      this.#groups.set(key, group);
      this.stats.bindGroupsCreated++;
    }
    return group;
  }

  #idOf(buffer: GPUBuffer): number {
    let id = this.#ids.get(buffer);
    if (id === undefined) {
      id = this.#ids.size + 1;
      this.#ids.set(buffer, id);
    }
    return id;
  }

  #create(bytes: number): GPUBuffer {
    this.stats.buffersCreated++;
    this.stats.bytesAllocated += bytes;
    return this.#device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
  }

  #release(buffer: GPUBuffer): void {
    const free = this.#pool.get(buffer.size);
    if (free === undefined) this.#pool.set(buffer.size, [buffer]);
    else free.push(buffer);
  }

  #fillWords(buffer: GPUBuffer, words: number, value: number): void {
    // clearBuffer is a command outside compute passes; a fill kernel keeps the pass open.
    const fill = this.kernel(
      "fill",
      `@group(0) @binding(1) var<storage, read_write> out: array<u32>;
       @compute @workgroup_size(${WORKGROUP_1D})
       fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
         let i = gid.x + gid.y * groups.x * ${WORKGROUP_1D}u;
         if (i < pu(0)) { out[i] = pu(1); }
       }`,
      0,
      1,
    );
    this.dispatch1d(fill, [new GpuStorage(buffer, "float32", words)], [words, value], words);
  }

  #command(): GPUCommandEncoder {
    if (this.#pass !== null) {
      this.#pass.end();
      this.#pass = null;
    }
    this.#encoder ??= this.#device.createCommandEncoder();
    return this.#encoder;
  }

  #computePass(): GPUComputePassEncoder {
    if (this.#pass === null) {
      this.#encoder ??= this.#device.createCommandEncoder();
      this.#pass = this.#encoder.beginComputePass();
      this.#pipeline = null;
      this.stats.passes++;
    }
    return this.#pass;
  }
}

/** The WGSL line that gives a 1-D kernel its thread index (see {@linkcode WebGpu.dispatch1d}). */
export const LINEAR_ID_WGSL =
  `fn linearId(gid: vec3u, groups: vec3u) -> u32 { return gid.x + gid.y * groups.x * ${WORKGROUP_1D}u; }`;

let current: WebGpu | null = null;
let pending: Promise<WebGpu> | null = null;

/**
 * Opens the WebGPU device (once; later calls return the same one). Throws with the reason when the
 * runtime has no `navigator.gpu` or no adapter.
 */
export function openWebGpu(): Promise<WebGpu> {
  if (current !== null) return Promise.resolve(current);
  pending ??= (async () => {
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (gpu === undefined) {
      throw new Error(
        "webgpu: this runtime has no navigator.gpu (Deno ≥ 2, or a browser with WebGPU)",
      );
    }
    const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    if (adapter === null) {
      throw new Error(
        "webgpu: no adapter (on Linux without a GPU, install Debian's mesa-vulkan-drivers for a software one)",
      );
    }
    const limits = adapter.limits;
    const device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
        maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
      },
    });
    const info = adapter.info;
    const description = info.description || [info.vendor, info.architecture, info.device]
      .filter((s) => s).join(" ") ||
      "unknown adapter";
    current = new WebGpu(device, description, info.isFallbackAdapter ?? false);
    return current;
  })();
  pending.catch(() => {
    pending = null;
  });
  return pending;
}

/** The open device, or an error saying how to open it. */
export function webgpu(): WebGpu {
  if (current === null) {
    throw new Error(
      'webgpu: the device is not open; call `await useDevice("webgpu")` before moving tensors to it',
    );
  }
  return current;
}
