/** The reference MLP learns real MNIST: one epoch on 5,000 images, ≥ 90% on 1,000 test images. */

import assert from "node:assert/strict";
import { mnistOneEpochCorrect } from "./helpers/mnist_epoch.ts";

Deno.test("MLP 784-512-1024-10, one epoch on the first 5,000 MNIST images: ≥ 90% on 1,000 test images", async () => {
  const correct = await mnistOneEpochCorrect();
  assert.ok(correct >= 900, `${correct} of 1000 test images correct`);
});
