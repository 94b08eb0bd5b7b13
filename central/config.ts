/**
 * Options of the central, resolved by validateCentralConfig(partial): fills
 * defaults and throws a CentralError naming the offending field.
 */
import { CONFIG_DEFAULTS } from "../proto/config-validate.js";
import { parseHostPort as parseAddress } from "../proto/host-port.js";
import { CentralError } from "./errors.js";

export interface CentralConfig {
  /** HOST:PORT of the one port serving gRPC, gRPC-Web and Connect. */
  listen: string;
  /** LevelDB directory. */
  data: string;
  /** Largest inbound message in bytes (RESOURCE_EXHAUSTED above). */
  maxMessageBytes: number;
  /** No effect since issue 12 besides its check against lookbackMs (the recent-window store is gone); accepted so existing configs start. */
  windowRetentionMs: number;
  /** Lookback used for the live figures in OriginStatus. */
  lookbackMs: number;
  /** Exemplars kept per origin (the latest). */
  exemplarsPerOrigin: number;
  /** Verdict evaluation tick. */
  evalIntervalMs: number;
  /** Per-minute history rollups are kept this long. */
  historyRetentionMs: number;
  /** Webhook URL for incident alerts ("" = none). */
  webhook: string;
  /** Also alert on ISP, region and node incidents (default: origin incidents only). */
  webhookNetwork: boolean;
  /** TLS (PEM files): all three or none. With TLS, sidecars need a client certificate signed by tlsCa naming their node_id. */
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  /** Operator bearer tokens (`TOKEN ROLE [NAME]` per line); without it the operator API is open (loopback development). */
  tokensFile?: string;
  /**
   * Ingest throttle per node across all its streams (survives reconnects):
   * window summaries plus exemplars per second (a message costs at least 1),
   * and the burst above it. Over it, reading that node's stream waits.
   */
  ingestRatePerSec: number;
  ingestBurst: number;

  // --- Exposure and connection limits (issue 10: secure by default, timeouts on every path) ---
  /** Start on a non-loopback address without mTLS and tokens; a loud warning is logged at every start. */
  insecure: boolean;
  /** Host names a tokenless central answers besides loopback; any other Host/:authority gets 403 (DNS rebinding). */
  allowedHosts: string[];
  /** A new connection must show its protocol (HTTP/2 preface or an HTTP/1.1 request line) within this. */
  sniffTimeoutMs: number;
  /** An HTTP/1.1 request head must be complete within this after its first byte. */
  headersTimeoutMs: number;
  /** An HTTP/1.1 request must be received, and an HTTP/2 stream that is not long-lived must finish, within this. */
  requestTimeoutMs: number;
  /** An HTTP/1.1 keep-alive connection or an HTTP/2 session without open streams is closed after this. */
  idleTimeoutMs: number;
  /** HTTP/2 PING interval on sessions with open streams; no answer within keepaliveTimeoutMs closes the session. */
  keepaliveMs: number;
  keepaliveTimeoutMs: number;
  /** Open connections (all protocols); new ones over it are closed at once and counted. */
  maxConnections: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per session. */
  maxConcurrentStreams: number;
  /** Concurrent grpc.health.v1 Watch streams, and reflection streams, over the whole server (RESOURCE_EXHAUSTED above). */
  maxHealthWatches: number;
  maxReflectionStreams: number;
  /** `NODE_ID ISP REGION` per line: these labels win over what a hello claims (disagreements counted and logged). */
  nodeLabelsFile?: string;
  /** An origin with no batch for this long is forgotten (totals, state); 0 = never. */
  originIdleMs: number;
  /** A disconnected node with no batch for this long is forgotten (record, high-water mark); 0 = never. */
  nodeIdleMs: number;
  // Ingest caps (central/ingest/README.md): over a cap a Hello is refused with a
  // status, a Batch with BatchReject; each refusal is counted.
  /** Window summaries in one batch. */
  maxWindowsPerBatch: number;
  /** Exemplars in one batch. */
  maxExemplarsPerBatch: number;
  /** Origins one node may declare in its hello (and so report on). */
  maxOriginsPerNode: number;
  /** Distinct origins the central keeps totals for. */
  maxOrigins: number;
  /** Distinct node ids the central keeps records for. */
  maxNodes: number;
  /** How far a window's (or exemplar's) start may lie ahead of the central's clock. */
  maxFutureSkewMs: number;
  /** Plausible maximum requests per second of window length from one node; a window claiming more is refused. */
  maxRequestsPerSec: number;
  /** No effect since issue 12 (the verdict's lookback is the one in-memory copy of recent windows); accepted so existing configs start. */
  maxRecentWindows: number;
  /** Exemplars kept in memory in total, across origins (the oldest leave first). */
  maxExemplars: number;

