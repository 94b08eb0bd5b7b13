/**
 * Partition snapshots (issue 16): how a new owner rebuilds a partition's
 * state without reading 15 minutes of log. The owner saves
 * {stream seq, per-node high-water marks, state} every few seconds; a new
 * owner loads the latest, then replays the window log from streamSeq + 1
 * (with the marks, so nothing is counted twice).
 *
 * Bucket `OW_SNAPSHOTS` (R3, history 1, no TTL), key `s.<p>`, JSON value.
 *
 * Fencing: every snapshot carries its owner's lease revision (lease revisions
 * only grow: a later lease on p always has a higher one). A new owner first
 * *claims* the snapshot (rewrites what it loaded under its own name and lease
 * revision); every save is revision-checked against the key. When a save
 * finds the key changed, the lease revisions decide: a snapshot from a newer
 * lease means this owner is stale (a paused process that lost its lease
 * without noticing) and gets CENTRAL_PARTITION_FENCED — it must stop owning
 * the partition at once; a snapshot from an older lease (a stale owner's late
 * save) is overwritten. The lease revision decides, not the CAS alone, because
 * nats-server before 2.9.21 can accept two writes expecting the same revision
 * when they race on a clustered stream (nats-io/nats-server#4320): with it, a
 * stale save racing a claim can land, but is overwritten by the next save and
 * never survives, and the new owner's state is still its loaded snapshot plus
 * replay.
 *
 * Limit: one value must fit the NATS max_payload (1 MB by default); `save`
 * refuses a larger snapshot (bounded state per partition is the engine's job).
 */
import { type JetStreamClient, JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { CentralError } from "../errors.js";

export const SNAPSHOT_BUCKET = "OW_SNAPSHOTS";
const key = (p: number) => `s.${p}`;

export interface PartitionSnapshot<S> {
  partition: number;
  /** Last window-log stream sequence applied to `state`: replay from streamSeq + 1. */
  streamSeq: number;
  /** HighWaterMarks.toRecord() at streamSeq. */
  hwm: Record<string, string>;
  /**
   * The stream sequence applied one lookback before the save (absent in older snapshots): a new owner reads
   * (lookbackFromSeq, streamSeq] again into its verdict engine only, so its lookback is full at once instead
   * of empty for a lookback after a hand-over (totals and marks are in the snapshot already).
   */
  lookbackFromSeq?: number;
  /** The engine's state at streamSeq (totals, tracks, incidents, statuses): JSON. */
  state: S;
  /** Who wrote it, under which lease revision, when. */
  owner: string;
  leaseRevision: number;
  atMs: number;
}

/** What a claim hands the new owner: the snapshot to start from (undefined: none yet) and the revision to save against. */
export interface Claim<S> {
  snapshot?: PartitionSnapshot<S>;
  revision: number;
}

export interface SnapshotStoreOptions {
  replicas: number;
  bucket?: string;
  /** Largest snapshot value in bytes (default 1,000,000: under the default max_payload). */
  maxBytes?: number;
}

const fenced = (err: unknown) => err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;

export class SnapshotStore<S> {
  private constructor(
    private readonly kv: KV,
    private readonly maxBytes: number,
  ) {}

  static async open<S>(js: JetStreamClient, o: SnapshotStoreOptions): Promise<SnapshotStore<S>> {
    const kv = await new Kvm(js).create(o.bucket ?? SNAPSHOT_BUCKET, { replicas: o.replicas, history: 1 });
    return new SnapshotStore<S>(kv, o.maxBytes ?? 1_000_000);
  }

  /**
   * Loads partition p's latest snapshot and claims it for `owner` (call right
   * after taking the lease). A save that lands between the load and the claim
   * (the old owner's last one) is loaded instead: the claim retries.
   */
  async claim(p: number, owner: string, leaseRevision: number, nowMs = Date.now()): Promise<Claim<S>> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const e = await this.kv.get(key(p));
      const stored = e && e.operation === "PUT" ? e.json<PartitionSnapshot<S | null>>() : undefined;
      if (stored && stored.leaseRevision > leaseRevision) {
        throw new CentralError("CENTRAL_PARTITION_FENCED", `partition ${p}: ${stored.owner} holds a newer lease (${stored.leaseRevision} > ${leaseRevision}); ${owner} must not own it`);
      }
      const snapshot = stored && stored.state !== null ? (stored as PartitionSnapshot<S>) : undefined;
      const record: PartitionSnapshot<S | null> = {
        ...(stored ?? { partition: p, streamSeq: 0, hwm: {}, state: null }),
        owner,
        leaseRevision,
        atMs: nowMs,
      };
      try {
        const bytes = JSON.stringify(record);
        const revision = e ? await this.kv.update(key(p), bytes, e.revision) : await this.kv.create(key(p), bytes);
        return { snapshot, revision };
      } catch (err) {
        if (!fenced(err)) throw new CentralError("CENTRAL_NATS_UNAVAILABLE", `cannot claim the snapshot of partition ${p}: ${(err as Error).message}`, { cause: err });
      }
    }
    throw new CentralError("CENTRAL_PARTITION_FENCED", `partition ${p}: the snapshot kept changing while ${owner} claimed it (another owner is still writing)`);
  }

  /**
   * Saves `snapshot` if partition p's snapshot is still at `expectedRevision`
   * (from the claim or the previous save), or was last written under an older
   * lease; resolves with the new revision (save against it next time).
   * CENTRAL_PARTITION_FENCED: a newer lease's owner wrote it — stop owning p.
   */
  async save(snapshot: PartitionSnapshot<S>, expectedRevision: number): Promise<number> {
    const bytes = JSON.stringify(snapshot);
    if (bytes.length > this.maxBytes) throw new Error(`snapshot of partition ${snapshot.partition} is ${bytes.length} bytes, over ${this.maxBytes}`);
    let expected = expectedRevision;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        return await this.kv.update(key(snapshot.partition), bytes, expected);
      } catch (err) {
        if (!fenced(err)) throw new CentralError("CENTRAL_NATS_UNAVAILABLE", `cannot save the snapshot of partition ${snapshot.partition}: ${(err as Error).message}`, { cause: err });
      }
      const e = await this.kv.get(key(snapshot.partition));
      const stored = e && e.operation === "PUT" ? e.json<PartitionSnapshot<unknown>>() : undefined;
      if (!e || !stored || stored.leaseRevision > snapshot.leaseRevision || (stored.leaseRevision === snapshot.leaseRevision && stored.owner !== snapshot.owner)) {
        throw new CentralError("CENTRAL_PARTITION_FENCED", `partition ${snapshot.partition}: ${snapshot.owner} is no longer its owner (${stored ? `${stored.owner} wrote it under lease ${stored.leaseRevision}` : "its snapshot is gone"})`);
      }
      expected = e.revision; // an older lease's late save: overwrite it
    }
    throw new CentralError("CENTRAL_PARTITION_FENCED", `partition ${snapshot.partition}: the snapshot kept changing while ${snapshot.owner} saved it`);
  }
}
