/**
 * Verdict records (plain objects, cheap on the hot path) to contract messages
 * (query.proto), at the API edge only.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Event,
  EventSchema,
  type Fault,
  FaultSchema,
  type HistoryPoint,
  HistoryPointSchema,
  type Incident,
  IncidentSchema,
  type ScopeStats,
  ScopeStatsSchema,
} from "../../proto/gen/originwatch/v1/query_pb.js";
import type { HistoryPointData } from "./history.js";
import type { IncidentRecord } from "./hysteresis.js";
import type { FaultFinding, ScopeFigures } from "./policy.js";
import type { EventRecord } from "./verdict-store.js";

export function faultToProto(f: FaultFinding): Fault {
  return create(FaultSchema, { scope: f.scope, key: f.key, failureRatio: f.failureRatio, reason: f.reason });
}

export function incidentToProto(i: IncidentRecord): Incident {
  return create(IncidentSchema, {
    id: i.id,
    kind: i.kind,
    origin: i.origin,
    scopeKey: i.scopeKey,
    opened: timestampFromMs(i.openedMs),
    closed: i.closedMs ? timestampFromMs(i.closedMs) : undefined,
    open: i.open,
    flapping: i.flapping,
    reopenCount: i.reopenCount,
    peakFailureRatio: i.peakFailureRatio,
    peakP95TtfbMs: i.peakP95TtfbMs,
    dedupeKey: i.dedupeKey,
    summary: i.summary,
  });
}

export function eventToProto(e: EventRecord): Event {
  return create(EventSchema, {
    id: e.id,
    time: timestampFromMs(e.timeMs),
    kind: e.kind,
    origin: e.origin,
    previousState: e.previousState,
    state: e.state,
    faults: e.faults.map(faultToProto),
    incident: e.incident ? incidentToProto(e.incident) : undefined,
    nodeId: e.nodeId,
    message: e.message,
  });
}

export function scopeToProto(s: ScopeFigures): ScopeStats {
  return create(ScopeStatsSchema, {
    key: s.key,
    requests: BigInt(Math.max(0, Math.round(s.requests))),
    failures: BigInt(Math.max(0, Math.round(s.failures))),
    failureRatio: s.failureRatio,
    p95TtfbMs: s.p95TtfbMs,
    failing: s.failing,
    isp: s.isp,
    region: s.region,
  });
}

export function historyPointToProto(p: HistoryPointData): HistoryPoint {
  return create(HistoryPointSchema, {
    time: timestampFromMs(p.timeMs),
    requests: BigInt(p.requests),
    failures: BigInt(p.failures),
    failureRatio: p.failureRatio,
    p95TtfbMs: p.p95TtfbMs,
    state: p.state,
  });
}
