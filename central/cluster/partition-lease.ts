/**
 * Partition ownership through a JetStream KV bucket (issue 16): each window-log
 * partition is judged by exactly one verdict worker at a time. JetStream does
 * the replication and the compare-and-set; this module only follows the rules.
 *
 * Bucket `OW_LEASES` (R3, history 1, bucket TTL = leaseTtlMs, default 10 s):
 *   p.<p>         value = owning worker id; the lease on partition p
 *   w.<workerId>  value = JSON {t: heartbeat time, p: {<p>: load | null} of
 *                 its partitions}; the worker is live while the key exists
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
 *     The heartbeat carries the load of each owned partition (`load` hook,
 *     partition-load.ts: windows/s over the last 30 s; null while unknown).
 *  3. Every partition's load known (from the heartbeats, remembered across
 *     hand-overs): load-aware placement (partition-placement.ts, the same
 *     target on every worker). Moves only while the most-loaded worker is
 *     over `threshold` × the mean and the target is better by `gain`; then a
 *     worker carrying more than its target share releases its heaviest
 *     partition the target puts elsewhere, held ≥ minHoldMs, one per
 *     moveEveryTicks ticks (onRelease(p, "rebalance") first, then remove the
 *     lease message). It `create`s the free partitions the target gives it,
 *     and one per tick of those it saw free at its previous tick too (a
 *     takeover never waits for the views to agree).
 *  4. Otherwise (a fresh cluster, no `load` hook): quota = ceil(P / W). Over
 *     it (a worker joined): release the extras (as above). Under it: `create`
 *     free partitions (create refuses an existing key, so two workers cannot
 *     both win), starting at an offset derived from the worker id so workers
 *     do not all race for partition 0.
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
import { LoadMeter } from "./partition-load.js";
import { placeByLoad, workerLoads } from "./partition-placement.js";

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
  /**
   * The work this worker has done on owned partition p so far (windows applied; it only grows while p stays
   * ours), or undefined while it is not counting (catching up). Without it loads stay unknown and the
   * count quota places partitions.
   */
  load?(p: number): number | undefined;
  /** Load-aware placement settings (defaults: BALANCE_DEFAULTS). */
  balance?: Partial<BalanceOptions>;
}

/** How load-aware placement measures and when it moves a partition (rule 3). */
export interface BalanceOptions {
  /** A partition's load is its rate over this long. */
  windowMs: number;
  /** A fresh owner's load counts once it has measured this long (or got the previous owner's figure). */
  warmMs: number;
  /** Move only while the most-loaded worker carries more than threshold × the mean. */
  threshold: number;
  /** ... and the target's most-loaded worker is lighter than the current one by this factor. */
  gain: number;
  /** A partition is not moved again within this long of being acquired. */
  minHoldMs: number;
  /** A worker releases at most one partition per this many ticks. */
  moveEveryTicks: number;
}

/** The one source of the balance defaults. */
export const BALANCE_DEFAULTS: Readonly<BalanceOptions> = { windowMs: 30_000, warmMs: 10_000, threshold: 1.1, gain: 1.05, minHoldMs: 10_000, moveEveryTicks: 3 };

/** A worker's heartbeat value: the partitions it owns with their load (null = not known yet). */
export interface Heartbeat {
  t: number;
  p: Record<string, number | null>;
}

/** Reads a heartbeat value; an unreadable one (an older worker's bare timestamp) owns nothing known. */
export function parseHeartbeat(value: string): Heartbeat {
  try {
    const h = JSON.parse(value) as Heartbeat;
    if (h && typeof h === "object" && h.p && typeof h.p === "object") return h;
  } catch {
    /* below */
  }
  return { t: Number(value) || 0, p: {} };
}

export interface PartitionLeases {
  /** Partitions owned now, ascending. */
  owned(): number[];
  /** The lease revision of an owned partition (fence writes with it), undefined when not owned. */
  revision(p: number): number | undefined;
  /** The load of an owned partition as this worker measures it (per second), undefined while unknown or not owned. */
  load(p: number): number | undefined;
  /** Runs one tick now (tests; ticks never overlap). */
  tick(): Promise<void>;
  /** Removes the heartbeat, releases every lease (onRelease "shutdown", each after its last snapshot) and stops. Idempotent. */
  stop(): Promise<void>;
  /** Stops without releasing anything, as a crash would (tests). */
  abandon(): void;
}

