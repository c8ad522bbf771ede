/**
 * `deno task export --ckpt PATH --out model.onnx`: a checkpoint's model as an ONNX file (opset 18,
 * symbolic batch dimension) for ONNX Runtime and other ONNX tools.
 *
 * @module
 */

import { type AnyTensor, Tensor, zeros } from "../autograd/mod.ts";
import { CheckpointError, type Module } from "../nn/mod.ts";
import { exportOnnx, ONNX_OPSET, OnnxExportError } from "../nn/onnx/mod.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import {
  type FlagSpec,
  formatHelp,
  numberFlag,
  parseFlags,
  runTask,
  SHARED_FLAGS,
  UsageError,
} from "./common.ts";
import { loadNamesModel } from "./names.ts";
import { enterCallerDirectory, loadClassifier, readCheckpointFile } from "./report.ts";

const FLAGS: Record<string, FlagSpec> = {
  ckpt: {
    type: "string",
    value: "PATH",
    help:
      "checkpoint or model file (models/mnist-mlp.safetensors, a run's best or last) (required)",
  },
  out: { type: "string", value: "PATH", help: "the .onnx file to write (required)" },
  "seq-len": {
    type: "string",
    value: "T",
    help: "names-gpt only: the sequence length the file takes (default the block size)",
  },
  "static-batch": {
    type: "boolean",
    help: "fix the batch size at --batch instead of a symbolic batch dimension",
  },
  batch: { type: "string", value: "N", help: "batch size of the traced example (default 2)" },
  help: SHARED_FLAGS.help,
};

const USAGE =
  "Usage: deno task export --ckpt PATH --out model.onnx [--seq-len T] [--static-batch] [--batch N]";
const DESCRIPTION = "Writes the checkpoint's model as ONNX (opset " + ONNX_OPSET +
  "): the model runs once on an\n" +
  "example batch while the tape traces its ops, parameters are stored under their PyTorch\n" +
  'names, and the batch dimension is symbolic ("batch"). The classifiers take float32\n' +
  "[batch, 1, 28, 28] images normalised as in training; the names models take int32 tokens\n" +
  "[batch, T]. The checkpoint's metadata (model, options, vocabulary) goes into the file's\n" +
  "metadata_props.";

async function main(): Promise<number> {
  const { values } = parseFlags(Deno.args, FLAGS);
  if (values.help) {
    console.log(formatHelp(USAGE, DESCRIPTION, FLAGS));
    return 0;
  }
  enterCallerDirectory();
  const path = values.ckpt;
  if (typeof path !== "string" || path === "") throw new UsageError("--ckpt PATH is required");
  const out = values.out;
  if (typeof out !== "string" || out === "") throw new UsageError("--out PATH is required");
  const batch = numberFlag(values, "batch", { min: 1, max: 4096, integer: true }) ?? 2;
  const seqLen = numberFlag(values, "seq-len", { min: 1, max: 65536, integer: true });

  const checkpoint = await readCheckpointFile(path);
  const name = checkpoint.spec?.name;
  // deno-lint-ignore no-explicit-any
  let model: Module<[any], Tensor>;
  let example: AnyTensor;
  if (name === "names-gpt" || name === "names-mlp") {
    const loaded = await loadNamesModel(path);
    if (seqLen !== undefined && name === "names-mlp") {
      throw new UsageError("--seq-len is for names-gpt; names-mlp reads a fixed context");
    }
    if (seqLen !== undefined && seqLen > loaded.context) {
      throw new UsageError(`--seq-len ${seqLen} is longer than the block size ${loaded.context}`);
    }
    model = loaded.model;
    example = new Tensor<"int32">(new Int32Array(batch * (seqLen ?? loaded.context)), [
      batch,
      seqLen ?? loaded.context,
    ]);
  } else {
    if (seqLen !== undefined) throw new UsageError("--seq-len is for names-gpt checkpoints");
    model = (await loadClassifier(path)).model;
    example = zeros([batch, 1, 28, 28]);
  }

  const metadata: Record<string, string> = {};
  for (const key of ["model", "model_options", "dataset", "vocab", "tapegrad"]) {
    if (Object.hasOwn(checkpoint.metadata, key)) metadata[key] = checkpoint.metadata[key];
  }
  let bytes: Uint8Array;
  try {
    bytes = exportOnnx(model, example, {
      dynamicBatch: values["static-batch"] !== true,
      metadata,
    });
  } catch (error) {
    // The model of this file cannot be written as ONNX: a user-facing error, not a bug.
    if (error instanceof OnnxExportError) throw new CheckpointError(path, error.message);
    throw error;
  }
  await writeFileAtomic(out, bytes);
  const batchText = values["static-batch"] === true ? String(batch) : "batch";
  const inputShape = [batchText, ...example.shape.slice(1)].join(", ");
  console.log(
    `wrote ${out} (${bytes.length} bytes): ${name ?? "model"} as ONNX opset ${ONNX_OPSET}, ` +
      `input "input" ${example.dtype} [${inputShape}], output "output"`,
  );
  return 0;
}

if (import.meta.main) await runTask("export", main);
