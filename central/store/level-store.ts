/**
 * LevelStore: the central's durable state in one LevelDB directory.
 * Layout (sublevels, JSON values): nodes/<node_id>, totals/<origin>,
 * hwm/<node_id> (highest batch seq counted). Counting a batch writes the new
 * totals and the node's high-water mark in one atomic batch(), so a crash
 * can never count a batch without remembering it (exactly-once counting).
 * One process per directory: a second open fails with CENTRAL_DATA_LOCKED.
 * A corrupt directory fails with CENTRAL_DATA_CORRUPT naming the repair
 * command (`originwatch central repair --data DIR`, see repair.ts).
 *
 * Durability (issue 10 item 8). `sync: true` fsyncs the LevelDB log before the
 * write resolves, so the record survives a machine crash, not only a process
 * crash. What is synced, and why:
 *
 *   record                     synced  why
 *   counted batches + hwm      yes     acked batches are dropped by the sidecar; a lost count is lost for good
 *   node records               yes     labels and config ACK/NACK state operators read (ListNodes, ctl nodes)
 *   fleet config + history     yes     what the fleet runs; a version must never be reused
 *   incidents, tracks, events  yes     state operators act on; incident identity must survive a restart
 *   alert outbox entries       yes     a webhook must not be lost across a crash (written before delivery)
 *   history rollups            yes     one batch per flush (every 10 s); a minute is marked clean only after it
 *   last verdict per origin    no      recomputed from live data within one lookback after a restart
 *   outbox deletes, prunes     no      a lost delete only re-sends (receivers dedupe) or re-prunes
 *
 * README "Durability" repeats this table; keep them together.
 */
import { Level } from "level";
import { mkdir } from "node:fs/promises";
import { CentralError } from "../errors.js";
import { asStoreError, assertNotHeadless, corruptError, corruptionDetail, isCorruption } from "./repair.js";

export interface NodeRecord {
  nodeId: string;
  isp: string;
  region: string;
  version: string;
  origins: string[];
  lastSeenMs: number;
  connectedSinceMs: number;
  appliedConfigVersion: string;
  lastNackReason: string;
  bufferedBatches: string;
  droppedBatches: string;
  /** Batches the central refused for good (BatchReject) from this node, and the last reason (ingest; absent in older records). */
  rejectedBatches?: number;
  lastRejectReason?: string;
  /** The sidecar's own cumulative count of refused batches it dropped (Batch.rejected_batches). */
  reportedRejectedBatches?: string;
  /** The sidecar's clock minus the central's, as it last reported (Batch.clock_skew_ms). */
  clockSkewMs?: number;
  /** ProbeResults refused (not a probe sent to this node, or malformed). */
  refusedProbeResults?: number;
  /** --node-labels: how the last hello's claimed labels disagreed with the allowlist ("" = agreed). */
  labelMismatch?: string;
  /** --node-labels: hellos whose claimed labels disagreed (decimal). */
  labelMismatches?: string;
}

export interface OriginTotals {
  requests: bigint;
  failures: bigint;
  firstSeenMs: number;
  lastSeenMs: number;
}

interface OriginTotalsJson {
  requests: string;
  failures: string;
  firstSeenMs: number;
  lastSeenMs: number;
}

/** classic-level's put/batch option (the `level` typings only name the abstract options). */
export const SYNC = { sync: true } as Record<string, unknown>;

export class LevelStore {
  private closed = false;
  readonly nodes;
  readonly totals;
  readonly hwm;
  /** Observer of each counted-batch write's latency in seconds (the central's metrics). */
  onWrite: ((seconds: number) => void) | undefined;

  private constructor(
    readonly db: Level<string, unknown>,
    readonly dir: string,
  ) {
    this.nodes = db.sublevel<string, NodeRecord>("nodes", { valueEncoding: "json" });
    this.totals = db.sublevel<string, OriginTotalsJson>("totals", { valueEncoding: "json" });
    this.hwm = db.sublevel<string, string>("hwm", { valueEncoding: "utf8" });
  }

