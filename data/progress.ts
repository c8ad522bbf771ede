/**
 * A small terminal progress bar: label, bar, count/total, rate, ETA and free-form extra fields
 * (loss, accuracy, ...). On a terminal it redraws one line in place, at most every `intervalMs`;
 * elsewhere (a log file, CI) it prints a plain line every `plainIntervalMs` and a final one, so logs
 * stay short. The caller names the writer (the command-line tasks pass `Deno.stderr`): the library
 * never draws a bar of its own accord. The clock is injectable for tests.
 *
 * @module
 */

/**
 * Where the bar is written: `Deno.stderr` and `Deno.stdout` fit; in Node,
 * `{ writeSync: (b) => fs.writeSync(2, b), isTerminal: () => process.stderr.isTTY }`.
 */
export interface ProgressWriter {
  /** Writes bytes synchronously (a partial write is retried by the bar). */
  writeSync(p: Uint8Array): number;
  /** Whether the writer is an interactive terminal; absent means no. */
  isTerminal?(): boolean;
}

/** What is being counted; decides how counts and rates are printed. */
export type ProgressUnit = "items" | "bytes";

/** Extra fields shown after the ETA, e.g. `{ loss: 0.1234 }`. */
export type ProgressFields = Record<string, string | number>;

/** Options of {@linkcode ProgressBar}. */
export interface ProgressOptions {
  /** Text in front of the bar, e.g. `"epoch 1/10"` or a file name. */
  label?: string;
  /** Counting items (default; rate in items/s) or bytes (sizes in MB, rate in MB/s). */
  unit?: ProgressUnit;
  /** Destination, e.g. `Deno.stderr`. */
  writer: ProgressWriter;
  /** Overrides the writer's own terminal detection. */
  isTerminal?: boolean;
  /** Clock in milliseconds; default `performance.now`. */
  now?: () => number;
  /** Width of the bar in characters (default 24). */
  barWidth?: number;
  /** Minimum time between redraws on a terminal, ms (default 100: about ten a second). */
  intervalMs?: number;
  /** Minimum time between plain lines when not on a terminal, ms (default 10 000). */
  plainIntervalMs?: number;
  /**
   * A live view only, for when the caller prints its own summary: on a terminal `finish()` erases
   * the bar; elsewhere plain lines appear only every `plainIntervalMs` (none at the start or end).
   */
  transient?: boolean;
}

const encoder = new TextEncoder();

/**
 * A progress bar over a known (or unknown, `total` ≤ 0) number of units.
 *
 * ```ts
 * import { ProgressBar } from "@tapegrad/tapegrad/data";
 *
 * const bar = new ProgressBar(3, { label: "epoch 1", writer: Deno.stderr });
 * for (let done = 1; done <= 3; done++) bar.update(done, { loss: (1 / done).toFixed(4) });
 * bar.finish();
 * ```
 */
export class ProgressBar {
  /** The total number of units; 0 or less when unknown (no bar, no ETA). */
  total: number;
  /** Units done so far. */
  done = 0;
  /** The label in front of the line. */
  label: string;
  /** Extra fields shown at the end of the line; replaced by each `update` that passes some. */
  fields: ProgressFields = {};

  readonly #unit: ProgressUnit;
  readonly #writer: ProgressWriter;
  readonly #terminal: boolean;
  readonly #now: () => number;
  readonly #barWidth: number;
  readonly #interval: number;
  readonly #plainInterval: number;
  readonly #start: number;
  #lastDraw = -Infinity;
  readonly #transient: boolean;
  #drawnLength = 0;
  #finished = false;

