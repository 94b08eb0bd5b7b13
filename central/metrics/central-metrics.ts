/**
 * The central's Prometheus registry (issue 15 item 1): the table of contents
 * of every family it exports, each family in its own file. Its own registry,
 * never prom-client's global one, so several centrals can live in one test
 * process. Everything per origin is read at scrape time from the state the
 * central already keeps; the hot paths only bump a few counters.
 * close() detaches every listener; idempotent.
 */
import client from "prom-client";
import type { Ingest } from "../ingest/ingest-service.js";
import type { LevelStore, OriginTotals } from "../store/level-store.js";
import type { VerdictService } from "../verdict/service.js";
import type { WebhookSender } from "../alerts/webhook.js";
import { registerIncidentMetrics } from "./incident-metrics.js";
import { registerIngestMetrics } from "./ingest-metrics.js";
import { type OutboxView, registerOutboxMetrics } from "./outbox-metrics.js";
import { registerOriginMetrics } from "./origin-metrics.js";
import { registerStoreMetrics } from "./store-metrics.js";
import { registerVerdictMetrics } from "./verdict-metrics.js";

export interface CentralMetricsDeps {
  ingest: Ingest;
  store: LevelStore;
  verdict: VerdictService;
  /** Cluster mode: the webhook is sent by the replica's notifier (cluster/webhook-notifier.ts), not the VerdictService. */
  webhook?: WebhookSender;
  totals: ReadonlyMap<string, OriginTotals>;
  /** Cardinality caps (CentralConfig.metricsMaxOrigins, metricsMaxOriginIsps). */
  maxOrigins: number;
  maxOriginIsps: number;
}

export interface CentralMetrics {
  registry: client.Registry;
  close(): void;
}

export function createCentralMetrics(d: CentralMetricsDeps): CentralMetrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "originwatch_central_" });
  const v = d.verdict;
  registerOriginMetrics(
    registry,
    {
      totals: d.totals,
      statuses: () => v.engine.statuses(),
      lookbackNodes: (o) => v.engine.lookback.nodes(o),
      lookbackSeconds: (o) => v.settingsFor(o).lookbackMs / 1000,
    },
    { maxOrigins: d.maxOrigins, maxOriginIsps: d.maxOriginIsps },
  );
  registerIncidentMetrics(registry, {
    openIncidents: () => v.engine.openIncidents(),
    faults: () => v.engine.statuses().flatMap((s) => s.faults),
  });
  const detach = [registerIngestMetrics(registry, d.ingest), registerVerdictMetrics(registry, v), registerStoreMetrics(registry, d.store)];
  registerOutboxMetrics(registry, () => {
    const out: OutboxView[] = [];
    const w = v.webhook ?? d.webhook;
    if (w) out.push({ sink: "webhook", receiver: new URL(w.url).host, pending: () => w.pending(), delivered: () => w.delivered, dropped: () => w.dropped });
    for (const r of v.alertmanager?.receivers ?? []) {
      out.push({ sink: "alertmanager", receiver: new URL(r.url).host, pending: () => r.queue.pending(), delivered: () => r.queue.delivered, dropped: () => r.queue.dropped });
    }
    return out;
  });
  let closed = false;
  return {
    registry,
    close() {
      if (closed) return;
      closed = true;
      for (const f of detach) f();
      registry.clear();
    },
  };
}
