import assert from "node:assert/strict";
import { crossEntropy, randn, Rng, type Tensor } from "../autograd/mod.ts";
import {
  Adam,
  AlexNet,
  CheckpointError,
  CosineAnnealingLR,
  Linear,
  LinearWarmup,
  loadCheckpoint,
  loadModel,
  loadSafetensors,
  MLP,
  type Module,
  saveCheckpoint,
  saveModel,
  SGD,
  StateDictError,
} from "../nn/mod.ts";
import { withTempDir } from "./helpers/temp.ts";

const smallOptions = { inFeatures: 16, hidden: [8, 6] as [number, number], numClasses: 3 };

function smallMlp(seed: number): MLP {
  return new MLP({ ...smallOptions, seed });
}

function bits(t: Tensor): number[] {
  return [...new Uint32Array(t.toFloat32Array().buffer)];
}

function assertSameWeights(a: Module<unknown[], unknown>, b: Module<unknown[], unknown>): void {
  const pa = a.namedParameters();
  const pb = b.namedParameters();
  assert.deepEqual(pa.map(([n]) => n), pb.map(([n]) => n));
  pa.forEach(([name, p], i) => assert.deepEqual(bits(p), bits(pb[i][1]), name));
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

const X = randn([12, 16], new Rng(5));
const Y = new Int32Array(12).map((_, i) => i % 3);

function trainSteps(
  model: MLP,
  optimizer: Adam | SGD,
  scheduler: LinearWarmup,
  n: number,
): number[] {
  const losses: number[] = [];
  for (let i = 0; i < n; i++) {
    optimizer.zeroGrad();
    const loss = crossEntropy(model.call(X), Y);
    loss.backward();
    optimizer.step();
    scheduler.step();
    losses.push(loss.item());
  }
  return losses;
}

Deno.test("saveModel / loadModel: bitwise round trip, PyTorch keys, metadata, no temp file left", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/mlp.safetensors`;
    const model = smallMlp(1);
    await saveModel(path, model, {
      epoch: 3,
      metrics: { testAccuracy: 0.975, loss: 0.08 },
      metadata: { dataset: "mnist" },
    });
    assert.deepEqual(await listDir(dir), ["mlp.safetensors"]);

    // The raw file: plain PyTorch keys and shapes, string metadata.
    const raw = await loadSafetensors(path);
    assert.deepEqual(
      Object.entries(raw.tensors).map(([k, t]) => [k, t.shape]).sort(),
      [
        ["fc1.bias", [8]],
        ["fc1.weight", [8, 16]],
        ["fc2.bias", [6]],
        ["fc2.weight", [6, 8]],
        ["fc3.bias", [3]],
        ["fc3.weight", [3, 6]],
      ],
    );
    assert.deepEqual(raw.metadata, {
      dataset: "mnist",
      epoch: "3",
      format: "pt",
      metrics: '{"testAccuracy":0.975,"loss":0.08}',
      model: "mlp",
      model_options: '{"inFeatures":16,"hidden":[8,6],"numClasses":3,"seed":1}',
      tapegrad: "checkpoint-v1",
    });

    // Into an existing model.
    const target = smallMlp(2);
    const { checkpoint } = await loadModel(path, target);
    assertSameWeights(target, model);
    assert.equal(checkpoint.epoch, 3);
    assert.deepEqual(checkpoint.metrics, { testAccuracy: 0.975, loss: 0.08 });
    assert.deepEqual(checkpoint.spec, {
      name: "mlp",
      options: { inFeatures: 16, hidden: [8, 6], numClasses: 3, seed: 1 },
    });
    assert.equal(checkpoint.metadata.dataset, "mnist");

    // Rebuilt from the recorded model name and options.
    const rebuilt = await loadModel(path);
    assert.ok(rebuilt.model instanceof MLP);
    assertSameWeights(rebuilt.model, model);
    assert.deepEqual(bits(rebuilt.model.call(X)), bits(model.call(X)));

    // Overwriting keeps a single file.
    await saveModel(path, target);
    assert.deepEqual(await listDir(dir), ["mlp.safetensors"]);
  });
});

Deno.test("full checkpoint: a resumed run continues bitwise (Adam + warm-up + cosine)", async () => {
  await withTempDir(async (dir) => {
    const setup = (seed: number) => {
      const model = smallMlp(seed);
      const optimizer = new Adam(
        [
          { params: [model.fc1.weight, model.fc2.weight, model.fc3.weight], weightDecay: 1e-3 },
          { params: [model.fc1.bias!, model.fc2.bias!, model.fc3.bias!] },
        ],
        { lr: 0.01 },
      );
      const scheduler = new LinearWarmup(
        optimizer,
        2,
        0.1,
        new CosineAnnealingLR(optimizer, 5, 1e-4),
      );
      return { model, optimizer, scheduler };
    };
    const straight = setup(1);
    const straightLosses = trainSteps(straight.model, straight.optimizer, straight.scheduler, 8);

    const first = setup(1);
    const head = trainSteps(first.model, first.optimizer, first.scheduler, 3);
    const path = `${dir}/ckpt.safetensors`;
    await saveCheckpoint(path, { ...first, epoch: 3, metrics: { loss: head[2] } });
    assert.deepEqual(await listDir(dir), ["ckpt.safetensors"]);

    const raw = await loadSafetensors(path);
    const keys = Object.keys(raw.tensors).sort();
    assert.ok(keys.includes("fc1.weight"));
    assert.ok(keys.includes("optimizer.state.fc1.weight.exp_avg"));
    assert.ok(keys.includes("optimizer.state.fc3.bias.exp_avg_sq"));
    assert.deepEqual(raw.tensors["optimizer.state.fc2.weight.exp_avg"].shape, [6, 8]);
    assert.equal(keys.length, 6 * 3);
    const optimizerMeta = JSON.parse(raw.metadata.optimizer);
    assert.equal(optimizerMeta.type, "Adam");
    assert.deepEqual(optimizerMeta.paramGroups[1].params, ["fc1.bias", "fc2.bias", "fc3.bias"]);
    assert.equal(optimizerMeta.paramGroups[0].hyper.weightDecay, 1e-3);
    assert.deepEqual(optimizerMeta.state[0], {
      param: "fc1.weight",
      step: 3,
      buffers: ["exp_avg", "exp_avg_sq"],
    });
    assert.equal(JSON.parse(raw.metadata.scheduler).lastStep, 3);

    const resumed = setup(7);
    const checkpoint = await loadCheckpoint(path, resumed);
    assert.equal(checkpoint.epoch, 3);
    assert.deepEqual(
      resumed.optimizer.paramGroups.map((g) => g.lr),
      first.optimizer.paramGroups.map((g) => g.lr),
    );
    const tail = trainSteps(resumed.model, resumed.optimizer, resumed.scheduler, 5);
    assert.deepEqual([...head, ...tail], straightLosses);
    assertSameWeights(resumed.model, straight.model);

    // The model part alone loads like a plain weights file.
    const weightsOnly = smallMlp(9);
    await loadModel(path, weightsOnly);
    assertSameWeights(weightsOnly, first.model);
  });
});

Deno.test("another architecture: missing, unexpected and mismatched keys by name", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/mlp.safetensors`;
    await saveModel(path, smallMlp(1));

    const wider = new MLP({ ...smallOptions, hidden: [8, 7] });
    await assert.rejects(
      () => loadModel(path, wider),
      (e: unknown) => {
        assert.ok(e instanceof StateDictError);
        assert.deepEqual(e.missing, []);
        assert.deepEqual(e.unexpected, []);
        assert.deepEqual(e.mismatched, [
          { key: "fc2.weight", expected: [7, 8], actual: [6, 8] },
          { key: "fc2.bias", expected: [7], actual: [6] },
          { key: "fc3.weight", expected: [3, 7], actual: [3, 6] },
        ]);
        return true;
      },
    );

    await assert.rejects(
      () => loadCheckpoint(path, { model: new AlexNet({ seed: 0 }) }),
      (e: unknown) => {
        assert.ok(e instanceof StateDictError);
        assert.deepEqual(e.missing, [
          "conv1.weight",
          "conv1.bias",
          "conv2.weight",
          "conv2.bias",
          "conv3.weight",
          "conv3.bias",
        ]);
        assert.deepEqual(e.unexpected, ["fc3.bias", "fc3.weight"]);
        assert.deepEqual(e.mismatched.map((m) => m.key), [
          "fc1.weight",
          "fc1.bias",
          "fc2.weight",
          "fc2.bias",
        ]);
        assert.match(e.message, /Missing key\(s\): "conv1.weight"/);
        assert.match(e.message, /Unexpected key\(s\): "fc3.bias", "fc3.weight"/);
        assert.match(
          e.message,
          /Shape mismatch for "fc1.weight": the module has \[1024, 2048\], the state dict has \[8, 16\]/,
        );
        return true;
      },
    );
    // Non-strict loading tolerates missing/unexpected keys but not shape mismatches.
    const partial = new MLP({ inFeatures: 16, hidden: [8, 6], numClasses: 4 });
    await assert.rejects(() => loadModel(path, partial, { strict: false }), StateDictError);
  });
});

