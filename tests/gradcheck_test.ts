/**
 * gradcheck must catch the bugs it exists for: a wrong sign, a missing broadcast reduction, a
 * factor of two, and an off-by-one in convolution padding. Each buggy op is declared with the public
 * defineOp API and fed to gradcheck, which must report the mismatch; the correct twin must pass.
 */

import assert from "node:assert/strict";
import {
  applyOp,
  conv2d,
  type ConvGeometry,
  defineOp,
  gradcheck,
  kernels,
  noGrad,
  Rng,
  type Tensor,
  tensor,
  zeros,
} from "../mod.ts";

const rng = new Rng(99);

function leaf(shape: number[], requiresGrad = true): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Float32Array.from({ length: n }, () => rng.normal()), { shape, requiresGrad });
}

/** Elementwise a·b whose backward is right or has a deliberate bug. */
function productWith(bug: "none" | "sign" | "double") {
  const op = defineOp<[Tensor, Tensor], null, null>({
    name: `mul-${bug}`,
    forward: ([a, b]) => ({ out: noGrad(() => a.mul(b)), saved: null }),
    backward: (g, _s, [a, b]) => {
      const factor = bug === "sign" ? -1 : bug === "double" ? 2 : 1;
      return [g.mul(b).mul(factor), g.mul(a)];
    },
  });
  return (a: Tensor, b: Tensor) => applyOp(op, [a, b], null);
}

/** a + b with b [1, n] broadcast over rows; the buggy backward keeps the first row instead of summing. */
function broadcastAdd(bug: boolean) {
  const op = defineOp<[Tensor, Tensor], null, null>({
    name: "add-row",
    forward: ([a, b]) => ({ out: noGrad(() => a.add(b)), saved: null }),
    backward: (g) => [g, bug ? g.narrow(0, 0, 1).contiguous() : g.sum(0, true)],
  });
  return (a: Tensor, b: Tensor) => applyOp(op, [a, b], null);
}

/**
 * conv2d (stride 1, padding 1) whose input gradient is folded back with `padShift` added to the
 * padding: 0 is correct, 1 is the classic off-by-one that shifts every gradient by one pixel.
 */
function convInputGrad(padShift: number) {
  const op = defineOp<[Tensor, Tensor], ConvGeometry, null>({
    name: "conv-x",
    forward: ([x, w]) => ({
      out: noGrad(() => conv2d(x, w, undefined, { padding: 1 })),
      saved: null,
    }),
    backward: (g, _s, [x, w], geometry) => {
      const [batch] = x.shape;
      const outChannels = w.shape[0];
      const patch = geometry.channels * geometry.kernelH * geometry.kernelW;
      const pixels = geometry.outH * geometry.outW;
      const col = new Float32Array(patch * pixels);
      const gx = zeros(x.shape);
      const gy = g.contiguous();
      const fold = { ...geometry, padH: geometry.padH + padShift, padW: geometry.padW + padShift };
      for (let n = 0; n < batch; n++) {
        kernels.gemm(
          true,
          false,
          patch,
          pixels,
          outChannels,
          w.data,
          w.offset,
          patch,
          gy.data,
          gy.offset + n * outChannels * pixels,
          pixels,
          0,
          col,
          0,
          pixels,
        );
        kernels.col2im(
          col,
          0,
          fold,
          gx.data,
          n * geometry.channels * geometry.height * geometry.width,
        );
      }
      return [gx, null];
    },
  });
  return (x: Tensor, w: Tensor) => {
    const [, channels, height, width] = x.shape;
    const geometry: ConvGeometry = {
      channels,
      height,
      width,
      kernelH: 3,
      kernelW: 3,
      strideH: 1,
      strideW: 1,
      padH: 1,
      padW: 1,
      outH: height,
      outW: width,
    };
    return applyOp(op, [x, w], geometry);
  };
}

Deno.test("gradcheck passes the correct twins of every buggy op below", () => {
  for (
    const result of [
      gradcheck(productWith("none"), [leaf([3, 4]), leaf([3, 4])]),
      gradcheck(broadcastAdd(false), [leaf([3, 4]), leaf([1, 4])]),
      gradcheck(convInputGrad(0), [leaf([1, 2, 5, 5]), leaf([2, 2, 3, 3], false)]),
    ]
  ) assert.ok(result.ok, result.report);
});

Deno.test("gradcheck catches a wrong sign", () => {
  const result = gradcheck(productWith("sign"), [leaf([3, 4]), leaf([3, 4])]);
  assert.equal(result.ok, false);
  assert.ok(
    result.mismatches.every((m) => m.input === 0),
    "only the input with the bug is flagged",
  );
  assert.match(result.report, /differ/);
});

Deno.test("gradcheck catches a factor of two", () => {
  assert.equal(gradcheck(productWith("double"), [leaf([2, 3]), leaf([2, 3])]).ok, false);
});

Deno.test("gradcheck catches a missing broadcast reduction", () => {
  const result = gradcheck(broadcastAdd(true), [leaf([3, 4]), leaf([1, 4])]);
  assert.equal(result.ok, false);
  assert.ok(result.mismatches.every((m) => m.input === 1));
});

Deno.test("gradcheck catches an off-by-one in convolution padding", () => {
  const result = gradcheck(convInputGrad(1), [leaf([1, 2, 5, 5]), leaf([2, 2, 3, 3], false)]);
  assert.equal(result.ok, false);
  assert.ok(result.mismatches.length > 5);
});

Deno.test("gradcheck refuses non-leaf or non-contiguous inputs and noGrad", () => {
  const x = leaf([2, 3]);
  assert.throws(() => gradcheck((t) => t, [x.transpose()]), /contiguous leaf/);
  assert.throws(() => noGrad(() => gradcheck((t) => t, [x])), /grad mode is off/);
});
