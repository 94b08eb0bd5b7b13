/**
 * Recent window summaries per origin, kept in memory for evaluation and for
 * the live figures of the query API. Windows older than the retention are
 * pruned; durable history lives in LevelDB rollups, not here.
 */
import type { Histogram, OutcomeCounts } from "../../proto/gen/originwatch/v1/common_pb.js";

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

export class WindowStore {
  private byOrigin = new Map<string, NodeWindow[]>();

  constructor(readonly retentionMs: number) {}

  add(w: NodeWindow, origin: string): void {
    let list = this.byOrigin.get(origin);
    if (!list) this.byOrigin.set(origin, (list = []));
    list.push(w);
  }

  /** Operator forget / age-out of an origin. */
  forget(origin: string): boolean {
    return this.byOrigin.delete(origin);
  }

  origins(): string[] {
    return [...this.byOrigin.keys()];
  }

  /** Windows of an origin whose start is at or after sinceMs. */
  recent(origin: string, sinceMs: number): NodeWindow[] {
    const list = this.byOrigin.get(origin);
    if (!list) return [];
    return list.filter((w) => w.startMs >= sinceMs);
  }

  /** Drops windows that started before nowMs - retention. */
  prune(nowMs: number): void {
    const cutoff = nowMs - this.retentionMs;
    for (const [origin, list] of this.byOrigin) {
      // Replayed batches can arrive out of order, so filter rather than trim the head.
      const kept = list.filter((w) => w.startMs >= cutoff);
      if (kept.length === 0) this.byOrigin.delete(origin);
      else if (kept.length !== list.length) this.byOrigin.set(origin, kept);
    }
  }
}
