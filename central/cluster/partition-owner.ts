/**
 * The verdict worker's partition side (issue 16): for each partition this
 * replica holds the lease of, claim the snapshot, replay the window log from
 * snapshot seq + 1 through the per-node high-water marks (a (node, seq) is
 * applied once, whichever replica published it, however often), keep the
 * partition's origin totals, save a fenced snapshot every few seconds and
 * publish changed origins to OW_STATUS once caught up.
 *
 * OW_STATUS writes (every replica reads them): an origin's record is written
 * at once when its verdict changes (state, faults, confirming, incidents: a
 * flush follows every engine change), when its totals have settled (a flush
 * saw no new traffic: totals are exact after a quiet second or two), and
 * otherwise at most every `statusRefreshMs` while traffic moves its totals and
 * figures. So a busy origin costs one put per refresh period, not per second.
 *
 * A hand-over does not empty the verdict's lookback: the snapshot names the
 * sequence applied one lookback before it was saved (`lookbackFromSeq`), and
 * the new owner reads (lookbackFromSeq, streamSeq] again into the verdict
 * engine only (the snapshot's totals and marks already count them) before
 * replaying on — so a fault set or a DOWN is judged on full data at once,
 * not on the few windows since the last snapshot.
 *
 * Caught up = the reader has applied the stream's last sequence as it was
 * when the partition was claimed (and read the lookback again). Until then nothing leaves the owner (the
 * previous owner may have published later totals than the snapshot holds:
 * publishing mid-replay would show a reader totals going backwards).
 *
 * Losing the lease, a fenced snapshot save or a reader failure stops the
 * partition at once (no further save or status write); the lease worker gives
 * it to someone else or takes it again.
 *
 * `hooks` lets a verdict engine ride on the same replay: it sees each applied
 * (deduplicated) batch, whether the owner is caught up, and its state travels
 * in the snapshot.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import type { PartitionBatch } from "../../proto/gen/originwatch/v1/cluster_pb.js";
import { completedFailuresOf, completedOf, countsOfWindow } from "../../proto/outcomes.js";
import { CentralError } from "../errors.js";
import type { ClusterContext } from "./cluster-context.js";
import { HighWaterMarks } from "./high-water.js";
import { type OriginStatusRecord, statusKey, verdictKey } from "./origin-status.js";
import { type LeaseBucket, type PartitionLeases, openLeaseBucket, startPartitionLeases } from "./partition-lease.js";
import { SnapshotStore } from "./snapshot.js";
import { type PartitionReader, readPartition, windowStream } from "./window-log.js";

/** One origin's totals in a snapshot (decimal strings). */
export interface TotalsRecord {
  requests: string;
  failures: string;
  firstSeenMs: number;
  lastSeenMs: number;
}

/** What a partition snapshot's `state` holds. */
export interface PartitionState {
  totals: Record<string, TotalsRecord>;
  /** The verdict hooks' own state (incidents, tracks), opaque here. */
  verdict?: unknown;
}

/** A verdict engine riding on the partition replay (optional). */
export interface PartitionHooks {
  /** Partition p starts (from a snapshot's verdict state, or none). */
  start(p: number, verdict: unknown): void;
  /**
   * A batch applied for the first time (after the high-water check); `live` = caught up. `lookbackOnly`: a
   * batch the snapshot already counted, read again after a hand-over to refill the verdict's lookback only.
   */
  apply(p: number, batch: PartitionBatch, live: boolean, lookbackOnly?: boolean): void;
  /** How far back the verdict looks (ms): what a successor must read again to refill it (default 5 s). */
  lookbackMs?(): number;
  /** State to put in the snapshot. */
  save(p: number): unknown;
  /** The partition is no longer ours: forget it, emit nothing more for it. */
  stop(p: number): void;
  /** Partition p has replayed up to where the stream was at the claim: its changes may leave the owner now. */
  caughtUp(p: number): void;
  /** The verdict part of an origin's OW_STATUS record. */
  statusOf(origin: string): OriginStatusRecord["verdict"];
}

