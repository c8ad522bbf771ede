/**
 * The ONNX export checked by a real runtime: the shipped MNIST MLP and AlexNet and a names
 * transformer, exported once with a symbolic batch, run in ONNX Runtime (onnxruntime-node) at
 * batch sizes 1 and 7 and agree with tapegrad to 1e-4; over the whole MNIST test set the exported
 * classifiers make exactly tapegrad's mistakes. Also: what cannot be exported is refused by name.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { type AnyTensor, argmax, noGrad, Rng, scatterAdd, Tensor, zeros } from "../autograd/mod.ts";
import { loadDataset } from "../data/datasets.ts";
import { DataLoader, normalizationFor } from "../data/loader.ts";
import { loadModel } from "../nn/checkpoint.ts";
import { Module } from "../nn/module.ts";
import { NamesGPT, NamesMLP } from "../nn/models/names.ts";
import { exportOnnx, OnnxExportError } from "../nn/onnx/mod.ts";
import { ROOT } from "./helpers/cli.ts";

/** Runs the exported model on `x` in ONNX Runtime. */
async function runOrt(session: ort.InferenceSession, x: AnyTensor): Promise<ort.Tensor> {
  const dense = x.contiguous();
  const elements = dense.data.subarray(dense.offset, dense.offset + dense.size);
  const values = x.dtype === "int32" ? Int32Array.from(elements) : Float32Array.from(elements);
  const feed = new ort.Tensor(x.dtype === "int32" ? "int32" : "float32", values, [...x.shape]);
  const result = await session.run({ input: feed });
  return result.output;
}

function maxAbsDiff(a: Float32Array, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Index of the largest logit of each row (first on ties, as tapegrad's error count). */
function argmaxRows(values: ArrayLike<number>, classes: number): Int32Array {
  const rows = values.length / classes;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) {
      if (values[r * classes + c] > values[r * classes + best]) best = c;
    }
    out[r] = best;
  }
  return out;
}

const mnist = await loadDataset("mnist");

/** The whole MNIST test set, normalised as the trainer does, in batches of 1000. */
function testBatches(): { x: Tensor; y: ArrayLike<number> }[] {
  const loader = new DataLoader(mnist.test.images, mnist.test.labels, {
    batchSize: 1000,
    shuffle: false,
    normalization: normalizationFor("mnist"),
  });
  return [...loader.epoch(0)].map(({ x, y }) => ({ x: x as Tensor, y: y as ArrayLike<number> }));
}

for (const file of ["mnist-mlp.safetensors", "mnist-alexnet.safetensors"]) {
  Deno.test(`models/${file} exported to ONNX runs in ONNX Runtime as in tapegrad`, async () => {
    const { model } = await loadModel(join(ROOT, "models", file));
    model.eval();
    const batches = testBatches();
    const bytes = exportOnnx(model, batches[0].x.slice(0, 0, 2));
    const session = await ort.InferenceSession.create(bytes);

    // Real test images at batch 1 and 7 through one session: the batch dimension is symbolic.
    for (const size of [1, 7]) {
      const x = batches[0].x.slice(0, 10, 10 + size).contiguous();
      const want = noGrad(() => model.forward(x)).toFloat32Array();
      const got = await runOrt(session, x);
      assert.deepEqual(got.dims, [size, 10]);
      const diff = maxAbsDiff(want, got.data as Float32Array);
      assert.ok(diff <= 1e-4, `batch ${size}: max abs difference ${diff}`);
    }

    // The same mistakes over the 10 000 test images.
    let ours = 0;
    let theirs = 0;
    let disagree = 0;
    for (const { x, y } of batches) {
      const a = argmaxRows(noGrad(() => model.forward(x)).toFloat32Array(), 10);
      const b = argmaxRows((await runOrt(session, x)).data as Float32Array, 10);
      for (let i = 0; i < a.length; i++) {
        if (a[i] !== y[i]) ours++;
        if (b[i] !== y[i]) theirs++;
        if (a[i] !== b[i]) disagree++;
      }
    }
    assert.equal(theirs, ours, `ONNX Runtime: ${theirs} errors, tapegrad: ${ours}`);
    assert.equal(disagree, 0);
    session.release();
  });
}

