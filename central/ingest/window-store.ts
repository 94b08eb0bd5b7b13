/**
 * Recent window summaries per origin, kept in memory for the live figures of
 * the query API (the verdict engine keeps its own lookback sums). Durable
 * history lives in LevelDB rollups and totals, not here.
 *
 * Bounded by construction: a window is kept only when it starts within the
 * retention (older ones still count in the totals, they are just not kept
 * here; start times more than the future skew ahead never get this far), it
 * leaves at most retention + future skew after it arrived, and the store never
 * holds more than maxWindows: beyond that the oldest arrival leaves first
 * (counted in stats().evicted). Entries are compact (counts as numbers, TTFB
 * buckets as two small arrays) and become contract messages only on read.
 */
import { create } from "@bufbuild/protobuf";
import { type Histogram, HistogramSchema, type OutcomeCounts, OutcomeCountsSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { COUNT_FIELDS } from "../../proto/outcomes.js";
import { Fifo } from "./fifo.js";

export interface NodeLabels {
  nodeId: string;
  isp: string;
  region: string;
}

export interface NodeWindow extends NodeLabels {
  startMs: number;
  lengthMs: number;
  counts: OutcomeCounts;
  ttfb?: Histogram;
  /** Central clock when the window arrived. */
  receivedMs: number;
}


interface Entry {
  origin: string;
  node: NodeLabels;
  startMs: number;
  lengthMs: number;
  receivedMs: number;
  counts: number[];
  /** Compact TTFB (bounds_schema 1): non-empty bucket indexes and their counts. */
  ttfbIdx?: number[];
  ttfbN?: number[];
  ttfbSumMs?: number;
  ttfbCount?: number;
  /** Any other histogram, kept as it came. */
  ttfb?: Histogram;
}

export interface WindowStoreStats {
  /** Windows held now. */
  size: number;
  /** Windows that left early because the store was full. */
  evicted: number;
  /** Windows not kept because they started before the retention (still counted in totals). */
  notKept: number;
}

export class WindowStore {
  private byOrigin = new Map<string, Fifo<Entry>>();
  /** Every entry in arrival order: the oldest arrival leaves first. */
  private arrivals = new Fifo<Entry>();
  private evicted = 0;
  private notKept = 0;

  constructor(
    readonly retentionMs: number,
    readonly maxWindows: number = Number.POSITIVE_INFINITY,
  ) {}

  /** Keeps the window when it starts within the retention; false when it is not kept. */
  add(origin: string, node: NodeLabels, w: { startMs: number; lengthMs: number; counts: OutcomeCounts; ttfb?: Histogram }, nowMs: number): boolean {
    this.expire(nowMs);
    if (w.startMs < nowMs - this.retentionMs) {
      this.notKept++;
      return false;
    }
    while (this.arrivals.size >= this.maxWindows) {
      this.dropOldest();
      this.evicted++;
    }
    const e: Entry = {
      origin,
      node,
      startMs: w.startMs,
      lengthMs: w.lengthMs,
      receivedMs: nowMs,
      counts: COUNT_FIELDS.map((k) => Number(w.counts[k])),
    };
    const h = w.ttfb;
    if (h && h.boundsSchema === 1 && h.counts.length === 0) {
      e.ttfbIdx = h.sparseIndex;
      e.ttfbN = h.sparseCount;
      e.ttfbSumMs = h.sumMs;
      e.ttfbCount = Number(h.count);
    } else if (h) {
      e.ttfb = h;
    }
    let list = this.byOrigin.get(origin);
    if (!list) this.byOrigin.set(origin, (list = new Fifo()));
    list.push(e);
    this.arrivals.push(e);
    return true;
  }

  origins(): string[] {
    return [...this.byOrigin.keys()];
  }

  has(origin: string): boolean {
    return this.byOrigin.has(origin);
  }

  /** Windows of an origin whose start is at or after sinceMs, as contract shapes. */
  recent(origin: string, sinceMs: number): NodeWindow[] {
    const list = this.byOrigin.get(origin);
    if (!list) return [];
    const out: NodeWindow[] = [];
    for (const e of list) {
      if (e.startMs < sinceMs) continue;
      const counts = create(OutcomeCountsSchema);
      COUNT_FIELDS.forEach((k, i) => ((counts as unknown as Record<string, bigint>)[k] = BigInt(e.counts[i])));
      const ttfb = e.ttfbIdx
        ? create(HistogramSchema, { boundsSchema: 1, sparseIndex: e.ttfbIdx, sparseCount: e.ttfbN, sumMs: e.ttfbSumMs, count: BigInt(e.ttfbCount ?? 0) })
        : e.ttfb;
      out.push({ nodeId: e.node.nodeId, isp: e.node.isp, region: e.node.region, startMs: e.startMs, lengthMs: e.lengthMs, counts, ttfb, receivedMs: e.receivedMs });
    }
    return out;
  }

  /** Drops the windows that started before nowMs - retention (in arrival order; see the file comment). */
  prune(nowMs: number): void {
    this.expire(nowMs);
  }

  private expire(nowMs: number): void {
    const cutoff = nowMs - this.retentionMs;
    for (let e = this.arrivals.peek(); e && e.startMs < cutoff; e = this.arrivals.peek()) this.dropOldest();
  }

  private dropOldest(): void {
    const e = this.arrivals.shift();
    if (!e) return;
    const list = this.byOrigin.get(e.origin);
    // Both queues are in arrival order, so the oldest arrival heads its origin's queue too.
    list?.shift();
    if (list && list.size === 0) this.byOrigin.delete(e.origin);
  }

  /** Forget an origin's windows (operator forget, ageing out). */
  forgetOrigin(origin: string): boolean {
    if (!this.byOrigin.delete(origin)) return false;
    this.arrivals.retain((e) => e.origin !== origin);
    return true;
  }

  /** Forget a node's windows (operator forget, ageing out). */
  forgetNode(nodeId: string): void {
    this.arrivals.retain((e) => e.node.nodeId !== nodeId);
    for (const [origin, list] of this.byOrigin) {
      list.retain((e) => e.node.nodeId !== nodeId);
      if (list.size === 0) this.byOrigin.delete(origin);
    }
  }

  stats(): WindowStoreStats {
    return { size: this.arrivals.size, evicted: this.evicted, notKept: this.notKept };
  }
}
