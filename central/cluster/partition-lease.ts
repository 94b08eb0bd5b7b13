/**
 * Partition ownership through a JetStream KV bucket (issue 16): each window-log
 * partition is judged by exactly one verdict worker at a time. JetStream does
 * the replication and the compare-and-set; this module only follows the rules.
 *
 * Bucket `OW_LEASES` (R3, history 1, bucket TTL = leaseTtlMs, default 10 s):
 *   p.<p>         value = owning worker id; the lease on partition p
 *   w.<workerId>  value = time of the last heartbeat; the worker is live
 *
 * Rules, applied by every worker once per tick (default ttl / 5):
 *  1. Renew every owned lease with a revision-checked `update`. A failed
 *     renewal (someone else's revision, the key gone) stops ownership at once:
 *     onRelease(p, "lost"). A renewal that has not succeeded by
 *     (send time of the last successful one + ttl - margin) also stops it, even
 *     while the request hangs (a blackholed NATS), so the old owner has stopped
 *     before the server lets the key expire and anyone can `create` it.
 *  2. Heartbeat: put w.<id>. Live workers W = the w.* keys present (an expired
 *     heartbeat is a dead worker).
 *  3. Quota = ceil(P / W). Over it (a worker joined): release the extras
 *     (onRelease(p, "rebalance") first, then remove the lease message).
 *  4. Under it: `create` free partitions (create refuses an existing key, so
 *     two workers cannot both win), starting at an offset derived from the
 *     worker id so workers do not all race for partition 0.
 *
 * Why a released lease is removed as a stream message (by its sequence, the
 * lease revision) and not with KV delete: nats-server before 2.9.21 does not
 * serialise concurrent writes that expect the same last subject sequence on a
 * clustered stream (nats-io/nats-server#4320; measured here on 2.9.10 R3:
 * ~40 % of rounds of 6 concurrent `update`s with one revision had several
 * winners). KV `create` over a delete marker is such an `update`; `create` of
 * a subject with no message at all was exact (0 of 600 rounds). So a lease key
 * only ever leaves by TTL expiry or by removing its message — both leave no
 * marker — and taking a lease is always a `create` on an empty subject.
 * Removing by sequence is itself a compare-and-set: it removes our message or
 * nothing.
 * A worker that dies stops renewing; its keys expire after the TTL and the
 * others take its partitions at their next tick: ≤ ttl + tick (12 s with the defaults).
 *
 * Caveat (any lease): a process paused longer than the margin (a stop-the-world
 * pause, SIGSTOP) can act after its lease expired. What an owner writes
 * (snapshots) must therefore be fenced by its lease revision, not only by time.
 */
import { Kvm, type KV } from "@nats-io/kv";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { fnv1a32 } from "./partition.js";

export const LEASE_BUCKET = "OW_LEASES";
/** Key of partition p's lease. */
export const leaseKey = (p: number) => `p.${p}`;
/** Key of a worker's heartbeat. */
export const heartbeatKey = (workerId: string) => `w.${workerId}`;

/** Why a worker stopped owning a partition. */
export type ReleaseReason = "lost" | "rebalance" | "shutdown";

export interface LeaseBucketOptions {
  ttlMs: number;
  replicas: number;
  bucket?: string;
}

/** The lease bucket: the KV and the way to remove one lease message without leaving a marker. */
export interface LeaseBucket {
  kv: KV;
  /** Removes the message at `revision` (the key's last one, or nothing if it was replaced); never throws. */
  remove(revision: number): Promise<void>;
}

/** Creates (or opens, idempotently) the lease bucket. */
export async function openLeaseBucket(js: JetStreamClient, o: LeaseBucketOptions): Promise<LeaseBucket> {
  const name = o.bucket ?? LEASE_BUCKET;
  const kv = await new Kvm(js).create(name, { ttl: o.ttlMs, replicas: o.replicas, history: 1 });
  let jsm: JetStreamManager | undefined;
  return {
    kv,
    async remove(revision) {
      try {
        jsm ??= await js.jetstreamManager();
        await jsm.streams.deleteMessage(`KV_${name}`, revision, false);
      } catch {
        /* already gone (expired, replaced) or NATS unreachable: the TTL frees it */
      }
    },
  };
}

export interface PartitionLeaseOptions {
  /** This worker's id: unique among live workers; letters, digits and -_=. only (a KV key token). */
  workerId: string;
  partitions: number;
  /** The bucket's TTL (the lease length). */
  ttlMs: number;
  /** Tick interval (default ttl / 5: a renewal may fail about three times before the lease is given up). */
  tickMs?: number;
  /** A lease is given up this long before the server could expire it (default min(1 s, ttl / 5)). */
  marginMs?: number;
  /** This worker now owns p (its lease revision is `revision`). */
  onAcquire(p: number, revision: number): void | Promise<void>;
  /** This worker no longer owns p: stop judging it now. Called before the key is released. */
  onRelease(p: number, why: ReleaseReason): void | Promise<void>;
  /** A tick failed (NATS unreachable, ...): ownership rules still hold. */
  onError?(err: Error): void;
}