  /**
   * Creates the bar; nothing is drawn until the first `update`.
   *
   * @param total The number of units expected; 0 or less when unknown.
   * @param options Label, unit, writer, clock and redraw intervals.
   */
  constructor(total: number, options: ProgressOptions) {
    this.total = total;
    this.label = options.label ?? "";
    this.#unit = options.unit ?? "items";
    this.#writer = options.writer;
    this.#terminal = options.isTerminal ?? this.#writer.isTerminal?.() ?? false;
    this.#now = options.now ?? (() => performance.now());
    this.#barWidth = options.barWidth ?? 24;
    this.#interval = options.intervalMs ?? 100;
    this.#plainInterval = options.plainIntervalMs ?? 10_000;
    this.#start = this.#now();
    this.#transient = options.transient ?? false;
    if (this.#transient && !this.#terminal) this.#lastDraw = this.#start;
  }

  /** Whether the bar redraws in place (terminal) or prints plain lines. */
  get isTerminal(): boolean {
    return this.#terminal;
  }

  /**
   * Sets the progress to `done` units and redraws if enough time has passed.
   *
   * @param done Units completed so far.
   * @param fields New extra fields; omitted keeps the previous ones.
   */
  update(done: number, fields?: ProgressFields): void {
    this.done = done;
    if (fields) this.fields = fields;
    const now = this.#now();
    const wait = this.#terminal ? this.#interval : this.#plainInterval;
    if (now - this.#lastDraw >= wait) this.#draw(now, false);
  }

  /** Adds `n` units (default 1); see {@linkcode ProgressBar.update}. */
  tick(n = 1, fields?: ProgressFields): void {
    this.update(this.done + n, fields);
  }

  /**
   * Draws the final state and ends the line. Later calls do nothing.
   *
   * @param fields Final extra fields (e.g. the epoch's mean loss); omitted keeps the last ones.
   */
  finish(fields?: ProgressFields): void {
    if (this.#finished) return;
    if (fields) this.fields = fields;
    if (!this.#transient) this.#draw(this.#now(), true);
    else if (this.#terminal && this.#drawnLength > 0) {
      writeAll(this.#writer, encoder.encode("\r" + " ".repeat(this.#drawnLength) + "\r"));
      this.#drawnLength = 0;
    }
    this.#finished = true;
  }

  /** The text of the current line, without control characters. */
  render(now: number = this.#now()): string {
    const elapsed = Math.max(0, (now - this.#start) / 1000);
    const parts: string[] = [];
    if (this.label) parts.push(this.label);
    const known = this.total > 0;
    const ratio = known ? Math.min(1, Math.max(0, this.done / this.total)) : 0;
    if (known && this.#terminal) {
      const filled = Math.round(ratio * this.#barWidth);
      parts.push("[" + "#".repeat(filled) + "-".repeat(this.#barWidth - filled) + "]");
    }
    parts.push(this.#count());
    if (known) parts.push(`${(ratio * 100).toFixed(0).padStart(3)}%`);
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    if (rate > 0) parts.push(this.#rate(rate));
    if (this.#finished || (known && this.done >= this.total)) {
      parts.push(`in ${formatDuration(elapsed)}`);
    } else if (known && rate > 0) {
      parts.push(`ETA ${formatDuration((this.total - this.done) / rate)}`);
    }
    for (const [key, value] of Object.entries(this.fields)) parts.push(`${key} ${value}`);
    return parts.join("  ");
  }

  #draw(now: number, final: boolean): void {
    this.#lastDraw = now;
    if (final) this.#finished = true;
    const text = this.render(now);
    let out: string;
    if (this.#terminal) {
      // Pad over the previous line instead of relying on ANSI erase codes, which some consoles lack.
      const pad = Math.max(0, this.#drawnLength - text.length);
      out = "\r" + text + " ".repeat(pad) + (final ? "\n" : "");
      this.#drawnLength = final ? 0 : text.length;
    } else {
      out = text + "\n";
    }
    writeAll(this.#writer, encoder.encode(out));
  }

  #count(): string {
    if (this.#unit === "bytes") {
      return this.total > 0
        ? `${formatMB(this.done)}/${formatMB(this.total)} MB`
        : `${formatMB(this.done)} MB`;
    }
    const width = String(this.total).length;
    return this.total > 0 ? `${String(this.done).padStart(width)}/${this.total}` : `${this.done}`;
  }

  #rate(perSecond: number): string {
    if (this.#unit === "bytes") return `${formatMB(perSecond)} MB/s`;
    if (perSecond >= 10_000) return `${(perSecond / 1000).toFixed(1)}k/s`;
    return `${perSecond >= 100 ? perSecond.toFixed(0) : perSecond.toFixed(1)}/s`;
  }
}

/** Seconds as `m:ss` or `h:mm:ss`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** Bytes as decimal megabytes with one decimal. */
function formatMB(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

/** `writeSync` may write less than asked; loop until everything is out. */
function writeAll(writer: ProgressWriter, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += writer.writeSync(bytes.subarray(written));
}
