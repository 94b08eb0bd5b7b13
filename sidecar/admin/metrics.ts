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
  /** The whole /metrics body: prom-client's registry plus the per-request series. */
  text(): Promise<string>;
  completed(r: CompletedRequest): void;
  stalled(origin: string): void;
  rejected(status: number): void;
  streamState(s: StreamState): void;
  streamBuffered(buffered: number, dropped: number, bytes?: number): void;
  /** n batches dropped for good under a bounded code label (stream/rejections.ts). */
  streamRejected(code: string, n: number): void;
  /** Pull-style stream figures, refreshed before a scrape. */
  streamFigures(f: StreamFigures): void;
  configVersion(version: number): void;
  upstreamSockets(byOrigin: Record<string, number>): void;
  inFlight(n: number): void;
}

export interface StreamFigures {
  /** Estimated local − central clock (ms). */
  clockSkewMs: number;
  /** Largest batch message the sidecar sends (the central's limit as known). */
  maxMessageBytes: number;
  /** Extra batches made by splitting (cumulative). */
  splitBatches: number;
  /** The central refuses this sidecar's Hello (a configuration error). */
  configError: boolean;
  /** Streams opened to another central than the one before (cumulative). */
  moves: number;
}

/** Upper bounds (seconds) of the hop latency and TTFB histograms. */
export const LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface OriginHot {
  outcomes: Map<string, number>;
  /** non-cumulative counts per bucket, last = +Inf */
  latency: number[];
  latencySum: number;
  ttfb: number[];
  ttfbSum: number;
}

function bucketOf(v: number): number {
  let i = 0;
  while (i < LATENCY_BUCKETS.length && v > LATENCY_BUCKETS[i]) i++;
  return i;
}

const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

function renderHistogram(lines: string[], name: string, origin: string, counts: number[], sum: number): void {
  let acc = 0;
  for (let i = 0; i < counts.length; i++) {
    acc += counts[i];
    const le = i < LATENCY_BUCKETS.length ? String(LATENCY_BUCKETS[i]) : "+Inf";
    lines.push(`${name}_bucket{le="${le}",origin="${esc(origin)}"} ${acc}`);
  }
  lines.push(`${name}_sum{origin="${esc(origin)}"} ${sum}`);
  lines.push(`${name}_count{origin="${esc(origin)}"} ${acc}`);
}

/** Prometheus text for the per-request series. */
function renderHot(hot: Map<string, OriginHot>): string {
  const lines: string[] = [
    "# HELP originwatch_sidecar_requests_total Back-to-source requests by origin and outcome class",
    "# TYPE originwatch_sidecar_requests_total counter",
  ];
  for (const [origin, h] of hot) for (const [outcome, n] of h.outcomes) lines.push(`originwatch_sidecar_requests_total{origin="${esc(origin)}",outcome="${outcome}"} ${n}`);
  lines.push(
    "# HELP originwatch_sidecar_request_duration_seconds Hop latency: request received to response complete, by origin",
    "# TYPE originwatch_sidecar_request_duration_seconds histogram",
  );
  for (const [origin, h] of hot) renderHistogram(lines, "originwatch_sidecar_request_duration_seconds", origin, h.latency, h.latencySum);
  lines.push(
    "# HELP originwatch_sidecar_ttfb_seconds Request received to upstream response head, by origin",
    "# TYPE originwatch_sidecar_ttfb_seconds histogram",
  );
  for (const [origin, h] of hot) renderHistogram(lines, "originwatch_sidecar_ttfb_seconds", origin, h.ttfb, h.ttfbSum);
  return `${lines.join("\n")}\n`;
}

export function createSidecarMetrics(): SidecarMetrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  // Per-request series are kept in plain arrays and rendered at scrape time
  // (renderHot): prom-client's labelled observe() costs microseconds per call,
  // which is measurable against a ~50 µs hop.
  const hot = new Map<string, OriginHot>();
  const hotFor = (origin: string): OriginHot => {
    let h = hot.get(origin);
    if (!h) {
      h = { outcomes: new Map(), latency: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0), latencySum: 0, ttfb: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0), ttfbSum: 0 };
      hot.set(origin, h);
    }
    return h;
  };
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
  const rejectedBatches = new client.Counter({
    name: "originwatch_sidecar_stream_rejected_batches_total",
    help: "Batches dropped for good: refused by the central (BatchReject code) or too large to send (SIDECAR_MESSAGE_TOO_LARGE); at most 17 codes",
    labelNames: ["code"],
    registers: [registry],
  });
  const skew = new client.Gauge({
    name: "originwatch_sidecar_clock_skew_seconds",
    help: "This sidecar's clock minus the central's, measured from Welcome/BatchAck server times (window times are corrected when over 0.25 s)",
    registers: [registry],
  });
  const maxMessage = new client.Gauge({
    name: "originwatch_sidecar_stream_max_message_bytes",
    help: "Largest batch message sent: the central's limit from Welcome (default 1 MiB), lowered when the central refuses a message as too large",
    registers: [registry],
  });
  const splits = new client.Counter({
    name: "originwatch_sidecar_stream_split_batches_total",
    help: "Extra batches made by splitting a window tick's output under the central's limits",
    registers: [registry],
  });
  let splitsSeen = 0;
  const moves = new client.Counter({
    name: "originwatch_sidecar_stream_moves_total",
    help: "Streams opened to another central than the one before (failover to another replica, or rebalancing)",
    registers: [registry],
  });
  let movesSeen = 0;
  const configError = new client.Gauge({
    name: "originwatch_sidecar_stream_config_error",
    help: "1 while the central refuses this sidecar's Hello (labels, origins or identity it does not accept)",
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

  let current: StreamState = "idle";

  return {
    registry,
    async text() {
      return (await registry.metrics()) + renderHot(hot);
    },
    completed(r) {
      const h = hotFor(r.origin);
      h.outcomes.set(r.outcome, (h.outcomes.get(r.outcome) ?? 0) + 1);
      const s = r.totalMs / 1000;
      h.latency[bucketOf(s)]++;
      h.latencySum += s;
      if (r.ttfbMs !== undefined) {
        const t = r.ttfbMs / 1000;
        h.ttfb[bucketOf(t)]++;
        h.ttfbSum += t;
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
    streamRejected: (code, n) => rejectedBatches.labels(code).inc(n),
    streamFigures(f) {
      skew.set(f.clockSkewMs / 1000);
      maxMessage.set(f.maxMessageBytes);
      if (f.splitBatches > splitsSeen) splits.inc(f.splitBatches - splitsSeen);
      splitsSeen = f.splitBatches;
      if (f.moves > movesSeen) moves.inc(f.moves - movesSeen);
      movesSeen = f.moves;
      configError.set(f.configError ? 1 : 0);
    },
    configVersion: (v) => configVersion.set(v),
    upstreamSockets(by) {
      for (const [o, n] of Object.entries(by)) sockets.labels(o).set(n);
    },
    inFlight: (n) => inflight.set(n),
  };
}
