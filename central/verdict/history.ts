/**
 * Per-minute history rollups for GetOriginHistory: requests, failures, TTFB
 * buckets and the worst state seen, per origin and minute. Windows are added
 * as they arrive (late ones merge into their minute); dirty minutes are
 * written every flush, merged with what the store already holds (so a restart
 * or a late replay adds to a minute instead of replacing it). Rollups older
 * than the retention are pruned.
 *
 * Write-then-mark: a flush writes every dirty minute in one synced batch and
 * marks a minute clean only after that write succeeded, and only if nothing
 * was added to it meanwhile; a failed write leaves the minutes dirty for the
 * next flush (and flush() rejects). Flushes never overlap.
 */
import { DEFAULT_BOUNDS_MS, quantileOf } from "../../proto/histogram.js";
import { NB, type WindowColumns, failuresAt, requestsAt } from "../ingest/window-columns.js";
import type { RollupRecord, VerdictStore } from "./verdict-store.js";

export const MINUTE_MS = 60_000;

interface Open {
  origin: string;
  minuteMs: number;
  /** Requests, failures, state, and TTFB buckets merged from the store (see copyOf). */
  rec: RollupRecord;
  /** TTFB buckets added in memory (dense: one add per sample bucket on the ingest path). */
  ttfb: Float64Array;
  dirty: boolean;
  /** Already merged with the stored record (later flushes overwrite). */
  merged: boolean;
  touchedMs: number;
  /** Bumped on every change: a write marks the minute clean only if it wrote the latest version. */
  version: number;
}

export interface HistoryPointData {
  timeMs: number;
  requests: number;
  failures: number;
  failureRatio: number;
  p95TtfbMs: number;
  state: number;
}

function mergeInto(a: RollupRecord, b: RollupRecord): void {
  a.requests += b.requests;
  a.failures += b.failures;
  for (const [i, n] of Object.entries(b.ttfb)) a.ttfb[Number(i)] = (a.ttfb[Number(i)] ?? 0) + n;
  a.state = Math.max(a.state, b.state);
}

/** The minute's record as stored: e.rec with the in-memory TTFB buckets added. */
function copyOf(e: Open): RollupRecord {
  const ttfb = { ...e.rec.ttfb };
  for (let i = 0; i < e.ttfb.length; i++) if (e.ttfb[i]) ttfb[i] = (ttfb[i] ?? 0) + e.ttfb[i];
  return { ...e.rec, ttfb };
}

function pointOf(minuteMs: number, r: RollupRecord): HistoryPointData {
  const buckets = new Array<number>(DEFAULT_BOUNDS_MS.length + 1).fill(0);
  for (const [i, n] of Object.entries(r.ttfb)) buckets[Number(i)] = n;
  return {
    timeMs: minuteMs,
    requests: r.requests,
    failures: r.failures,
    failureRatio: r.requests > 0 ? r.failures / r.requests : 0,
    p95TtfbMs: quantileOf(DEFAULT_BOUNDS_MS, buckets, 0.95),
    state: r.state,
  };
}

export class HistoryRollups {
  private open = new Map<string, Open>();
  /** The minute each origin last wrote to (a batch's windows share it): one lookup per window. */
  private latest = new Map<string, Open>();
  private flushing: Promise<void> = Promise.resolve();

  constructor(private store: VerdictStore, readonly retentionMs: number) {}

  private entry(origin: string, minuteMs: number, nowMs: number): Open {
    const k = `${origin}\u0000${minuteMs}`;
    let e = this.open.get(k);
    if (!e) {
      e = { origin, minuteMs, rec: { requests: 0, failures: 0, ttfb: {}, state: 0 }, ttfb: new Float64Array(NB), dirty: false, merged: false, touchedMs: nowMs, version: 0 };
      this.open.set(k, e);
    }
    e.touchedMs = nowMs;
    return e;
  }

