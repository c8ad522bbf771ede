/**
 * End-to-end learning: the layers, losses and optimizers together must actually fit data. Both
 * problems are seeded and must give bitwise identical runs.
 */

import assert from "node:assert/strict";
import { crossEntropy, noGrad, Rng, type Tensor, tensor } from "../autograd/mod.ts";
import {
  Adam,
  Conv2d,
  Flatten,
  Linear,
  MaxPool2d,
  MLP,
  type Module,
  MultiStepLR,
  ReLU,
  Sequential,
  SGD,
} from "../nn/mod.ts";

interface Dataset {
  x: Float32Array;
  y: Int32Array;
  /** Shape of one sample. */
  sample: number[];
}

function batch(data: Dataset, indices: ArrayLike<number>): [Tensor, Int32Array] {
  const size = data.sample.reduce((a, b) => a * b, 1);
  const x = new Float32Array(indices.length * size);
  const y = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    x.set(data.x.subarray(j * size, (j + 1) * size), i * size);
    y[i] = data.y[j];
  }
  return [tensor(x, { shape: [indices.length, ...data.sample] }), y];
}

function accuracy(model: Module, data: Dataset): number {
  return noGrad(() => {
    model.eval();
    const all = Array.from(data.y, (_, i) => i);
    const [x, y] = batch(data, all);
    const predicted = model.call(x).argmax(1).toFloat32Array();
    model.train();
    let correct = 0;
    for (let i = 0; i < y.length; i++) if (predicted[i] === y[i]) correct++;
    return correct / y.length;
  });
}

// ---------------------------------------------------------------------------------------------
// A linearly separable problem: 3 classes given by the largest of three random linear scores, with
// points too close to a boundary dropped so that a margin exists.

function separable(seed: number, count: number): Dataset {
  const rng = new Rng(seed);
  const features = 8;
  const w = Array.from({ length: 3 * features }, () => rng.normal());
  const x: number[] = [];
  const y: number[] = [];
  while (y.length < count) {
    const point = Array.from({ length: features }, () => rng.normal());
    const scores = [0, 1, 2].map((c) => point.reduce((s, v, k) => s + v * w[c * features + k], 0));
    const sorted = [...scores].sort((a, b) => b - a);
    if (sorted[0] - sorted[1] < 0.5) continue;
    x.push(...point);
    y.push(scores.indexOf(sorted[0]));
  }
  return { x: Float32Array.from(x), y: Int32Array.from(y), sample: [features] };
}

function fitSeparable(): { loss: number; accuracy: number } {
  const data = separable(1, 200);
  const model = new MLP({ inFeatures: 8, hidden: [16, 16], numClasses: 3, seed: 2 });
  const optimizer = new Adam(model.parameters(), { lr: 0.01 });
  const all = Array.from(data.y, (_, i) => i);
  const [x, y] = batch(data, all);
  let loss = Infinity;
  for (let step = 0; step < 300; step++) {
    optimizer.zeroGrad();
    const l = crossEntropy(model.call(x), y);
    l.backward();
    optimizer.step();
    loss = l.item();
  }
  return { loss, accuracy: accuracy(model, data) };
}

Deno.test("an MLP reaches 100% training accuracy on a linearly separable problem, deterministically", () => {
  const first = fitSeparable();
  assert.equal(first.accuracy, 1, `accuracy ${first.accuracy}, loss ${first.loss}`);
  const second = fitSeparable();
  assert.ok(Object.is(second.loss, first.loss), `${second.loss} vs ${first.loss}`);
});

// ---------------------------------------------------------------------------------------------
// Horizontal versus vertical bars at random positions in noisy 8×8 images.

const SIDE = 8;
const BAR = 4;

function bars(seed: number, count: number): Dataset {
  const rng = new Rng(seed);
  const x = new Float32Array(count * SIDE * SIDE);
  const y = new Int32Array(count);
  for (let n = 0; n < count; n++) {
    const image = x.subarray(n * SIDE * SIDE, (n + 1) * SIDE * SIDE);
    for (let i = 0; i < image.length; i++) image[i] = 0.4 * rng.uniform();
    const vertical = rng.int(2);
    const along = rng.int(SIDE - BAR + 1); // start of the bar along its length
    const across = rng.int(SIDE); // row (horizontal) or column (vertical)
    for (let k = 0; k < BAR; k++) {
      const [row, col] = vertical === 1 ? [along + k, across] : [across, along + k];
      image[row * SIDE + col] = 1;
    }
    y[n] = vertical;
  }
  return { x, y, sample: [1, SIDE, SIDE] };
}

function fitBars(): { loss: number; trainAccuracy: number; testAccuracy: number } {
  const train = bars(10, 400);
  const test = bars(11, 400);
  const rng = new Rng(3);
  // Convolution finds oriented strokes; a global max pool makes the answer position-independent.
  const model = new Sequential(
    new Conv2d(1, 8, 3, { padding: 1, rng }),
    new ReLU(),
    new MaxPool2d(SIDE),
    new Flatten(),
    new Linear(8, 2, { rng }),
  );
  const optimizer = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const scheduler = new MultiStepLR(optimizer, [15], 0.1);
  const shuffle = new Rng(4);
  let loss = Infinity;
  for (let epoch = 0; epoch < 20; epoch++) {
    const order = shuffle.permutation(train.y.length);
    for (let start = 0; start < order.length; start += 40) {
      const [x, y] = batch(train, order.subarray(start, start + 40));
      optimizer.zeroGrad();
      const l = crossEntropy(model.call(x), y);
      l.backward();
      optimizer.step();
      loss = l.item();
    }
    scheduler.step();
  }
  return { loss, trainAccuracy: accuracy(model, train), testAccuracy: accuracy(model, test) };
}

Deno.test("a small conv net tells horizontal from vertical bars on held-out images, deterministically", () => {
  const first = fitBars();
  assert.ok(
    first.testAccuracy >= 0.98,
    `held-out accuracy ${first.testAccuracy} (train ${first.trainAccuracy}, loss ${first.loss})`,
  );
  const second = fitBars();
  assert.ok(Object.is(second.loss, first.loss), `${second.loss} vs ${first.loss}`);
  assert.equal(second.testAccuracy, first.testAccuracy);
});