  // --- Prometheus and Alertmanager (issue 15) ---
  /** Origins exported with per-origin series on /metrics (first come, first kept); more are counted in originwatch_central_metrics_over_cap. */
  metricsMaxOrigins: number;
  /** (origin, ISP) pairs exported by originwatch_origin_isp_failure_ratio; more are counted likewise. */
  metricsMaxOriginIsps: number;
  /** Alertmanager base URLs incidents are sent to (API v2); [] = none. */
  alertmanagers: string[];
  /** Open incidents are re-sent to Alertmanager this often; a firing alert expires 4 intervals after its last send. */
  alertmanagerResendMs: number;
  /** The central's URL as operators open it (alerts' generatorURL); "" = http(s)://<listen address>. */
  externalUrl: string;
}

export const CENTRAL_DEFAULTS: CentralConfig = {
  listen: "127.0.0.1:7400",
  data: "./data/central",
  maxMessageBytes: 1 << 20,
  windowRetentionMs: 15_000,
  lookbackMs: CONFIG_DEFAULTS.lookbackMs,
  exemplarsPerOrigin: 1000,
  evalIntervalMs: 1_000,
  historyRetentionMs: 7 * 24 * 3600_000,
  webhook: "",
  webhookNetwork: false,

  insecure: false,
  allowedHosts: [],
  sniffTimeoutMs: 10_000,
  headersTimeoutMs: 15_000,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  keepaliveMs: 30_000,
  keepaliveTimeoutMs: 10_000,
  maxConnections: 10_000,
  maxConcurrentStreams: 100,
  maxHealthWatches: 1_000,
  maxReflectionStreams: 100,
  originIdleMs: 7 * 24 * 3600_000,
  nodeIdleMs: 7 * 24 * 3600_000,
  ingestRatePerSec: 2000,
  ingestBurst: 4000,
  maxWindowsPerBatch: 2000,
  maxExemplarsPerBatch: 1000,
  maxOriginsPerNode: 1000,
  maxOrigins: 10_000,
  maxNodes: 10_000,
  maxFutureSkewMs: 10_000,
  maxRequestsPerSec: 1_000_000,
  maxRecentWindows: 200_000,
  maxExemplars: 20_000,
  metricsMaxOrigins: 1000,
  metricsMaxOriginIsps: 10_000,
  alertmanagers: [],
  alertmanagerResendMs: 60_000,
  externalUrl: "",
};

/** The exposure and connection-limit fields, validated in one place. */
const LIMIT_FIELDS = [
  "sniffTimeoutMs",
  "headersTimeoutMs",
  "requestTimeoutMs",
  "idleTimeoutMs",
  "keepaliveMs",
  "keepaliveTimeoutMs",
  "maxConnections",
  "maxConcurrentStreams",
  "maxHealthWatches",
  "maxReflectionStreams",
] as const;

function validateExposure(c: CentralConfig): void {
  for (const f of LIMIT_FIELDS) {
    if (!Number.isInteger(c[f]) || c[f] <= 0) throw new CentralError("CENTRAL_BAD_CONFIG", `${f} must be a positive integer, got ${c[f]}`);
  }
  if (c.headersTimeoutMs > c.requestTimeoutMs) {
    throw new CentralError("CENTRAL_BAD_CONFIG", `headersTimeoutMs (${c.headersTimeoutMs}) must be at most requestTimeoutMs (${c.requestTimeoutMs})`);
  }
  if (c.maxConcurrentStreams > 2 ** 31 - 1) throw new CentralError("CENTRAL_BAD_CONFIG", `maxConcurrentStreams must be below 2^31, got ${c.maxConcurrentStreams}`);
  if (typeof c.insecure !== "boolean") throw new CentralError("CENTRAL_BAD_CONFIG", `insecure must be true or false, got ${String(c.insecure)}`);
  if (!Array.isArray(c.allowedHosts)) throw new CentralError("CENTRAL_BAD_CONFIG", "allowedHosts must be a list of host names");
  c.allowedHosts = c.allowedHosts.map((h, i) => {
    const v = String(h).trim().toLowerCase().replace(/^\[|\]$/g, "");
    if (!/^[a-z0-9._:-]{1,253}$/.test(v)) throw new CentralError("CENTRAL_BAD_CONFIG", `allowedHosts[${i}] must be a host name or address without a port, got ${JSON.stringify(h)}`);
    return v;
  });
}

