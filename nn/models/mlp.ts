/**
 * The MLP of the reference tables: flatten 784 → Linear 512 → ReLU → Linear 1024 → ReLU → Linear 10.
 *
 * @module
 */

import { leakyRelu, type Rng, type Tensor } from "../../autograd/mod.ts";
import type { JsonObject } from "../json.ts";
import { Linear } from "../layers.ts";
import { Module } from "../module.ts";
import { initRng, type ModelSpec } from "./spec.ts";

/** Options of {@linkcode MLP}. */
export interface MLPOptions {
  /** Input features after flattening (default 784 = 28·28). */
  inFeatures?: number;
  /** Widths of the two hidden layers (default [512, 1024]). */
  hidden?: readonly [number, number];
  /** Number of classes (default 10). */
  numClasses?: number;
  /** Use leaky ReLU with this negative slope (e.g. 0.2) instead of ReLU. */
  leakyRelu?: number;
  /** Seed of the initial weights (ignored when `rng` is given). */
  seed?: number;
  /** Generator of the initial weights (default: from `seed`, else the library's default). */
  rng?: Rng;
}

/**
 * A three-layer perceptron for [N, 1, 28, 28] (or [N, 784]) inputs. Parameter names and shapes are
 * those of this PyTorch module, so state dicts load in both directions:
 *
 * ```python
 * class MLP(nn.Module):
 *     def __init__(self):
 *         super().__init__()
 *         self.fc1 = nn.Linear(784, 512)
 *         self.fc2 = nn.Linear(512, 1024)
 *         self.fc3 = nn.Linear(1024, 10)
 *
 *     def forward(self, x):
 *         x = torch.flatten(x, 1)
 *         x = F.relu(self.fc1(x))      # F.leaky_relu(..., 0.2) with leakyRelu: 0.2
 *         x = F.relu(self.fc2(x))
 *         return self.fc3(x)
 * ```
 */
export class MLP extends Module {
  /** First layer, [hidden[0], inFeatures]. */
  fc1: Linear;
  /** Second layer, [hidden[1], hidden[0]]. */
  fc2: Linear;
  /** Output layer, [numClasses, hidden[1]]. */
  fc3: Linear;
  readonly #slope: number | undefined;
  readonly #spec: ModelSpec;

  /**
   * Creates a MLP.
   *
   * @param options Sizes, activation and initialisation; see {@linkcode MLPOptions}.
   */
  constructor(options: MLPOptions = {}) {
    super();
    const inFeatures = options.inFeatures ?? 784;
    const [h1, h2] = options.hidden ?? [512, 1024];
    const numClasses = options.numClasses ?? 10;
    const rng = initRng(options);
    this.fc1 = new Linear(inFeatures, h1, { rng });
    this.fc2 = new Linear(h1, h2, { rng });
    this.fc3 = new Linear(h2, numClasses, { rng });
    this.#slope = options.leakyRelu;
    const spec: JsonObject = { inFeatures, hidden: [h1, h2], numClasses };
    if (options.leakyRelu !== undefined) spec.leakyRelu = options.leakyRelu;
    if (options.seed !== undefined) spec.seed = options.seed;
    this.#spec = { name: "mlp", options: spec };
  }

  /** The registry name and options that rebuild this model. */
  get spec(): ModelSpec {
    return structuredClone(this.#spec);
  }

  /** A hidden layer followed by the activation (ReLU fused into the layer). */
  #hidden(layer: Linear, x: Tensor): Tensor {
    if (this.#slope !== undefined) return leakyRelu(layer.call(x), this.#slope);
    return layer.forward(x, { relu: true });
  }

  /** Logits [N, numClasses] for images [N, 1, 28, 28] or flat inputs [N, 784]. */
  forward(x: Tensor): Tensor {
    const h1 = this.#hidden(this.fc1, x.flatten(1));
    const h2 = this.#hidden(this.fc2, h1);
    return this.fc3.call(h2);
  }

  /** The activation in use. */
  override extraRepr(): string {
    return this.#slope === undefined ? "activation=relu" : `activation=leakyRelu(${this.#slope})`;
  }
}
