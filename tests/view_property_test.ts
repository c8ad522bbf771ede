/**
 * Property test of the view machinery: random chains of transpose / permute / slice / narrow /
 * expand / reshape / squeeze / unsqueeze / contiguous, applied both to a tensor and to a naive
 * model that tracks, for every output element, which input element it reads. Values must agree
 * element by element, and so must gradients: d(Σ W·view)/dx_i is the sum of W over the positions
 * that read x_i.
 */

import assert from "node:assert/strict";
import { Rng, type Tensor, tensor } from "../mod.ts";
import { build, count, type Ref, unravel } from "./helpers/reference.ts";

/** The naive model: the shape and, per element, the index of the input element it reads. */
type Model = Ref;

type Step = { name: string; tensor: (t: Tensor) => Tensor; model: (m: Model) => Model };

function pickStep(rng: Rng, shape: readonly number[]): Step | null {
  const nd = shape.length;
  const kind = rng.int(8);
  const dim = nd > 0 ? rng.int(nd) : 0;
  const at = (m: Model, idx: number[]) => m.data[idx.reduce((p, v, d) => p * m.shape[d] + v, 0)];
  switch (kind) {
    case 0: {
      if (nd < 2) return null;
      const d1 = rng.int(nd);
      return {
        name: `transpose(${dim}, ${d1})`,
        tensor: (t) => t.transpose(dim, d1),
        model: (m) => {
          const s = [...m.shape];
          [s[dim], s[d1]] = [s[d1], s[dim]];
          return build(s, (idx) => {
            const j = [...idx];
            [j[dim], j[d1]] = [j[d1], j[dim]];
            return at(m, j);
          });
        },
      };
    }
    case 1: {
      if (nd < 1) return null;
      const perm = Array.from(rng.permutation(nd));
      return {
        name: `permute(${perm})`,
        tensor: (t) => t.permute(...perm),
        model: (m) =>
          build(perm.map((p) => m.shape[p]), (idx) => {
            const j = new Array<number>(nd);
            perm.forEach((p, i) => (j[p] = idx[i]));
            return at(m, j);
          }),
      };
    }
    case 2: {
      if (nd < 1 || shape[dim] < 1) return null;
      const size = shape[dim];
      const start = rng.int(size);
      const end = start + 1 + rng.int(size - start);
      const step = 1 + rng.int(3);
      const length = Math.ceil((end - start) / step);
      return {
        name: `slice(${dim}, ${start}, ${end}, ${step})`,
        tensor: (t) => t.slice(dim, start, end, step),
        model: (m) => {
          const s = [...m.shape];
          s[dim] = length;
          return build(s, (idx) => at(m, idx.map((v, d) => (d === dim ? start + v * step : v))));
        },
      };
    }
    case 3: {
      if (nd < 1 || shape[dim] < 1) return null;
      const start = rng.int(shape[dim]);
      const length = rng.int(shape[dim] - start + 1);
      return {
        name: `narrow(${dim}, ${start}, ${length})`,
        tensor: (t) => t.narrow(dim, start, length),
        model: (m) => {
          const s = [...m.shape];
          s[dim] = length;
          return build(s, (idx) => at(m, idx.map((v, d) => (d === dim ? start + v : v))));
        },
      };
    }
    case 4: {
      // Expand size-1 dims (or add a leading dim) when the result stays small.
      const lead = rng.int(2);
      const target = [
        ...new Array(lead).fill(1 + rng.int(3)),
        ...shape.map((d) => (d === 1 ? 1 + rng.int(3) : d)),
      ];
      if (count(target) > 400 || nd + lead > 5) return null;
      return {
        name: `expand(${target})`,
        tensor: (t) => t.expand(...target),
        model: (m) =>
          build(target, (idx) => at(m, idx.slice(lead).map((v, d) => (m.shape[d] === 1 ? 0 : v)))),
      };
    }
    case 5: {
      // Reshape to a random factorisation of the size (copies when no view exists).
      const total = count(shape);
      const dims: number[] = [];
      let rest = total;
      while (rest > 1 && dims.length < 3) {
        const divisors = Array.from({ length: rest }, (_, i) => i + 1).filter((d) =>
          rest % d === 0
        );
        const d = divisors[rng.int(divisors.length)];
        dims.push(d);
        rest /= d;
      }
      dims.push(rest);
      if (rng.int(2) === 0 && total > 0) dims[rng.int(dims.length)] = -1;
      const resolved = dims.includes(-1)
        ? dims.map((d) => (d === -1 ? total / count(dims.filter((x) => x !== -1)) : d))
        : dims;
      return {
        name: `reshape(${dims})`,
        tensor: (t) => t.reshape(...dims),
        model: (m) => ({ shape: resolved, data: m.data.slice() }),
      };
    }
    case 6: {
      const insert = rng.int(nd + 1);
      if (rng.int(2) === 0 || !shape.includes(1)) {
        if (nd >= 5) return null;
        return {
          name: `unsqueeze(${insert})`,
          tensor: (t) => t.unsqueeze(insert),
          model: (m) => ({
            shape: [...m.shape.slice(0, insert), 1, ...m.shape.slice(insert)],
            data: m.data.slice(),
          }),
        };
      }
      const one = shape.indexOf(1);
      return {
        name: `squeeze(${one})`,
        tensor: (t) => t.squeeze(one),
        model: (m) => ({ shape: m.shape.filter((_, d) => d !== one), data: m.data.slice() }),
      };
    }
    default:
      return { name: "contiguous()", tensor: (t) => t.contiguous(), model: (m) => m };
  }
}

Deno.test("random view chains agree with the naive model, values and gradients (400 seeded cases)", () => {
  for (let seed = 0; seed < 400; seed++) {
    const rng = new Rng(seed);
    const shape = Array.from({ length: 1 + rng.int(4) }, () => 1 + rng.int(4));
    const n = count(shape);
    const values = Float32Array.from({ length: n }, () => rng.normal());
    const x = tensor(values, { shape, requiresGrad: true });
    let t: Tensor = x;
    let model: Model = { shape: [...shape], data: Float64Array.from({ length: n }, (_, i) => i) };
    const names: string[] = [];
    for (let s = 0, length = 1 + rng.int(6); s < length; s++) {
      const step = pickStep(rng, t.shape);
      if (step === null) continue;
      names.push(step.name);
      t = step.tensor(t);
      model = step.model(model);
    }
    const chain = `seed ${seed}: ${JSON.stringify(shape)} → ${names.join(" → ")}`;
    assert.deepEqual([...t.shape], model.shape, `${chain}: shape`);
    const got = t.toFloat32Array();
    for (let i = 0; i < got.length; i++) {
      if (got[i] !== values[model.data[i]]) {
        assert.fail(`${chain}: element [${unravel(i, model.shape)}]`);
      }
    }
    // Gradients: L = Σ W·view.
    const weights = Float32Array.from(
      { length: got.length },
      () => Math.round(rng.normal() * 8) / 8,
    );
    t.mul(tensor(weights, { shape: t.shape })).sum().backward();
    const expected = new Float64Array(n);
    for (let i = 0; i < got.length; i++) expected[model.data[i]] += weights[i];
    const grad = x.grad?.toFloat32Array() ?? new Float32Array(n);
    for (let i = 0; i < n; i++) {
      if (Math.abs(grad[i] - expected[i]) > 1e-5) {
        assert.fail(`${chain}: gradient of x[${i}] is ${grad[i]}, expected ${expected[i]}`);
      }
    }
  }
});
