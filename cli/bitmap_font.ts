/**
 * A small proportional bitmap font for drawing text into raster images without font files.
 *
 * Glyphs sit in a cell 7 rows above the baseline (capitals and digits fill all 7, lowercase has a
 * 5-row x-height) and 2 rows below it for descenders; most are 5 columns wide, narrow ones
 * (`i l . : ( )`) fewer, so text reads like a proportional face rather than a terminal. Characters
 * outside the table draw as `?`.
 *
 * @module
 */

/** Rows of a glyph above the baseline: the height of a capital letter in font pixels. */
export const CAP_HEIGHT = 7;

/** Rows of a glyph below the baseline (descenders of g j p q y, the underscore). */
export const DESCENT = 2;

/** Columns of empty space after every glyph. */
export const LETTER_SPACING = 1;

/** One glyph: its width and the on-pixels as `[column, row]`, row 0 at the top of the cell. */
export interface Glyph {
  /** Width in font pixels, without the letter spacing. */
  width: number;
  /** Lit pixels, `[x, y]` with `y` from 0 (cap line) to `CAP_HEIGHT + DESCENT - 1`. */
  pixels: readonly (readonly [number, number])[];
}

// Rows top to bottom, separated by "|"; "#" lit. A glyph with more than 7 rows reaches below the
// baseline. Drawn by hand for this file.
const SOURCE: Readonly<Record<string, string>> = {
  " ": "...",
  "0": ".###.|#...#|#...#|#...#|#...#|#...#|.###.",
  "1": "..#..|.##..|..#..|..#..|..#..|..#..|.###.",
  "2": ".###.|#...#|....#|...#.|..#..|.#...|#####",
  "3": ".###.|#...#|....#|..##.|....#|#...#|.###.",
  "4": "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",
  "5": "#####|#....|####.|....#|....#|#...#|.###.",
  "6": "..##.|.#...|#....|####.|#...#|#...#|.###.",
  "7": "#####|....#|...#.|..#..|.#...|.#...|.#...",
  "8": ".###.|#...#|#...#|.###.|#...#|#...#|.###.",
  "9": ".###.|#...#|#...#|.####|....#|...#.|.##..",
  A: ".###.|#...#|#...#|#####|#...#|#...#|#...#",
  B: "####.|#...#|#...#|####.|#...#|#...#|####.",
  C: ".###.|#...#|#....|#....|#....|#...#|.###.",
  D: "####.|#...#|#...#|#...#|#...#|#...#|####.",
  E: "#####|#....|#....|####.|#....|#....|#####",
  F: "#####|#....|#....|####.|#....|#....|#....",
  G: ".###.|#...#|#....|#.###|#...#|#...#|.####",
  H: "#...#|#...#|#...#|#####|#...#|#...#|#...#",
  I: "###|.#.|.#.|.#.|.#.|.#.|###",
  J: "..###|...#.|...#.|...#.|...#.|#..#.|.##..",
  K: "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#",
  L: "#....|#....|#....|#....|#....|#....|#####",
  M: "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#",
  N: "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#",
  O: ".###.|#...#|#...#|#...#|#...#|#...#|.###.",
  P: "####.|#...#|#...#|####.|#....|#....|#....",
  Q: ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#",
  R: "####.|#...#|#...#|####.|#.#..|#..#.|#...#",
  S: ".####|#....|#....|.###.|....#|....#|####.",
  T: "#####|..#..|..#..|..#..|..#..|..#..|..#..",
  U: "#...#|#...#|#...#|#...#|#...#|#...#|.###.",
  V: "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",
  W: "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.",
  X: "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#",
  Y: "#...#|#...#|.#.#.|..#..|..#..|..#..|..#..",
  Z: "#####|....#|...#.|..#..|.#...|#....|#####",
  a: ".....|.....|.###.|....#|.####|#...#|.####",
  b: "#....|#....|#.##.|##..#|#...#|#...#|####.",
  c: ".....|.....|.###.|#....|#....|#...#|.###.",
  d: "....#|....#|.##.#|#..##|#...#|#...#|.####",
  e: ".....|.....|.###.|#...#|#####|#....|.###.",
  f: "..##|.#..|.#..|###.|.#..|.#..|.#..",
  g: ".....|.....|.####|#...#|#...#|#...#|.####|....#|.###.",
  h: "#....|#....|#.##.|##..#|#...#|#...#|#...#",
  i: ".#.|...|##.|.#.|.#.|.#.|###",
  j: "...#|....|..##|...#|...#|...#|...#|#..#|.##.",
  k: "#...|#...|#..#|#.#.|##..|#.#.|#..#",
  l: "##.|.#.|.#.|.#.|.#.|.#.|###",
  m: ".....|.....|##.#.|#.#.#|#.#.#|#.#.#|#.#.#",
  n: ".....|.....|#.##.|##..#|#...#|#...#|#...#",
  o: ".....|.....|.###.|#...#|#...#|#...#|.###.",
  p: ".....|.....|####.|#...#|#...#|#...#|####.|#....|#....",
  q: ".....|.....|.####|#...#|#...#|#...#|.####|....#|....#",
  r: ".....|.....|#.##.|##..#|#....|#....|#....",
  s: ".....|.....|.####|#....|.###.|....#|####.",
  t: ".#...|.#...|####.|.#...|.#...|.#..#|..##.",
  u: ".....|.....|#...#|#...#|#...#|#..##|.##.#",
  v: ".....|.....|#...#|#...#|#...#|.#.#.|..#..",
  w: ".....|.....|#...#|#...#|#.#.#|#.#.#|.#.#.",
  x: ".....|.....|#...#|.#.#.|..#..|.#.#.|#...#",
  y: ".....|.....|#...#|#...#|#...#|#...#|.####|....#|.###.",
  z: ".....|.....|#####|...#.|..#..|.#...|#####",
  ".": ".|.|.|.|.|.|#",
  ",": "..|..|..|..|..|.#|.#|#.",
  ":": ".|.|#|.|.|.|#",
  ";": "..|..|.#|..|..|.#|.#|#.",
  "·": ".|.|.|#|.|.|.",
  "%": "##...|##..#|...#.|..#..|.#...|#..##|...##",
  "-": "....|....|....|####|....|....|....",
  "+": ".....|..#..|..#..|#####|..#..|..#..|.....",
  "=": ".....|.....|#####|.....|#####|.....|.....",
  "×": ".....|.....|#...#|.#.#.|..#..|.#.#.|#...#",
  "(": "..#|.#.|#..|#..|#..|.#.|..#",
  ")": "#..|.#.|..#|..#|..#|.#.|#..",
  "[": "###|#..|#..|#..|#..|#..|###",
  "]": "###|..#|..#|..#|..#|..#|###",
  "/": "....#|....#|...#.|..#..|.#...|#....|#....",
  "\\": "#....|#....|.#...|..#..|...#.|....#|....#",
  "|": "#|#|#|#|#|#|#|#|#",
  _: ".....|.....|.....|.....|.....|.....|.....|.....|#####",
  "<": "...#|..#.|.#..|#...|.#..|..#.|...#",
  ">": "#...|.#..|..#.|...#|..#.|.#..|#...",
  "&": ".##..|#..#.|#.#..|.#...|#.#.#|#..#.|.##.#",
  "@": ".###.|#...#|#.###|#.#.#|#.###|#....|.###.",
  "#": ".#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#.",
  "*": ".....|#.#.#|.###.|#####|.###.|#.#.#|.....",
  "'": "#|#|.|.|.|.|.",
  '"': "#.#|#.#|...|...|...|...|...",
  "!": "#|#|#|#|#|.|#",
  "?": ".###.|#...#|....#|...#.|..#..|.....|..#..",
  "~": ".....|.....|.#...|#.#.#|...#.|.....|.....",
};

