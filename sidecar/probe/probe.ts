/**
 * Confirmation probes (issue 4 step 2), the sidecar side: on a ProbeRequest
 * from the central, send `count` requests to a CONFIGURED origin over the
 * same upstream address the hop uses, classify them with the hop's outcome
 * table, and answer with a ProbeResult. Probe requests never pass through
 * the recorder: they are not part of the passive statistics.
 *
 * Guard rails against a confused central: unknown origins get no request at
 * all (empty result), only safe methods (HEAD, GET, OPTIONS), at most
 * MAX_ATTEMPTS attempts per request and MAX_CONCURRENT probe rounds at once.
 */
import http from "node:http";
import https from "node:https";
import { create } from "@bufbuild/protobuf";
import { Outcome } from "../../proto/gen/originwatch/v1/common_pb.js";
import { type ProbeAttempt, ProbeAttemptSchema, type ProbeRequest, type ProbeResult, ProbeResultSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import type { OriginConfig } from "../config.js";
import { originServername, originTlsOptions } from "../proxy/origin-tls.js";
import { OUTCOME_ENUM, type Phase, classifyError, classifyStatus } from "../proxy/outcome.js";

export const MAX_ATTEMPTS = 10;
export const MAX_CONCURRENT = 4;
const SAFE_METHODS = new Set(["HEAD", "GET", "OPTIONS"]);

let running = 0;

/** Base path of the origin URL joined with the probe path (which must be absolute). */
function targetPath(origin: OriginConfig, path: string): string {
  const p = path.startsWith("/") ? path : "/";
  const base = origin.url.pathname.replace(/\/+$/, "");
  return `${base}${p}`;
}

function attempt(origin: OriginConfig, method: string, path: string, timeoutMs: number): Promise<ProbeAttempt> {
  return new Promise((resolve) => {
    const started = performance.now();
    let phase: Phase = "connect";
    let done = false;
    const finish = (outcome: Outcome, status = 0, ttfb = 0) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      resolve(create(ProbeAttemptSchema, { outcome, status, ttfbMs: ttfb }));
    };
    const isHttps = origin.url.protocol === "https:";
    // The hop's TLS identity (origin-tls.ts): the same SNI and certificate name, so probe and hop agree.
    let tls: ReturnType<typeof originTlsOptions>;
    try {
      tls = originTlsOptions(origin);
    } catch {
      // an unreadable caFile: Node's roots only (the hop refuses to start in that case)
      tls = isHttps ? { servername: originServername(origin), rejectUnauthorized: true } : {};
    }
    const req = (isHttps ? https : http).request({
      protocol: origin.url.protocol,
      hostname: origin.url.hostname.replace(/^\[|\]$/g, ""),
      port: origin.url.port || (isHttps ? 443 : 80),
      method,
      path: targetPath(origin, path),
      headers: { host: origin.preserveHost ? origin.name : origin.url.host, "user-agent": "originwatch-probe/1", "x-originwatch-probe": "1" },
      agent: false,
      ...tls,
    });
    // No first byte within the probe timeout: the probe stalled (a blackholed path answers this way).
    const deadline = setTimeout(() => {
      finish(phase === "connect" ? OUTCOME_ENUM.connect_timeout : Outcome.STALL);
      req.destroy();
    }, timeoutMs);
    deadline.unref();
    req.on("socket", (s) => {
      s.once(isHttps ? "secureConnect" : "connect", () => (phase = "wait"));
      if (isHttps) s.once("connect", () => (phase = "tls"));
    });
    req.on("response", (res) => {
      const ttfb = performance.now() - started;
      phase = "body";
      res.resume();
      res.on("error", () => {});
      finish(OUTCOME_ENUM[classifyStatus(res.statusCode ?? 0)], res.statusCode ?? 0, ttfb);
    });
    req.on("error", (err) => finish(OUTCOME_ENUM[classifyError(err, phase)]));
    req.end();
  });
}

/**
 * Run one probe request. `origin` is the sidecar's configured origin of that
 * name (undefined: not ours, answered with no attempts).
 */
export async function runProbe(req: ProbeRequest, origin: OriginConfig | undefined): Promise<ProbeResult> {
  const result = create(ProbeResultSchema, { probeId: req.probeId, origin: req.origin, attempts: [] });
  const method = (req.method || "HEAD").toUpperCase();
  if (!origin || !SAFE_METHODS.has(method) || running >= MAX_CONCURRENT) return result;
  const count = Math.min(Math.max(req.count || 1, 1), MAX_ATTEMPTS);
  const timeoutMs = Math.min(req.timeoutMs || origin.firstByteTimeoutMs, origin.firstByteTimeoutMs || 30_000);
  running++;
  try {
    result.attempts = await Promise.all(Array.from({ length: count }, () => attempt(origin, method, req.path || "/", timeoutMs)));
  } finally {
    running--;
  }
  return result;
}