export interface PartitionOwnerOptions {
  log: Logger;
  /** Snapshot save period (default 3 s). */
  snapshotMs?: number;
  /** OW_STATUS flush period (default 1 s): verdict changes and settled totals are written at the next one. */
  flushMs?: number;
  /** A record whose totals or figures keep moving is rewritten at most this often (default 5 s). */
  statusRefreshMs?: number;
  hooks?: PartitionHooks;
}

interface Owned {
  p: number;
  revision: number;
  /** The snapshot key's revision to save against. */
  snapRevision: number;
  hwm: HighWaterMarks;
  totals: Map<string, TotalsRecord>;
  /** What was last written to OW_STATUS per origin (only changes are written). */
  written: Map<string, Written>;
  /** Each origin's totals at the previous flush: unchanged = settled (no traffic since). */
  seenTotals: Map<string, string>;
  /** A flushSoon is queued. */
  flushQueued: boolean;
  appliedSeq: number;
  /** appliedSeq at the last progress check (-1: none yet). */
  checkedSeq: number;
  /** Caught up once appliedSeq ≥ this (the stream's last seq at claim). */
  catchUpSeq: number;
  /** The snapshot's streamSeq: messages up to it are read again for the lookback only (lookbackFromSeq). */
  refillToSeq: number;
  /** Last stream sequence the reader handed over (refill included). */
  readSeq: number;
  /** (time, appliedSeq) once a second over the last lookback and a bit: the snapshot's lookbackFromSeq. */
  seqAt: Array<{ t: number; seq: number }>;
  /** Where this ownership started reading (the refill's start): the lookbackFromSeq until a lookback passed. */
  startReadSeq: number;
  live: boolean;
  /** Windows applied since caught up: the partition's load, measured by the lease worker. */
  liveWindows: number;
  reader?: PartitionReader;
  stopped: boolean;
  timers: NodeJS.Timeout[];
  busy: Promise<unknown>;
}

/** One origin's last OW_STATUS write. */
interface Written {
  /** verdictKey of the verdict written. */
  key: string;
  /** Its totals (totalsKey). */
  totals: string;
  /** The record's body without owner and sequence. */
  body: string;
  atMs: number;
}

const totalsKey = (t: TotalsRecord) => `${t.requests}/${t.failures}/${t.lastSeenMs}`;

export class PartitionOwner {
  private readonly owned = new Map<number, Owned>();
  private leases?: PartitionLeases;
  /** Partitions taken (for logs and tests): p → ms from acquire to caught up. */
  readonly caughtUpMs = new Map<number, number>();
  /** Per partition, the batches of the previous owner's last lookback read again at the last acquire (the refill). */
  readonly refilledBatches = new Map<number, number>();

  private constructor(
    private readonly ctx: ClusterContext,
    private readonly snapshots: SnapshotStore<PartitionState>,
    private readonly status: KV,
    private readonly bucket: LeaseBucket,
    private readonly o: PartitionOwnerOptions,
  ) {}

  static async start(ctx: ClusterContext, status: KV, o: PartitionOwnerOptions): Promise<PartitionOwner> {
    const snapshots = await SnapshotStore.open<PartitionState>(ctx.js, { replicas: ctx.options.replicas });
    const bucket = await openLeaseBucket(ctx.js, { ttlMs: ctx.options.leaseTtlMs, replicas: ctx.options.replicas });
    const owner = new PartitionOwner(ctx, snapshots, status, bucket, o);
    owner.leases = startPartitionLeases(bucket, {
      workerId: ctx.replicaId,
      partitions: ctx.options.partitions,
      ttlMs: ctx.options.leaseTtlMs,
      onAcquire: (p, revision) => void owner.acquire(p, revision),
      onRelease: (p, why) => owner.release(p, why),
      onError: (err) => o.log.warn({ err: err.message }, "partition lease tick failed"),
      load: (p) => {
        const x = owner.owned.get(p);
        return x?.live ? x.liveWindows : undefined;
      },
    });
    return owner;
  }

