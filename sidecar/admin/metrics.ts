/**
 * Prometheus metrics of one sidecar, on its own registry (never the global
 * one, so several sidecars can live in one test process). Hot-path updates use
 * cached label children: one Map lookup per request.
 */
import client from "prom-client";
import type { CompletedRequest } from "../proxy/hop.js";
import { STREAM_STATES, type StreamState } from "../stream/client.js";

export interface SidecarMetrics {
  registry: client.Registry;
  completed(r: CompletedRequest): void;
  stalled(origin: string): void;
  rejected(status: number): void;
  streamState(s: StreamState): void;
  streamBuffered(buffered: number, dropped: number, bytes?: number): void;
  configVersion(version: number): void;
  upstreamSockets(byOrigin: Record<string, number>): void;
  inFlight(n: number): void;
}

export function createSidecarMetrics(): SidecarMetrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const requests = new client.Counter({
    name: "originwatch_sidecar_requests_total",
    help: "Back-to-source requests by origin and outcome class",
    labelNames: ["origin", "outcome"],
    registers: [registry],
  });
  const latency = new client.Histogram({
    name: "originwatch_sidecar_request_duration_seconds",
    help: "Hop latency: request received to response complete, by origin",
    labelNames: ["origin"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const ttfb = new client.Histogram({
    name: "originwatch_sidecar_ttfb_seconds",
    help: "Request received to upstream response head, by origin",
    labelNames: ["origin"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const stalls = new client.Counter({
    name: "originwatch_sidecar_stalls_total",
    help: "Requests that crossed stall_ms without a first byte",
    labelNames: ["origin"],
    registers: [registry],
  });
  const rejected = new client.Counter({
    name: "originwatch_sidecar_rejected_total",
    help: "Requests refused without an upstream connection (unknown Host, CONNECT, ...) by status",
    labelNames: ["status"],
    registers: [registry],
  });
  const state = new client.Gauge({
    name: "originwatch_sidecar_stream_state",
    help: "1 for the current state of the stream to the central",
    labelNames: ["state"],
    registers: [registry],
  });
  for (const s of STREAM_STATES) state.labels(s).set(s === "idle" ? 1 : 0);
  const buffered = new client.Gauge({
    name: "originwatch_sidecar_stream_buffered_batches",
    help: "Batches waiting for the central's acknowledgement",
    registers: [registry],
  });
  const dropped = new client.Gauge({
    name: "originwatch_sidecar_stream_dropped_batches",
    help: "Batches dropped because the replay buffer was full (cumulative)",
    registers: [registry],
  });
  const bufferedBytes = new client.Gauge({
    name: "originwatch_sidecar_stream_buffered_bytes",
    help: "Encoded bytes of batches waiting for the central's acknowledgement (bounded by --buffer-bytes)",
    registers: [registry],
  });
  const configVersion = new client.Gauge({
    name: "originwatch_sidecar_config_version",
    help: "Version of the pushed config in force (0: none)",
    registers: [registry],
  });
  const sockets = new client.Gauge({
    name: "originwatch_sidecar_upstream_sockets",
    help: "Sockets open to each origin (in use and idle)",
    labelNames: ["origin"],
    registers: [registry],
  });
  const inflight = new client.Gauge({
    name: "originwatch_sidecar_in_flight_requests",
    help: "Requests being proxied",
    registers: [registry],
  });

  const reqChildren = new Map<string, client.Counter.Internal>();
  const latChildren = new Map<string, client.Histogram.Internal<string>>();
  const ttfbChildren = new Map<string, client.Histogram.Internal<string>>();
  let current: StreamState = "idle";

  return {
    registry,
    completed(r) {
      const key = `${r.origin}\u0000${r.outcome}`;
      let c = reqChildren.get(key);
      if (!c) reqChildren.set(key, (c = requests.labels(r.origin, r.outcome)));
      c.inc();
      let h = latChildren.get(r.origin);
      if (!h) latChildren.set(r.origin, (h = latency.labels(r.origin)));
      h.observe(r.totalMs / 1000);
      if (r.ttfbMs !== undefined) {
        let t = ttfbChildren.get(r.origin);
        if (!t) ttfbChildren.set(r.origin, (t = ttfb.labels(r.origin)));
        t.observe(r.ttfbMs / 1000);
      }
    },
    stalled: (o) => stalls.labels(o).inc(),
    rejected: (s) => rejected.labels(String(s)).inc(),
    streamState(s) {
      state.labels(current).set(0);
      state.labels(s).set(1);
      current = s;
    },
    streamBuffered(b, d, bytes) {
      buffered.set(b);
      dropped.set(d);
      if (bytes !== undefined) bufferedBytes.set(bytes);
    },
    configVersion: (v) => configVersion.set(v),
    upstreamSockets(by) {
      for (const [o, n] of Object.entries(by)) sockets.labels(o).set(n);
    },
    inFlight: (n) => inflight.set(n),
  };
}
