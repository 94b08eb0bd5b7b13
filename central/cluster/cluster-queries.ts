/**
 * The query answers of a cluster replica (issue 16) that come from OW_STATUS
 * (origin-status.ts), so ListOrigins, GetOrigin and ListIncidents give the
 * same answer on every replica, the owner included (it reads its own records
 * back, up to one flush behind its engine). Each of them first reads what it
 * needs (GetOrigin its key, the lists the bucket) into the records and totals
 * maps, then answers from them as the embedded central does. The
 * per-ISP/region/node breakdown is not in the record: GetOrigin gets it from
 * the partition's owner (origin-breakdown.ts).
 */
import type { ServiceImpl } from "@connectrpc/connect";
import { CentralError } from "../errors.js";
import { OriginState, type QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { OriginVerdict, VerdictView } from "../query/verdict-view.js";
import { faultToProto, incidentToProto } from "../verdict/proto-convert.js";
import type { IncidentRecord } from "../verdict/hysteresis.js";
import type { OriginStatusRecord, StatusReader } from "./origin-status.js";

const NO_DATA: OriginVerdict = { state: OriginState.NO_DATA, faults: [], reason: "no owner has published a verdict for this origin yet", stateSinceMs: 0, confirming: false };

/**
 * The query API's VerdictView over the OW_STATUS mirror: every replica answers
 * GetOrigin/ListOrigins from what the partition owners published (no
 * per-ISP/region/node breakdown in cluster mode yet).
 */
export function clusterVerdictView(records: Map<string, OriginStatusRecord>): VerdictView {
  return {
    originVerdict(origin) {
      const v = records.get(origin)?.verdict;
      if (!v) return NO_DATA;
      return {
        state: v.state as OriginState,
        faults: v.faults.map(faultToProto),
        reason: v.reason,
        stateSinceMs: v.stateSinceMs,
        confirming: v.confirming,
        figures: { requestRate: v.requestRate, failureRatio: v.failureRatio, p95TtfbMs: v.p95TtfbMs, isps: [], regions: [], nodes: [] },
      };
    },
    liveOrigins() {
      return records.keys();
    },
    isLive(origin) {
      return records.has(origin);
    },
  };
}

/** Incidents the owners hold (open ones and the last closed per track), newest first. */
export function clusterIncidents(records: Map<string, OriginStatusRecord>, origin = "", openOnly = false): IncidentRecord[] {
  const out: IncidentRecord[] = [];
  for (const r of origin ? [records.get(origin)].filter((x) => x !== undefined) : records.values()) {
    for (const i of r.verdict?.incidents ?? []) if (!openOnly || i.open) out.push(i);
  }
  return out.sort((a, b) => b.openedMs - a.openedMs || a.id.localeCompare(b.id));
}

/** A read of OW_STATUS that failed: UNAVAILABLE with the cause, never an answer from a silently stale copy. */
async function fresh(read: Promise<void>): Promise<void> {
  try {
    await read;
  } catch (err) {
    throw new CentralError("CENTRAL_NATS_UNAVAILABLE", `cannot read origin status (${(err as Error).message})`, { cause: err }).toConnectError();
  }
}

type QueryImpl = Partial<ServiceImpl<typeof QueryService>>;

/**
 * ListOrigins and GetOrigin of `base` (query-service.ts over the records and totals maps) with the
 * read of OW_STATUS they need first, and ListIncidents over the records (one page: what the tracks
 * hold is small).
 */
export function clusterQueryHandlers(status: StatusReader, records: Map<string, OriginStatusRecord>, base: QueryImpl): QueryImpl {
  const { listOrigins, getOrigin } = base;
  if (!listOrigins || !getOrigin) throw new Error("clusterQueryHandlers needs the base ListOrigins and GetOrigin");
  return {
    async listOrigins(req, ctx) {
      await fresh(status.all());
      return listOrigins(req, ctx);
    },
    async getOrigin(req, ctx) {
      if (req.origin) await fresh(status.origin(req.origin));
      return getOrigin(req, ctx);
    },
    async listIncidents(req) {
      await fresh(req.origin ? status.origin(req.origin) : status.all());
      return { incidents: clusterIncidents(records, req.origin, req.openOnly).map(incidentToProto), nextPageToken: "" };
    },
  };
}