  /** Partitions owned now (lease held), and which of them are caught up. */
  partitions(): { owned: number[]; live: number[] } {
    return { owned: this.leases?.owned() ?? [], live: [...this.owned.values()].filter((x) => x.live).map((x) => x.p) };
  }

  private async acquire(p: number, revision: number): Promise<void> {
    const t0 = Date.now();
    const o: Owned = { p, revision, snapRevision: 0, hwm: new HighWaterMarks(), totals: new Map(), written: new Map(), seenTotals: new Map(), flushQueued: false, appliedSeq: 0, checkedSeq: -1, catchUpSeq: 0, refillToSeq: 0, readSeq: 0, seqAt: [], startReadSeq: 0, live: false, liveWindows: 0, stopped: false, timers: [], busy: Promise.resolve() };
    this.owned.set(p, o);
    this.refilledBatches.set(p, 0);
    try {
      const claim = await this.snapshots.claim(p, this.ctx.replicaId, revision);
      if (o.stopped) return;
      o.snapRevision = claim.revision;
      const snap = claim.snapshot;
      if (snap) {
        o.hwm = HighWaterMarks.fromRecord(snap.hwm);
        o.totals = new Map(Object.entries(snap.state.totals));
        o.appliedSeq = snap.streamSeq;
        o.readSeq = snap.lookbackFromSeq !== undefined && snap.lookbackFromSeq < snap.streamSeq ? snap.lookbackFromSeq : snap.streamSeq;
        o.refillToSeq = snap.streamSeq;
        o.startReadSeq = o.readSeq;
      }
      this.o.hooks?.start(p, snap?.state.verdict);
      const info = await this.ctx.jsm.streams.info(windowStream(p));
      o.catchUpSeq = info.state.last_seq;
      // What the stream no longer has (aged out) cannot be read again: the refill starts where the stream does.
      if (o.readSeq < o.refillToSeq && info.state.first_seq > o.readSeq + 1) o.readSeq = Math.min(o.refillToSeq, info.state.first_seq - 1);
      const markLive = () => {
        if (o.live || o.appliedSeq < o.catchUpSeq || o.readSeq < o.refillToSeq) return;
        o.live = true;
        this.o.hooks?.caughtUp(p);
        this.caughtUpMs.set(p, Date.now() - t0);
        this.o.log.info({ partition: p, ms: Date.now() - t0, fromSeq: snap ? snap.streamSeq + 1 : 1, toSeq: o.catchUpSeq, lookbackRefilled: this.refilledBatches.get(p) ?? 0 }, "partition owned and caught up");
      };
      markLive();
      o.reader = await readPartition(this.ctx.js, p, {
        fromSeq: o.readSeq + 1,
        handler: (batches, seq) => {
          if (o.stopped) return;
          o.readSeq = seq;
          if (seq <= o.refillToSeq) {
            // Counted by the snapshot already: into the verdict's lookback only (the previous owner's last seconds).
            for (const b of batches) {
              if (!b.node) continue;
              this.o.hooks?.apply(p, b, false, true);
              this.refilledBatches.set(p, (this.refilledBatches.get(p) ?? 0) + 1);
            }
            markLive();
            return;
          }
          for (const b of batches) {
            if (!b.node || !o.hwm.accept(b.node.nodeId, b.seq)) continue;
            const at = Number(b.receivedUnixMs);
            for (const w of b.windows) {
              const cur = o.totals.get(w.origin);
              const t = cur ?? { requests: "0", failures: "0", firstSeenMs: at, lastSeenMs: at };
              t.requests = (BigInt(t.requests) + completedOf(countsOfWindow(w))).toString();
              t.failures = (BigInt(t.failures) + completedFailuresOf(countsOfWindow(w))).toString();
              if (at > t.lastSeenMs) t.lastSeenMs = at;
              if (!cur) o.totals.set(w.origin, t);
            }
            this.o.hooks?.apply(p, b, o.live);
            if (o.live) o.liveWindows += b.windows.length;
          }
          o.appliedSeq = seq;
          markLive();
        },
        onUndecodable: (seq, err) => this.o.log.warn({ partition: p, seq, err: err.message }, "undecodable window-log message skipped"),
      });
      if (o.stopped) return void (await o.reader.stop());
      // A reader that ends without being stopped (its consumer gave up) fails the partition: it restarts from the snapshot.
      o.reader.done.then(() => this.fail(o, new Error("window-log reader ended")), (err) => this.fail(o, err));
      const every = (ms: number, fn: () => Promise<void>) => {
        const t = setInterval(() => {
          if (o.stopped) return;
          o.busy = o.busy.then(fn).catch((err) => this.fail(o, err));
        }, ms);
        t.unref();
        o.timers.push(t);
      };
      every(this.o.flushMs ?? 1_000, () => {
        this.noteSeq(o);
        return this.flush(o);
      });
      every(this.o.snapshotMs ?? 3_000, () => this.save(o));
      every(5_000, () => this.checkProgress(o));
    } catch (err) {
      this.fail(o, err);
    }
  }

