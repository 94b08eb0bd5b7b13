/**
 * The verdict engine's own health (issue 15 item 1):
 *
 *   originwatch_central_verdict_tick_seconds  histogram  time to evaluate every origin once
 *   originwatch_central_events_total{kind}    counter    events recorded (STATE_CHANGED, INCIDENT_OPENED, ...)
 *
 * `kind` is the EventKind enum name: bounded.
 */
import client from "prom-client";
import { EventKind } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { VerdictService } from "../verdict/service.js";

export const TICK_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export function registerVerdictMetrics(registry: client.Registry, verdict: Pick<VerdictService, "signals">): () => void {
  const tick = new client.Histogram({ name: "originwatch_central_verdict_tick_seconds", help: "Time to evaluate every origin once (one verdict tick)", buckets: TICK_BUCKETS, registers: [registry] });
  const events = new client.Counter({ name: "originwatch_central_events_total", help: "Events recorded, by kind", labelNames: ["kind"], registers: [registry] });
  const onTick = (r: { durationMs: number }) => tick.observe(r.durationMs / 1000);
  const onEvent = (e: { kind: EventKind }) => events.inc({ kind: EventKind[e.kind] ?? "UNKNOWN" });
  verdict.signals.on("tick", onTick);
  verdict.signals.on("event", onEvent);
  return () => {
    verdict.signals.off("tick", onTick);
    verdict.signals.off("event", onEvent);
  };
}