Deno.test("checkpoint refusals name the problem", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/x.safetensors`;
    const model = smallMlp(1);
    await assert.rejects(
      () => saveModel(path, model, { metadata: { epoch: "2" } }),
      /metadata key "epoch" is reserved/,
    );
    const stranger = new Linear(2, 2);
    await assert.rejects(
      () => saveCheckpoint(path, { model, optimizer: new SGD(stranger.parameters()) }),
      /optimizer parameter 0 \[2, 2\] is not a parameter of the model/,
    );
    assert.deepEqual(await listDir(dir), []); // nothing written, no temp file

    await saveModel(path, model);
    await assert.rejects(
      () => loadCheckpoint(path, { model, optimizer: new SGD(model.parameters()) }),
      CheckpointError,
    );
    await assert.rejects(
      () => loadCheckpoint(path, { optimizer: new SGD(model.parameters()) }),
      /restoring an optimizer needs the model too/,
    );
    await assert.rejects(
      () => loadModel(path, undefined).then(() => loadModel(`${dir}/missing.safetensors`)),
      Deno.errors.NotFound,
    );
    const anonymous = `${dir}/anon.safetensors`;
    await saveModel(anonymous, new Linear(2, 2));
    await assert.rejects(() => loadModel(anonymous), /does not record its model/);
  });
});
