import assert from "node:assert/strict";
import {
  gradcheck,
  nllLoss as autogradNllLoss,
  randn,
  Rng,
  type Tensor,
  tensor,
  zeros,
} from "../autograd/mod.ts";
import {
  AlexNet,
  calculateGain,
  computeFans,
  Conv2d,
  createModel,
  crossEntropy,
  CrossEntropyLoss,
  Dropout,
  Flatten,
  kaimingNormal,
  kaimingUniform,
  LeakyReLU,
  Linear,
  MaxPool2d,
  MLP,
  modelNames,
  MSELoss,
  mseLoss,
  nllLoss,
  Parameter,
  ReLU,
  Sequential,
  xavierNormal,
  xavierUniform,
} from "../nn/mod.ts";

function close(actual: number, expected: number, tol = 1e-5): void {
  assert.ok(
    Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)),
    `${actual} vs ${expected}`,
  );
}

function stats(t: Tensor): { mean: number; variance: number; min: number; max: number } {
  const v = t.toFloat32Array();
  let sum = 0;
  let sq = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const x of v) {
    sum += x;
    sq += x * x;
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  const mean = sum / v.length;
  return { mean, variance: sq / v.length - mean * mean, min, max };
}

// ---------------------------------------------------------------------------------------------
// Linear and Conv2d

Deno.test("Linear: PyTorch layout [out, in], y = x·Wᵀ + b", () => {
  const layer = new Linear(3, 2, { rng: new Rng(0) });
  assert.deepEqual(layer.weight.shape, [2, 3]);
  assert.deepEqual(layer.bias?.shape, [2]);
  layer.weight.data.set([1, 2, 3, -1, 0, 1]);
  layer.bias!.data.set([0.5, -0.5]);
  const y = layer.call(tensor([[1, 1, 1], [2, 0, -1]]));
  assert.deepEqual(y.toArray(), [[6.5, -0.5], [-0.5, -3.5]]);
  // Leading dimensions are kept.
  assert.deepEqual(layer.call(zeros([4, 5, 3])).shape, [4, 5, 2]);
  const noBias = new Linear(3, 2, { bias: false, rng: new Rng(0) });
  assert.equal(noBias.bias, null);
  assert.deepEqual(noBias.namedParameters().map(([n]) => n), ["weight"]);
  assert.throws(() => new Linear(0, 2), /inFeatures must be a positive integer/);
});

Deno.test("Linear and Conv2d: PyTorch's default init bounds, seeded", () => {
  const layer = new Linear(100, 50, { rng: new Rng(7) });
  const bound = 1 / Math.sqrt(100);
  const w = stats(layer.weight);
  assert.ok(w.min >= -bound && w.max < bound);
  close(w.variance, bound * bound / 3, 0.1); // U(−b, b) has variance b²/3
  const b = stats(layer.bias!);
  assert.ok(b.min >= -bound && b.max < bound);
  const again = new Linear(100, 50, { rng: new Rng(7) });
  assert.deepEqual(again.weight.toFloat32Array(), layer.weight.toFloat32Array());
  assert.deepEqual(again.bias!.toFloat32Array(), layer.bias!.toFloat32Array());

  const conv = new Conv2d(4, 8, 3, { rng: new Rng(1) });
  const convBound = 1 / Math.sqrt(4 * 3 * 3);
  const c = stats(conv.weight);
  assert.ok(c.min >= -convBound && c.max < convBound && c.max > 0.8 * convBound);
});

Deno.test("Linear: gradcheck through the module", () => {
  const layer = new Linear(4, 3, { rng: new Rng(2) });
  const x = randn([5, 4], new Rng(3), { requiresGrad: true });
  const result = gradcheck((input) => layer.call(input), [x, layer.weight, layer.bias!]);
  assert.ok(result.ok, result.report);
});

Deno.test("Conv2d: shapes and gradcheck through the module", () => {
  const conv = new Conv2d(2, 3, 3, { stride: 2, padding: 1, rng: new Rng(4) });
  assert.deepEqual(conv.weight.shape, [3, 2, 3, 3]);
  assert.deepEqual(conv.kernelSize, [3, 3]);
  const x = randn([2, 2, 5, 5], new Rng(5), { requiresGrad: true });
  assert.deepEqual(conv.call(x).shape, [2, 3, 3, 3]);
  const result = gradcheck((input) => conv.call(input), [x, conv.weight, conv.bias!]);
  assert.ok(result.ok, result.report);
  const rect = new Conv2d(1, 1, [2, 3], { bias: false, rng: new Rng(0) });
  assert.deepEqual(rect.weight.shape, [1, 1, 2, 3]);
  assert.deepEqual(rect.call(zeros([1, 1, 4, 4])).shape, [1, 1, 3, 2]);
  assert.throws(() => new Conv2d(1, 1, 0), /kernelSize must be integers >= 1/);
});

