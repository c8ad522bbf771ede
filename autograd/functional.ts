/**
 * Function transforms in the spirit of JAX: {@linkcode grad} and {@linkcode valueAndGrad} turn a
 * scalar function of a tensor into the function that returns its gradient. They compose:
 * `grad(grad(f))` is the second derivative, because the inner gradient is recorded on the tape
 * whenever its input is being differentiated itself.
 *
 * @module
 */

import { gradients, setGradEnabled } from "./tape.ts";
import { Tensor } from "./tensor.ts";

/** A function of a tensor (and further arguments passed through) returning a one-element tensor. */
export type ScalarFunction<R extends unknown[]> = (x: Tensor, ...rest: R) => Tensor;

/**
 * The function that returns `[f(x), df/dx]`. `x` itself is not changed and no `.grad` is touched.
 * When `x` requires grad (an outer `grad`, or a leaf the caller differentiates later), the gradient
 * is recorded, so it can be differentiated again.
 *
 * ```ts
 * import { tensor, valueAndGrad } from "@tapegrad/tapegrad";
 *
 * const [y, dy] = valueAndGrad((x) => x.mul(x).sum())(tensor([1, 2]));
 * console.log(y.item(), dy.toArray()); // 5 [2, 4]
 * ```
 */
export function valueAndGrad<R extends unknown[]>(
  f: ScalarFunction<R>,
): (x: Tensor, ...rest: R) => [Tensor, Tensor] {
  return (x, ...rest) => {
    const nested = x.requiresGrad;
    const input = nested ? x : leafOf(x);
    const previous = setGradEnabled(true);
    try {
      const value = f(input, ...rest);
      if (value.size !== 1) {
        throw new RangeError(
          `grad: the function must return a one-element tensor, got shape [${
            value.shape.join(", ")
          }]`,
        );
      }
      if (!value.requiresGrad) return [value, new Tensor(new Float32Array(x.size), x.shape)];
      const [dx] = gradients(value, [input], { createGraph: nested });
      return [value, dx];
    } finally {
      setGradEnabled(previous);
    }
  };
}

/**
 * The function that returns df/dx for a scalar function `f`; composable (`grad(grad(f))`).
 *
 * ```ts
 * import { grad, type Tensor, tensor } from "@tapegrad/tapegrad";
 *
 * const f = (x: Tensor) => x.pow(3).sum(); // ∂f/∂x = 3x², and ∂²f/∂x² = 6x
 * const fPrimeSum = (x: Tensor) => grad(f)(x).sum();
 * console.log(grad(fPrimeSum)(tensor([1, 2])).toArray()); // [6, 12]
 * ```
 */
export function grad<R extends unknown[]>(f: ScalarFunction<R>): (x: Tensor, ...rest: R) => Tensor {
  const both = valueAndGrad(f);
  return (x, ...rest) => both(x, ...rest)[1];
}

/** A leaf sharing `x`'s storage that requires grad, so `f` can be differentiated at `x`. */
function leafOf(x: Tensor): Tensor {
  const leaf = x.detach();
  leaf.requiresGrad = true;
  return leaf;
}