export interface PartitionLeases {
  /** Partitions owned now, ascending. */
  owned(): number[];
  /** The lease revision of an owned partition (fence writes with it), undefined when not owned. */
  revision(p: number): number | undefined;
  /** Runs one tick now (tests; ticks never overlap). */
  tick(): Promise<void>;
  /** Releases every lease (onRelease "shutdown"), removes the heartbeat and stops. Idempotent. */
  stop(): Promise<void>;
  /** Stops without releasing anything, as a crash would (tests). */
  abandon(): void;
}

const WORKER_ID = /^[A-Za-z0-9_=-]{1,64}$/;

interface Lease {
  revision: number;
  deadline: NodeJS.Timeout;
}

/** Starts taking and keeping partition leases in `bucket` (from openLeaseBucket); the first tick runs at once. */
export function startPartitionLeases(bucket: LeaseBucket, o: PartitionLeaseOptions): PartitionLeases {
  const { kv } = bucket;
  if (!WORKER_ID.test(o.workerId)) throw new Error(`workerId must be 1-64 letters, digits or -_=, got ${JSON.stringify(o.workerId)}`);
  const tickMs = o.tickMs ?? Math.floor(o.ttlMs / 5);
  const marginMs = o.marginMs ?? Math.min(1_000, Math.floor(o.ttlMs / 5));
  const leases = new Map<number, Lease>();
  let stopped = false;
  let running: Promise<void> | undefined;
  const report = (err: unknown) => o.onError?.(err instanceof Error ? err : new Error(String(err)));

  const call = (f: () => void | Promise<void>) => {
    try {
      void Promise.resolve(f()).catch(report);
    } catch (err) {
      report(err);
    }
  };
  /** Ownership ends here, synchronously: the map entry goes before the callback runs. */
  const drop = (p: number, why: ReleaseReason): Lease | undefined => {
    const l = leases.get(p);
    if (!l) return undefined;
    clearTimeout(l.deadline);
    leases.delete(p);
    call(() => o.onRelease(p, why));
    return l;
  };
  const hold = (p: number, revision: number, sentAt: number) => {
    const old = leases.get(p);
    if (old) clearTimeout(old.deadline);
    const deadline = setTimeout(() => drop(p, "lost"), Math.max(0, sentAt + o.ttlMs - marginMs - Date.now()));
    deadline.unref();
    leases.set(p, { revision, deadline });
  };

  const renew = async (p: number, l: Lease) => {
    const sentAt = Date.now();
    let revision: number;
    try {
      revision = await kv.update(leaseKey(p), o.workerId, l.revision);
    } catch (err) {
      if (leases.get(p) === l) drop(p, "lost");
      report(err);
      return;
    }
    if (leases.get(p) === l && !stopped) hold(p, revision, sentAt);
    // Renewed after we already gave it up (the deadline fired first): free it for the others at once.
    else await bucket.remove(revision);
  };

  const release = async (p: number, why: ReleaseReason) => {
    const l = drop(p, why);
    if (l) await bucket.remove(l.revision);
  };

  const offset = fnv1a32(o.workerId) % o.partitions;
  const step = async () => {
    await Promise.all([...leases].map(([p, l]) => renew(p, l)));
    if (stopped) return;
    await kv.put(heartbeatKey(o.workerId), String(Date.now()));
    const held = new Set<number>();
    let workers = 0;
    for await (const k of await kv.keys()) {
      if (k.startsWith("w.")) workers++;
      else if (k.startsWith("p.")) held.add(Number(k.slice(2)));
    }
    if (stopped) return;
    const quota = Math.ceil(o.partitions / Math.max(1, workers));
    const mine = [...leases.keys()].sort((a, b) => b - a);
    while (mine.length > quota) await release(mine.shift()!, "rebalance");
    for (let i = 0; i < o.partitions && leases.size < quota && !stopped; i++) {
      const p = (offset + i) % o.partitions;
      if (held.has(p) || leases.has(p)) continue;
      const sentAt = Date.now();
      let revision: number;
      try {
        revision = await kv.create(leaseKey(p), o.workerId);
      } catch {
        continue; // someone else took it first
      }
      if (stopped) {
        await bucket.remove(revision);
        return;
      }
      hold(p, revision, sentAt);
      call(() => o.onAcquire(p, revision));
    }
  };
  const tick = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    if (!running) {
      running = step()
        .catch(report)
        .finally(() => (running = undefined));
    }
    return running;
  };
  const timer = setInterval(() => void tick(), tickMs);
  timer.unref();
  void tick();

  return {
    owned: () => [...leases.keys()].sort((a, b) => a - b),
    revision: (p) => leases.get(p)?.revision,
    tick,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await running;
      await Promise.all([...leases.keys()].map((p) => release(p, "shutdown")));
      await kv.delete(heartbeatKey(o.workerId)).catch(report);
    },
    abandon() {
      stopped = true;
      clearInterval(timer);
      for (const l of leases.values()) clearTimeout(l.deadline);
      leases.clear();
    },
  };
}
