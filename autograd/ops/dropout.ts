/**
 * Inverted dropout: in training, each element is zeroed with probability p and the survivors are
 * scaled by 1/(1 − p); in evaluation it is the identity (no op is recorded at all).
 *
 * @module
 */

import { kernels } from "../kernels/mod.ts";
import { defaultRng, type Rng } from "../rng.ts";
import type { Tensor } from "../tensor.ts";
import { elementwiseInto, mul } from "./arith.ts";
import { applyOp, defineOp, type OpDef } from "./op.ts";
import { empty } from "./util.ts";

interface DropoutAttrs {
  p: number;
  rng: Rng;
}

/** Multiplies by a random mask of 0 and 1/(1 − p); the gradient goes through the same mask. */
export const dropoutOp: OpDef<[Tensor], DropoutAttrs, Tensor> = defineOp<
  [Tensor],
  DropoutAttrs,
  Tensor
>({
  name: "dropout",
  forward([x], { p, rng }) {
    const mask = empty(x.shape);
    const bits = new Uint32Array(mask.size);
    rng.fillUint32(bits);
    kernels.dropoutMask(bits, p, mask.data, mask.size);
    return { out: elementwiseInto("mul", x, mask, empty(x.shape)), saved: mask };
  },
  backward(g, mask) {
    return [mul(g, mask)];
  },
});

/** Options of {@linkcode dropout}. */
export interface DropoutOptions {
  /** Apply the mask (true, default) or return the input unchanged (evaluation). */
  training?: boolean;
  /** Generator for the mask (default: the library's seeded default generator). */
  rng?: Rng;
}

/** Inverted dropout with drop probability `p` (0 ≤ p < 1). */
export function dropout(x: Tensor, p: number, options: DropoutOptions = {}): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  if (options.training === false || p === 0) return x;
  return applyOp(dropoutOp, [x], { p, rng: options.rng ?? defaultRng() });
}
