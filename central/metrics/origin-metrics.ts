/**
 * Per-origin families (issue 15 item 1), read from the central's own state at
 * scrape time (nothing is updated on the ingest path):
 *
 *   originwatch_origin_state{origin}                 gauge  OriginState number: 1 NO_DATA, 2 HEALTHY, 3 DEGRADED, 4 DOWN
 *   originwatch_origin_requests_total{origin}        counter  completed requests counted (durable totals)
 *   originwatch_origin_failures_total{origin}        counter  of those, failures (5xx, connection errors, timeouts, stalls)
 *   originwatch_origin_request_rate{origin}          gauge  requests per second over the verdict's lookback
 *   originwatch_origin_failure_ratio{origin}         gauge  failures / requests over the lookback
 *   originwatch_origin_isp_failure_ratio{origin,isp} gauge  the same per ISP with traffic in the lookback
 *   originwatch_origins{state}                       gauge  origins per state (every origin, never capped)
 *
 * Cardinality: 5 series per exported origin plus one per (origin, ISP with
 * traffic). Origins are capped by metricsMaxOrigins and (origin, ISP) pairs by
 * metricsMaxOriginIsps (SeriesBudget: first come, first kept); what is over a
 * cap is counted in originwatch_central_metrics_over_cap{family}.
 */
import client from "prom-client";
import { OriginState } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { OriginTotals } from "../store/level-store.js";
import { failuresOf, requestsOf } from "../verdict/counts.js";
import type { NodeInput } from "../verdict/policy.js";
import { SeriesBudget } from "./series-budget.js";

/** The narrow read view the origin families need. */
export interface OriginSource {
  totals: ReadonlyMap<string, OriginTotals>;
  /** The verdict's current state per origin, with the last tick's fleet figures when there was one. */
  statuses(): Iterable<{ origin: string; state: OriginState; verdict?: { requests: number; failureRatio: number } }>;
  /** Per-node counts over the lookback (labels included). */
  lookbackNodes(origin: string): readonly NodeInput[];
  lookbackSeconds(origin: string): number;
}

export interface OriginMetricsOptions {
  maxOrigins: number;
  maxOriginIsps: number;
}

/** States exported by originwatch_origins (UNSPECIFIED never occurs). */
const STATES = [OriginState.NO_DATA, OriginState.HEALTHY, OriginState.DEGRADED, OriginState.DOWN];

export function registerOriginMetrics(registry: client.Registry, src: OriginSource, o: OriginMetricsOptions): void {
  const origins = new SeriesBudget("origin", o.maxOrigins);
  const pairs = new SeriesBudget("origin_isp", o.maxOriginIsps);
  const registers = [registry];
  const state = new client.Gauge({ name: "originwatch_origin_state", help: "Verdict per origin: 1 NO_DATA, 2 HEALTHY, 3 DEGRADED, 4 DOWN", labelNames: ["origin"], registers });
  const requests = new client.Counter({ name: "originwatch_origin_requests_total", help: "Completed back-to-source requests counted per origin", labelNames: ["origin"], registers });
  const failures = new client.Counter({ name: "originwatch_origin_failures_total", help: "Failed back-to-source requests (5xx, connection errors, timeouts, stalls) per origin", labelNames: ["origin"], registers });
  const rate = new client.Gauge({ name: "originwatch_origin_request_rate", help: "Requests per second per origin over the verdict lookback", labelNames: ["origin"], registers });
  const ratio = new client.Gauge({ name: "originwatch_origin_failure_ratio", help: "Failure ratio per origin over the verdict lookback", labelNames: ["origin"], registers });
  const ispRatio = new client.Gauge({ name: "originwatch_origin_isp_failure_ratio", help: "Failure ratio per origin and ISP over the verdict lookback", labelNames: ["origin", "isp"], registers });
  const byState = new client.Gauge({ name: "originwatch_origins", help: "Origins per verdict state (every origin, not capped)", labelNames: ["state"], registers });

  // One pass per scrape fills every family: prom-client calls each collect(), the first one does the work.
  let filledAt = -1;
  const fill = () => {
    const now = Date.now();
    if (now - filledAt < 50) return;
    filledAt = now;
    for (const m of [state, rate, ratio, ispRatio, byState]) m.reset();
    requests.reset();
    failures.reset();
    const statuses = new Map<string, { state: OriginState; verdict?: { requests: number; failureRatio: number } }>();
    for (const s of src.statuses()) statuses.set(s.origin, s);
    const names = new Set<string>([...src.totals.keys(), ...statuses.keys()]);
    origins.retain((k) => names.has(k));
    const counts = new Map<OriginState, number>(STATES.map((s) => [s, 0]));
    const livePairs = new Set<string>();
    for (const origin of names) {
      const st = statuses.get(origin);
      const s = st?.state ?? OriginState.NO_DATA;
      counts.set(s, (counts.get(s) ?? 0) + 1);
      if (!origins.admit(origin)) continue;
      const l = { origin };
      state.set(l, s);
      const t = src.totals.get(origin);
      requests.inc(l, t ? Number(t.requests) : 0);
      failures.inc(l, t ? Number(t.failures) : 0);
      rate.set(l, (st?.verdict?.requests ?? 0) / src.lookbackSeconds(origin));
      ratio.set(l, st?.verdict?.failureRatio ?? 0);
      const perIsp = new Map<string, { r: number; f: number }>();
      for (const n of src.lookbackNodes(origin)) {
        const a = perIsp.get(n.isp) ?? { r: 0, f: 0 };
        a.r += requestsOf(n.counts);
        a.f += failuresOf(n.counts);
        perIsp.set(n.isp, a);
      }
      for (const [isp, a] of perIsp) {
        if (a.r === 0) continue;
        const key = `${origin}\u0000${isp}`;
        livePairs.add(key);
        if (pairs.admit(key)) ispRatio.set({ origin, isp }, a.f / a.r);
      }
    }
    pairs.retain((k) => livePairs.has(k));
    for (const [s, n] of counts) byState.set({ state: OriginState[s] }, n);
  };
  for (const m of [state, requests, failures, rate, ratio, ispRatio, byState] as Array<{ collect?: () => void }>) m.collect = fill;
  new client.Gauge({
    name: "originwatch_central_metrics_over_cap",
    help: "Label values not exported because a cardinality cap was reached (family origin: --metrics-max-origins; origin_isp: --metrics-max-origin-isps)",
    labelNames: ["family"],
    registers,
    collect() {
      fill();
      for (const b of [origins, pairs]) this.set({ family: b.family }, b.overCap());
    },
  });
}
