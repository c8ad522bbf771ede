/**
 * Activation and pass-through layers with PyTorch's names and settings: `GELU`, `SiLU`, `Tanh`,
 * `Sigmoid`, `Softmax`, `LogSoftmax`, `Softplus`, `ELU`, `Hardtanh`, `LogSigmoid` and `Identity`.
 * None has parameters; each forward is the function of the same name.
 *
 * @module
 */

import {
  elu,
  gelu,
  type GeluOptions,
  hardtanh,
  logSigmoid,
  logSoftmax,
  sigmoid,
  silu,
  softmax,
  softplus,
  tanh,
  type Tensor,
} from "../autograd/mod.ts";
import { Module } from "./module.ts";

/** x·Φ(x), exact or tanh-approximated (PyTorch's `nn.GELU(approximate=…)`). */
export class GELU extends Module {
  /** "none" (exact, default) or "tanh". */
  readonly approximate: "none" | "tanh";

  /**
   * Creates a GELU.
   *
   * @param approximate "none" (default) or "tanh".
   */
  constructor(approximate: GeluOptions["approximate"] = "none") {
    super();
    this.approximate = approximate;
  }

  /** Applies GELU. */
  forward(x: Tensor): Tensor {
    return gelu(x, { approximate: this.approximate });
  }

  /** `approximate="…"`. */
  override extraRepr(): string {
    return `approximate="${this.approximate}"`;
  }
}

/** x·σ(x) (PyTorch's `nn.SiLU`). */
export class SiLU extends Module {
  /** Applies SiLU. */
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

/** tanh x (PyTorch's `nn.Tanh`). */
export class Tanh extends Module {
  /** Applies tanh. */
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

/** σ(x) (PyTorch's `nn.Sigmoid`). */
export class Sigmoid extends Module {
  /** Applies the sigmoid. */
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

/** log σ(x), computed stably (PyTorch's `nn.LogSigmoid`). */
export class LogSigmoid extends Module {
  /** Applies log-sigmoid. */
  forward(x: Tensor): Tensor {
    return logSigmoid(x);
  }
}

/**
 * Softmax along `dim` (PyTorch's `nn.Softmax(dim)`). PyTorch's implicit dim is deprecated, so
 * the dim defaults to −1 here.
 */
export class Softmax extends Module {
  /** The dim normalised over. */
  readonly dim: number;

  /**
   * Creates a Softmax.
   *
   * @param dim The dim normalised over (default −1).
   */
  constructor(dim = -1) {
    super();
    this.dim = dim;
  }

  /** Applies softmax along `dim`. */
  forward(x: Tensor): Tensor {
    return softmax(x, this.dim);
  }

  /** `dim=…`. */
  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}

/** Log-softmax along `dim` (PyTorch's `nn.LogSoftmax(dim)`, dim default −1). */
export class LogSoftmax extends Module {
  /** The dim normalised over. */
  readonly dim: number;

  /**
   * Creates a LogSoftmax.
   *
   * @param dim The dim normalised over (default −1).
   */
  constructor(dim = -1) {
    super();
    this.dim = dim;
  }

  /** Applies log-softmax along `dim`. */
  forward(x: Tensor): Tensor {
    return logSoftmax(x, this.dim);
  }

  /** `dim=…`. */
  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}

/** log(1 + e^(βx))/β, linear above the threshold (PyTorch's `nn.Softplus(beta, threshold)`). */
export class Softplus extends Module {
  /** β. */
  readonly beta: number;
  /** Above β·x > threshold the layer is the identity. */
  readonly threshold: number;

  /**
   * Creates a Softplus.
   *
   * @param beta β (default 1).
   * @param threshold Linear above this value of β·x (default 20).
   */
  constructor(beta = 1, threshold = 20) {
    super();
    this.beta = beta;
    this.threshold = threshold;
  }

  /** Applies softplus. */
  forward(x: Tensor): Tensor {
    return softplus(x, this.beta, this.threshold);
  }

  /** `beta=…, threshold=…`. */
  override extraRepr(): string {
    return `beta=${this.beta}, threshold=${this.threshold}`;
  }
}

/** x for x > 0, α(eˣ − 1) otherwise (PyTorch's `nn.ELU(alpha)`). */
export class ELU extends Module {
  /** α. */
  readonly alpha: number;

  /**
   * Creates an ELU.
   *
   * @param alpha α (default 1).
   */
  constructor(alpha = 1) {
    super();
    this.alpha = alpha;
  }

  /** Applies ELU. */
  forward(x: Tensor): Tensor {
    return elu(x, this.alpha);
  }

  /** `alpha=…`. */
  override extraRepr(): string {
    return `alpha=${this.alpha}`;
  }
}

/** x clamped to [minVal, maxVal] (PyTorch's `nn.Hardtanh`). */
export class Hardtanh extends Module {
  /** The lower bound. */
  readonly minVal: number;
  /** The upper bound. */
  readonly maxVal: number;

  /**
   * Creates a Hardtanh.
   *
   * @param minVal Lower bound (default −1).
   * @param maxVal Upper bound (default 1).
   */
  constructor(minVal = -1, maxVal = 1) {
    super();
    if (!(minVal <= maxVal)) {
      throw new RangeError(`Hardtanh: minVal ${minVal} must not exceed maxVal ${maxVal}`);
    }
    this.minVal = minVal;
    this.maxVal = maxVal;
  }

  /** Applies hardtanh. */
  forward(x: Tensor): Tensor {
    return hardtanh(x, this.minVal, this.maxVal);
  }

  /** `minVal=…, maxVal=…`. */
  override extraRepr(): string {
    return `minVal=${this.minVal}, maxVal=${this.maxVal}`;
  }
}

/** Returns its input unchanged (PyTorch's `nn.Identity`): a placeholder in a model's structure. */
export class Identity extends Module {
  /** Returns `x`. */
  forward(x: Tensor): Tensor {
    return x;
  }
}
