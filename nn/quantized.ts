/**
 * Dynamic int8 quantization for inference, as PyTorch's
 * `torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)` does it:
 * {@linkcode quantizeDynamic} replaces every {@linkcode Linear} of a model by a
 * {@linkcode QuantizedLinear}, whose weights are int8 with one scale per output row, and whose
 * input is quantized row by row to seven bits at each call; the product is summed exactly in
 * int32 and scaled back to float32 (the math: `autograd/kernels/quantized.ts`).
 *
 * What it buys: at batch 1 a Linear layer reads every weight once, so reading a quarter of the
 * bytes is most of the time when the weights are not already in the CPU's caches (the digit pad,
 * where a forward pass runs now and then between pointer events). What it costs: each weight is
 * off by up to half of 1/127 of its row's largest magnitude, and each input by up to half of
 * 1/127 of its row's range; on the shipped MNIST MLP the test error moves by a few hundredths of
 * a percent (`tests/quantized_test.ts` checks it on all 10,000 test images).
 *
 * ```ts
 * import { noGrad, type Tensor, tensor } from "@tapegrad/tapegrad/autograd";
 * import { Linear, Module, quantizeDynamic } from "@tapegrad/tapegrad/nn";
 *
 * class Net extends Module {
 *   fc = new Linear(4, 2);
 *   override forward(x: Tensor): Tensor {
 *     return this.fc.call(x);
 *   }
 * }
 * const net = quantizeDynamic(new Net().eval());
 * const y = noGrad(() => net.call(tensor([[1, 2, 3, 4]])));
 * console.log(y.shape); // [1, 2]
 * ```
 *
 * @module
 */

import { isGradEnabled, kernels, type LinearOpOptions, Tensor } from "../autograd/mod.ts";
import { formatShape } from "../autograd/shape.ts";
import { MAX_QUANTIZED_ROW, paddedLength, quantizeWeights } from "../autograd/kernels/quantized.ts";
import { Linear } from "./layers.ts";
import { Module } from "./module.ts";

/**
 * A Linear layer with int8 weights for inference (PyTorch's `nn.quantized.dynamic.Linear`).
 * Its state dict holds the float32 `weight` and `bias` it was made from, under the names a
 * {@linkcode Linear} has, as buffers (saved and loaded, never trained): a checkpoint of a
 * quantized model loads into the float model, and loading one into the quantized model
 * quantizes the new weights. Inference only: an input that requires a gradient while gradients
 * are recorded is an error (run it under `noGrad`, or train the float model).
 *
 * @example
 * ```ts
 * import { noGrad, tensor } from "@tapegrad/tapegrad/autograd";
 * import { Linear, QuantizedLinear } from "@tapegrad/tapegrad/nn";
 *
 * const layer = new QuantizedLinear(new Linear(3, 2));
 * const y = noGrad(() => layer.call(tensor([[0.5, -1, 2]])));
 * console.log(y.shape); // [1, 2]
 * ```
 */
export class QuantizedLinear extends Module<[Tensor], Tensor> {
  /** Input size. */
  readonly inFeatures: number;
  /** Output size. */
  readonly outFeatures: number;
  /** The float32 weights [outFeatures, inFeatures] the int8 ones are made from (a buffer). */
  declare weight: Tensor;
  /** The float32 bias [outFeatures] (a buffer), or null without one. */
  declare bias: Tensor | null;
  /** Row length of the int8 weights: inFeatures padded to whole 16-value vectors. */
  readonly #rowLength: number;
  /** The storage behind {@link #weights} (kernels may keep it in their own memory). */
  #storage: Float32Array;
  /** int8 weights [outFeatures, #rowLength], zero-padded. */
  #weights: Int8Array;
  /** One scale per output row. */
  #scales: Float32Array;
  /** Σ of each int8 row (takes the inputs' zero points out of the sums). */
  #rowSums: Int32Array;
  /** The storage behind {@link #rowSums} (only the allocated view keeps a wasm block alive). */
  #rowSumsStorage: Float32Array;

  /**
   * Quantizes `linear`'s current weights (copies: the Linear is left as it is).
   *
   * @throws {RangeError} When a row is too long for exact int32 sums (over 66,560 inputs).
   */
  constructor(linear: Linear) {
    super();
    const { inFeatures, outFeatures } = linear;
    if (paddedLength(inFeatures) > MAX_QUANTIZED_ROW) {
      throw new RangeError(
        `QuantizedLinear: ${inFeatures} input features is more than the ${MAX_QUANTIZED_ROW} ` +
          "whose int8 products an int32 sum holds exactly",
      );
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.#rowLength = paddedLength(inFeatures);
    this.registerBuffer("weight", copyOf(linear.weight));
    if (linear.bias === null) this.bias = null;
    else this.registerBuffer("bias", copyOf(linear.bias));
    const bytes = outFeatures * this.#rowLength;
    this.#storage = kernels.allocPersistent(Math.ceil(bytes / 4));
    this.#weights = new Int8Array(this.#storage.buffer, this.#storage.byteOffset, bytes);
    // Kept where the kernels read them in place (the wasm memory), like the weights.
    this.#scales = kernels.allocPersistent(outFeatures);
    this.#rowSumsStorage = kernels.allocPersistent(outFeatures);
    const { buffer, byteOffset } = this.#rowSumsStorage;
    this.#rowSums = new Int32Array(buffer, byteOffset, outFeatures);
    this.#quantizeWeights();
  }

  #quantizeWeights(): void {
    const w = this.weight.contiguous();
    quantizeWeights(
      w.data,
      w.offset,
      this.outFeatures,
      this.inFeatures,
      this.#weights,
      this.#rowLength,
      this.#scales,
      this.#rowSums,
    );
  }