Deno.test("Sequential of Linear, ReLU, Linear: gradcheck of every parameter", () => {
  const rng = new Rng(6);
  const net = new Sequential(
    new Linear(3, 4, { rng }),
    new LeakyReLU(0.1),
    new Linear(4, 2, { rng }),
  );
  const x = randn([3, 3], new Rng(8));
  const result = gradcheck(() => net.call(x), net.parameters());
  assert.ok(result.ok, result.report);
});

// ---------------------------------------------------------------------------------------------
// Parameter-free layers

Deno.test("ReLU, LeakyReLU, Flatten, MaxPool2d", () => {
  const x = tensor([[-2, -0.5, 0, 3]]);
  assert.deepEqual(new ReLU().call(x).toArray(), [[0, 0, 0, 3]]);
  assert.deepEqual(new LeakyReLU(0.25).call(x).toArray(), [[-0.5, -0.125, 0, 3]]);
  assert.equal(new LeakyReLU().negativeSlope, 0.01);
  assert.deepEqual(new Flatten().call(zeros([2, 3, 4, 5])).shape, [2, 60]);
  assert.deepEqual(new Flatten(0).call(zeros([2, 3, 4])).shape, [24]);
  assert.deepEqual(new Flatten(1, 2).call(zeros([2, 3, 4, 5])).shape, [2, 12, 5]);
  const img = tensor(Float32Array.from({ length: 16 }, (_, i) => i), { shape: [1, 1, 4, 4] });
  assert.deepEqual(new MaxPool2d(2).call(img).toArray(), [[[[5, 7], [13, 15]]]]);
  assert.deepEqual(new MaxPool2d(3, { stride: 1 }).call(img).shape, [1, 1, 2, 2]);
  assert.deepEqual(new MaxPool2d(2, { padding: 1 }).call(img).shape, [1, 1, 3, 3]);
});

Deno.test("Dropout: masks and scales in training, identity in eval", () => {
  const layer = new Dropout(0.5, { rng: new Rng(9) });
  const x = tensor(new Float32Array(1000).fill(1), { shape: [10, 100] });
  const y = layer.call(x).toFloat32Array();
  const kept = y.filter((v) => v !== 0);
  assert.ok(kept.every((v) => v === 2)); // survivors scaled by 1/(1 − p)
  assert.ok(kept.length > 400 && kept.length < 600, `${kept.length} kept`);
  layer.eval();
  assert.equal(layer.call(x), x);
  // Seeded: the same generator state gives the same mask.
  const a = new Dropout(0.3, { rng: new Rng(1) }).call(x).toFloat32Array();
  const b = new Dropout(0.3, { rng: new Rng(1) }).call(x).toFloat32Array();
  assert.deepEqual(a, b);
  assert.throws(() => new Dropout(1), /p must be in \[0, 1\)/);
});

// ---------------------------------------------------------------------------------------------
// Initialisers

Deno.test("calculateGain and computeFans follow PyTorch", () => {
  assert.equal(calculateGain("linear"), 1);
  assert.equal(calculateGain("conv2d"), 1);
  assert.equal(calculateGain("sigmoid"), 1);
  close(calculateGain("tanh"), 5 / 3, 1e-12);
  close(calculateGain("relu"), Math.SQRT2, 1e-12);
  close(calculateGain("leaky_relu"), Math.sqrt(2 / (1 + 0.01 ** 2)), 1e-12);
  close(calculateGain("leaky_relu", 0.2), Math.sqrt(2 / 1.04), 1e-12);
  close(calculateGain("leaky_relu", Math.sqrt(5)), Math.sqrt(1 / 3), 1e-12);
  assert.deepEqual(computeFans([10, 20]), { fanIn: 20, fanOut: 10 });
  assert.deepEqual(computeFans([8, 4, 3, 3]), { fanIn: 36, fanOut: 72 });
  assert.throws(() => computeFans([5]), /at least 2 dimensions/);
});

