/**
 * Live figures of one origin over the lookback, from the recent windows the
 * ingest keeps: request rate, failure ratio, p95 TTFB, and the per-ISP,
 * per-region and per-node breakdown. Pure: no I/O.
 */
import { create } from "@bufbuild/protobuf";
import { type ScopeStats, ScopeStatsSchema } from "../../proto/gen/originwatch/v1/query_pb.js";
import { HistogramAccumulator } from "../../proto/histogram.js";
import { completedFailuresOf, completedOf } from "../../proto/outcomes.js";
import type { NodeWindow } from "../ingest/window-store.js";

export interface LiveFigures {
  requests: number;
  failures: number;
  requestRate: number;
  failureRatio: number;
  p95TtfbMs: number;
  isps: ScopeStats[];
  regions: ScopeStats[];
  nodes: ScopeStats[];
}

class Slice {
  requests = 0;
  failures = 0;
  ttfb = new HistogramAccumulator();
  isp = "";
  region = "";
  add(w: NodeWindow): void {
    const c = w.counts;
    // Unresolved stalls count as failures (and as requests) until they resolve.
    const stalls = Math.max(0, Number(c.stall) - Number(c.stallRecovered));
    this.requests += Number(completedOf(c)) + stalls;
    this.failures += Number(completedFailuresOf(c)) + stalls;
    if (w.ttfb) this.ttfb.add(w.ttfb);
  }
  stats(key: string): ScopeStats {
    return create(ScopeStatsSchema, {
      key,
      requests: BigInt(this.requests),
      failures: BigInt(this.failures),
      failureRatio: this.requests > 0 ? this.failures / this.requests : 0,
      p95TtfbMs: this.ttfb.quantile(0.95),
      isp: this.isp,
      region: this.region,
    });
  }
}

function breakdown(windows: NodeWindow[], keyOf: (w: NodeWindow) => string): ScopeStats[] {
  const slices = new Map<string, Slice>();
  for (const w of windows) {
    const k = keyOf(w);
    let s = slices.get(k);
    if (!s) {
      slices.set(k, (s = new Slice()));
      s.isp = w.isp;
      s.region = w.region;
    }
    s.add(w);
  }
  return [...slices.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, s]) => s.stats(k));
}

export function liveFigures(windows: NodeWindow[], lookbackMs: number): LiveFigures {
  const all = new Slice();
  let first = Infinity;
  let last = -Infinity;
  for (const w of windows) {
    all.add(w);
    first = Math.min(first, w.startMs);
    last = Math.max(last, w.startMs + w.lengthMs);
  }
  // Rate over the span the windows cover (the current window is not in yet).
  const spanMs = windows.length > 0 ? Math.max(1000, Math.min(lookbackMs, last - first)) : lookbackMs;
  const nodes = breakdown(windows, (w) => w.nodeId);
  return {
    requests: all.requests,
    failures: all.failures,
    requestRate: all.requests / (spanMs / 1000),
    failureRatio: all.requests > 0 ? all.failures / all.requests : 0,
    p95TtfbMs: all.ttfb.quantile(0.95),
    isps: breakdown(windows, (w) => w.isp).map((s) => ({ ...s, isp: s.key, region: "" })),
    regions: breakdown(windows, (w) => w.region).map((s) => ({ ...s, isp: "", region: s.key })),
    nodes,
  };
}