function parse(source: string, char: string): Glyph {
  const rows = source.split("|");
  const width = rows[0].length;
  const pixels: [number, number][] = [];
  rows.forEach((row, y) => {
    if (row.length !== width) {
      throw new Error(`bitmap_font.ts: glyph ${JSON.stringify(char)} has ragged rows`);
    }
    for (let x = 0; x < width; x++) if (row[x] === "#") pixels.push([x, y]);
  });
  return { width, pixels };
}

const GLYPHS: ReadonlyMap<string, Glyph> = new Map(
  Object.entries(SOURCE).map(([char, source]) => [char, parse(source, char)]),
);
const FALLBACK = GLYPHS.get("?")!;

/** The glyph for one character (a code point); `?` for characters the font lacks. */
export function glyphFor(char: string): Glyph {
  return GLYPHS.get(char) ?? FALLBACK;
}

/** Whether the font has a glyph of its own for `char` (otherwise it draws as `?`). */
export function hasGlyph(char: string): boolean {
  return GLYPHS.has(char);
}

/** Width of `text` in font pixels, letter spacing between glyphs included but not after the last. */
export function textWidth(text: string): number {
  let width = 0;
  let count = 0;
  for (const char of text) {
    width += glyphFor(char).width;
    count++;
  }
  return count === 0 ? 0 : width + (count - 1) * LETTER_SPACING;
}

/**
 * Calls `plot(x, y)` for every lit font pixel of `text`, `x` from 0 at the left edge of the first
 * glyph and `y` from 0 at the cap line (the baseline is at `y = CAP_HEIGHT`).
 */
export function forEachTextPixel(text: string, plot: (x: number, y: number) => void): void {
  let pen = 0;
  for (const char of text) {
    const glyph = glyphFor(char);
    for (const [x, y] of glyph.pixels) plot(pen + x, y);
    pen += glyph.width + LETTER_SPACING;
  }
}