const WORKER_ID = /^[A-Za-z0-9_=-]{1,64}$/;

interface Lease {
  revision: number;
  deadline: NodeJS.Timeout;
  /** When this worker acquired it. */
  since: number;
  meter: LoadMeter;
}

/** Starts taking and keeping partition leases in `bucket` (from openLeaseBucket); the first tick runs at once. */
export function startPartitionLeases(bucket: LeaseBucket, o: PartitionLeaseOptions): PartitionLeases {
  const { kv } = bucket;
  if (!WORKER_ID.test(o.workerId)) throw new Error(`workerId must be 1-64 letters, digits or -_=, got ${JSON.stringify(o.workerId)}`);
  const tickMs = o.tickMs ?? Math.floor(o.ttlMs / 5);
  const marginMs = o.marginMs ?? Math.min(1_000, Math.floor(o.ttlMs / 5));
  const bal: BalanceOptions = { ...BALANCE_DEFAULTS, ...o.balance };
  const leases = new Map<number, Lease>();
  /** Every partition's last published load, as this worker has seen it (kept across hand-overs). */
  const known = new Map<number, number>();
  /** Partitions free (no lease key) at the previous tick. */
  let freeBefore = new Set<number>();
  let ticks = 0;
  let lastMoveTick = -Infinity;
  let stopped = false;
  let running: Promise<void> | undefined;
  const report = (err: unknown) => o.onError?.(err instanceof Error ? err : new Error(String(err)));

  const call = (f: () => void | Promise<void>): Promise<void> => {
    try {
      return Promise.resolve(f()).catch(report);
    } catch (err) {
      report(err);
      return Promise.resolve();
    }
  };
  /** Ownership ends here, synchronously: the map entry goes before the callback runs. */
  const drop = (p: number, why: ReleaseReason): { lease: Lease; released: Promise<void> } | undefined => {
    const l = leases.get(p);
    if (!l) return undefined;
    clearTimeout(l.deadline);
    leases.delete(p);
    return { lease: l, released: call(() => o.onRelease(p, why)) };
  };
  const hold = (p: number, revision: number, sentAt: number) => {
    const old = leases.get(p);
    if (old) clearTimeout(old.deadline);
    const deadline = setTimeout(() => drop(p, "lost"), Math.max(0, sentAt + o.ttlMs - marginMs - Date.now()));
    deadline.unref();
    leases.set(p, { revision, deadline, since: old?.since ?? sentAt, meter: old?.meter ?? new LoadMeter(bal.windowMs, bal.warmMs, known.get(p)) });
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

  /**
   * Gives p up cleanly: ownership ends at once, the owner's onRelease (its last snapshot) gets until the next
   * tick to finish, then the lease message goes, so a successor claims the newest snapshot.
   */
  const release = async (p: number, why: ReleaseReason) => {
    const d = drop(p, why);
    if (!d) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([d.released, new Promise<void>((r) => (timer = setTimeout(r, tickMs)))]);
    clearTimeout(timer);
    await bucket.remove(d.lease.revision);
  };

  const take = async (p: number): Promise<boolean> => {
    const sentAt = Date.now();
    let revision: number;
    try {
      revision = await kv.create(leaseKey(p), o.workerId);
    } catch {
      return false; // someone else took it first
    }
    if (stopped) {
      await bucket.remove(revision);
      return false;
    }
    hold(p, revision, sentAt);
    void call(() => o.onAcquire(p, revision));
    return true;
  };

  /** This worker's heartbeat: its partitions and their loads (rounded: every worker reads the same figures). */
  const heartbeat = (): Heartbeat => {
    const now = Date.now();
    const p: Heartbeat["p"] = {};
    for (const [q, l] of leases) {
      l.meter.sample(o.load?.(q), now);
      const v = l.meter.value();
      p[q] = v === undefined ? null : Math.round(v * 100) / 100;
    }
    return { t: now, p };
  };

  /** Rule 4: the count quota. */
  const byCount = async (workers: number, held: Set<number>) => {
    const quota = Math.ceil(o.partitions / Math.max(1, workers));
    const mine = [...leases.keys()].sort((a, b) => b - a);
    while (mine.length > quota) await release(mine.shift()!, "rebalance");
    for (let i = 0; i < o.partitions && leases.size < quota && !stopped; i++) {
      const p = (offset + i) % o.partitions;
      if (!held.has(p) && !leases.has(p)) await take(p);
    }
  };

  /** Rule 3: towards the load-aware target, with hysteresis. */
  const byLoad = async (loads: number[], workers: string[], owners: Map<number, string>, held: Set<number>, free: Set<number>) => {
    const now = Date.now();
    const current = workerLoads(loads, workers, owners);
    const target = placeByLoad(loads, workers, owners);
    const mean = loads.reduce((a, b) => a + b, 0) / workers.length;
    const curMax = Math.max(...current.values());
    const imbalanced = curMax > bal.threshold * mean && curMax > bal.gain * Math.max(...target.loads.values());
    if (imbalanced && ticks - lastMoveTick >= bal.moveEveryTicks && (current.get(o.workerId) ?? 0) > (target.loads.get(o.workerId) ?? 0)) {
      const movable = [...leases]
        .filter(([p, l]) => target.owners.get(p) !== o.workerId && now - l.since >= bal.minHoldMs)
        .map(([p]) => p)
        .sort((a, b) => loads[b] - loads[a] || a - b);
      if (movable.length > 0) {
        lastMoveTick = ticks;
        await release(movable[0], "rebalance");
      }
    }
    let strays = 1;
    for (let i = 0; i < o.partitions && !stopped; i++) {
      const p = (offset + i) % o.partitions;
      if (held.has(p) || leases.has(p)) continue;
      if (target.owners.get(p) === o.workerId) await take(p);
      // Free at our previous tick too: the views disagree (a worker just died or joined); take one per tick.
      else if (free.has(p) && freeBefore.has(p) && strays > 0 && (await take(p))) strays--;
    }
  };

  const offset = fnv1a32(o.workerId) % o.partitions;
  const step = async () => {
    await Promise.all([...leases].map(([p, l]) => renew(p, l)));
    if (stopped) return;
    ticks++;
    const mine = heartbeat();
    await kv.put(heartbeatKey(o.workerId), JSON.stringify(mine));
    const held = new Set<number>();
    const workers: string[] = [];
    for await (const k of await kv.keys()) {
      if (k.startsWith("w.")) workers.push(k.slice(2));
      else if (k.startsWith("p.")) held.add(Number(k.slice(2)));
    }
    const beats = await Promise.all(
      workers.map(async (w) => (w === o.workerId ? mine : parseHeartbeat((await kv.get(heartbeatKey(w)).catch(() => null))?.string() ?? ""))),
    );
    if (stopped) return;
    const owners = new Map<number, string>();
    const ownerAt = new Map<number, number>();
    for (const [i, beat] of beats.entries()) {
      for (const [q, load] of Object.entries(beat.p)) {
        const p = Number(q);
        if (!Number.isInteger(p) || p < 0 || p >= o.partitions) continue;
        // Two heartbeats name p for a tick after a move: the newer one is right.
        if (held.has(p) && !(ownerAt.get(p)! > beat.t)) {
          owners.set(p, workers[i]);
          ownerAt.set(p, beat.t);
        }
        if (typeof load === "number" && Number.isFinite(load) && load >= 0) known.set(p, load);
      }
    }
    const free = new Set<number>();
    for (let p = 0; p < o.partitions; p++) if (!held.has(p)) free.add(p);
    const loads = Array.from({ length: o.partitions }, (_, p) => known.get(p));
    if (workers.length > 0 && loads.every((x) => x !== undefined)) await byLoad(loads as number[], workers, owners, held, free);
    else await byCount(workers.length, held);
    freeBefore = free;
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
    load: (p) => leases.get(p)?.meter.value(),
    tick,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await running;
      // Heartbeat first: the others place what we free among themselves only.
      await kv.delete(heartbeatKey(o.workerId)).catch(report);
      await Promise.all([...leases.keys()].map((p) => release(p, "shutdown")));
    },
    abandon() {
      stopped = true;
      clearInterval(timer);
      for (const l of leases.values()) clearTimeout(l.deadline);
      leases.clear();
    },
  };
}