  /** Every window of a batch, as the ingest converted it on arrival. */
  addColumns(c: WindowColumns, nowMs = Date.now()): void {
    const oldest = nowMs - this.retentionMs;
    for (let i = 0; i < c.length; i++) {
      const startMs = c.startMs[i];
      if (startMs < oldest) continue;
      const origin = c.origin[i];
      const minuteMs = Math.floor(startMs / MINUTE_MS) * MINUTE_MS;
      let e = this.latest.get(origin);
      if (!e || e.minuteMs !== minuteMs) {
        e = this.entry(origin, minuteMs, nowMs);
        this.latest.set(origin, e);
      } else e.touchedMs = nowMs;
      e.rec.requests += requestsAt(c, i);
      e.rec.failures += failuresAt(c, i);
      const t = e.ttfb;
      for (let p = c.ttfbStart[i]; p < c.ttfbStart[i + 1]; p++) t[c.ttfbIdx[p]] += c.ttfbN[p];
      e.dirty = true;
      e.version++;
    }
  }

  noteState(origin: string, nowMs: number, state: number): void {
    const e = this.entry(origin, Math.floor(nowMs / MINUTE_MS) * MINUTE_MS, nowMs);
    if (state > e.rec.state) {
      e.rec.state = state;
      e.dirty = true;
      e.version++;
    }
  }

  /**
   * Write dirty minutes (one synced batch), then mark them clean; forget
   * minutes untouched for 3 minutes. Rejects when the write failed: the
   * minutes stay dirty and the next flush writes them.
   */
  flush(nowMs = Date.now()): Promise<void> {
    const run = this.flushing.then(() => this.flushOnce(nowMs));
    this.flushing = run.catch(() => {});
    return run;
  }

  private async flushOnce(nowMs: number): Promise<void> {
    const written: Array<{ e: Open; version: number }> = [];
    const entries: Array<{ origin: string; minuteMs: number; rec: RollupRecord }> = [];
    for (const e of this.open.values()) {
      if (!e.dirty) continue;
      if (!e.merged) {
        const stored = await this.store.getRollup(e.origin, e.minuteMs);
        if (stored) mergeInto(e.rec, stored);
        e.merged = true;
      }
      written.push({ e, version: e.version });
      entries.push({ origin: e.origin, minuteMs: e.minuteMs, rec: copyOf(e) });
    }
    await this.store.putRollups(entries);
    for (const { e, version } of written) if (e.version === version) e.dirty = false;
    for (const [k, e] of this.open) if (nowMs - e.touchedMs > 3 * MINUTE_MS && !e.dirty) this.open.delete(k);
    this.latest.clear();
  }

  prune(nowMs = Date.now()): Promise<void> {
    const cutoff = nowMs - this.retentionMs;
    for (const [k, e] of this.open) if (e.minuteMs < cutoff) this.open.delete(k);
    this.latest.clear();
    return this.store.pruneRollups(cutoff);
  }

  /** Points per minute in [fromMs, toMs], stored and in-memory merged. */
  async query(origin: string, fromMs: number, toMs: number): Promise<HistoryPointData[]> {
    const from = Math.floor(fromMs / MINUTE_MS) * MINUTE_MS;
    const byMinute = new Map<number, RollupRecord>();
    for (const [m, r] of await this.store.rollupRange(origin, from, toMs)) byMinute.set(m, { ...r, ttfb: { ...r.ttfb } });
    for (const e of this.open.values()) {
      if (e.origin !== origin || e.minuteMs < from || e.minuteMs > toMs) continue;
      if (e.merged) {
        // The stored record already includes everything but the unflushed part: take the in-memory one.
        byMinute.set(e.minuteMs, copyOf(e));
      } else {
        const base = byMinute.get(e.minuteMs);
        if (base) mergeInto(base, copyOf(e));
        else byMinute.set(e.minuteMs, copyOf(e));
      }
    }
    return [...byMinute.entries()].sort(([a], [b]) => a - b).map(([m, r]) => pointOf(m, r));
  }
}
