import assert from "node:assert/strict";
import { decodeImage } from "../data/image.ts";
import {
  CAP_HEIGHT,
  DESCENT,
  forEachTextPixel,
  glyphFor,
  hasGlyph,
  textWidth,
} from "../cli/bitmap_font.ts";
import {
  type EpochMetrics,
  PLOT_COLORS,
  PLOT_HEIGHT,
  PLOT_WIDTH,
  plotPng,
  plotRgba,
  plotSvg,
  type RgbaImage,
  writePlotFiles,
} from "../cli/plot.ts";

/** A run that learns: loss and errors fall over `n` epochs. */
function run(n: number): EpochMetrics[] {
  return Array.from({ length: n }, (_, i) => ({
    epoch: i + 1,
    trainLoss: 2.3 * Math.exp(-i / 4) + 0.005,
    trainError: 0.5 * Math.exp(-i / 5) + 0.0002,
    testError: 0.4 * Math.exp(-i / 5) + 0.015 + 0.002 * Math.sin(i),
    lr: 0.01,
    seconds: 12,
  }));
}

/**
 * Checks that the document is well-formed XML as far as this plotter writes it: balanced tags
 * and no raw `<` or stray `&` in text or attribute values. Returns the element names in order.
 */
function checkXml(svg: string): string[] {
  const names: string[] = [];
  const stack: string[] = [];
  const body = svg.replace(/^<\?xml[^?]*\?>\s*/, "");
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < body.length) {
    const lt = body.indexOf("<", i);
    const text = body.slice(i, lt < 0 ? body.length : lt);
    assert.doesNotMatch(text, /&(?!(amp|lt|gt|quot|apos);)/, `stray & in text ${text}`);
    assert.doesNotMatch(text, />/, `raw > in text ${text}`);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(body);
    assert.ok(m, `malformed tag at ${body.slice(lt, lt + 60)}`);
    const [whole, close, name, attrs, selfClose] = m;
    assert.doesNotMatch(attrs, /&(?!(amp|lt|gt|quot|apos);)/, `stray & in ${whole}`);
    if (close) {
      assert.equal(stack.pop(), name, `unbalanced </${name}>`);
    } else {
      names.push(name);
      if (!selfClose) stack.push(name);
    }
    i = lt + whole.length;
  }
  assert.deepEqual(stack, [], "unclosed tags");
  return names;
}

/** The `d` attribute of each data series path, by series name. */
function seriesPaths(svg: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const m of svg.matchAll(/<path data-series="([\w-]+)" d="([^"]*)"/g)) {
    assert.ok(!paths.has(m[1]), `two paths for ${m[1]}`);
    paths.set(m[1], m[2]);
  }
  return paths;
}

function pointCount(d: string): number {
  return (d.match(/[ML]/g) ?? []).length;
}

function hex(color: string): [number, number, number] {
  const n = parseInt(color.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** Pixels of exactly `color` inside the box [x0, x1) × [y0, y1). */
function countColor(
  image: RgbaImage,
  color: string,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
): number {
  const [r, g, b] = hex(color);
  let count = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = (y * image.width + x) * 4;
      if (image.data[i] === r && image.data[i + 1] === g && image.data[i + 2] === b) count++;
    }
  }
  return count;
}

/** Pixels darker than `level` (all channels) inside a box. */
function countDark(
  image: RgbaImage,
  level: number,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
): number {
  let count = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = (y * image.width + x) * 4;
      if (image.data[i] < level && image.data[i + 1] < level && image.data[i + 2] < level) count++;
    }
  }
  return count;
}

async function decodeRgba(png: Uint8Array): Promise<RgbaImage> {
  const mod = await import("imagescript/wasm/node/png.js");
  const codec = await (mod.default as unknown as {
    init(): Promise<
      { decode(d: Uint8Array): { width: number; height: number; framebuffer: Uint8Array } }
    >;
  }).init();
  const { width, height, framebuffer } = codec.decode(png);
  return { width, height, data: framebuffer };
}

// Data regions of the two panels, inside the frames and clear of legends and tick labels.
const LEFT = [100, 90, 470, 365] as const;
const RIGHT = [610, 90, 970, 365] as const;

