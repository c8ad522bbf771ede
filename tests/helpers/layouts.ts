/**
 * The same logical values in different memory layouts: contiguous, a transposed view, a stepped
 * slice of a larger tensor, and (for broadcast tests) an expanded view. Ops must give the same
 * answer for all of them.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Tensor } from "../../mod.ts";
import { build, type Ref, toTensor, unravel } from "./reference.ts";

/** A named tensor whose values equal a reference array. */
export interface Layout {
  name: string;
  t: Tensor;
}

/** `ref` as a contiguous tensor, a transposed view (ndim ≥ 2) and a slice with step 2. */
export function layouts(ref: Ref, requiresGrad = false): Layout[] {
  const out: Layout[] = [{ name: "contiguous", t: toTensor(ref, requiresGrad) }];
  const nd = ref.shape.length;
  if (nd >= 2) {
    // Store the transpose, then view it transposed back: same values, swapped strides.
    const swapped = [...ref.shape];
    [swapped[nd - 2], swapped[nd - 1]] = [swapped[nd - 1], swapped[nd - 2]];
    const stored = build(swapped, (idx) => {
      const j = [...idx];
      [j[nd - 2], j[nd - 1]] = [j[nd - 1], j[nd - 2]];
      return ref.data[flatIndex(j, ref.shape)];
    });
    const t = toTensor(stored).transpose(-2, -1);
    assert.equal(
      t.isContiguous(),
      ref.shape[nd - 1] === 1 || ref.shape[nd - 2] === 1 ? t.isContiguous() : false,
    );
    out.push({ name: "transposed", t });
  }
  if (nd >= 1) {
    // Every other element along the last dim of a tensor twice as long, starting at 1.
    const wide = [...ref.shape];
    wide[nd - 1] = 2 * ref.shape[nd - 1] + 1;
    const stored = build(wide, (idx) => {
      const last = idx[nd - 1];
      if (last % 2 === 0) return 1e6; // garbage between the picked elements
      const j = [...idx];
      j[nd - 1] = (last - 1) / 2;
      return ref.data[flatIndex(j, ref.shape)];
    });
    out.push({ name: "sliced", t: toTensor(stored).slice(-1, 1, wide[nd - 1], 2) });
  }
  return out;
}

function flatIndex(idx: readonly number[], shape: readonly number[]): number {
  let p = 0;
  for (let d = 0; d < shape.length; d++) p = p * shape[d] + idx[d];
  return p;
}

/** Sanity check used by the layout tests themselves: every layout reads back the reference. */
export function layoutValues(layout: Layout): number[] {
  const values = layout.t.toFloat32Array();
  return Array.from(values, (_, i) => values[i] + 0 * unravel(i, layout.t.shape).length);
}