function httpUrl(field: string, v: unknown): string {
  let u: URL | undefined;
  try {
    u = new URL(String(v));
  } catch {
    u = undefined;
  }
  if (!u || (u.protocol !== "http:" && u.protocol !== "https:")) throw new CentralError("CENTRAL_BAD_CONFIG", `${field} must be an absolute http(s) URL, got ${JSON.stringify(v)}`);
  return String(v).replace(/\/+$/, "");
}

/** Metrics caps, Alertmanager URLs and the external URL (issue 15). */
function validateOperatorStack(c: CentralConfig): void {
  for (const f of ["metricsMaxOrigins", "metricsMaxOriginIsps", "alertmanagerResendMs"] as const) {
    if (!Number.isInteger(c[f]) || c[f] <= 0) throw new CentralError("CENTRAL_BAD_CONFIG", `${f} must be a positive integer, got ${c[f]}`);
  }
  if (!Array.isArray(c.alertmanagers)) throw new CentralError("CENTRAL_BAD_CONFIG", "alertmanagers must be a list of URLs");
  c.alertmanagers = c.alertmanagers.map((u, i) => httpUrl(`alertmanagers[${i}]`, u));
  if (c.externalUrl) c.externalUrl = httpUrl("externalUrl", c.externalUrl);
}

/** A listen address (an empty host listens on every interface); the error names the field. */
export function parseHostPort(field: string, value: string): { host: string; port: number } {
  const r = parseAddress(value, { emptyHost: "any" });
  if ("error" in r) throw new CentralError("CENTRAL_BAD_CONFIG", `${field} ${r.error}`);
  return r;
}

export function validateCentralConfig(partial: Partial<CentralConfig>): CentralConfig {
  const c: CentralConfig = { ...CENTRAL_DEFAULTS };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) (c as unknown as Record<string, unknown>)[k] = v;
  parseHostPort("listen", c.listen);
  if (typeof c.data !== "string" || c.data.length === 0) throw new CentralError("CENTRAL_BAD_CONFIG", "data must be a directory path");
  const tls = [c.tlsCert, c.tlsKey, c.tlsCa].filter((v) => v !== undefined && v !== "").length;
  if (tls !== 0 && tls !== 3) throw new CentralError("CENTRAL_BAD_CONFIG", "tlsCert, tlsKey and tlsCa must be given together (--tls-cert, --tls-key, --tls-ca)");
  for (const f of ["maxMessageBytes", "windowRetentionMs", "lookbackMs", "exemplarsPerOrigin", "evalIntervalMs", "historyRetentionMs", "ingestRatePerSec", "ingestBurst",
    "maxWindowsPerBatch", "maxExemplarsPerBatch", "maxOriginsPerNode", "maxOrigins", "maxNodes", "maxFutureSkewMs", "maxRequestsPerSec", "maxRecentWindows", "maxExemplars"] as const) {
    if (!Number.isInteger(c[f]) || c[f] <= 0) throw new CentralError("CENTRAL_BAD_CONFIG", `${f} must be a positive integer, got ${c[f]}`);
  }
  validateExposure(c);
  for (const f of ["originIdleMs", "nodeIdleMs"] as const) {
    if (!Number.isInteger(c[f]) || c[f] < 0) throw new CentralError("CENTRAL_BAD_CONFIG", `${f} must be a non-negative integer (0 = never), got ${c[f]}`);
  }
  if (c.maxOriginsPerNode > c.maxOrigins) {
    throw new CentralError("CENTRAL_BAD_CONFIG", `maxOriginsPerNode (${c.maxOriginsPerNode}) must be at most maxOrigins (${c.maxOrigins})`);
  }
  if (c.windowRetentionMs < c.lookbackMs) {
    throw new CentralError("CENTRAL_BAD_CONFIG", `windowRetentionMs (${c.windowRetentionMs}) must be at least lookbackMs (${c.lookbackMs})`);
  }
  validateOperatorStack(c);
  if (c.webhook) {
    let u: URL | undefined;
    try {
      u = new URL(c.webhook);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:")) {
      throw new CentralError("CENTRAL_BAD_CONFIG", `webhook must be an absolute http(s) URL, got "${c.webhook}"`);
    }
  }
  return c;
}
