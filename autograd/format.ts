/**
 * PyTorch-style text for tensors: values with 4 decimals (scientific notation when the magnitudes
 * call for it), aligned in columns, large tensors summarised with "..." after 3 items per edge.
 *
 * @module
 */

import type { AnyTensor } from "./tensor.ts";

const SUMMARY_THRESHOLD = 1000;
const EDGE_ITEMS = 3;

/**
 * Formats `t` as `tensor([...])`, adding `requiresGrad=true` when set; int32 and bool tensors print
 * integers (`true`/`false` for bool) and their dtype, as PyTorch does.
 */
export function formatTensor(t: AnyTensor): string {
  if (t.device !== "cpu") {
    // Values on a device come back only asynchronously: describe the tensor instead.
    return `tensor(<${t.device}: shape [${
      t.shape.join(", ")
    }], ${t.dtype}; await t.cpu() to print>)`;
  }
  const values = t.toFloat32Array();
  const summarise = values.length > SUMMARY_THRESHOLD;
  const finite = Array.from(values).filter((v) => Number.isFinite(v) && v !== 0).map(Math.abs);
  const maxAbs = finite.length ? Math.max(...finite) : 0;
  const minAbs = finite.length ? Math.min(...finite) : 0;
  const scientific = maxAbs >= 1e8 || (minAbs > 0 && minAbs < 1e-4);
  const text = (v: number) => {
    if (t.dtype === "bool") return v ? "True" : "False";
    if (t.dtype === "int32") return String(v);
    if (Number.isNaN(v)) return "nan";
    if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
    return scientific ? v.toExponential(4) : v.toFixed(4);
  };
  const width = Math.max(...Array.from(values, (v) => text(v).length), 1);
  const prefix = "tensor(";
  const render = (dim: number, start: number, indent: number): string => {
    if (dim === t.ndim) return text(values[start]).padStart(width);
    const size = t.shape[dim];
    const stride = t.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
    const items: string[] = [];
    for (let i = 0; i < size; i++) {
      if (summarise && size > 2 * EDGE_ITEMS && i === EDGE_ITEMS) {
        items.push("...");
        i = size - EDGE_ITEMS - 1;
        continue;
      }
      items.push(render(dim + 1, start + i * stride, indent + 1));
    }
    const separator = dim === t.ndim - 1
      ? ", "
      : "," + "\n".repeat(t.ndim - dim - 1) + " ".repeat(indent + 1);
    return "[" + items.join(separator) + "]";
  };
  const body = render(0, 0, prefix.length);
  const suffix = t.dtype !== "float32"
    ? `, dtype=${t.dtype}`
    : t.requiresGrad
    ? (t.gradFn ? `, gradFn=${t.gradFn.op}` : ", requiresGrad=true")
    : "";
  return `${prefix}${body}${suffix})`;
}
