/**
 * Per-origin 1 s (windowMs) windows of request outcomes. Requests are counted
 * in the window where they complete; stalls in the window where they cross
 * stall_ms; stall recoveries where the late first byte arrives (common.proto).
 * All methods are synchronous and O(1): this sits on the request path.
 */
import { create } from "@bufbuild/protobuf";
import { type Counts, FIELD_OF_CLASS, addCounts, toOutcomeCounts, zeroCounts } from "../../proto/outcomes.js";
import { type WindowSummary, WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { HistogramAccumulator } from "../../proto/histogram.js";
import type { OutcomeClass } from "../proxy/outcome.js";

interface WindowAcc {
  start: number;
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
    for (const [origin, per] of this.windows) {
      const moved = new Map<number, WindowAcc>();
      for (const w of per.values()) {
        const start = Math.floor((w.start - deltaMs) / this.windowMs) * this.windowMs;
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
        out.push(toSummary(origin, w, this.windowMs));
      }
      if (per.size === 0) this.windows.delete(origin);
    }
    out.sort((a, b) => Number(a.startUnixMs - b.startUnixMs) || a.origin.localeCompare(b.origin));
    return out;
  }
}

function toSummary(origin: string, w: WindowAcc, lengthMs: number): WindowSummary {
  return create(WindowSummarySchema, {
    origin,
    startUnixMs: BigInt(w.start),
    lengthMs,
    counts: toOutcomeCounts(w.counts),
    ttfb: w.ttfb.toHistogram(),
    bytesIn: BigInt(w.bytesIn),
    bytesOut: BigInt(w.bytesOut),
  });
}
