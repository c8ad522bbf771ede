import assert from "node:assert/strict";
import { formatDuration, ProgressBar, type ProgressWriter } from "../data/progress.ts";

/** A writer that records every write, and a clock the test moves. */
function fakes(terminal: boolean) {
  const writes: string[] = [];
  let t = 0;
  const writer: ProgressWriter = {
    writeSync(p: Uint8Array) {
      writes.push(new TextDecoder().decode(p));
      return p.length;
    },
    isTerminal: () => terminal,
  };
  return { writes, writer, now: () => t, advance: (ms: number) => (t += ms) };
}

Deno.test("terminal: redraws in place at most every 100 ms, with bar, rate, ETA, fields", () => {
  const f = fakes(true);
  const bar = new ProgressBar(100, {
    label: "epoch 1",
    writer: f.writer,
    now: f.now,
    barWidth: 10,
  });
  assert.equal(bar.isTerminal, true);
  f.advance(1000);
  bar.update(10, { loss: "0.500" });
  assert.equal(f.writes.length, 1);
  f.advance(50);
  bar.update(15);
  assert.equal(f.writes.length, 1, "no redraw within 100 ms");
  f.advance(950);
  bar.update(20, { loss: "0.400" });
  assert.equal(f.writes.length, 2);
  const line = f.writes[1];
  assert.ok(line.startsWith("\r"), "redraws in place");
  assert.ok(!line.includes("\n"));
  assert.match(line, /epoch 1 {2}\[##--------\] {3}20\/100 {3}20%/);
  assert.match(line, /10\.0\/s {2}ETA 0:08 {2}loss 0\.400/);
  f.advance(8000);
  bar.finish({ loss: "0.100" });
  const last = f.writes.at(-1)!;
  assert.ok(last.endsWith("\n"));
  assert.match(last, /20\/100 .* in 0:10 {2}loss 0\.100/);
  bar.finish();
  assert.equal(f.writes.length, 3, "finish is idempotent");
});

Deno.test("terminal: a shorter line pads over the previous one", () => {
  const f = fakes(true);
  const bar = new ProgressBar(0, { writer: f.writer, now: f.now });
  bar.update(1, { note: "a long extra field" });
  f.advance(200);
  bar.update(2, {});
  const [first, second] = f.writes;
  assert.ok(second.length >= first.length, "old text is blanked out");
});

Deno.test("not a terminal: plain lines every 10 s and a final line", () => {
  const f = fakes(false);
  const bar = new ProgressBar(25, { label: "train", writer: f.writer, now: f.now });
  for (let i = 1; i <= 25; i++) {
    f.advance(1000);
    bar.tick();
  }
  bar.finish();
  assert.equal(f.writes.length, 4, f.writes.join(""));
  for (const w of f.writes) {
    assert.ok(!w.includes("\r"));
    assert.ok(w.endsWith("\n"));
    assert.ok(!w.includes("["), "no bar in logs");
  }
  assert.match(f.writes[0], /^train {2} 1\/25 {2} {2}4%/);
  assert.match(f.writes[3], /25\/25 {2}100% {2}1\.0\/s {2}in 0:25/);
});

Deno.test("transient: erased on a terminal, only periodic lines elsewhere", () => {
  const term = fakes(true);
  const live = new ProgressBar(10, { writer: term.writer, now: term.now, transient: true });
  term.advance(500);
  live.update(5);
  live.finish();
  assert.equal(term.writes.length, 2);
  assert.match(term.writes[1], /^\r +\r$/, "the last write blanks the line");
  const log = fakes(false);
  const quiet = new ProgressBar(25, { writer: log.writer, now: log.now, transient: true });
  for (let i = 1; i <= 25; i++) {
    log.advance(1000);
    quiet.tick();
  }
  quiet.finish();
  assert.equal(log.writes.length, 2, "one line per 10 s, none at the start or the end");
  assert.match(log.writes[0], /^10\/25/);
});

Deno.test("bytes: sizes and rates in MB", () => {
  const f = fakes(false);
  const bar = new ProgressBar(26_421_880, {
    label: "train-images-idx3-ubyte.gz",
    unit: "bytes",
    writer: f.writer,
    now: f.now,
  });
  f.advance(2000);
  bar.update(10_000_000);
  assert.match(f.writes[0], /10\.0\/26\.4 MB {2} 38% {2}5\.0 MB\/s {2}ETA 0:03/);
  const unknown = new ProgressBar(0, { unit: "bytes", writer: f.writer, now: f.now });
  f.advance(1000);
  unknown.update(3_000_000);
  assert.match(f.writes[1], /^3\.0 MB {2}3\.0 MB\/s$/m);
});

Deno.test("formatDuration", () => {
  assert.equal(formatDuration(0), "0:00");
  assert.equal(formatDuration(61.4), "1:01");
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(formatDuration(Infinity), "?");
});
