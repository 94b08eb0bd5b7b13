/**
 * Validation of inbound ingest messages before any use. Two kinds of answer:
 * - a protocol violation (a Hello that cannot identify a node or declares no
 *   origins, a seq that breaks the (node, seq) identity) throws a CentralError:
 *   the stream ends with its status;
 * - a Batch whose content is invalid or over a cap gets a Refusal: the central
 *   answers BatchReject{seq, code, reason}, never counts it, and reads on.
 * Every reason names the field.
 */
import type { Exemplar, NodeIdentity } from "../../proto/gen/originwatch/v1/common_pb.js";
import { COUNT_FIELDS, isKnownOutcome } from "../../proto/outcomes.js";
import type { ConfigAck, Hello, WindowSummary } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { F, type WindowColumns, columnsOfBatch, completedAt } from "./window-columns.js";
import { CentralError, type CentralErrorCode } from "../errors.js";
import { DEFAULT_BOUNDS_MS } from "../../proto/histogram.js";
import { labelProblem, originProblem } from "../../proto/names.js";
import { type IngestLimitOptions, exemplarsPerBatchOf, windowsPerBatchOf } from "./limits.js";

/** Longest window a sidecar may report (config push allows at most 60 s; replays keep their length). */
const MAX_WINDOW_LENGTH_MS = 3_600_000;

/** Why one batch is refused for good (BatchReject.code and .reason). */
export interface Refusal {
  code: CentralErrorCode;
  reason: string;
}

function bad(message: string): never {
  throw new CentralError("CENTRAL_BAD_MESSAGE", message);
}

const quote = (s: string) => JSON.stringify(s.slice(0, 64));

/**
 * The node a Hello names, or a CentralError: INVALID_ARGUMENT for a bad label
 * or no declared origins, RESOURCE_EXHAUSTED (CENTRAL_ORIGIN_LIMIT) for more
 * origins than one node may declare.
 */
export function validateHello(hello: Hello, limits: Pick<IngestLimitOptions, "maxOriginsPerNode">): NodeIdentity {
  const n = hello.node;
  if (!n) bad("hello.node is required");
  const label = labelProblem("hello.node.node_id", n.nodeId) ?? labelProblem("hello.node.isp", n.isp) ?? labelProblem("hello.node.region", n.region);
  if (label) bad(label);
  if (n.version.length > 64) bad("hello.node.version must be at most 64 characters");
  if (hello.origins.length === 0) bad("hello.origins must name at least one origin: a sidecar reports only on the origins it declares");
  if (hello.origins.length > limits.maxOriginsPerNode) {
    throw new CentralError("CENTRAL_ORIGIN_LIMIT", `hello.origins has ${hello.origins.length} entries, more than the ${limits.maxOriginsPerNode} one node may declare (--max-origins-per-node)`);
  }
  hello.origins.forEach((o, i) => {
    const problem = originProblem(`hello.origins[${i}]`, o);
    if (problem) bad(problem);
  });
  if (hello.capabilities.length > 64 || hello.capabilities.some((c) => c.length > 64)) bad("hello.capabilities must have at most 64 entries of at most 64 characters");
  return n;
}

/** A seq this far above the high-water mark is not a replay gap or a restart: refuse it. */
export const MAX_SEQ_JUMP = 1n << 32n;

/**
 * (node_id, seq) is the identity exactly-once counting rests on: a seq of 0 or
 * one that jumps more than 2^32 above the high-water mark (it would make every
 * later real batch a "duplicate") ends the stream.
 */
export function checkSeq(seq: bigint, highWater: bigint): void {
  if (seq === 0n) bad("batch.seq must be at least 1");
  if (seq > highWater + MAX_SEQ_JUMP) bad(`batch.seq ${seq} jumps more than 2^32 above the high-water mark ${highWater}`);
}

export interface BatchContext {
  nowMs: number;
  /** Origins the sidecar declared in its hello: anything else is refused. */
  declared: ReadonlySet<string>;
  limits: IngestLimitOptions;
}

class Refused extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.reason);
  }
}

function refuse(code: CentralErrorCode, reason: string): never {
  throw new Refused({ code, reason });
}


/** What validation reads of a batch: its windows (as columns, or as the contract's messages) and exemplars. */
export interface BatchContent {
  windows: WindowColumns | WindowSummary[];
  exemplars: Exemplar[];
}

/** Origin names already found valid (checked once, not per window); cleared when it grows large. */
const goodOrigins = new Set<string>();

