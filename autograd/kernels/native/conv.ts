/**
 * Convolution forward and backward on a system BLAS, one large GEMM per pass over a group of
 * images instead of one small GEMM per image (a 32×16·16×169 product per MNIST image is far
 * too small for BLAS to reach its speed; the batch's 32×16·16×21632 is not).
 *
 * For a group of `nb` images the columns of every image sit side by side: col [K, nb·P] with
 * K = C·kh·kw (channel, kernel row, kernel column: the reference's order) and P = OH·OW, image i
 * in columns i·P … i·P + P − 1. Then
 * - forward:  C[O, nb·P] = W[O, K]·col, copied to NCHW with the bias added and ReLU applied;
 * - backward: G[O, nb·P] is gy laid out the same way (masked by y > 0 when ReLU was fused, the
 *   bias gradient summed in float64 on the way), dW = G·colᵀ (summed over groups in order), and
 *   dcol = Wᵀ·G folded back into gx by col2im.
 * Groups are sized so col holds at most {@link NATIVE_CONV_COL_MAX} floats; the group size
 * depends only on the shapes, so the summation order (and the result) does not depend on
 * anything else.
 *
 * @module
 */

import { col2imStrided, im2colStrided } from "../conv.ts";
import type { Gemm } from "../gemm.ts";
import type { ConvBackwardKernel, ConvForwardKernel } from "../types.ts";
import { Scratch } from "./linear.ts";

/** Most floats of im2col columns held at once (a group of images is cut to fit). */
export const NATIVE_CONV_COL_MAX = 1 << 23;

const colScratch = new Scratch();
const productScratch = new Scratch();

/** Images per group: as many as fit {@link NATIVE_CONV_COL_MAX} floats of columns, at least 1. */
function groupSize(batch: number, K: number, P: number): number {
  return Math.max(1, Math.min(batch, Math.floor(NATIVE_CONV_COL_MAX / Math.max(1, K * P))));
}

/** Convolution forward over `gemm` (see the module comment and `convForwardReference`). */
export function createNativeConvForward(gemm: Gemm): ConvForwardKernel {
  return (a) => {
    const { g, batch, outChannels: O } = a;
    const K = g.channels * g.kernelH * g.kernelW;
    const P = g.outH * g.outW;
    const imageSize = g.channels * g.height * g.width;
    const nbMax = groupSize(batch, K, P);
    for (let n0 = 0; n0 < batch; n0 += nbMax) {
      const nb = Math.min(nbMax, batch - n0);
      const NP = nb * P;
      const col = colScratch.get(K * NP);
      for (let i = 0; i < nb; i++) {
        im2colStrided(a.x, a.xOffset + (n0 + i) * imageSize, g, col, i * P, NP);
      }
      const prod = productScratch.get(O * NP);
      gemm(false, false, O, NP, K, a.w, a.wOffset, K, col, 0, NP, 0, prod, 0, NP);
      // [O, nb·P] → [nb, O, P], with the bias and ReLU on the way.
      for (let o = 0; o < O; o++) {
        const bias = a.bias === null ? 0 : a.bias[a.biasOffset + o];
        for (let i = 0; i < nb; i++) {
          const src = o * NP + i * P;
          const dst = a.outOffset + ((n0 + i) * O + o) * P;
          if (a.relu) {
            for (let p = 0; p < P; p++) {
              const v = prod[src + p] + bias;
              a.out[dst + p] = v > 0 ? v : 0;
            }
          } else {
            for (let p = 0; p < P; p++) a.out[dst + p] = prod[src + p] + bias;
          }
        }
      }
    }
  };
}

/** Convolution gradients over `gemm` (see the module comment and `convBackwardReference`). */
export function createNativeConvBackward(gemm: Gemm): ConvBackwardKernel {
  return (a) => {
    const { g, batch, outChannels: O } = a;
    const K = g.channels * g.kernelH * g.kernelW;
    const P = g.outH * g.outW;
    const imageSize = g.channels * g.height * g.width;
    const nbMax = groupSize(batch, K, P);
    const biasSums = a.gb === null ? null : new Float64Array(O);
    if (a.gx !== null) a.gx.fill(0, a.gxOffset, a.gxOffset + batch * imageSize);
    if (a.gw !== null && batch === 0) a.gw.fill(0, a.gwOffset, a.gwOffset + O * K);
    for (let n0 = 0; n0 < batch; n0 += nbMax) {
      const nb = Math.min(nbMax, batch - n0);
      const NP = nb * P;
      // G[O, nb·P] from gy [nb, O, P], masked where ReLU was fused.
      const G = productScratch.get(O * NP);
      for (let o = 0; o < O; o++) {
        let s = 0;
        for (let i = 0; i < nb; i++) {
          const src = ((n0 + i) * O + o) * P;
          const dst = o * NP + i * P;
          if (a.y !== null) {
            for (let p = 0; p < P; p++) {
              const v = a.y[a.yOffset + src + p] > 0 ? a.gy[a.gyOffset + src + p] : 0;
              G[dst + p] = v;
              s += v;
            }
          } else {
            for (let p = 0; p < P; p++) {
              const v = a.gy[a.gyOffset + src + p];
              G[dst + p] = v;
              s += v;
            }
          }
        }
        if (biasSums !== null) biasSums[o] += s;
      }
      const col = colScratch.get(K * NP);
      if (a.gw !== null) {
        for (let i = 0; i < nb; i++) {
          im2colStrided(a.x, a.xOffset + (n0 + i) * imageSize, g, col, i * P, NP);
        }
        gemm(false, true, O, K, NP, G, 0, NP, col, 0, NP, n0 === 0 ? 0 : 1, a.gw, a.gwOffset, K);
      }
      if (a.gx !== null) {
        gemm(true, false, K, NP, O, a.w, a.wOffset, K, G, 0, NP, 0, col, 0, NP);
        for (let i = 0; i < nb; i++) {
          col2imStrided(col, i * P, NP, g, a.gx, a.gxOffset + (n0 + i) * imageSize);
        }
      }
    }
    if (a.gb !== null) { for (let o = 0; o < O; o++) a.gb[a.gbOffset + o] = biasSums![o]; }
  };
}
