/**
 * Validation of inbound ingest messages before any use: each error names the
 * field, and the stream ends with INVALID_ARGUMENT rather than corrupting state.
 */
import type { NodeIdentity } from "../../proto/gen/originwatch/v1/common_pb.js";
import type { Batch, ConfigAck, Hello } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { CentralError } from "../errors.js";
import { DEFAULT_BOUNDS_MS } from "../../proto/histogram.js";
import { LABEL_PATTERN, ORIGIN_PATTERN } from "../../proto/names.js";

const LABEL = LABEL_PATTERN;
const ORIGIN = ORIGIN_PATTERN;
const MAX_WINDOWS = 10_000;
const MAX_FUTURE_MS = 5 * 60_000;
const MAX_EXEMPLARS = 10_000;
/** More requests than this in one window of one node is not a real measurement. */
const MAX_WINDOW_REQUESTS = 1n << 40n;

function bad(message: string): never {
  throw new CentralError("CENTRAL_BAD_MESSAGE", message);
}

export function validateHello(hello: Hello): NodeIdentity {
  const n = hello.node;
  if (!n) bad("hello.node is required");
  if (!LABEL.test(n.nodeId)) bad(`hello.node.node_id must match ${LABEL.source}, got ${JSON.stringify(n.nodeId.slice(0, 64))}`);
  if (!LABEL.test(n.isp)) bad(`hello.node.isp must match ${LABEL.source}, got ${JSON.stringify(n.isp.slice(0, 64))}`);
  if (!LABEL.test(n.region)) bad(`hello.node.region must match ${LABEL.source}, got ${JSON.stringify(n.region.slice(0, 64))}`);
  if (n.version.length > 64) bad("hello.node.version must be at most 64 characters");
  if (hello.origins.length > 10_000) bad("hello.origins has more than 10000 entries");
  hello.origins.forEach((o, i) => {
    if (!ORIGIN.test(o)) bad(`hello.origins[${i}] must be a host name, got ${JSON.stringify(o.slice(0, 64))}`);
  });
  return n;
}

/** Distinct origins one batch may report on. */
const MAX_ORIGINS_PER_BATCH = 1000;

/**
 * `declared`: the origins the sidecar named in its hello; when it named any,
 * a window for another origin is refused (no spraying of made-up origins).
 */
export function validateBatch(batch: Batch, nowMs: number, declared?: ReadonlySet<string>): void {
  if (batch.seq === 0n) bad("batch.seq must be at least 1");
  if (batch.windows.length > MAX_WINDOWS) bad(`batch.windows has ${batch.windows.length} entries, more than ${MAX_WINDOWS}`);
  const origins = new Set<string>();
  batch.windows.forEach((w, i) => {
    if (!ORIGIN.test(w.origin)) bad(`batch.windows[${i}].origin must be a host name, got ${JSON.stringify(w.origin.slice(0, 64))}`);
    if (declared && declared.size > 0 && !declared.has(w.origin)) bad(`batch.windows[${i}].origin ${JSON.stringify(w.origin)} was not declared in hello.origins`);
    origins.add(w.origin);
    if (origins.size > MAX_ORIGINS_PER_BATCH) bad(`batch.windows name more than ${MAX_ORIGINS_PER_BATCH} distinct origins`);
    if (w.lengthMs === 0 || w.lengthMs > 3_600_000) bad(`batch.windows[${i}].length_ms must be in 1..3600000, got ${w.lengthMs}`);
    const start = Number(w.startUnixMs);
    if (start <= 0) bad(`batch.windows[${i}].start_unix_ms must be positive`);
    if (start > nowMs + MAX_FUTURE_MS) bad(`batch.windows[${i}].start_unix_ms is ${start - nowMs} ms in the future`);
    if (!w.counts) bad(`batch.windows[${i}].counts is required`);
    for (const [k, v] of Object.entries(w.counts)) {
      if (typeof v === "bigint" && v > MAX_WINDOW_REQUESTS) bad(`batch.windows[${i}].counts.${k} is absurd (${v})`);
    }
    const h = w.ttfb;
    if (h) {
      const f = `batch.windows[${i}].ttfb`;
      if (h.boundsSchema > 1) bad(`${f}.bounds_schema must be 0 or 1, got ${h.boundsSchema}`);
      const buckets = h.boundsSchema === 1 ? DEFAULT_BOUNDS_MS.length + 1 : h.boundsMs.length + 1;
      if (h.boundsSchema === 1 && h.boundsMs.length !== 0) bad(`${f}.bounds_ms must be empty with bounds_schema 1`);
      if (h.counts.length !== 0 && h.counts.length !== buckets) bad(`${f}.counts must have len(bounds_ms)+1 entries`);
      if (h.sparseIndex.length !== h.sparseCount.length) bad(`${f}.sparse_index and sparse_count must have the same length`);
      if (h.sparseIndex.length > 0 && h.boundsSchema !== 1) bad(`${f}.sparse_index needs bounds_schema 1`);
      for (let k = 0; k < h.sparseIndex.length; k++) {
        if (h.sparseIndex[k] >= buckets) bad(`${f}.sparse_index[${k}] must be below ${buckets}, got ${h.sparseIndex[k]}`);
        if (k > 0 && h.sparseIndex[k] <= h.sparseIndex[k - 1]) bad(`${f}.sparse_index must be strictly ascending`);
      }
    }
  });
}

export function validateExemplars(batch: Batch, nowMs: number, declared?: ReadonlySet<string>): void {
  if (batch.exemplars.length > MAX_EXEMPLARS) bad(`batch.exemplars has ${batch.exemplars.length} entries, more than ${MAX_EXEMPLARS}`);
  batch.exemplars.forEach((e, i) => {
    if (!ORIGIN.test(e.origin)) bad(`batch.exemplars[${i}].origin must be a host name`);
    if (declared && declared.size > 0 && !declared.has(e.origin)) bad(`batch.exemplars[${i}].origin ${JSON.stringify(e.origin)} was not declared in hello.origins`);
    if (e.path.length > 2048 || e.path.includes("?")) bad(`batch.exemplars[${i}].path must be a path without query string, at most 2048 characters`);
    if (e.method.length > 32) bad(`batch.exemplars[${i}].method is longer than 32 characters`);
    if (e.upstreamAddr.length > 300) bad(`batch.exemplars[${i}].upstream_addr is longer than 300 characters`);
    if (Number(e.timeUnixMs) > nowMs + MAX_FUTURE_MS) bad(`batch.exemplars[${i}].time_unix_ms is in the future`);
    if (!Number.isFinite(e.ttfbMs) || !Number.isFinite(e.totalMs) || e.ttfbMs < 0 || e.totalMs < 0) bad(`batch.exemplars[${i}] has a negative or non-finite duration`);
  });
}

export function validateConfigAck(ack: ConfigAck): void {
  if (ack.version === 0n) bad("config_ack.version must be at least 1");
  if (ack.reason.length > 4096) bad("config_ack.reason is longer than 4096 characters");
}

/** A seq this far above the high-water mark is not a replay gap or a restart: refuse it. */
export const MAX_SEQ_JUMP = 1n << 32n;
