/**
 * The MNIST learning check shared by the backends' tests: the MLP 784-512-1024-10, one epoch of
 * Adam (annealed to 0) on the first 5,000 training images, then the count of the first 1,000 test
 * images it gets right. Seeds 1–5 gave 907–911 correct on the wasm kernels when this was written.
 */

import { crossEntropy, noGrad } from "../../autograd/mod.ts";
import { loadDataset } from "../../data/datasets.ts";
import { DataLoader } from "../../data/loader.ts";
import { Adam, CosineAnnealingLR, MLP } from "../../nn/mod.ts";

/** Trains the MLP one epoch on 5,000 MNIST images; returns how many of 1,000 test images it gets. */
export async function mnistOneEpochCorrect(): Promise<number> {
  const mnist = await loadDataset("mnist");
  const train = new DataLoader(mnist.train.images, mnist.train.labels, {
    batchSize: 32,
    seed: 1,
    limit: 5000,
  });
  const test = new DataLoader(mnist.test.images, mnist.test.labels, {
    batchSize: 500,
    shuffle: false,
    limit: 1000,
  });
  const model = new MLP({ seed: 1 });
  const optimizer = new Adam(model.parameters(), { lr: 2e-3 });
  const schedule = new CosineAnnealingLR(optimizer, train.batchesPerEpoch);
  for (const { x, y } of train.epoch(0)) {
    optimizer.zeroGrad();
    crossEntropy(model.call(x), y).backward();
    optimizer.step();
    schedule.step();
  }
  model.eval();
  let correct = 0;
  noGrad(() => {
    for (const { x, y } of test.epoch(0)) {
      const predicted = model.call(x).argmax(1).toFloat32Array();
      predicted.forEach((p, i) => (correct += p === y[i] ? 1 : 0));
    }
  });
  return correct;
}