Deno.test("bitmap font: glyphs fit the cell, widths add up, unknown characters fall back", () => {
  for (const char of "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.%-():/_ ") {
    assert.ok(hasGlyph(char), `no glyph for ${JSON.stringify(char)}`);
    const glyph = glyphFor(char);
    for (const [x, y] of glyph.pixels) {
      assert.ok(x >= 0 && x < glyph.width && y >= 0 && y < CAP_HEIGHT + DESCENT, char);
    }
  }
  assert.equal(textWidth(""), 0);
  assert.equal(textWidth("0"), 5);
  assert.equal(textWidth("00"), 11);
  assert.equal(hasGlyph("€"), false);
  assert.deepEqual(glyphFor("€"), glyphFor("?"));
  let lit = 0;
  forEachTextPixel("1.5%", (x, y) => {
    assert.ok(x >= 0 && x < textWidth("1.5%") && y >= 0 && y < CAP_HEIGHT);
    lit++;
  });
  assert.ok(lit > 20);
});

Deno.test("svg: well-formed, sized, sans-serif, one path per series with every finite point", () => {
  const metrics = run(50);
  metrics[20] = { ...metrics[20], testError: NaN };
  metrics[33] = { ...metrics[33], trainLoss: Infinity };
  metrics[40] = { ...metrics[40], trainError: -Infinity, testError: NaN };
  const svg = plotSvg(metrics, { title: "mlp on mnist" });
  const names = checkXml(svg);
  assert.equal(names[0], "svg");
  assert.match(svg, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*viewBox="0 0 1000 450"/);
  assert.match(svg, /font-family="sans-serif"/);
  assert.doesNotMatch(svg, /NaN|Infinity/);
  const paths = seriesPaths(svg);
  assert.deepEqual([...paths.keys()].sort(), ["test-error", "train-error", "train-loss"]);
  assert.equal(pointCount(paths.get("train-loss")!), 49);
  assert.equal(pointCount(paths.get("train-error")!), 49);
  assert.equal(pointCount(paths.get("test-error")!), 48);
  // A NaN breaks the curve: a second subpath starts after it.
  assert.equal((paths.get("train-loss")!.match(/M/g) ?? []).length, 2);
  assert.equal((paths.get("test-error")!.match(/M/g) ?? []).length, 3);
  for (const d of paths.values()) {
    for (const [, x, y] of d.matchAll(/[ML](-?[\d.]+) (-?[\d.]+)/g)) {
      assert.ok(+x > 0 && +x < PLOT_WIDTH && +y > 0 && +y < PLOT_HEIGHT, `${x},${y} off canvas`);
    }
  }
  // Errors span decades here, so the error axis is logarithmic and says so; best is named.
  assert.match(svg, />error % \(log scale\)</);
  assert.match(svg, />best \d+\.\d+% \(epoch \d+\)</);
  assert.match(svg, />mlp on mnist</);
});

Deno.test("svg: the title is escaped and control characters dropped", () => {
  const svg = plotSvg(run(3), { title: `a<b & "c" \u0001'd'` });
  checkXml(svg);
  assert.ok(svg.includes("a&lt;b &amp; &quot;c&quot; &apos;d&apos;"));
  assert.ok(!svg.includes("a<b"));
  assert.ok(!svg.includes("\u0001"));
});

Deno.test("svg: no epochs gives a 'no data yet' plot", () => {
  const svg = plotSvg([]);
  checkXml(svg);
  assert.match(svg, /no data yet/);
  assert.equal(seriesPaths(svg).size, 0);
});

Deno.test("svg: one epoch draws one point per series, with markers", () => {
  const svg = plotSvg(run(1));
  checkXml(svg);
  const paths = seriesPaths(svg);
  assert.equal(paths.size, 3);
  for (const d of paths.values()) assert.equal(pointCount(d), 1);
  // Three markers, the best-test ring and the legend's ring.
  assert.equal((svg.match(/<circle /g) ?? []).length, 5);
  assert.match(svg, />1</);
});

Deno.test("svg: all-NaN values and garbage entries do not crash", () => {
  const metrics = run(4).map((m) => ({ ...m, trainError: NaN, testError: NaN }));
  const withJunk = [...metrics, { epoch: NaN, trainLoss: 1, trainError: 0, testError: 0 }];
  const svg = plotSvg(withJunk);
  checkXml(svg);
  assert.match(svg, /no finite error values/);
  assert.equal(pointCount(seriesPaths(svg).get("train-loss")!), 4);
  assert.doesNotMatch(svg, /best/);
});

