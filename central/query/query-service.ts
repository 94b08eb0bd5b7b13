/**
 * QueryService: what operators ask the central. Reads, plus forgetting an
 * origin or a node (forget.ts, admin): the ingest owns the totals and node
 * records, the verdict (through VerdictView) owns states, figures and the
 * recent windows. Every list pages
 * (paging.ts): no answer can exceed the message limit.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { ExemplarSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { type Node, NodeSchema, type OriginStatus, OriginStatusSchema, QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { toConnectError } from "../errors.js";
import type { ExemplarStore } from "../ingest/exemplar-store.js";
import type { Ingest } from "../ingest/ingest-service.js";
import type { NodeRecord, OriginTotals } from "../store/level-store.js";
import type { Forgetter } from "./forget.js";
import type { VerdictView } from "./verdict-view.js";
import { type NodePresence, localPresence } from "./node-presence.js";
import { byCodeUnit, decodePageToken, encodePageToken, pageOf, pageSizeOf } from "./paging.js";

export interface QueryDeps {
  totals: Map<string, OriginTotals>;
  nodes: Map<string, NodeRecord>;
  ingest: Ingest;
  verdict: VerdictView;
  /** Latest exemplars per origin (ListExemplars); absent: UNIMPLEMENTED. */
  exemplars?: ExemplarStore;
  /** Where nodes are connected (default: this central's sessions; cluster mode: any replica's). */
  presence?: NodePresence;
  /** ForgetOrigin / ForgetNode; absent: UNIMPLEMENTED. */
  forget?: Forgetter;
  /** Byte budget of one list page (binary size of its items; default 1 MiB). */
  maxPageBytes?: number;
}

const DEFAULT_PAGE_BYTES = 1 << 20;

function originStatus(deps: QueryDeps, name: string, withBreakdown: boolean): OriginStatus {
  const t = deps.totals.get(name);
  const v = deps.verdict.originVerdict(name);
  const fig = v.figures;
  return create(OriginStatusSchema, {
    name,
    state: v.state,
    faults: v.faults,
    totalRequests: t?.requests ?? 0n,
    totalFailures: t?.failures ?? 0n,
    lastSeen: t ? timestampFromMs(t.lastSeenMs) : undefined,
    stateSince: v.stateSinceMs ? timestampFromMs(v.stateSinceMs) : undefined,
    reason: v.reason,
    requestRate: fig?.requestRate ?? 0,
    failureRatio: fig?.failureRatio ?? 0,
    p95TtfbMs: fig?.p95TtfbMs ?? 0,
    isps: withBreakdown && fig ? fig.isps : [],
    regions: withBreakdown && fig ? fig.regions : [],
    nodes: withBreakdown && fig ? fig.nodes : [],
    confirming: v.confirming,
  });
}

function nodeOf(rec: NodeRecord, connected: boolean, replica: string): Node {
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
    rejectedBatches: BigInt(rec.reportedRejectedBatches || "0"),
    lastRejectReason: rec.lastRejectReason ?? "",
    clockSkewMs: BigInt(Math.trunc(rec.clockSkewMs ?? 0)),
    labelMismatch: rec.labelMismatch ?? "",
    labelMismatches: BigInt(rec.labelMismatches || "0"),
    replica,
  });
}

function originNames(deps: QueryDeps): string[] {
  const names = new Set<string>(deps.totals.keys());
  for (const o of deps.verdict.liveOrigins()) names.add(o);
  return [...names].sort(byCodeUnit);
}

export function queryService(deps: QueryDeps): Partial<ServiceImpl<typeof QueryService>> {
  const maxBytes = deps.maxPageBytes ?? DEFAULT_PAGE_BYTES;
  const presence = deps.presence ?? localPresence(deps.ingest);
  return {
    listOrigins(req) {
      const page = pageOf(
        originNames(deps),
        { list: "ListOrigins", pageSize: req.pageSize, pageToken: req.pageToken, maxBytes },
        (n) => originStatus(deps, n, false),
        (o) => toBinary(OriginStatusSchema, o).length,
      );
      return { origins: page.items, nextPageToken: page.nextPageToken };
    },
    getOrigin(req) {
      if (!req.origin) throw new ConnectError("origin is required", Code.InvalidArgument);
      if (!deps.totals.has(req.origin) && !deps.verdict.isLive(req.origin)) {
        throw new ConnectError(`origin ${JSON.stringify(req.origin)} has never been reported by any sidecar`, Code.NotFound);
      }
      return { origin: originStatus(deps, req.origin, true) };
    },
    listNodes(req) {
      const ids = [...deps.nodes.keys()].sort(byCodeUnit);
      const page = pageOf(
        ids,
        { list: "ListNodes", pageSize: req.pageSize, pageToken: req.pageToken, maxBytes },
        (id) => {
          const rec = deps.nodes.get(id)!;
          const s = presence.sessionElsewhere?.(id);
          const merged = s ? { ...rec, isp: rec.isp || s.isp, region: rec.region || s.region, connectedSinceMs: rec.connectedSinceMs || s.connectedSinceMs || 0 } : rec;
          return nodeOf(merged, presence.isConnected(id), presence.replicaOf(id));
        },
        (n) => toBinary(NodeSchema, n).length,
      );
      return { nodes: page.items, nextPageToken: page.nextPageToken };
    },
    listExemplars(req) {
      if (!deps.exemplars) throw new ConnectError("exemplars are not kept by this central", Code.Unimplemented);
      if (!req.origin) throw new ConnectError("origin is required", Code.InvalidArgument);
      // Newest first. Positions count every exemplar ever added, so new arrivals never shift a page.
      const { list, added } = deps.exemplars.snapshot(req.origin);
      const size = pageSizeOf(req.pageSize || req.limit, 100);
      const list_ = `ListExemplars ${req.origin}`;
      const after = decodePageToken(list_, req.pageToken);
      let pos = after === undefined ? added - 1 : Number(after) - 1;
      if (!Number.isInteger(pos)) throw new ConnectError("page_token is not a next_page_token of ListExemplars", Code.InvalidArgument);
      const oldest = added - list.length;
      const exemplars = [];
      let bytes = 0;
      for (; pos >= oldest && exemplars.length < size; pos--) {
        const e = list[pos - oldest];
        const b = toBinary(ExemplarSchema, e).length;
        if (exemplars.length > 0 && bytes + b > maxBytes) break;
        exemplars.push(e);
        bytes += b;
      }
      return { exemplars, nextPageToken: pos >= oldest && exemplars.length > 0 ? encodePageToken(list_, String(pos + 1)) : "" };
    },
    async forgetOrigin(req) {
      if (!deps.forget) throw new ConnectError("this central cannot forget origins", Code.Unimplemented);
      if (!req.origin) throw new ConnectError("origin is required", Code.InvalidArgument);
      const r = await deps.forget.origin(req.origin, "forgotten by an operator (ForgetOrigin)");
      if (!r) throw new ConnectError(`origin ${JSON.stringify(req.origin)} is not known to this central`, Code.NotFound);
      return { closedIncidents: r.closedIncidents };
    },
    async forgetNode(req) {
      if (!deps.forget) throw new ConnectError("this central cannot forget nodes", Code.Unimplemented);
      if (!req.nodeId) throw new ConnectError("node_id is required", Code.InvalidArgument);
      let known: boolean;
      try {
        known = await deps.forget.node(req.nodeId);
      } catch (err) {
        throw toConnectError(err);
      }
      if (!known) throw new ConnectError(`node ${JSON.stringify(req.nodeId)} is not known to this central`, Code.NotFound);
      return {};
    },
  };
}