/** Why the batch must be refused for good, or undefined when it may be counted. */
export function batchProblem(batch: BatchContent, ctx: BatchContext): Refusal | undefined {
  try {
    checkBatch(Array.isArray(batch.windows) ? columnsOfBatch({ windows: batch.windows }) : (batch.windows as WindowColumns), batch.exemplars, ctx);
    return undefined;
  } catch (err) {
    if (err instanceof Refused) return err.refusal;
    throw err;
  }
}

function checkBatch(w: WindowColumns, exemplars: Exemplar[], { nowMs, declared, limits }: BatchContext): void {
  const maxWindows = windowsPerBatchOf(limits);
  if (w.length > maxWindows) {
    refuse("CENTRAL_BATCH_TOO_LARGE", `batch.windows has ${w.length} entries, more than ${maxWindows} (Welcome.limits.max_windows_per_batch)`);
  }
  const maxExemplars = exemplarsPerBatchOf(limits);
  if (exemplars.length > maxExemplars) {
    refuse("CENTRAL_BATCH_TOO_LARGE", `batch.exemplars has ${exemplars.length} entries, more than ${maxExemplars} (Welcome.limits.max_exemplars_per_batch)`);
  }
  const latest = nowMs + limits.maxFutureSkewMs;
  for (let i = 0; i < w.length; i++) checkWindow(w, i, declared, limits, latest, nowMs);
  exemplars.forEach((e, i) => {
    const f = `batch.exemplars[${i}]`;
    const originBad = originProblem(`${f}.origin`, e.origin);
    if (originBad) refuse("CENTRAL_BAD_BATCH", originBad);
    if (!declared.has(e.origin)) refuse("CENTRAL_ORIGIN_NOT_DECLARED", `${f}.origin ${quote(e.origin)} was not declared in hello.origins`);
    if (e.path.length > 2048 || e.path.includes("?")) refuse("CENTRAL_BAD_BATCH", `${f}.path must be a path without query string, at most 2048 characters`);
    if (e.method.length > 32) refuse("CENTRAL_BAD_BATCH", `${f}.method is longer than 32 characters`);
    if (e.upstreamAddr.length > 300) refuse("CENTRAL_BAD_BATCH", `${f}.upstream_addr is longer than 300 characters`);
    if (e.nodeId.length > 128) refuse("CENTRAL_BAD_BATCH", `${f}.node_id is longer than 128 characters`);
    if (e.status > 999) refuse("CENTRAL_BAD_BATCH", `${f}.status must be at most 999, got ${e.status}`);
    if (!isKnownOutcome(e.outcome)) refuse("CENTRAL_BAD_BATCH", `${f}.outcome ${e.outcome} is not a known Outcome`);
    if (Number(e.timeUnixMs) > latest) refuse("CENTRAL_WINDOW_SKEW", `${f}.time_unix_ms is ${Number(e.timeUnixMs) - nowMs} ms ahead of the central's clock (at most ${limits.maxFutureSkewMs})`);
    if (!Number.isFinite(e.ttfbMs) || !Number.isFinite(e.totalMs) || e.ttfbMs < 0 || e.totalMs < 0) refuse("CENTRAL_BAD_BATCH", `${f} has a negative or non-finite duration`);
  });
}

/** A window's field name, built only for a refusal. */
function at(i: number): string {
  return `batch.windows[${i}]`;
}