  /** Opens (creating) the directory. Throws CENTRAL_DATA_LOCKED when another process holds it. */
  static async open(dir: string): Promise<LevelStore> {
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw new CentralError("CENTRAL_DATA_UNAVAILABLE", `cannot create data directory ${dir}: ${(err as Error).message}`, { cause: err });
    }
    await assertNotHeadless(dir);
    const db = new Level<string, unknown>(dir, { valueEncoding: "json" });
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      if (cause?.code === "LEVEL_LOCKED") {
        throw new CentralError("CENTRAL_DATA_LOCKED", `data directory ${dir} is locked by another process (is another central running?)`, { cause: err });
      }
      if (isCorruption(err)) throw corruptError(dir, corruptionDetail(err), err);
      throw new CentralError("CENTRAL_DATA_UNAVAILABLE", `cannot open data directory ${dir}: ${(err as Error).message}`, { cause: err });
    }
    return new LevelStore(db, dir);
  }

  /** A corruption found while reading (a garbled table block) becomes CENTRAL_DATA_CORRUPT naming the repair command. */
  storeError(err: unknown): unknown {
    return asStoreError(err, this.dir);
  }

  /** A named sublevel for other concerns (incidents, config, rollups); JSON values. */
  sublevel<V>(name: string) {
    return this.db.sublevel<string, V>(name, { valueEncoding: "json" });
  }

  async loadNodes(): Promise<NodeRecord[]> {
    return this.nodes.values().all();
  }

  async loadTotals(): Promise<Map<string, OriginTotals>> {
    const out = new Map<string, OriginTotals>();
    for await (const [k, v] of this.totals.iterator()) {
      out.set(k, { requests: BigInt(v.requests), failures: BigInt(v.failures), firstSeenMs: v.firstSeenMs, lastSeenMs: v.lastSeenMs });
    }
    return out;
  }

  async loadHighWater(): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>();
    for await (const [k, v] of this.hwm.iterator()) out.set(k, BigInt(v));
    return out;
  }

  /** Synced: node labels and config ACK/NACK state are what operators read (see the table above). */
  async putNode(rec: NodeRecord): Promise<void> {
    await this.nodes.put(rec.nodeId, rec, SYNC);
  }

  /**
   * Atomically record counted batches (highest seq per node) with the origin
   * totals they produced and the node records that changed.
   */
  async writeCounted(seqs: Map<string, bigint>, totals: Iterable<[string, OriginTotals]>, nodes: Iterable<NodeRecord> = []): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const ops: any[] = [];
    for (const [origin, t] of totals) {
      ops.push({
        type: "put",
        sublevel: this.totals,
        key: origin,
        value: { requests: t.requests.toString(), failures: t.failures.toString(), firstSeenMs: t.firstSeenMs, lastSeenMs: t.lastSeenMs },
      });
    }
    for (const [nodeId, seq] of seqs) ops.push({ type: "put", sublevel: this.hwm, key: nodeId, value: seq.toString() });
    for (const node of nodes) ops.push({ type: "put", sublevel: this.nodes, key: node.nodeId, value: node });
    // sync: an acknowledged batch is dropped by the sidecar, so its count must survive a machine crash,
    // not only a process crash (group commit makes this one fsync per group of batches).
    if (ops.length === 0) return;
    const t0 = performance.now();
    await this.db.batch(ops, { sync: true });
    this.onWrite?.((performance.now() - t0) / 1000);
  }

  /**
   * Forget an origin's totals (operator forget, age-out). Call after the
   * committer's in-flight writes, so none of them writes the totals back.
   */
  async deleteOrigin(origin: string): Promise<void> {
    await this.totals.del(origin);
  }

  /** Forget a node's record and high-water mark in one atomic batch (operator forget, age-out). */
  async deleteNode(nodeId: string): Promise<void> {
    await this.db.batch([
      { type: "del", sublevel: this.nodes, key: nodeId },
      { type: "del", sublevel: this.hwm, key: nodeId },
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
    ] as any);
  }

  /** Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }
}
