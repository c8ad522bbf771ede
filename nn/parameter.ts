/**
 * {@linkcode Parameter}: the marker that makes a tensor a trainable weight of a `Module`.
 *
 * @module
 */

import { kernels, type Shape, Tensor } from "../autograd/mod.ts";

/**
 * A trainable weight: a contiguous leaf tensor with `requiresGrad` set. A `Module` registers every
 * own property holding a `Parameter` under the property's name (`weight`, `bias`, …); plain tensors
 * in properties are not parameters.
 */
export class Parameter extends Tensor {
  /**
   * Wraps `data` (not copied) as a parameter of `shape`.
   *
   * @param data Row-major storage; its length must equal the product of `shape`.
   * @param shape Dimensions.
   */
  constructor(data: Float32Array, shape: Shape) {
    let size = 1;
    for (const d of shape) size *= d;
    if (data.length !== size) {
      throw new RangeError(
        `Parameter: ${data.length} values cannot have shape [${shape.join(", ")}]`,
      );
    }
    super(data, shape);
    this.requiresGrad = true;
  }

  /**
   * A parameter of `shape` filled with zeros. Parameters live as long as their model, so their
   * storage comes from the persistent allocator (the shared wasm memory, where kernels use it in
   * place, within a budget).
   */
  static zeros(shape: Shape): Parameter {
    let size = 1;
    for (const d of shape) size *= d;
    return new Parameter(kernels.allocPersistent(size), shape);
  }

  /** A parameter holding a contiguous copy of `t`'s values (cut off from any graph). */
  static from(t: Tensor): Parameter {
    const p = Parameter.zeros(t.shape);
    p.data.set(t.toFloat32Array());
    return p;
  }
}