Deno.test("svg: a flat run keeps linear axes; zeros on a log axis are noted", () => {
  const flat = run(5).map((m) => ({ ...m, trainLoss: 0.25, trainError: 0.05, testError: 0.05 }));
  const svg = plotSvg(flat);
  assert.doesNotMatch(svg, /log scale/);
  assert.match(svg, />error %</);
  const zeros = run(30).map((m) => (m.epoch > 20 ? { ...m, trainError: 0 } : m));
  assert.match(plotSvg(zeros), /log scale, 0 at floor/);
});

Deno.test("svg: identical input gives identical output, numbers rounded", () => {
  const a = plotSvg(run(50), { title: "x" });
  const b = plotSvg(run(50), { title: "x" });
  assert.equal(a, b);
  assert.doesNotMatch(a, /="[^"]*\d\.\d{3,}/, "coordinates rounded to 2 decimals");
});

Deno.test("png: decodes to 1000×450, equals the RGBA render, and is deterministic", async () => {
  const metrics = run(50);
  metrics[20] = { ...metrics[20], testError: NaN };
  const png = await plotPng(metrics, { title: "mlp on mnist" });
  const again = await plotPng(metrics, { title: "mlp on mnist" });
  assert.deepEqual(again, png);
  const gray = await decodeImage(png, "plot.png");
  assert.equal(gray.format, "png");
  assert.equal(gray.width, 1000);
  assert.equal(gray.height, 450);
  const decoded = await decodeRgba(png);
  const image = plotRgba(metrics, { title: "mlp on mnist" });
  assert.equal(decoded.width, image.width);
  assert.deepEqual(decoded.data, image.data);
});

Deno.test("png: series colours in their panels, title text near the top", () => {
  const image = plotRgba(run(50), { title: "mlp on mnist" });
  const { train, test, best } = PLOT_COLORS;
  assert.ok(countColor(image, train, ...LEFT) > 200, "train loss curve in the left panel");
  assert.equal(countColor(image, test, ...LEFT), 0, "no test colour in the left panel");
  assert.ok(countColor(image, train, ...RIGHT) > 200, "train error curve in the right panel");
  assert.ok(countColor(image, test, ...RIGHT) > 200, "test error curve in the right panel");
  assert.ok(countColor(image, best, ...RIGHT) > 10, "best test ring in the right panel");
  // The title is dark text centred above the panels; the corners of that band stay blank.
  assert.ok(countDark(image, 80, 400, 8, 600, 32) > 100, "title text");
  assert.equal(countDark(image, 250, 0, 0, 150, 32), 0);
  assert.equal(countDark(image, 250, 850, 0, 1000, 32), 0);
});

Deno.test("png: empty, single-epoch and NaN runs render; scale changes the size", async () => {
  const empty = plotRgba([]);
  assert.equal(countColor(empty, PLOT_COLORS.train, ...LEFT), 0);
  assert.ok(countDark(empty, 160, 200, 200, 350, 250) > 50, "'no data yet' text");
  const one = plotRgba(run(1));
  assert.ok(countColor(one, PLOT_COLORS.train, ...LEFT) > 10, "single-point marker");
  assert.ok(countColor(one, PLOT_COLORS.test, ...RIGHT) > 3, "single-point marker");
  const nan = run(6).map((m) => ({ ...m, trainLoss: NaN, testError: Infinity }));
  assert.equal(countColor(plotRgba(nan), PLOT_COLORS.train, ...LEFT), 0);
  const big = await decodeImage(await plotPng(run(3), { scale: 2 }), "plot@2x.png");
  assert.equal(big.width, 2000);
  assert.equal(big.height, 900);
  for (const scale of [0, -1, NaN, 100]) {
    assert.throws(() => plotRgba(run(3), { scale }), RangeError);
  }
});

Deno.test("writePlotFiles writes the SVG and the PNG", async () => {
  const dir = await Deno.makeTempDir({ prefix: "plot_test_" });
  try {
    const paths = await writePlotFiles(`${dir}/curves`, run(5), { title: "t" });
    assert.deepEqual(paths, { svg: `${dir}/curves.svg`, png: `${dir}/curves.png` });
    assert.equal(await Deno.readTextFile(paths.svg), plotSvg(run(5), { title: "t" }));
    assert.deepEqual(await Deno.readFile(paths.png), await plotPng(run(5), { title: "t" }));
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
