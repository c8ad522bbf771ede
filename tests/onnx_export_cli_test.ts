/**
 * `deno task export`: a shipped classifier and a names-gpt checkpoint written as ONNX files that
 * ONNX Runtime runs as tapegrad does, the checkpoint's metadata carried along, and the usage and
 * file errors reported without a stack trace.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { noGrad, Tensor } from "../autograd/mod.ts";
import { loadModel, saveModel } from "../nn/checkpoint.ts";
import { NamesGPT } from "../nn/models/names.ts";
import { ROOT } from "./helpers/cli.ts";

/** Runs cli/export.ts with the task's permissions (as in deno.json). */
async function exportTask(args: string[]): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "cli/export.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code, output: text.decode(stdout) + text.decode(stderr) };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

Deno.test("deno task export writes the shipped MLP as ONNX that ONNX Runtime runs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ckpt = join(ROOT, "models", "mnist-mlp.safetensors");
    const out = join(dir, "mlp.onnx");
    const run = await exportTask(["--ckpt", ckpt, "--out", out]);
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /mlp as ONNX opset 18, input "input" float32 \[batch, 1, 28, 28\]/);
    const session = await ort.InferenceSession.create(out);
    const x = new Tensor(Float32Array.from({ length: 3 * 784 }, (_, i) => Math.cos(i)), [
      3,
      1,
      28,
      28,
    ]);
    const got = (await session.run({ input: new ort.Tensor("float32", x.data, [3, 1, 28, 28]) }))
      .output;
    assert.deepEqual(got.dims, [3, 10]);
    const { model } = await loadModel(ckpt);
    model.eval();
    const want = noGrad(() => model.forward(x)).toFloat32Array();
    assert.ok(maxAbsDiff(want, got.data as Float32Array) <= 1e-4);
    session.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task export takes a names-gpt checkpoint at a chosen sequence length", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = new NamesGPT({ layers: 1, seed: 5 });
    const ckpt = join(dir, "model.safetensors");
    await saveModel(ckpt, model, { metadata: { vocab: "-abcdefghijklmnopqrstuvwxyz" } });
    const out = join(dir, "gpt.onnx");
    const run = await exportTask(["--ckpt", ckpt, "--out", out, "--seq-len", "8"]);
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /names-gpt as ONNX opset 18, input "input" int32 \[batch, 8\]/);
    const session = await ort.InferenceSession.create(out);
    const tokens = Int32Array.from({ length: 16 }, (_, i) => (i * 5) % 28);
    const got = (await session.run({ input: new ort.Tensor("int32", tokens, [2, 8]) })).output;
    assert.deepEqual(got.dims, [2, 8, 28]);
    model.eval();
    const want = noGrad(() => model.forward(new Tensor<"int32">(tokens, [2, 8]))).toFloat32Array();
    assert.ok(maxAbsDiff(want, got.data as Float32Array) <= 1e-4);
    // The vocabulary travels in metadata_props, so a consumer can decode the tokens.
    const exported = new TextDecoder().decode(await Deno.readFile(out));
    assert.ok(exported.includes("-abcdefghijklmnopqrstuvwxyz"));
    session.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task export: usage and file errors name the problem, no stack trace", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const noOut = await exportTask(["--ckpt", join(ROOT, "models", "mnist-mlp.safetensors")]);
    assert.equal(noOut.code, 2);
    assert.match(noOut.output, /--out PATH is required/);
    const missing = await exportTask(["--ckpt", join(dir, "nope.safetensors"), "--out", "x.onnx"]);
    assert.equal(missing.code, 1);
    assert.match(missing.output, /nope\.safetensors: no such file/);
    const seq = await exportTask([
      "--ckpt",
      join(ROOT, "models", "mnist-mlp.safetensors"),
      "--out",
      join(dir, "x.onnx"),
      "--seq-len",
      "4",
    ]);
    assert.equal(seq.code, 2);
    assert.match(seq.output, /--seq-len is for names-gpt/);
    for (const run of [noOut, missing, seq]) assert.doesNotMatch(run.output, /^\s+at /m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
