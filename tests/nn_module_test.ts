import assert from "node:assert/strict";
import { type AnyTensor, Rng, type Tensor, tensor, zeros } from "../autograd/mod.ts";
import {
  Conv2d,
  Dropout,
  Flatten,
  Linear,
  Module,
  Parameter,
  ReLU,
  Sequential,
  StateDictError,
} from "../nn/mod.ts";

/** features: conv → relu → conv; classifier: flatten → linear, like torchvision's models. */
class Net extends Module {
  features: Sequential;
  classifier: Sequential;
  scale = 2; // not a parameter: ignored
  cache: Tensor = zeros([3]); // a plain tensor property: ignored

  constructor(seed = 0) {
    super();
    const rng = new Rng(seed);
    this.features = new Sequential(
      new Conv2d(1, 2, 3, { rng }),
      new ReLU(),
      new Conv2d(2, 2, 3, { padding: 1, rng }),
    );
    this.classifier = new Sequential(new Flatten(), new Dropout(0.5), new Linear(8, 3, { rng }));
  }

  forward(x: Tensor): Tensor {
    return this.classifier.call(this.features.call(x));
  }
}

/** The error `fn` throws (fails when it returns normally). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail("expected an exception");
}

function bits(t: AnyTensor): Uint32Array {
  return new Uint32Array(t.toFloat32Array().buffer);
}

Deno.test("namedParameters: dotted PyTorch names through nested modules and Sequential", () => {
  const net = new Net();
  assert.deepEqual(
    net.namedParameters().map(([name, p]) => [name, [...p.shape]]),
    [
      ["features.0.weight", [2, 1, 3, 3]],
      ["features.0.bias", [2]],
      ["features.2.weight", [2, 2, 3, 3]],
      ["features.2.bias", [2]],
      ["classifier.2.weight", [3, 8]],
      ["classifier.2.bias", [3]],
    ],
  );
  assert.equal(net.parameters().length, 6);
  assert.equal(net.numParameters(), 18 + 2 + 36 + 2 + 24 + 3);
  assert.ok(net.parameters().every((p) => p instanceof Parameter && p.requiresGrad));
});

Deno.test("namedModules and children list the tree depth first", () => {
  const net = new Net();
  assert.deepEqual(net.namedModules().map(([name]) => name), [
    "",
    "features",
    "features.0",
    "features.1",
    "features.2",
    "classifier",
    "classifier.0",
    "classifier.1",
    "classifier.2",
  ]);
  assert.deepEqual(net.namedChildren().map(([name]) => name), ["features", "classifier"]);
  assert.equal(net.children()[0], net.features);
  assert.equal(net.modules().length, 9);
});

Deno.test("Sequential keeps numeric order past 10 children", () => {
  const rng = new Rng(1);
  const layers = Array.from({ length: 12 }, () => new Linear(2, 2, { rng }));
  const seq = new Sequential(...layers);
  assert.equal(seq.length, 12);
  assert.deepEqual(
    seq.namedParameters().filter(([n]) => n.endsWith("weight")).map(([n]) => n),
    Array.from({ length: 12 }, (_, i) => `${i}.weight`),
  );
  assert.equal(seq.at(11), layers[11]);
  assert.equal(seq.at(-1), layers[11]);
  assert.throws(() => seq.at(12), /outside 0\.\.11/);
  seq.append(new ReLU());
  assert.equal(seq.length, 13);
  assert.deepEqual(seq.namedChildren().at(-1)?.[0], "12");
});

Deno.test("a shared sub-module's parameters are listed once", () => {
  class Tied extends Module {
    a: Linear;
    b: Linear;
    constructor() {
      super();
      this.a = new Linear(3, 3, { rng: new Rng(0) });
      this.b = this.a;
    }
    forward(x: Tensor): Tensor {
      return this.b.call(this.a.call(x));
    }
  }
  const m = new Tied();
  assert.deepEqual(m.namedParameters().map(([n]) => n), ["a.weight", "a.bias"]);
  assert.equal(m.numParameters(), 12);
});

Deno.test("buffers are in the state dict but not in parameters()", () => {
  class WithBuffer extends Module {
    fc = new Linear(2, 2, { rng: new Rng(0) });
    constructor() {
      super();
      this.registerBuffer("runningMean", tensor([1, 2]));
    }
    forward(x: Tensor): Tensor {
      return this.fc.call(x);
    }
  }
  const m = new WithBuffer();
  assert.deepEqual(m.namedParameters().map(([n]) => n), ["fc.weight", "fc.bias"]);
  assert.deepEqual(m.namedBuffers().map(([n]) => n), ["runningMean"]);
  assert.deepEqual(Object.keys(m.stateDict()), ["runningMean", "fc.weight", "fc.bias"]);
  const other = new WithBuffer();
  other.loadStateDict({ ...m.stateDict(), runningMean: tensor([5, 6]) });
  assert.deepEqual(
    (other as unknown as { runningMean: Tensor }).runningMean.toArray(),
    [5, 6],
  );
  assert.throws(() => m.registerBuffer("w", Parameter.zeros([1])), /is a Parameter/);
});

Deno.test("train() and eval() set the mode recursively", () => {
  const net = new Net();
  assert.ok(net.modules().every((m) => m.training));
  assert.equal(net.eval(), net);
  assert.ok(net.modules().every((m) => !m.training));
  net.train();
  assert.ok(net.modules().every((m) => m.training));
  net.classifier.eval();
  assert.equal(net.training, true);
  assert.equal(net.classifier.at(1).training, false);
});

Deno.test("stateDict returns detached contiguous copies in PyTorch order", () => {
  const net = new Net();
  const sd = net.stateDict();
  assert.deepEqual(Object.keys(sd), net.namedParameters().map(([n]) => n));
  const w = net.features.at(0) as Conv2d;
  const saved = sd["features.0.weight"];
  assert.notEqual(saved, w.weight);
  assert.notEqual(saved.data, w.weight.data);
  assert.equal(saved.requiresGrad, false);
  assert.ok(saved.isContiguous());
  assert.deepEqual(bits(saved), bits(w.weight));
  const before = w.weight.data[0];
  saved.data[0] += 1; // editing the snapshot leaves the module alone
  assert.equal(w.weight.data[0], before);
  w.weight.data[1] += 1; // training the module leaves the snapshot alone
  assert.notEqual(saved.data[1], w.weight.data[1]);
});

Deno.test("loadStateDict round trip: values bitwise, same parameter objects", () => {
  const a = new Net(1);
  const b = new Net(2);
  const params = b.parameters();
  assert.notDeepEqual(bits(a.parameters()[0]), bits(params[0]));
  const result = b.loadStateDict(a.stateDict());
  assert.deepEqual(result, { missingKeys: [], unexpectedKeys: [] });
  b.parameters().forEach((p, i) => {
    assert.equal(p, params[i]);
    assert.deepEqual(bits(p), bits(a.parameters()[i]));
  });
});

Deno.test("loadStateDict accepts plain {shape, data} (as read from safetensors)", () => {
  const a = new Net(1);
  const b = new Net(2);
  const plain = Object.fromEntries(
    Object.entries(a.stateDict()).map(([k, t]) => [k, { shape: [...t.shape], data: t.data }]),
  );
  b.loadStateDict(plain);
  assert.deepEqual(bits(b.parameters()[4]), bits(a.parameters()[4]));
  const broken = { ...plain, "features.0.bias": { shape: [2], data: new Float32Array(3) } };
  assert.throws(() => b.loadStateDict(broken), /"features.0.bias" has shape \[2\] but 3 values/);
});

Deno.test("loadStateDict: missing keys are named", () => {
  const net = new Net();
  const sd = net.stateDict();
  delete sd["classifier.2.bias"];
  delete sd["features.0.weight"];
  const error = thrown(() => net.loadStateDict(sd));
  assert.ok(error instanceof StateDictError);
  assert.deepEqual(error.missing, ["features.0.weight", "classifier.2.bias"]);
  assert.deepEqual(error.unexpected, []);
  assert.deepEqual(error.mismatched, []);
  assert.match(error.message, /Error\(s\) in loading state dict for Net/);
  assert.match(error.message, /Missing key\(s\): "features.0.weight", "classifier.2.bias"/);
});

Deno.test("loadStateDict: unexpected keys are named", () => {
  const net = new Net();
  const sd = { ...net.stateDict(), "fc9.weight": zeros([2, 2]) };
  assert.throws(
    () => net.loadStateDict(sd),
    (e: unknown) =>
      e instanceof StateDictError && e.unexpected.join() === "fc9.weight" &&
      e.missing.length === 0 && /Unexpected key\(s\): "fc9.weight"/.test(e.message),
  );
});

Deno.test("loadStateDict: shape mismatches give both shapes; nothing is copied", () => {
  const net = new Net(3);
  const before = net.stateDict();
  const sd = net.stateDict();
  sd["classifier.2.weight"] = zeros([4, 8]);
  sd["features.0.bias"] = zeros([2]); // a valid entry: must not be applied either
  const error = thrown(() => net.loadStateDict(sd));
  assert.ok(error instanceof StateDictError);
  assert.deepEqual(error.mismatched, [
    { key: "classifier.2.weight", expected: [3, 8], actual: [4, 8] },
  ]);
  assert.match(
    error.message,
    /Shape mismatch for "classifier.2.weight": the module has \[3, 8\], the state dict has \[4, 8\]/,
  );
  for (const [name, t] of Object.entries(net.stateDict())) {
    assert.deepEqual(bits(t), bits(before[name]), name);
  }
});

Deno.test("loadStateDict: every problem at once, and strict: false", () => {
  const net = new Net(4);
  const source = new Net(5);
  const sd = source.stateDict();
  delete sd["features.2.bias"];
  sd["extra.weight"] = zeros([1]);
  // All three kinds in one error.
  const wrong = { ...sd, "features.0.bias": zeros([3]) };
  assert.throws(
    () => net.loadStateDict(wrong),
    (e: unknown) =>
      e instanceof StateDictError && e.missing.join() === "features.2.bias" &&
      e.unexpected.join() === "extra.weight" && e.mismatched[0].key === "features.0.bias",
  );
  // Non-strict: loads what matches, reports the rest.
  const keptBias = bits(net.features.at(2).parameters()[1]);
  const result = net.loadStateDict(sd, { strict: false });
  assert.deepEqual(result, { missingKeys: ["features.2.bias"], unexpectedKeys: ["extra.weight"] });
  assert.deepEqual(bits(net.parameters()[0]), bits(source.parameters()[0]));
  assert.deepEqual(bits(net.features.at(2).parameters()[1]), keptBias);
  // Non-strict still refuses shape mismatches, as PyTorch does, and lists only them.
  assert.throws(
    () => net.loadStateDict(wrong, { strict: false }),
    (e: unknown) =>
      e instanceof StateDictError && e.missing.length === 0 && e.unexpected.length === 0 &&
      e.mismatched.length === 1,
  );
});

Deno.test("zeroGrad zeroes in place (same storage) or drops the gradients", () => {
  const net = new Net();
  const x = tensor(new Float32Array(2 * 1 * 4 * 4).map((_, i) => Math.sin(i)), {
    shape: [2, 1, 4, 4],
  });
  net.eval();
  net.call(x).sum().backward();
  const p = net.parameters()[0];
  const grad = p.grad!;
  assert.ok(grad.toFloat32Array().some((v) => v !== 0));
  net.zeroGrad();
  assert.equal(p.grad, grad);
  assert.ok(grad.toFloat32Array().every((v) => v === 0));
  net.call(x).sum().backward();
  assert.equal(p.grad, grad); // accumulated into the same tensor
  net.zeroGrad({ setToNone: true });
  assert.ok(net.parameters().every((q) => q.grad === null));
});

Deno.test("call runs forward; toString summarises the tree", () => {
  const net = new Net();
  const x = zeros([1, 1, 4, 4]);
  net.eval();
  assert.deepEqual(net.call(x).shape, [1, 3]);
  assert.equal(
    net.toString(),
    [
      "Net(",
      "  (features): Sequential(",
      "    (0): Conv2d(1, 2, kernelSize=[3,3], stride=[1,1], padding=[0,0], bias=true)",
      "    (1): ReLU()",
      "    (2): Conv2d(2, 2, kernelSize=[3,3], stride=[1,1], padding=[1,1], bias=true)",
      "  )",
      "  (classifier): Sequential(",
      "    (0): Flatten(startDim=1, endDim=-1)",
      "    (1): Dropout(p=0.5)",
      "    (2): Linear(inFeatures=8, outFeatures=3, bias=true)",
      "  )",
      ")",
    ].join("\n"),
  );
});

Deno.test("Parameter: a contiguous leaf that requires grad", () => {
  const p = Parameter.from(tensor([[1, 2], [3, 4]]).transpose());
  assert.deepEqual(p.toArray(), [[1, 3], [2, 4]]);
  assert.ok(p.isContiguous() && p.isLeaf && p.requiresGrad);
  assert.throws(() => new Parameter(new Float32Array(3), [2, 2]), /3 values cannot have shape/);
});
