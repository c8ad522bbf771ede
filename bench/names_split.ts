/**
 * Prints the first-names corpus of data/names.ts as JSON, for peers in other languages
 * (bench/names_torch.py reads it): `{ seed, validationFraction, vocab, counts, train, validation }`,
 * with `vocab` the characters by token (token 0 is the boundary ".") and both splits in order.
 *
 * With `--steps N` it adds `batches`: the training-name indices of each of N steps of
 * `--batch-size B` (default 64) names, in the order tapegrad's `DataLoader` visits examples with
 * `seed: --batch-seed S` (default 1) and `dropLast: true`: epoch e (0-based) is
 * `new Rng(((S * 1_000_003 + e) * 1_000_033) % Number.MAX_SAFE_INTEGER).permutation(train.length)`
 * cut into consecutive batches of B, the last incomplete batch dropped; epochs follow each other
 * until N batches are out. The formula is data/loader.ts's `streamSeed(S, e, -1)`.
 *
 * ```sh
 * deno run --allow-read --allow-env bench/names_split.ts --steps 1000 --batch-seed 1 > split.json
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Rng } from "../autograd/rng.ts";
import { loadNames } from "../data/names.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    steps: { type: "string" },
    "batch-size": { type: "string", default: "64" },
    "batch-seed": { type: "string", default: "1" },
  },
});

/** The batches of `steps` steps over `n` examples, in tapegrad's DataLoader order (dropLast). */
function batchOrder(n: number, steps: number, batchSize: number, seed: number): number[][] {
  const perEpoch = Math.floor(n / batchSize);
  const batches: number[][] = [];
  for (let epoch = 0; batches.length < steps; epoch++) {
    const order = new Rng(((seed * 1_000_003 + epoch) * 1_000_033) % Number.MAX_SAFE_INTEGER)
      .permutation(n);
    for (let b = 0; b < perEpoch && batches.length < steps; b++) {
      batches.push(Array.from(order.subarray(b * batchSize, (b + 1) * batchSize)));
    }
  }
  return batches;
}

const corpus = await loadNames();
const out: Record<string, unknown> = {
  seed: corpus.seed,
  validationFraction: corpus.validationFraction,
  vocab: corpus.vocab.chars,
  counts: corpus.counts,
  train: corpus.train,
  validation: corpus.validation,
};
if (values.steps !== undefined) {
  const batchSize = Number(values["batch-size"]);
  const seed = Number(values["batch-seed"]);
  out.batchSize = batchSize;
  out.batchSeed = seed;
  out.batches = batchOrder(corpus.train.length, Number(values.steps), batchSize, seed);
}
console.log(JSON.stringify(out));
