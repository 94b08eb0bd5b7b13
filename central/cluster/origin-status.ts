/**
 * Per-origin status readable from every replica (issue 16): the partition
 * owner writes each origin's record (totals, verdict, figures, incidents) to KV
 * `OW_STATUS` (`o.<b64url origin>`, JSON), and any replica reads it when a
 * query asks (createStatusReader): GetOrigin one key, ListOrigins/ListIncidents
 * and /metrics the whole bucket, shared by concurrent callers and reused for
 * `maxAgeMs`. So every replica answers the same, and an owner's death leaves
 * the last record readable until the next owner writes.
 *
 * Why read on demand and not mirror the bucket into every replica: a mirror
 * costs every replica (and every nats-server delivering to it) one decode per
 * put whether anyone asks or not — the work grows with the number of replicas
 * (central/cluster/README.md, Cost). Why KV and not request/reply to the
 * owner: reads survive an owner change and never wait on another replica.
 */
import { DeliverPolicy } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { OriginTotals } from "../store/level-store.js";
import type { IncidentRecord } from "../verdict/hysteresis.js";
import type { FaultFinding } from "../verdict/policy.js";
import type { ClusterContext } from "./cluster-context.js";

export const STATUS_BUCKET = "OW_STATUS";
const STATUS_STREAM = `KV_${STATUS_BUCKET}`;
const KEY_PREFIX = "o.";
export const statusKey = (origin: string) => `${KEY_PREFIX}${Buffer.from(origin).toString("base64url")}`;

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

/**
 * The part of a verdict whose change is written at once (every replica must show it promptly): state,
 * since when, confirming, which faults, and the incidents' identity and lifecycle. Figures, reasons
 * (they quote figures) and incident peaks move every second and are written at the slower cadence.
 */
export function verdictKey(v: VerdictStatusRecord | undefined): string {
  if (!v) return "";
  return JSON.stringify([
    v.state,
    v.stateSinceMs,
    v.confirming,
    v.faults.map((f) => `${f.scope}:${f.key}`),
    v.incidents.map((i) => [i.id, i.kind, i.scopeKey, i.open, i.closedMs, i.flapping, i.reopenCount]),
  ]);
}

export async function openStatusBucket(ctx: ClusterContext): Promise<KV> {
  return ctx.kvm.create(STATUS_BUCKET, { replicas: ctx.options.replicas, history: 1 });
}

export function toTotals(r: OriginStatusRecord): OriginTotals {
  return { requests: BigInt(r.requests), failures: BigInt(r.failures), firstSeenMs: r.firstSeenMs, lastSeenMs: r.lastSeenMs };
}

/**
 * What a replica's queries read of OW_STATUS: the records and the totals maps
 * (the query API's shapes, filled here — converted once, at the edge), brought
 * up to date by `origin` or `all` before a query answers.
 */
export interface StatusReader {
  /** Reads one origin's record now (GetOrigin); its absence removes it from the maps. */
  origin(origin: string): Promise<void>;
  /**
   * Reads every record (ListOrigins, ListIncidents, /metrics, the age-out sweep) unless a read
   * finished less than `maxAgeMs` ago; concurrent callers share one read. The maps then hold exactly
   * the bucket's origins.
   */
  all(): Promise<void>;
}

export interface StatusReaderOptions {
  /** A whole-bucket read this recent is reused (default 250 ms). */
  maxAgeMs?: number;
  /** A whole-bucket read not finished after this fails (default 5 s): the maps keep what they had. */
  timeoutMs?: number;
}

/**
 * The replica's StatusReader over `kv`. A read that fails (NATS unreachable, a consumer that does not
 * deliver within `timeoutMs`) rejects with the cause and leaves the maps as they were; a record that
 * does not parse is left out and reported through `onError`.
 */
export function createStatusReader(
  ctx: Pick<ClusterContext, "js" | "jsm">,
  kv: KV,
  maps: { totals: Map<string, OriginTotals>; records: Map<string, OriginStatusRecord> },
  onError: (err: Error) => void,
  o: StatusReaderOptions = {},
): StatusReader {
  const maxAgeMs = o.maxAgeMs ?? 250;
  const timeoutMs = o.timeoutMs ?? 5_000;
  const set = (r: OriginStatusRecord) => {
    maps.records.set(r.origin, r);
    const t = toTotals(r);
    const cur = maps.totals.get(r.origin);
    if (cur) Object.assign(cur, t);
    else maps.totals.set(r.origin, t);
  };
  const parse = (bytes: Uint8Array): OriginStatusRecord | undefined => {
    try {
      return JSON.parse(Buffer.from(bytes).toString()) as OriginStatusRecord;
    } catch (err) {
      onError(new Error(`unreadable OW_STATUS record: ${(err as Error).message}`));
      return undefined;
    }
  };
  let inflight: Promise<void> | undefined;
  let freshUntil = 0;

  /** The last record of every key, read with a short-lived ordered consumer (last per subject). */
  const readAll = async (): Promise<OriginStatusRecord[]> => {
    const info = await ctx.jsm.streams.info(STATUS_STREAM);
    if (info.state.messages === 0) return [];
    const consumer = await ctx.js.consumers.get(STATUS_STREAM, { filter_subjects: `$KV.${STATUS_BUCKET}.${KEY_PREFIX}>`, deliver_policy: DeliverPolicy.LastPerSubject });
    const messages = await consumer.consume({ max_messages: 512 });
    const timer = setTimeout(() => void messages.stop(), timeoutMs);
    const out: OriginStatusRecord[] = [];
    let complete = false;
    try {
      for await (const m of messages) {
        const op = m.headers?.get("KV-Operation");
        if (op !== "DEL" && op !== "PURGE") {
          const r = parse(m.data);
          if (r) out.push(r);
        }
        if (m.info.pending === 0) {
          complete = true;
          break;
        }
      }
    } finally {
      clearTimeout(timer);
      await messages.close().catch(() => undefined);
    }
    if (!complete) throw new Error(`reading ${STATUS_BUCKET} did not finish within ${timeoutMs} ms`);
    return out;
  };

  return {
    async origin(origin) {
      const e = await kv.get(statusKey(origin));
      const r = e && e.operation === "PUT" ? parse(e.value) : undefined;
      if (r) return set(r);
      maps.records.delete(origin);
      maps.totals.delete(origin);
    },
    all() {
      if (Date.now() < freshUntil) return Promise.resolve();
      return (inflight ??= readAll()
        .then((records) => {
          const seen = new Set<string>();
          for (const r of records) {
            seen.add(r.origin);
            set(r);
          }
          for (const origin of maps.records.keys()) if (!seen.has(origin)) maps.records.delete(origin);
          for (const origin of maps.totals.keys()) if (!seen.has(origin)) maps.totals.delete(origin);
          freshUntil = Date.now() + maxAgeMs;
        })
        .finally(() => {
          inflight = undefined;
        }));
    },
  };
}