Deno.test("Kaiming and Xavier: bounds and variances", () => {
  const rng = new Rng(11);
  const big = () => zeros([200, 300]);
  // kaiming uniform, relu, fan_in: b = √2·√(3/300)
  const ku = stats(kaimingUniform(big(), { nonlinearity: "relu", rng }));
  const kb = Math.SQRT2 * Math.sqrt(3 / 300);
  assert.ok(ku.min >= -kb && ku.max < kb);
  close(ku.variance, 2 / 300, 0.03);
  // fan_out uses shape[0]
  const kf = stats(kaimingUniform(big(), { mode: "fan_out", rng }));
  close(kf.variance, 2 / 200, 0.03);
  // kaiming normal with leaky_relu(0.2): std = √(2/1.04)/√300
  const kn = stats(kaimingNormal(big(), { nonlinearity: "leaky_relu", a: 0.2, rng }));
  close(kn.variance, 2 / 1.04 / 300, 0.03);
  close(kn.mean, 0, 0.001);
  // linear gain 1
  close(stats(kaimingNormal(big(), { nonlinearity: "linear", rng })).variance, 1 / 300, 0.03);
  // xavier: variance 2/(fanIn + fanOut)
  const xu = stats(xavierUniform(big(), { rng }));
  const xb = Math.sqrt(6 / 500);
  assert.ok(xu.min >= -xb && xu.max < xb);
  close(xu.variance, 2 / 500, 0.03);
  close(stats(xavierNormal(big(), { gain: 2, rng })).variance, 4 * 2 / 500, 0.03);
  assert.throws(() => kaimingUniform(big().transpose()), /must be contiguous/);
});

// ---------------------------------------------------------------------------------------------
// Losses

Deno.test("mseLoss: value, gradient, reduction and shape check", () => {
  const input = tensor([[1, 2], [3, 4]], { requiresGrad: true });
  const target = tensor([[1.5, 2], [1, 5]]);
  // ((−0.5)² + 0 + 2² + (−1)²) / 4 = 5.25 / 4
  close(mseLoss(input, target).item(), 5.25 / 4, 1e-7);
  close(mseLoss(input, target, { reduction: "sum" }).item(), 5.25, 1e-7);
  const result = gradcheck((a) => mseLoss(a, target), [input]);
  assert.ok(result.ok, result.report);
  input.grad = null; // gradcheck left its own (randomly weighted) gradient there
  mseLoss(input, target).backward();
  assert.deepEqual((input.grad as Tensor | null)?.toArray(), [[-0.25, 0], [1, -0.5]]); // 2(x − t)/N
  close(new MSELoss().call(input, target).item(), 5.25 / 4, 1e-7);
  assert.throws(() => mseLoss(input, tensor([1, 2])), /mseLoss: input \[2, 2\] and target \[2\]/);
});

Deno.test("crossEntropy (fused op), CrossEntropyLoss and nllLoss", () => {
  const logits = tensor([[2, 0, 0], [0, 0, 1]]);
  const labels = new Int32Array([0, 2]);
  const l0 = -Math.log(Math.exp(2) / (Math.exp(2) + 2));
  const l1 = -Math.log(Math.E / (Math.E + 2));
  close(crossEntropy(logits, labels).item(), (l0 + l1) / 2);
  close(new CrossEntropyLoss().call(logits, labels).item(), (l0 + l1) / 2);
  close(new CrossEntropyLoss({ reduction: "sum" }).call(logits, labels).item(), l0 + l1);
  // Label smoothing ε: target (1 − ε)·onehot + ε/C.
  const eps = 0.1;
  const lp = [[2, 0, 0], [0, 0, 1]].map((row) => {
    const z = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
    return row.map((v) => v - z);
  });
  const smoothed = [0, 1].map((r) =>
    -lp[r].reduce((s, v, c) => s + v * ((c === labels[r] ? 1 - eps : 0) + eps / 3), 0)
  );
  close(
    new CrossEntropyLoss({ labelSmoothing: eps }).call(logits, labels).item(),
    (smoothed[0] + smoothed[1]) / 2,
  );
  assert.equal(nllLoss, autogradNllLoss);
  close(nllLoss(logits.logSoftmax(), labels).item(), (l0 + l1) / 2);
});

// ---------------------------------------------------------------------------------------------
// Models

Deno.test("MLP: PyTorch state_dict names and shapes, output [N, 10]", () => {
  const model = new MLP({ seed: 0 });
  // print({k: list(v.shape) for k, v in MLP().state_dict().items()}) for the PyTorch class in
  // nn/models/mlp.ts:
  const pytorch: [string, number[]][] = [
    ["fc1.weight", [512, 784]],
    ["fc1.bias", [512]],
    ["fc2.weight", [1024, 512]],
    ["fc2.bias", [1024]],
    ["fc3.weight", [10, 1024]],
    ["fc3.bias", [10]],
  ];
  assert.deepEqual(model.namedParameters().map(([n, p]) => [n, [...p.shape]]), pytorch);
  assert.deepEqual(
    Object.entries(model.stateDict()).map(([n, t]) => [n, [...t.shape]]),
    pytorch,
  );
  assert.equal(model.numParameters(), 784 * 512 + 512 + 512 * 1024 + 1024 + 1024 * 10 + 10);
  assert.deepEqual(model.call(zeros([2, 1, 28, 28])).shape, [2, 10]);
  assert.deepEqual(model.call(zeros([3, 784])).shape, [3, 10]);
  assert.deepEqual(model.spec, {
    name: "mlp",
    options: { inFeatures: 784, hidden: [512, 1024], numClasses: 10, seed: 0 },
  });
});