Deno.test("a names transformer exported to ONNX runs in ONNX Runtime as in tapegrad", async () => {
  const model = new NamesGPT({ seed: 3 });
  model.eval();
  const rng = new Rng(11);
  const tokens = (batch: number) =>
    new Tensor<"int32">(
      Int32Array.from({ length: batch * 16 }, () => Math.floor(rng.uniform() * 28)),
      [batch, 16],
    );
  const session = await ort.InferenceSession.create(exportOnnx(model, tokens(2)));
  for (const size of [1, 7]) {
    const x = tokens(size);
    const want = noGrad(() => model.forward(x)).toFloat32Array();
    const got = await runOrt(session, x);
    assert.deepEqual(got.dims, [size, 16, 28]);
    const diff = maxAbsDiff(want, got.data as Float32Array);
    assert.ok(diff <= 1e-4, `batch ${size}: max abs difference ${diff}`);
  }
  session.release();
});

Deno.test("the names MLP exported to ONNX runs in ONNX Runtime as in tapegrad", async () => {
  const model = new NamesMLP({ seed: 4 });
  model.eval();
  const contexts = (batch: number) =>
    new Tensor<"int32">(Int32Array.from({ length: batch * 3 }, (_, i) => (i * 5 + 1) % 28), [
      batch,
      3,
    ]);
  const session = await ort.InferenceSession.create(exportOnnx(model, contexts(2)));
  for (const size of [1, 7]) {
    const x = contexts(size);
    const want = noGrad(() => model.forward(x)).toFloat32Array();
    const got = await runOrt(session, x);
    assert.deepEqual(got.dims, [size, 28]);
    const diff = maxAbsDiff(want, got.data as Float32Array);
    assert.ok(diff <= 1e-4, `batch ${size}: max abs difference ${diff}`);
  }
  session.release();
});

Deno.test("dynamicBatch: false fixes the batch size in the file", async () => {
  const { model } = await loadModel(join(ROOT, "models", "mnist-mlp.safetensors"));
  const session = await ort.InferenceSession.create(
    exportOnnx(model, zeros([3, 1, 28, 28]), { dynamicBatch: false }),
  );
  assert.deepEqual((await runOrt(session, zeros([3, 1, 28, 28]))).dims, [3, 10]);
  await assert.rejects(() => runOrt(session, zeros([2, 1, 28, 28])));
  session.release();
});

/** A model whose forward uses scatterAdd, which has no ONNX mapping. */
class Scatters extends Module {
  override forward(x: Tensor): Tensor {
    const index = new Tensor<"int32">(new Int32Array(x.size), x.shape);
    return scatterAdd(zeros(x.shape), 0, index, x);
  }
}

Deno.test("an op without an ONNX mapping is refused by name", () => {
  assert.throws(
    () => exportOnnx(new Scatters(), zeros([2, 3])),
    (error: unknown) =>
      error instanceof OnnxExportError && error.op === "scatterAdd" &&
      /op "scatterAdd" \(#0\): has no ONNX mapping/.test(error.message),
  );
});

/** A model that rebuilds a value from the input outside the traced ops (a cast). */
class Casts extends Module {
  override forward(x: Tensor): Tensor {
    return x.add(x.to("int32").to("float32"));
  }
}

/** A model whose output is computed outside the traced ops (argmax, then a cast). */
class Argmax extends Module {
  override forward(x: Tensor): Tensor {
    return argmax(x, 1).to("float32");
  }
}

Deno.test("a value made from the input outside the traced ops is refused by name", () => {
  assert.throws(
    () => exportOnnx(new Argmax(), new Tensor(new Float32Array([1, 2, 4, 3]), [2, 2])),
    /exportOnnx: the model's output was made outside the traced ops/,
  );
  assert.throws(
    () => exportOnnx(new Casts(), new Tensor(new Float32Array([1.5, 2.5]), [2, 1])),
    (error: unknown) =>
      error instanceof OnnxExportError && error.op === "add" &&
      /made outside the traced ops/.test(error.message),
  );
});
