/**
 * Per-origin 1 s (windowMs) windows of request outcomes. Requests are counted
 * in the window where they complete; stalls in the window where they cross
 * stall_ms; stall recoveries where the late first byte arrives (common.proto).
 * All methods are synchronous and O(1): this sits on the request path.
 *
 * Onset cut (issue 13): a healthy origin's window is sent once, when it
 * closes. When failures jump inside the open window (onset.ts), cutOnsets()
 * closes it early as two shorter windows — before the jump and since it — so
 * the central sees the failing part at once instead of at the boundary, and
 * undiluted by the requests before it. The rest of the window follows at the
 * boundary as a third, shorter window. At most one cut per fault onset.
 */
import { create } from "@bufbuild/protobuf";
import { type Counts, FIELD_OF_CLASS, addCounts, requestsOf, subCounts, toOutcomeCounts, zeroCounts } from "../../proto/outcomes.js";
import { type WindowSummary, WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { HistogramAccumulator } from "../../proto/histogram.js";
import type { OutcomeClass } from "../proxy/outcome.js";
import { type OnsetCut, OnsetWatch } from "./onset.js";

interface WindowAcc {
  /** Aligned start of the window (the key); */
  start: number;
  /** ...and where this part of it begins, after an onset cut (absent: at start). */
  from?: number;
  counts: Counts;
  ttfb: HistogramAccumulator;
  bytesIn: number;
  bytesOut: number;
}

export interface RecorderOptions {
  windowMs: number;
  /** Clock, ms since the epoch: the central's clock as far as known (ClockSkew.now), or a test clock. */
  now?: () => number;
}

export class Recorder {
  private _windowMs: number;
  private readonly now: () => number;
  /** origin → window start → accumulator */
  private readonly windows = new Map<string, Map<number, WindowAcc>>();
  private readonly onset = new OnsetWatch();

  constructor(opts: RecorderOptions) {
    this._windowMs = opts.windowMs;
    this.now = opts.now ?? Date.now;
  }

  get windowMs(): number {
    return this._windowMs;
  }

  /**
   * Change the window length (a pushed config). Returns every open window,
   * closed early under the old length, for the caller to send; new requests
   * fall into windows of the new length.
   */
  setWindowMs(ms: number): WindowSummary[] {
    if (ms === this._windowMs) return [];
    const out = this.flush(true);
    this._windowMs = ms;
    return out;
  }

  private acc(origin: string): WindowAcc {
    const start = Math.floor(this.now() / this.windowMs) * this.windowMs;
    let per = this.windows.get(origin);
    if (!per) {
      per = new Map();
      this.windows.set(origin, per);
    }
    let w = per.get(start);
    if (!w) {
      w = { start, counts: zeroCounts(), ttfb: new HistogramAccumulator(), bytesIn: 0, bytesOut: 0 };
      per.set(start, w);
    }
    return w;
  }

  /**
   * A request completed. ttfbMs is undefined when no response head arrived.
   * bytesIn: response body bytes received from the origin; bytesOut: request body bytes sent to it.
   */
  complete(origin: string, outcome: OutcomeClass, ttfbMs: number | undefined, bytesIn = 0, bytesOut = 0): void {
    const w = this.acc(origin);
    w.counts[FIELD_OF_CLASS[outcome]]++;
    if (ttfbMs !== undefined) w.ttfb.record(ttfbMs);
    w.bytesIn += bytesIn;
    w.bytesOut += bytesOut;
  }

  /** A request crossed stall_ms without a first byte (call once per request). */
  stall(origin: string): void {
    this.acc(origin).counts.stall++;
  }

  /** A stalled request got its first byte. */
  stallRecovered(origin: string): void {
    this.acc(origin).counts.stallRecovered++;
  }

  /**
   * The clock moved by −deltaMs (a new clock-skew correction, clock-skew.ts):
   * re-date every open window into the window of the new clock that holds its
   * start, merging windows that land together, so counts are never lost and
   * open windows close on the new clock.
   */
  rebase(deltaMs: number): void {
    if (deltaMs === 0) return;
    this.onset.clear();
    for (const [origin, per] of this.windows) {
      const moved = new Map<number, WindowAcc>();
      for (const w of per.values()) {
        const start = Math.floor((w.start - deltaMs) / this.windowMs) * this.windowMs;
        w.from = undefined;
        const into = moved.get(start);
        if (!into) {
          w.start = start;
          moved.set(start, w);
          continue;
        }
        addCounts(into.counts, w.counts);
        into.ttfb.add(w.ttfb.toHistogram());
        into.bytesIn += w.bytesIn;
        into.bytesOut += w.bytesOut;
      }
      this.windows.set(origin, moved);
    }
  }

  /**
   * Remove and return every window that has closed by `now` (all windows when
   * `all`, e.g. at shutdown), oldest first.
   */
  flush(all = false): WindowSummary[] {
    const now = this.now();
    const out: WindowSummary[] = [];
    for (const [origin, per] of this.windows) {
      for (const [start, w] of per) {
        if (!all && start + this.windowMs > now) continue;
        per.delete(start);
        const from = w.from ?? start;
        const cut = this.onset.closed(origin, w, from, w.counts);
        if (cut) out.push(...this.split(origin, w, from, cut, start + this.windowMs));
        else out.push(toSummary(origin, w, this.windowMs));
      }
      if (per.size === 0) this.windows.delete(origin);
    }
    out.sort((a, b) => Number(a.startUnixMs - b.startUnixMs) || a.origin.localeCompare(b.origin));
    return out;
  }

  /**
   * The onset cut: every open window whose failures jumped (onset.ts) is
   * closed now as its part before the jump and its part since, both returned
   * for the caller to send; later requests fall into the rest of the window.
   * Called by the sidecar's window ticker every ONSET_POLL_MS, never on the
   * request path. minFailures: failures since the jump before it is sent (the
   * central's min_requests). Returns [] in steady state.
   */
  cutOnsets(minFailures: number): WindowSummary[] {
    const now = this.now();
    const start = Math.floor(now / this.windowMs) * this.windowMs;
    const out: WindowSummary[] = [];
    for (const [origin, per] of this.windows) {
      const w = per.get(start);
      if (!w) continue;
      const from = w.from ?? start;
      const cut = this.onset.poll(origin, w, from, w.counts, now, minFailures);
      if (!cut) continue;
      out.push(...this.split(origin, w, from, cut, now));
      per.set(start, { start, from: now, counts: zeroCounts(), ttfb: new HistogramAccumulator(), bytesIn: 0, bytesOut: 0 });
    }
    return out;
  }

  /**
   * Close the origin's open window up to now (the central's FlushWindows): its
   * part so far is returned for the caller to send — split at an onset under
   * way, as at a boundary — and later requests fall into the rest of the
   * window. [] when the origin has no open window with requests.
   */
  closeNow(origin: string): WindowSummary[] {
    const now = this.now();
    const start = Math.floor(now / this.windowMs) * this.windowMs;
    const per = this.windows.get(origin);
    const w = per?.get(start);
    if (!per || !w || requestsOf(w.counts) === 0) return [];
    const from = w.from ?? start;
    if (now <= from) return [];
    const cut = this.onset.closed(origin, w, from, w.counts);
    per.set(start, { start, from: now, counts: zeroCounts(), ttfb: new HistogramAccumulator(), bytesIn: 0, bytesOut: 0 });
    return cut ? this.split(origin, w, from, cut, now) : [toSummary(origin, { ...w, from }, this.windowMs, now)];
  }

  /**
   * A window part [from, endMs) as its part before cut.atMs (cut.before) and
   * its part since (the rest of the counts, with the TTFB samples and bytes so
   * far: both parts are in the lookback), or whole when there is nothing before.
   */
  private split(origin: string, w: WindowAcc, from: number, cut: OnsetCut, endMs: number): WindowSummary[] {
    if (requestsOf(cut.before) === 0 || cut.atMs <= from || cut.atMs >= endMs) return [toSummary(origin, { ...w, from }, this.windowMs, endMs)];
    const since = subCounts(addCounts(zeroCounts(), w.counts), cut.before);
    return [
      toSummary(origin, { start: w.start, from, counts: cut.before, ttfb: new HistogramAccumulator(), bytesIn: 0, bytesOut: 0 }, this.windowMs, cut.atMs),
      toSummary(origin, { ...w, from: cut.atMs, counts: since }, this.windowMs, endMs),
    ];
  }
}

/** One window (or the part of it from w.from to endMs, default the window's end) as a summary. */
function toSummary(origin: string, w: WindowAcc, windowMs: number, endMs = w.start + windowMs): WindowSummary {
  const from = w.from ?? w.start;
  return create(WindowSummarySchema, {
    origin,
    startUnixMs: BigInt(from),
    lengthMs: Math.max(1, endMs - from),
    counts: toOutcomeCounts(w.counts),
    ttfb: w.ttfb.toHistogram(),
    bytesIn: BigInt(w.bytesIn),
    bytesOut: BigInt(w.bytesOut),
  });
}
