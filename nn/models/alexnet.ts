/**
 * The small AlexNet of the reference tables, for 28×28 single-channel images.
 *
 * @module
 */

import { conv2d, leakyRelu, type Rng, type Tensor } from "../../autograd/mod.ts";
import type { JsonObject } from "../json.ts";
import { Conv2d, Dropout, Linear } from "../layers.ts";
import { Module } from "../module.ts";
import { initRng, type ModelSpec } from "./spec.ts";

/** Options of {@linkcode AlexNet}. */
export interface AlexNetOptions {
  /** Number of classes (default 10). */
  numClasses?: number;
  /** Dropout probability on the flattened features, before the classifier (default 0: none). */
  dropout?: number;
  /** Use leaky ReLU with this negative slope instead of ReLU. */
  leakyRelu?: number;
  /** Seed of the initial weights and dropout masks (ignored when `rng` is given). */
  seed?: number;
  /** Generator of the initial weights and dropout masks (default: from `seed`, else the library's). */
  rng?: Rng;
}

/**
 * Conv(1→32, k4, s2) [N,32,13,13] → ReLU → Conv(32→64, k3, s2, p1) [N,64,7,7] → ReLU →
 * Conv(64→128, k3, s2, p1) [N,128,4,4] → ReLU → flatten 2048 → (dropout) → Linear 1024 → ReLU →
 * Linear 10. The reference table lists no activation between the two linear layers, but without one
 * they collapse into a single linear map, so this model adds a ReLU there (it has no parameters:
 * names and shapes are unchanged). Parameter names and shapes are those of this PyTorch module:
 *
 * ```python
 * class AlexNet(nn.Module):
 *     def __init__(self, dropout=0.0):
 *         super().__init__()
 *         self.conv1 = nn.Conv2d(1, 32, kernel_size=4, stride=2)
 *         self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1)
 *         self.conv3 = nn.Conv2d(64, 128, kernel_size=3, stride=2, padding=1)
 *         self.dropout = nn.Dropout(dropout)
 *         self.fc1 = nn.Linear(2048, 1024)
 *         self.fc2 = nn.Linear(1024, 10)
 *
 *     def forward(self, x):
 *         x = F.relu(self.conv1(x))
 *         x = F.relu(self.conv2(x))
 *         x = F.relu(self.conv3(x))
 *         x = self.dropout(torch.flatten(x, 1))
 *         return self.fc2(F.relu(self.fc1(x)))
 * ```
 */
export class AlexNet extends Module {
  /** 1 → 32 channels, 4×4, stride 2: 28×28 → 13×13. */
  conv1: Conv2d;
  /** 32 → 64 channels, 3×3, stride 2, padding 1: 13×13 → 7×7. */
  conv2: Conv2d;
  /** 64 → 128 channels, 3×3, stride 2, padding 1: 7×7 → 4×4. */
  conv3: Conv2d;
  /** Dropout on the 2048 flattened features (identity when p = 0 or in eval mode). */
  dropout: Dropout;
  /** 2048 → 1024. */
  fc1: Linear;
  /** 1024 → numClasses. */
  fc2: Linear;
  readonly #slope: number | undefined;
  readonly #spec: ModelSpec;

  /**
   * Creates an AlexNet.
   *
   * @param options Classes, dropout, activation and initialisation; see {@linkcode AlexNetOptions}.
   */
  constructor(options: AlexNetOptions = {}) {
    super();
    const numClasses = options.numClasses ?? 10;
    const p = options.dropout ?? 0;
    const rng = initRng(options);
    this.conv1 = new Conv2d(1, 32, 4, { stride: 2, rng });
    this.conv2 = new Conv2d(32, 64, 3, { stride: 2, padding: 1, rng });
    this.conv3 = new Conv2d(64, 128, 3, { stride: 2, padding: 1, rng });
    this.dropout = new Dropout(p, { rng });
    this.fc1 = new Linear(128 * 4 * 4, 1024, { rng });
    this.fc2 = new Linear(1024, numClasses, { rng });
    this.#slope = options.leakyRelu;
    const spec: JsonObject = { numClasses, dropout: p };
    if (options.leakyRelu !== undefined) spec.leakyRelu = options.leakyRelu;
    if (options.seed !== undefined) spec.seed = options.seed;
    this.#spec = { name: "alexnet", options: spec };
  }

  /** The registry name and options that rebuild this model. */
  get spec(): ModelSpec {
    return structuredClone(this.#spec);
  }

  /** A convolution layer followed by the activation (ReLU fused into the convolution op). */
  #convolve(layer: Conv2d, x: Tensor): Tensor {
    if (this.#slope !== undefined) return leakyRelu(layer.call(x), this.#slope);
    return conv2d(x, layer.weight, layer.bias ?? undefined, {
      stride: layer.stride,
      padding: layer.padding,
      relu: true,
    });
  }

  /** Logits [N, numClasses] for images [N, 1, 28, 28]. */
  forward(x: Tensor): Tensor {
    const f1 = this.#convolve(this.conv1, x);
    const f2 = this.#convolve(this.conv2, f1);
    const f3 = this.#convolve(this.conv3, f2);
    const features = this.dropout.call(f3.flatten(1));
    const hidden = this.#slope === undefined
      ? this.fc1.forward(features, { relu: true }) // ReLU fused into the layer
      : leakyRelu(this.fc1.call(features), this.#slope);
    return this.fc2.call(hidden);
  }

  /** The activation in use. */
  override extraRepr(): string {
    return this.#slope === undefined ? "activation=relu" : `activation=leakyRelu(${this.#slope})`;
  }
}
