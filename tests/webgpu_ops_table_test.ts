/**
 * The WebGPU backend covers the primitive table: every primitive has a device implementation,
 * except the views, which only restride the storage they share and so run their own definition
 * on any device. A primitive added to the table without a WebGPU entry fails here.
 *
 * @module
 */

import assert from "node:assert/strict";
import { opTable, type Primitive } from "../autograd/ops/mod.ts";
import { webgpuOps } from "../autograd/kernels/webgpu/mod.ts";

/** Primitives whose own forward builds a view of the same storage (device-independent). */
const VIEWS: readonly Primitive[] = ["reshape", "transpose", "permute", "slice", "expand"];

Deno.test("webgpu: every primitive but the views has a device implementation", () => {
  const missing = (Object.keys(opTable) as Primitive[]).filter((p) =>
    !VIEWS.includes(p) && webgpuOps[p] === undefined
  );
  assert.deepEqual(missing, [], `no webgpu implementation: ${missing.join(", ")}`);
  for (const view of VIEWS) {
    assert.equal(webgpuOps[view], undefined, `${view} is a view: it needs no device kernel`);
  }
});