Deno.test("MLP: leakyRelu option, seeding, custom sizes", () => {
  const relu = new MLP({ inFeatures: 4, hidden: [5, 6], numClasses: 3, seed: 1 });
  const leaky = new MLP({ inFeatures: 4, hidden: [5, 6], numClasses: 3, seed: 1, leakyRelu: 0.2 });
  assert.deepEqual(relu.fc1.weight.toFloat32Array(), leaky.fc1.weight.toFloat32Array());
  const x = randn([8, 4], new Rng(2));
  const a = relu.call(x).toFloat32Array();
  const b = leaky.call(x).toFloat32Array();
  assert.notDeepEqual(a, b);
  // Leaky forward by hand from the layers.
  const h1 = leaky.fc1.call(x).leakyRelu(0.2);
  const h2 = leaky.fc2.call(h1).leakyRelu(0.2);
  assert.deepEqual(leaky.fc3.call(h2).toFloat32Array(), b);
  assert.match(leaky.toString(), /activation=leakyRelu\(0.2\)/);
});

Deno.test("AlexNet: PyTorch state_dict names and shapes, layer shapes, dropout", () => {
  const model = new AlexNet({ seed: 0 });
  // print({k: list(v.shape) for k, v in AlexNet().state_dict().items()}) for the PyTorch class
  // in nn/models/alexnet.ts:
  const pytorch: [string, number[]][] = [
    ["conv1.weight", [32, 1, 4, 4]],
    ["conv1.bias", [32]],
    ["conv2.weight", [64, 32, 3, 3]],
    ["conv2.bias", [64]],
    ["conv3.weight", [128, 64, 3, 3]],
    ["conv3.bias", [128]],
    ["fc1.weight", [1024, 2048]],
    ["fc1.bias", [1024]],
    ["fc2.weight", [10, 1024]],
    ["fc2.bias", [10]],
  ];
  assert.deepEqual(model.namedParameters().map(([n, p]) => [n, [...p.shape]]), pytorch);
  assert.deepEqual(
    Object.entries(model.stateDict()).map(([n, t]) => [n, [...t.shape]]),
    pytorch,
  );
  const x = randn([2, 1, 28, 28], new Rng(1));
  const f1 = model.conv1.call(x);
  const f2 = model.conv2.call(f1);
  const f3 = model.conv3.call(f2);
  assert.deepEqual([f1.shape, f2.shape, f3.shape], [[2, 32, 13, 13], [2, 64, 7, 7], [
    2,
    128,
    4,
    4,
  ]]);
  assert.deepEqual(model.call(x).shape, [2, 10]);

  const dropped = new AlexNet({ seed: 0, dropout: 0.5 });
  assert.deepEqual(dropped.namedParameters().map(([n]) => n), pytorch.map(([n]) => n));
  const train = dropped.call(x).toFloat32Array();
  dropped.eval();
  const evalOut = dropped.call(x).toFloat32Array();
  assert.deepEqual(evalOut, model.call(x).toFloat32Array()); // same seed, dropout off
  assert.notDeepEqual(train, evalOut);
});

Deno.test("createModel: registry by name, errors list the valid names", () => {
  assert.deepEqual(modelNames, ["mlp", "alexnet", "names-gpt", "names-mlp"]);
  assert.ok(createModel("mlp", { seed: 1 }) instanceof MLP);
  assert.ok(createModel("alexnet", { dropout: 0.5 }) instanceof AlexNet);
  assert.deepEqual(
    createModel("mlp", { seed: 3 }).parameters()[0].toFloat32Array().slice(0, 8),
    new MLP({ seed: 3 }).fc1.weight.toFloat32Array().slice(0, 8),
  );
  assert.throws(
    () => createModel("resnet"),
    /unknown model "resnet"; valid names: mlp, alexnet, names-gpt, names-mlp/,
  );
  assert.throws(
    () => createModel("mlp", { dropout: 0.5 }),
    /model "mlp" has no option "dropout"/,
  );
});

Deno.test("Parameter from a tensor is independent of it", () => {
  const t = tensor([1, 2, 3]);
  const p = Parameter.from(t);
  t.data[0] = 9;
  assert.deepEqual(p.toArray(), [1, 2, 3]);
});
