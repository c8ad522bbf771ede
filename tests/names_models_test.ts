/**
 * The names models: PyTorch's state-dict keys and shapes literally, forward shapes, a few AdamW
 * steps lowering the loss, and causality of the transformer.
 */

import assert from "node:assert/strict";
import { crossEntropy, noGrad, Rng, Tensor } from "../autograd/mod.ts";
import { NamesGPT, NamesMLP, namesParameterShapes } from "../nn/models/names.ts";
import { AdamW } from "../nn/optim/mod.ts";

function tokens(rows: number, cols: number, seed: number, vocab = 28): Tensor<"int32"> {
  const rng = new Rng(seed);
  return new Tensor(Int32Array.from({ length: rows * cols }, () => rng.int(vocab)), [rows, cols]);
}

function shapes(model: { stateDict(): Record<string, { shape: readonly number[] }> }) {
  return Object.entries(model.stateDict()).map(([k, t]) => [k, [...t.shape]]);
}

Deno.test("NamesMLP has the PyTorch state dict (emb, hidden, out) and 20,188 parameters", () => {
  const model = new NamesMLP({ seed: 1 });
  assert.deepEqual(shapes(model), [
    ["emb.weight", [28, 16]],
    ["hidden.weight", [256, 48]],
    ["hidden.bias", [256]],
    ["out.weight", [28, 256]],
    ["out.bias", [28]],
  ]);
  assert.equal(model.numParameters(), 20_188);
  assert.deepEqual(model.call(tokens(5, 3, 2)).shape, [5, 28]);
});

Deno.test("NamesGPT has the PyTorch state dict (tok, pos, blocks.i.*, ln_f, head) and 204,700 parameters", () => {
  const model = new NamesGPT({ seed: 1 });
  const block = (i: number) => [
    [`blocks.${i}.ln1.weight`, [64]],
    [`blocks.${i}.ln1.bias`, [64]],
    [`blocks.${i}.attn.in_proj_weight`, [192, 64]],
    [`blocks.${i}.attn.in_proj_bias`, [192]],
    [`blocks.${i}.attn.out_proj.weight`, [64, 64]],
    [`blocks.${i}.attn.out_proj.bias`, [64]],
    [`blocks.${i}.ln2.weight`, [64]],
    [`blocks.${i}.ln2.bias`, [64]],
    [`blocks.${i}.fc1.weight`, [256, 64]],
    [`blocks.${i}.fc1.bias`, [256]],
    [`blocks.${i}.fc2.weight`, [64, 256]],
    [`blocks.${i}.fc2.bias`, [64]],
  ];
  const expected = [
    ["tok.weight", [28, 64]],
    ["pos.weight", [16, 64]],
    ...block(0),
    ...block(1),
    ...block(2),
    ...block(3),
    ["ln_f.weight", [64]],
    ["ln_f.bias", [64]],
    ["head.weight", [28, 64]],
    ["head.bias", [28]],
  ];
  assert.deepEqual(
    shapes(model).sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    expected.sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
  );
  assert.equal(model.numParameters(), 204_700);
  assert.deepEqual(model.call(tokens(3, 16, 2)).shape, [3, 16, 28]);
  assert.deepEqual(model.call(tokens(2, 5, 3)).shape, [2, 5, 28]);
  assert.throws(() => model.call(tokens(2, 17, 3)), /NamesGPT: expected int32 tokens \[N, T\]/);
});

Deno.test("NamesGPT is causal: changing a later token leaves earlier logits unchanged", () => {
  const model = new NamesGPT({ seed: 3, layers: 2 });
  model.eval();
  const a = tokens(2, 16, 4);
  const changed = Int32Array.from(a.data);
  changed[10] = (changed[10] + 1) % 28; // row 0, position 10
  changed[16 + 15] = (changed[16 + 15] + 5) % 28; // row 1, last position
  const [la, lb] = noGrad(() => [
    model.call(a).toFloat32Array(),
    model.call(new Tensor(changed, [2, 16])).toFloat32Array(),
  ]);
  const V = 28;
  for (let row = 0; row < 2; row++) {
    const first = row === 0 ? 10 : 15;
    for (let t = 0; t < 16; t++) {
      const base = (row * 16 + t) * V;
      const same = la.subarray(base, base + V).every((v, i) => v === lb[base + i]);
      assert.equal(same, t < first, `row ${row} position ${t}`);
    }
  }
});

Deno.test("a few AdamW steps lower the loss of both models", () => {
  for (
    const make of [() => new NamesMLP({ seed: 5 }), () => new NamesGPT({ seed: 5, layers: 1 })]
  ) {
    const model = make();
    const isGPT = model instanceof NamesGPT;
    const x = tokens(32, isGPT ? 8 : 3, 6);
    const y = Int32Array.from(tokens(32 * (isGPT ? 8 : 1), 1, 7).data);
    if (isGPT) y.fill(-1, 0, 40); // padding targets are ignored
    const optimizer = new AdamW(model.parameters(), { lr: 3e-3 });
    const lossOf = () => {
      const logits = model.call(x);
      return crossEntropy(logits.reshape(-1, 28), y, { ignoreIndex: -1 });
    };
    const first = noGrad(() => lossOf().item());
    for (let i = 0; i < 20; i++) {
      optimizer.zeroGrad();
      lossOf().backward();
      optimizer.step();
    }
    const last = noGrad(() => lossOf().item());
    assert.ok(last < first - 0.1, `${model.constructor.name}: ${first} → ${last}`);
  }
});

Deno.test("namesParameterShapes gives the models' state-dict shapes without building them", () => {
  for (
    const [name, model] of [
      ["names-gpt", new NamesGPT({ layers: 2, width: 32, heads: 2 })],
      ["names-mlp", new NamesMLP({ hidden: 64 })],
    ] as const
  ) {
    assert.deepEqual(
      Object.fromEntries(shapes(model)),
      namesParameterShapes(name, model.spec.options),
    );
  }
  assert.throws(
    () => namesParameterShapes("names-gpt", { width: 1e9 }),
    /names-gpt: option "width" must be an integer in 1\.\.65536, got 1000000000/,
  );
  assert.throws(() => namesParameterShapes("names-mlp", { depth: 2 }), /no option "depth"/);
});
