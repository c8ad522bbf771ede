/**
 * One training step of the reference models on a device, shared by the WebGPU bench and profile:
 * the model and its SGD optimizer moved to the device, random MNIST-shaped batches uploaded once,
 * and a step that records forward, crossEntropy, backward and the update without reading
 * anything back (the loss stays on the device until the caller reads it).
 *
 * @module
 */

import { crossEntropy, type Device, Rng, type Tensor, tensor } from "../autograd/mod.ts";
import { AlexNet, MLP, type Module, SGD } from "../nn/mod.ts";

/** The models the device benches run. */
export type ModelName = "mlp" | "alexnet";

/** A model ready to step on a device. */
export interface DeviceStep {
  /** Runs one training step; returns its loss (a device tensor, not read). */
  step(): Tensor;
  /** The model (on the device). */
  model: Module<[Tensor], Tensor>;
}

/** The MLP or AlexNet with SGD (momentum 0.9) at `batch`, on `device`, with a fixed batch. */
export async function deviceStep(
  name: ModelName,
  batch: number,
  device: Device,
): Promise<DeviceStep> {
  const rng = new Rng(3);
  const x = new Float32Array(batch * 784);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const y = new Int32Array(batch);
  for (let i = 0; i < batch; i++) y[i] = Math.floor(rng.uniform() * 10);
  const model: Module<[Tensor], Tensor> = name === "mlp"
    ? new MLP({ seed: 1 })
    : new AlexNet({ seed: 1 });
  await model.to(device);
  const optimizer = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const input = tensor(x, { shape: [batch, 1, 28, 28], device });
  const labels = tensor<"int32">(y, { device });
  return {
    model,
    step() {
      optimizer.zeroGrad();
      const loss = crossEntropy(model.call(input), labels);
      loss.backward();
      optimizer.step();
      return loss;
    },
  };
}