/** Window i's checks (this runs for every window: no closure or string unless refused). */
function checkWindow(w: WindowColumns, i: number, declared: ReadonlySet<string>, limits: IngestLimitOptions, latest: number, nowMs: number): void {
  {
    const origin = w.origin[i];
    if (!goodOrigins.has(origin)) {
      const originBad = originProblem(`${at(i)}.origin`, origin);
      if (originBad) refuse("CENTRAL_BAD_BATCH", originBad);
      if (goodOrigins.size >= 100_000) goodOrigins.clear();
      goodOrigins.add(origin);
    }
    if (!declared.has(origin)) refuse("CENTRAL_ORIGIN_NOT_DECLARED", `${at(i)}.origin ${quote(origin)} was not declared in hello.origins`);
    const lengthMs = w.lengthMs[i];
    if (lengthMs === 0 || lengthMs > MAX_WINDOW_LENGTH_MS) refuse("CENTRAL_BAD_BATCH", `${at(i)}.length_ms must be in 1..${MAX_WINDOW_LENGTH_MS}, got ${lengthMs}`);
    const start = w.startMs[i];
    if (start <= 0) refuse("CENTRAL_BAD_BATCH", `${at(i)}.start_unix_ms must be positive`);
    if (start > latest) refuse("CENTRAL_WINDOW_SKEW", `${at(i)}.start_unix_ms is ${start - nowMs} ms ahead of the central's clock (at most ${limits.maxFutureSkewMs}; correct the clock from server_time_unix_ms)`);
    if (w.extraCounts[i] > 0) refuse("CENTRAL_BAD_BATCH", `${at(i)}.packed_counts has ${w.packedLength[i]} entries, more than the ${COUNT_FIELDS.length} outcome fields this central knows`);
    const cap = Math.ceil((limits.maxRequestsPerSec * lengthMs) / 1000);
    const o = i * F;
    for (let k = 0; k < F; k++) {
      const v = w.counts[o + k];
      if (v > cap) refuse("CENTRAL_IMPLAUSIBLE_COUNT", `${at(i)}.counts.${COUNT_FIELDS[k]} is ${v}, more than ${cap} plausible in ${lengthMs} ms (--max-requests-per-sec ${limits.maxRequestsPerSec})`);
    }
    const completed = completedAt(w, i);
    if (completed > cap) refuse("CENTRAL_IMPLAUSIBLE_COUNT", `${at(i)}.counts add up to ${completed} requests, more than ${cap} plausible in ${lengthMs} ms (--max-requests-per-sec ${limits.maxRequestsPerSec})`);
    const h = w.histograms.get(i);
    if (!h) {
      // The compact form, already checked for shape by the decoder: only its claimed samples remain.
      if (w.ttfbClaimed[i] > cap) refuse("CENTRAL_IMPLAUSIBLE_COUNT", `${at(i)}.ttfb counts ${w.ttfbClaimed[i]} requests, more than ${cap} plausible in ${lengthMs} ms`);
      return;
    }
    if (h.boundsSchema > 1) refuse("CENTRAL_BAD_BATCH", `${at(i)}.ttfb.bounds_schema must be 0 or 1, got ${h.boundsSchema}`);
    if (h.boundsMs.length > 256) refuse("CENTRAL_BAD_BATCH", `${at(i)}.ttfb.bounds_ms has more than 256 entries`);
    const buckets = h.boundsSchema === 1 ? DEFAULT_BOUNDS_MS.length + 1 : h.boundsMs.length + 1;
    if (h.boundsSchema === 1 && h.boundsMs.length !== 0) refuse("CENTRAL_BAD_BATCH", `${at(i)}.ttfb.bounds_ms must be empty with bounds_schema 1`);
    if (h.counts.length !== 0 && h.counts.length !== buckets) refuse("CENTRAL_BAD_BATCH", `${at(i)}.ttfb.counts must have len(bounds_ms)+1 entries`);
    if (h.sparseIndex.length !== h.sparseCount.length) refuse("CENTRAL_BAD_BATCH", `${at(i)}.ttfb.sparse_index and sparse_count must have the same length`);
    if (h.sparseIndex.length > 0 && h.boundsSchema !== 1) refuse("CENTRAL_BAD_BATCH", `${at(i)}.ttfb.sparse_index needs bounds_schema 1`);
    if (!Number.isFinite(h.sumMs) || h.sumMs < 0) refuse("CENTRAL_BAD_BATCH", `${at(i)}.ttfb.sum_ms must be a finite non-negative number`);
    let total = 0n;
    for (const n of h.counts) total += n;
    for (let k = 0; k < h.sparseIndex.length; k++) {
      if (h.sparseIndex[k] >= buckets) refuse("CENTRAL_BAD_BATCH", `${at(i)}.ttfb.sparse_index[${k}] must be below ${buckets}, got ${h.sparseIndex[k]}`);
      if (k > 0 && h.sparseIndex[k] <= h.sparseIndex[k - 1]) refuse("CENTRAL_BAD_BATCH", `${at(i)}.ttfb.sparse_index must be strictly ascending`);
      total += BigInt(h.sparseCount[k]);
    }
    const capN = BigInt(cap);
    if (total > capN || h.count > capN) refuse("CENTRAL_IMPLAUSIBLE_COUNT", `${at(i)}.ttfb counts ${total > h.count ? total : h.count} requests, more than ${cap} plausible in ${lengthMs} ms`);
  }
}

export function validateConfigAck(ack: ConfigAck): void {
  if (ack.version === 0n) bad("config_ack.version must be at least 1");
  if (ack.reason.length > 4096) bad("config_ack.reason is longer than 4096 characters");
}
