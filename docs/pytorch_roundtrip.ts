/**
 * The tapegrad half of the PyTorch round trip that docs/pytorch_roundtrip.py drives (run that
 * script; it calls this one twice). Not part of the library or the tests: PyTorch is never a test
 * dependency.
 *
 * - `prepare DIR`: the MNIST test set as the trainer normalises it, and the shipped MLP's and
 *   AlexNet's logits on it, as safetensors files for PyTorch to compare with.
 * - `check DIR`: loads the PyTorch state dict with a BatchNorm that the Python script wrote
 *   (num_batches_tracked as I64), compares tapegrad's outputs with PyTorch's, and saves the model
 *   back with saveModel for the script to load into PyTorch again.
 *
 * @module
 */

import { noGrad, Tensor } from "../autograd/mod.ts";
import { loadDataset } from "../data/datasets.ts";
import { DataLoader, normalizationFor } from "../data/loader.ts";
import {
  BatchNorm1d,
  Linear,
  loadModel,
  loadSafetensors,
  ReLU,
  saveModel,
  saveSafetensors,
  Sequential,
} from "../nn/mod.ts";

const [command, dir] = Deno.args;
if ((command !== "prepare" && command !== "check") || dir === undefined) {
  console.error("usage: deno run -A docs/pytorch_roundtrip.ts prepare|check DIR");
  Deno.exit(2);
}
const root = new URL("..", import.meta.url).pathname;

/** Row-wise argmax errors against the labels. */
function errors(logits: Float32Array, labels: ArrayLike<number>, classes: number): number {
  let wrong = 0;
  for (let r = 0; r < labels.length; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) {
      if (logits[r * classes + c] > logits[r * classes + best]) best = c;
    }
    if (best !== labels[r]) wrong++;
  }
  return wrong;
}

if (command === "prepare") {
  const mnist = await loadDataset("mnist");
  const loader = new DataLoader(mnist.test.images, mnist.test.labels, {
    batchSize: 10_000,
    shuffle: false,
    normalization: normalizationFor("mnist"),
  });
  const [{ x, y }] = [...loader.epoch(0)];
  const images = (x as Tensor).toFloat32Array();
  const labels = Int32Array.from(y as ArrayLike<number>);
  await saveSafetensors(`${dir}/mnist_test.safetensors`, {
    images: { shape: [labels.length, 1, 28, 28], data: images },
    labels: { shape: [labels.length], data: labels, dtype: "I64" },
  });
  for (const name of ["mlp", "alexnet"]) {
    const { model } = await loadModel(`${root}models/mnist-${name}.safetensors`);
    model.eval();
    const logits = noGrad(() => model.call(new Tensor(images, [labels.length, 1, 28, 28])))
      .toFloat32Array();
    await saveSafetensors(`${dir}/${name}_tapegrad_logits.safetensors`, {
      logits: { shape: [labels.length, 10], data: logits },
    });
    console.log(
      `tapegrad  ${name.padEnd(7)} test errors: ${errors(logits, labels, 10)} of ${labels.length}`,
    );
  }
} else {
  // PyTorch: nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 5)).
  const net = new Sequential(
    new Linear(20, 32),
    new BatchNorm1d(32),
    new ReLU(),
    new Linear(32, 5),
  );
  const { tensors } = await loadSafetensors(`${dir}/torch_bn.safetensors`);
  console.log(
    `tapegrad read torch_bn.safetensors: 1.num_batches_tracked is ${
      tensors["1.num_batches_tracked"].dtype
    } = ${tensors["1.num_batches_tracked"].data[0]}`,
  );
  net.loadStateDict(tensors);
  net.eval();
  const io = (await loadSafetensors(`${dir}/torch_bn_io.safetensors`)).tensors;
  const x = new Tensor(io.x.data as Float32Array, io.x.shape);
  const got = noGrad(() => net.call(x)).toFloat32Array();
  let diff = 0;
  io.y.data.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - got[i]))));
  console.log(
    `tapegrad outputs of the PyTorch BatchNorm net vs PyTorch's: max abs diff ${
      diff.toExponential(2)
    } over ${got.length} values`,
  );
  await saveModel(`${dir}/tapegrad_bn.safetensors`, net);
}
