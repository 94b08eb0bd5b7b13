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
 * record that does not parse is reported and skipped. A watch that ends or stalls (its
 * consumer did not survive a nats-server kill: the bucket's last sequence is ahead of what
 * the watch delivered for `stallMs`) is replaced by one resuming after the last revision seen.
 */
export async function watchOriginStatus(
  kv: KV,
  totals: Map<string, OriginTotals>,
  records: Map<string, OriginStatusRecord>,
  onError: (err: Error) => void,
  o: { lastSeq?: () => Promise<number>; stallMs?: number } = {},
): Promise<StatusView> {
  let lastRevision = 0;
  let stopped = false;
  let watch = await kv.watch({ key: "o.>" });
  const apply = (e: { key: string; operation: string; revision: number; json<T>(): T }) => {
    lastRevision = e.revision;
    try {
      if (e.operation !== "PUT") {
        const origin = Buffer.from(e.key.slice(2), "base64url").toString();
        totals.delete(origin);
        records.delete(origin);
        return;
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
  };
  const restart = async () => {
    watch.stop();
    watch = await kv.watch({ key: "o.>", resumeFromRevision: lastRevision + 1 });
    void run(watch);
  };
  const run = async (w: typeof watch) => {
    try {
      for await (const e of w) apply(e);
    } catch (err) {
      onError(err as Error);
    }
  };
  void run(watch);
  let checked = -1;
  const timer = setInterval(() => {
    if (stopped || !o.lastSeq) return;
    void o.lastSeq().then(
      (last) => {
        if (last > lastRevision && checked === lastRevision) {
          onError(new Error(`OW_STATUS watch stalled at ${lastRevision} (bucket at ${last}): resuming`));
          return restart();
        }
        checked = lastRevision;
      },
      () => undefined,
    ).catch((err: unknown) => onError(err as Error));
  }, o.stallMs ?? 5_000);
  timer.unref();
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
      watch.stop();
    },
  };
}
