/**
 * QueryService: what operators ask the central. Reads only: the ingest owns
 * the totals and windows, the verdict (through StatusProvider) owns states.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type Fault,
  type Node,
  NodeSchema,
  OriginState,
  type OriginStatus,
  OriginStatusSchema,
  QueryService,
} from "../../proto/gen/originwatch/v1/query_pb.js";
import type { ExemplarStore } from "../ingest/exemplar-store.js";
import type { Ingest } from "../ingest/ingest-service.js";
import type { WindowStore } from "../ingest/window-store.js";
import type { NodeRecord, OriginTotals } from "../store/level-store.js";
import { type LiveFigures, liveFigures } from "./origin-view.js";

/** The verdict of one origin as the query API shows it. */
export interface OriginVerdict {
  state: OriginState;
  faults: Fault[];
  reason: string;
  stateSinceMs: number;
  confirming: boolean;
  /** The verdict's own figures and breakdown over the lookback; the live window figures are used when absent. */
  figures?: Omit<LiveFigures, "requests" | "failures">;
}

export interface StatusProvider {
  verdictOf(origin: string, nowMs: number): OriginVerdict;
}

export interface QueryDeps {
  totals: Map<string, OriginTotals>;
  nodes: Map<string, NodeRecord>;
  windows: WindowStore;
  ingest: Ingest;
  lookbackMs: () => number;
  status: StatusProvider;
  /** Latest exemplars per origin (ListExemplars); absent: UNIMPLEMENTED. */
  exemplars?: ExemplarStore;
}

/**
 * Placeholder until a verdict engine is wired in: HEALTHY when there is
 * traffic in the lookback, NO_DATA otherwise. It never claims DOWN or
 * DEGRADED, since it weighs no evidence.
 */
export function placeholderStatus(windows: WindowStore, lookbackMs: () => number): StatusProvider {
  return {
    verdictOf(origin, nowMs) {
      const has = windows.recent(origin, nowMs - lookbackMs()).length > 0;
      return {
        state: has ? OriginState.HEALTHY : OriginState.NO_DATA,
        faults: [],
        reason: has ? "traffic seen in the lookback" : "no traffic reported in the lookback",
        stateSinceMs: 0,
        confirming: false,
      };
    },
  };
}

export function originStatus(deps: QueryDeps, name: string, nowMs: number, withBreakdown: boolean): OriginStatus {
  const t = deps.totals.get(name);
  const lookback = deps.lookbackMs();
  const v = deps.status.verdictOf(name, nowMs);
  const fig = v.figures ?? liveFigures(deps.windows.recent(name, nowMs - lookback), lookback);
  return create(OriginStatusSchema, {
    name,
    state: v.state,
    faults: v.faults,
    totalRequests: t?.requests ?? 0n,
    totalFailures: t?.failures ?? 0n,
    lastSeen: t ? timestampFromMs(t.lastSeenMs) : undefined,
    stateSince: v.stateSinceMs ? timestampFromMs(v.stateSinceMs) : undefined,
    reason: v.reason,
    requestRate: fig.requestRate,
    failureRatio: fig.failureRatio,
    p95TtfbMs: fig.p95TtfbMs,
    isps: withBreakdown ? fig.isps : [],
    regions: withBreakdown ? fig.regions : [],
    nodes: withBreakdown ? fig.nodes : [],
    confirming: v.confirming,
  });
}

export function nodeOf(rec: NodeRecord, connected: boolean): Node {
  return create(NodeSchema, {
    nodeId: rec.nodeId,
    isp: rec.isp,
    region: rec.region,
    connected,
    lastSeen: timestampFromMs(rec.lastSeenMs),
    version: rec.version,
    appliedConfigVersion: BigInt(rec.appliedConfigVersion || "0"),
    lastNackReason: rec.lastNackReason,
    bufferedBatches: BigInt(rec.bufferedBatches || "0"),
    droppedBatches: BigInt(rec.droppedBatches || "0"),
    origins: rec.origins,
    connectedSince: connected ? timestampFromMs(rec.connectedSinceMs) : undefined,
  });
}

export function originNames(deps: QueryDeps): string[] {
  const names = new Set<string>(deps.totals.keys());
  for (const o of deps.windows.origins()) names.add(o);
  return [...names].sort();
}

export function queryService(deps: QueryDeps): Partial<ServiceImpl<typeof QueryService>> {
  return {
    listOrigins() {
      const now = Date.now();
      return { origins: originNames(deps).map((n) => originStatus(deps, n, now, false)) };
    },
    getOrigin(req) {
      if (!req.origin) throw new ConnectError("origin is required", Code.InvalidArgument);
      if (!deps.totals.has(req.origin) && deps.windows.recent(req.origin, 0).length === 0) {
        throw new ConnectError(`origin ${JSON.stringify(req.origin)} has never been reported by any sidecar`, Code.NotFound);
      }
      return { origin: originStatus(deps, req.origin, Date.now(), true) };
    },
    listNodes() {
      const nodes = [...deps.nodes.values()]
        .sort((a, b) => a.nodeId.localeCompare(b.nodeId))
        .map((n) => {
          const out = nodeOf(n, deps.ingest.isConnected(n.nodeId));
          return out;
        });
      return { nodes };
    },
    listExemplars(req) {
      if (!deps.exemplars) throw new ConnectError("exemplars are not kept by this central", Code.Unimplemented);
      if (!req.origin) throw new ConnectError("origin is required", Code.InvalidArgument);
      return { exemplars: deps.exemplars.latest(req.origin, req.limit) };
    },
  };
}