  /**
   * Writes to OW_STATUS (only once caught up) the origins whose verdict changed, whose totals settled
   * since the last write, and — once `statusRefreshMs` passed since their last write — whose totals,
   * figures or wording moved; `all` writes every origin that differs from its last write (a release).
   */
  private async flush(o: Owned, all = false): Promise<void> {
    if (!o.live) return;
    const now = Date.now();
    const refreshMs = this.o.statusRefreshMs ?? 5_000;
    const puts: Array<{ r: OriginStatusRecord; w: Written }> = [];
    for (const [origin, t] of o.totals) {
      const verdict = this.o.hooks?.statusOf(origin);
      const totals = totalsKey(t);
      const moving = o.seenTotals.get(origin) !== totals;
      o.seenTotals.set(origin, totals);
      const key = verdictKey(verdict);
      const w = o.written.get(origin);
      // Same verdict: write settled totals now, anything else once the refresh period passed.
      if (w && w.key === key && !all && !(w.totals !== totals && !moving) && now - w.atMs < refreshMs) continue;
      const body = JSON.stringify({ t, verdict });
      if (w?.body === body) continue;
      puts.push({ r: { origin, partition: o.p, ...t, verdict, owner: this.ctx.replicaId, streamSeq: o.appliedSeq }, w: { key, totals, body, atMs: now } });
    }
    for (const { r, w } of puts) o.written.set(r.origin, w);
    try {
      await Promise.all(puts.map(({ r }) => this.status.put(statusKey(r.origin), JSON.stringify(r))));
    } catch (err) {
      for (const { r } of puts) o.written.delete(r.origin);
      throw new CentralError("CENTRAL_NATS_UNAVAILABLE", `cannot publish status of partition ${o.p}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Writes partition p's changed OW_STATUS records at the next chance (its verdict changed: every replica should see it now). */
  flushSoon(p: number): void {
    const o = this.owned.get(p);
    if (!o || o.stopped || !o.live || o.flushQueued) return;
    o.flushQueued = true;
    o.busy = o.busy
      .then(() => {
        o.flushQueued = false;
        return this.flush(o);
      })
      .catch((err) => this.fail(o, err));
  }

  /**
   * A reader that stalls (its ordered consumer did not survive a nats-server kill and neither ended nor
   * failed) is detected here: the stream is ahead and nothing was applied since the last check. Throwing
   * fails the partition, which restarts from its snapshot.
   */
  private async checkProgress(o: Owned): Promise<void> {
    const last = (await this.ctx.jsm.streams.info(windowStream(o.p))).state.last_seq;
    if (last > o.appliedSeq && o.checkedSeq === o.appliedSeq) {
      throw new CentralError("CENTRAL_NATS_UNAVAILABLE", `partition ${o.p}: reader stalled at ${o.appliedSeq} (stream at ${last})`);
    }
    o.checkedSeq = o.appliedSeq;
  }

  /** Saves partition p's snapshot at the next chance (an incident opened or closed: keep its identity for a successor). */
  saveSoon(p: number): void {
    const o = this.owned.get(p);
    if (!o || o.stopped || !o.live) return;
    o.busy = o.busy.then(() => this.save(o)).catch((err) => this.fail(o, err));
  }

  private lookbackSince(): number {
    return Date.now() - (this.o.hooks?.lookbackMs?.() ?? 5_000) - 1_000;
  }

  /** Marks where the partition's reading was now (once a second), keeping one mark older than a lookback. */
  private noteSeq(o: Owned): void {
    o.seqAt.push({ t: Date.now(), seq: o.appliedSeq });
    const since = this.lookbackSince();
    while (o.seqAt.length > 1 && o.seqAt[1].t <= since) o.seqAt.shift();
  }

  /** The sequence applied one lookback (and a second) ago; where this ownership started until a lookback passed. */
  private lookbackFromSeq(o: Owned): number {
    const first = o.seqAt[0];
    return first && first.t <= this.lookbackSince() ? first.seq : o.startReadSeq;
  }

  private async save(o: Owned): Promise<void> {
    if (o.stopped) return;
    const lookbackFromSeq = this.lookbackFromSeq(o);
    o.snapRevision = await this.snapshots.save(
      {
        partition: o.p,
        streamSeq: o.appliedSeq,
        lookbackFromSeq,
        hwm: o.hwm.toRecord(),
        state: { totals: Object.fromEntries(o.totals), verdict: this.o.hooks?.save(o.p) },
        owner: this.ctx.replicaId,
        leaseRevision: o.revision,
        atMs: Date.now(),
      },
      o.snapRevision,
    );
  }

  private fail(o: Owned, err: unknown): void {
    if (o.stopped) return;
    const e = err as Error;
    const fenced = err instanceof CentralError && err.code === "CENTRAL_PARTITION_FENCED";
    this.o.log[fenced ? "warn" : "error"]({ partition: o.p, err: e.message, code: (err as CentralError).code }, fenced ? "partition fenced: stopped owning it" : "partition owner failed: stopped it; retaken at the next lease tick");
    this.stopPartition(o);
    if (this.owned.get(o.p) !== o) return;
    this.owned.delete(o.p);
    if (fenced) return; // our lease renewal fails next and reports "lost"
    // Still our lease (renewals change its revision): start the partition afresh from its snapshot.
    const retry = setTimeout(() => {
      const revision = this.leases?.revision(o.p);
      if (!this.owned.has(o.p) && revision !== undefined) void this.acquire(o.p, revision);
    }, 2_000);
    retry.unref();
  }

  /** Stops reading, saving and writing for o at once; `forget` also drops its origins from the verdict engine. */
  private stopPartition(o: Owned, forget = true): void {
    o.stopped = true;
    for (const t of o.timers) clearInterval(t);
    void o.reader?.stop();
    if (forget) this.o.hooks?.stop(o.p);
  }

  private async release(p: number, why: string): Promise<void> {
    const o = this.owned.get(p);
    if (!o) return;
    this.owned.delete(p);
    const clean = why !== "lost" && o.live;
    this.stopPartition(o, !clean);
    // A clean release (rebalance, shutdown) leaves the newest state (totals, incidents) for the next owner,
    // saved while we still hold the lease; then the engine forgets the partition.
    if (clean) {
      await o.busy.catch(() => undefined);
      await o.reader?.stop();
      o.stopped = false;
      try {
        await this.flush(o, true);
        await this.save(o);
      } catch (err) {
        this.o.log.warn({ partition: p, err: (err as Error).message }, "last snapshot on release failed");
      } finally {
        o.stopped = true;
        this.o.hooks?.stop(p);
      }
    }
    this.o.log.info({ partition: p, why }, "partition released");
  }

  /** Releases every partition (last snapshots saved) and stops. */
  async stop(): Promise<void> {
    await this.leases?.stop();
  }
}
