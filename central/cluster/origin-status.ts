/**
 * Per-origin status readable from every replica (issue 16): the partition
 * owner writes each origin's totals to KV `OW_STATUS` (`o.<b64url origin>`,
 * JSON), and every replica watches the bucket into its own totals map, the one
 * its queries (ListOrigins, GetOrigin) read. So every replica answers the
 * same, a read never waits on another replica, and an owner's death leaves the
 * last value readable until the next owner writes.
 *
 * Why KV and not request/reply to the owner: reads are local and survive an
 * owner change; the cost is one put per changed origin per flush (1 s), which
 * is per origin, not per node or window.
 */
import type { KV } from "@nats-io/kv";
import type { OriginTotals } from "../store/level-store.js";
import type { IncidentRecord } from "../verdict/hysteresis.js";
import type { FaultFinding } from "../verdict/policy.js";
import type { ClusterContext } from "./cluster-context.js";

export const STATUS_BUCKET = "OW_STATUS";
export const statusKey = (origin: string) => `o.${Buffer.from(origin).toString("base64url")}`;

/** What an owner publishes for one origin (decimal strings: 64-bit counts). */
export interface OriginStatusRecord {
  origin: string;
  partition: number;
  requests: string;
  failures: string;
  firstSeenMs: number;
  lastSeenMs: number;
  /** The owner's verdict (absent: the owner runs no verdict yet). */
  verdict?: VerdictStatusRecord;
  /** The replica that wrote it and the window-log sequence it reflects. */
  owner: string;
  streamSeq: number;
}

/** An origin's verdict as its owner sees it: what ListOrigins/GetOrigin/ListIncidents show on every replica. */
export interface VerdictStatusRecord {
  /** OriginState number. */
  state: number;
  stateSinceMs: number;
  reason: string;
  confirming: boolean;
  faults: FaultFinding[];
  requestRate: number;
  failureRatio: number;
  p95TtfbMs: number;
  /** The origin's incidents its tracks hold: open ones, and the last closed per track (flap window). */
  incidents: IncidentRecord[];
}

export async function openStatusBucket(ctx: ClusterContext): Promise<KV> {
  return ctx.kvm.create(STATUS_BUCKET, { replicas: ctx.options.replicas, history: 1 });
}

export function toTotals(r: OriginStatusRecord): OriginTotals {
  return { requests: BigInt(r.requests), failures: BigInt(r.failures), firstSeenMs: r.firstSeenMs, lastSeenMs: r.lastSeenMs };
}

export interface StatusView {
  stop(): void;
}

/**
 * Mirrors OW_STATUS into `totals` and `records` (what the queries read) until stopped. A
 * record that does not parse is reported and skipped.
 */
export async function watchOriginStatus(kv: KV, totals: Map<string, OriginTotals>, records: Map<string, OriginStatusRecord>, onError: (err: Error) => void): Promise<StatusView> {
  const watch = await kv.watch({ key: "o.>" });
  void (async () => {
    for await (const e of watch) {
      try {
        if (e.operation !== "PUT") {
          const origin = Buffer.from(e.key.slice(2), "base64url").toString();
          totals.delete(origin);
          records.delete(origin);
          continue;
        }
        const r = e.json<OriginStatusRecord>();
        records.set(r.origin, r);
        const t = toTotals(r);
        const cur = totals.get(r.origin);
        if (cur) Object.assign(cur, t);
        else totals.set(r.origin, t);
      } catch (err) {
        onError(err as Error);
      }
    }
  })().catch((err) => onError(err as Error));
  return { stop: () => watch.stop() };
}