  /** The new float weights are quantized again. */
  protected override stateLoaded(): void {
    this.#quantizeWeights();
  }

  /**
   * y = x·Wᵀ + b with int8 weights and each row of x quantized to 7 bits; x [..., inFeatures].
   * `{ relu: true }` fuses a ReLU, as `Linear.forward` takes it (the MLP and AlexNet ask for it).
   */
  forward(x: Tensor, options: LinearOpOptions = {}): Tensor {
    const op = "QuantizedLinear";
    if (x.dtype !== "float32" || x.device !== "cpu") {
      throw new TypeError(
        `${op}: expected a float32 tensor on the cpu, got ${x.dtype} on ${x.device}`,
      );
    }
    if (x.ndim < 1 || x.shape[x.ndim - 1] !== this.inFeatures) {
      throw new RangeError(
        `${op}: input ${formatShape(x.shape)} does not match inFeatures ${this.inFeatures} ` +
          "(expected [..., inFeatures])",
      );
    }
    if (x.requiresGrad && isGradEnabled()) {
      throw new TypeError(
        `${op}: inference only, but the input requires a gradient: run the model under ` +
          "noGrad(), or train the float model and quantize it afterwards",
      );
    }
    const rows = x.size / this.inFeatures;
    const n = this.outFeatures;
    const dense = x.contiguous();
    const y = new Float32Array(rows * n);
    const bias = this.bias === null ? null : this.bias.contiguous();
    kernels.quantizedLinear({
      x: dense.data,
      xOffset: dense.offset,
      rows,
      inFeatures: this.inFeatures,
      outFeatures: n,
      rowLength: this.#rowLength,
      weights: this.#weights,
      weightScales: this.#scales,
      rowSums: this.#rowSums,
      bias: bias === null ? null : bias.data.subarray(bias.offset, bias.offset + n),
      relu: options.relu === true,
      out: y,
    });
    return new Tensor(y, [...x.shape.slice(0, -1), n]);
  }

  /** `inFeatures=…, outFeatures=…, bias=…, dtype=int8`. */
  override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${
      this.bias !== null
    }, dtype=int8`;
  }
}

/** A contiguous float32 copy of `t` that is not a Parameter (so a module holds it as a buffer). */
function copyOf(t: Tensor): Tensor {
  return new Tensor(t.toFloat32Array(), [...t.shape]);
}

/**
 * Replaces every {@linkcode Linear} inside `model` by a {@linkcode QuantizedLinear} made from it
 * (in place; a Linear used in two places becomes one QuantizedLinear used in both) and returns
 * `model`, for inference. Fields typed `Linear` then hold a `QuantizedLinear`, which has the
 * same `forward(x, { relu })`: read their weights through `stateDict()`. A model must call its
 * layers (as the shipped MLP and AlexNet do), not pass a Linear's weights to `linear` itself.
 *
 * @example
 * ```ts
 * import { noGrad, tensor } from "@tapegrad/tapegrad/autograd";
 * import { createModel, quantizeDynamic } from "@tapegrad/tapegrad/nn";
 *
 * const mlp = quantizeDynamic(createModel("mlp").eval());
 * console.log(String(mlp).includes("dtype=int8")); // true
 * const logits = noGrad(() => mlp.call(tensor(new Float32Array(784)).reshape([1, 784])));
 * console.log(logits.shape); // [1, 10]
 * ```
 *
 * @throws {TypeError} When `model` is itself a Linear (quantize it with `new QuantizedLinear`).
 */
export function quantizeDynamic<M extends Module<unknown[], unknown>>(model: M): M {
  if (model instanceof Linear) {
    throw new TypeError(
      "quantizeDynamic: the model is a Linear itself; use new QuantizedLinear(linear) for one layer",
    );
  }
  const replaced = new Map<Linear, QuantizedLinear>();
  for (const module of model.modules()) {
    for (const [name, child] of module.namedChildren()) {
      if (!(child instanceof Linear)) continue;
      let quantized = replaced.get(child);
      if (quantized === undefined) {
        quantized = new QuantizedLinear(child);
        replaced.set(child, quantized);
      }
      (module as unknown as Record<string, unknown>)[name] = quantized;
    }
  }
  return model;
}
