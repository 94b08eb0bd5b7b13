/**
 * GetOrigin's per-ISP / region / node breakdown in cluster mode (issue 16).
 * Only the owner of the origin's partition has the lookback it is computed
 * from (its VerdictEngine), so the replica asked asks the owner: core NATS
 * request/reply on `ow.query.<owner replica id>` (JSON, not JetStream), the
 * owner found in the lease bucket (`OW_LEASES` `p.<p>`). The owner answers
 * from its engine, as one central's GetOrigin does; a replica asked for an
 * origin it does not own (any more, or not caught up yet) says so.
 *
 * When the owner does not answer within the timeout (default 1 s), is not
 * known, or refuses, GetOrigin still answers — the state, totals and figures
 * from OW_STATUS — with the breakdown empty and `breakdown_note` saying why:
 *   - "no replica owns partition P right now (a takeover is under way)"
 *   - "replica B, the owner of partition P, did not answer: nothing listens on ow.query.B"
 *   - "replica B, the owner of partition P, did not answer within N ms"
 *   - "replica B does not own partition P (any more): ..."
 */
import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import type { KV } from "@nats-io/kv";
import type { Msg, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { GetOriginResponseSchema, type QueryService, type ScopeStats, ScopeStatsSchema } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { VerdictView } from "../query/verdict-view.js";
import type { ServiceImpl } from "@connectrpc/connect";
import type { ClusterContext } from "./cluster-context.js";
import { LEASE_BUCKET, leaseKey } from "./partition-lease.js";
import { partitionOf } from "./partition.js";

/** The subject replica `id` answers breakdown requests on. */
export const querySubject = (replicaId: string) => `ow.query.${replicaId}`;

export const BREAKDOWN_TIMEOUT_MS = 1_000;

/** An origin's breakdown over the owner's lookback. */
export interface Breakdown {
  isps: ScopeStats[];
  regions: ScopeStats[];
  nodes: ScopeStats[];
}

/** The breakdown, or why there is none (`note`; "" when the owner has no figures for the origin). */
export type BreakdownAnswer = { breakdown: Breakdown } | { note: string };

type GetOrigin = ServiceImpl<typeof QueryService>["getOrigin"];

type Reply = { isps: JsonValue[]; regions: JsonValue[]; nodes: JsonValue[] } | { error: string };

export interface OriginBreakdownOptions {
  /** This replica's engine (VerdictService): what it answers from. */
  verdict: VerdictView;
  /** True while this replica owns the origin's partition and has caught up. */
  owns(origin: string): boolean;
  log: Logger;
  timeoutMs?: number;
}

export interface OriginBreakdown {
  /** The breakdown from the partition's owner (this replica, or a request to it). */
  of(origin: string): Promise<BreakdownAnswer>;
  close(): void;
}

/**
 * GetOrigin with the owner's breakdown: the handler's answer (state, totals,
 * figures from OW_STATUS) with isps / regions / nodes from the owner, or with
 * `breakdown_note` saying why they are empty.
 */
export function withOwnerBreakdown(base: GetOrigin, breakdown: OriginBreakdown): GetOrigin {
  return async (req, context) => {
    const res = create(GetOriginResponseSchema, await base(req, context));
    const b = await breakdown.of(req.origin);
    if ("note" in b) res.breakdownNote = b.note;
    else if (res.origin) Object.assign(res.origin, b.breakdown);
    return res;
  };
}

export async function startOriginBreakdown(ctx: ClusterContext, o: OriginBreakdownOptions): Promise<OriginBreakdown> {
  const me = ctx.replicaId;
  const timeoutMs = o.timeoutMs ?? BREAKDOWN_TIMEOUT_MS;
  const leases: KV = await ctx.kvm.open(LEASE_BUCKET);
  const local = (origin: string): Breakdown => {
    const f = o.verdict.originVerdict(origin).figures;
    return { isps: f?.isps ?? [], regions: f?.regions ?? [], nodes: f?.nodes ?? [] };
  };
  const answer = (m: Msg) => {
    let origin: string;
    try {
      origin = String(m.json<{ origin: unknown }>().origin ?? "");
    } catch {
      m.respond(JSON.stringify({ error: `replica ${me}: malformed breakdown request` } satisfies Reply));
      return;
    }
    if (!o.owns(origin)) {
      m.respond(JSON.stringify({ error: `replica ${me} does not own partition ${partitionOf(origin, ctx.options.partitions)} (any more, or it is still replaying)` } satisfies Reply));
      return;
    }
    const b = local(origin);
    const json = (xs: ScopeStats[]) => xs.map((x) => toJson(ScopeStatsSchema, x));
    m.respond(JSON.stringify({ isps: json(b.isps), regions: json(b.regions), nodes: json(b.nodes) } satisfies Reply));
  };
  const sub: Subscription = ctx.nc.subscribe(querySubject(me), { callback: (err, m) => (err ? o.log.error({ err }, "breakdown subscription failed") : answer(m)) });

  return {
    async of(origin) {
      if (o.owns(origin)) return { breakdown: local(origin) };
      const p = partitionOf(origin, ctx.options.partitions);
      const lease = await leases.get(leaseKey(p)).catch(() => null);
      const owner = lease?.operation === "PUT" ? lease.string() : "";
      if (!owner) return { note: `no replica owns partition ${p} right now (a takeover is under way)` };
      if (owner === me) return { note: `this replica owns partition ${p} but is still replaying it` };
      try {
        const m = await ctx.nc.request(querySubject(owner), JSON.stringify({ origin }), { timeout: timeoutMs });
        const r = m.json<Reply>();
        if ("error" in r) return { note: r.error };
        const scope = (xs: JsonValue[]) => xs.map((x) => fromJson(ScopeStatsSchema, x));
        return { breakdown: { isps: scope(r.isps), regions: scope(r.regions), nodes: scope(r.nodes) } };
      } catch (err) {
        const e = err as Error & { isNoResponders?: () => boolean };
        const noResponders = e.isNoResponders?.() === true || /no responders/i.test(e.message);
        const why = noResponders ? `: nothing listens on ${querySubject(owner)}` : /timeout/i.test(e.name + e.message) ? ` within ${timeoutMs} ms` : `: ${e.message}`;
        return { note: `replica ${owner}, the owner of partition ${p}, did not answer${why}` };
      }
    },
    close: () => sub.unsubscribe(),
  };
}
