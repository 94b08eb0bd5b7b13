/**
 * Group commit of counted batches, durable before anything moves: every
 * pending (node, seq), the origin totals the pending batches produce and the
 * node records that changed go to LevelDB in one atomic, synced batch. Only
 * after that write succeeds do the in-memory totals and high-water marks move
 * and the batches' promises resolve (their acks go out, their windows reach
 * the verdict). Writes are strictly sequential, so persisted totals never go
 * backwards.
 *
 * A failed write loses nothing silently: onFailure hears (synchronously, before
 * any promise settles) which nodes had batches in it, every batch of those
 * nodes still waiting is failed too (a later seq must never be written over a
 * lost one), and their promises reject, so the ingest ends those streams with
 * UNAVAILABLE and the sidecars replay. Nothing was added to the totals, so the
 * replay counts exactly once.
 */
import type { NodeRecord, OriginTotals } from "../store/level-store.js";

/** The one store call the committer needs (LevelStore, or a wrapper of it in tests). */
export interface CountedWriter {
  writeCounted(seqs: Map<string, bigint>, totals: Iterable<[string, OriginTotals]>, nodes?: Iterable<NodeRecord>): Promise<void>;
}

/** What one batch adds to one origin's totals. */
export interface TotalsDelta {
  requests: bigint;
  failures: bigint;
  /** Central clock when the batch arrived. */
  atMs: number;
}

interface Item {
  /** A counted batch: its node and seq and what it adds. */
  nodeId?: string;
  seq?: bigint;
  deltas?: Map<string, TotalsDelta>;
  /** A node record to persist with it. */
  node?: NodeRecord;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class Committer {
  private pending: Item[] = [];
  private writing = false;
  /** Told which nodes lost batches in a failed write, before their promises reject. */
  onFailure?: (nodeIds: ReadonlySet<string>, err: unknown) => void;

  constructor(
    private store: CountedWriter,
    /** Durable totals per origin: changed only here, after a successful write. */
    private totals: Map<string, OriginTotals>,
    /** Durable high-water mark per node: changed only here, after a successful write. */
    private highWater: Map<string, bigint>,
  ) {}

  /** Resolves once the batch (nodeId, seq), its totals and the node record are durable and applied. */
  commitBatch(nodeId: string, seq: bigint, deltas: Map<string, TotalsDelta>, node?: NodeRecord): Promise<void> {
    return this.queue({ nodeId, seq, deltas, node });
  }

  /** Resolves once the node record is durable. */
  saveNode(node: NodeRecord): Promise<void> {
    return this.queue({ node });
  }

  /** Resolves once everything queued before it is durable (rejects when that write fails). */
  barrier(): Promise<void> {
    return this.queue({});
  }

  private queue(item: Omit<Item, "resolve" | "reject">): Promise<void> {
    const p = new Promise<void>((resolve, reject) => this.pending.push({ ...item, resolve, reject }));
    void this.drain();
    return p;
  }

  /** Resolves once every write issued before the call is done, failed or not (a forget orders its deletes after them). */
  settled(): Promise<void> {
    return this.barrier().catch(() => undefined);
  }

  private async drain(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.pending.length > 0) {
        const group = this.pending;
        this.pending = [];
        const seqs = new Map<string, bigint>();
        const next = new Map<string, OriginTotals>();
        const nodes = new Map<string, NodeRecord>();
        for (const it of group) {
          if (it.nodeId !== undefined && it.seq !== undefined) {
            const prev = seqs.get(it.nodeId);
            if (prev === undefined || it.seq > prev) seqs.set(it.nodeId, it.seq);
          }
          if (it.node) nodes.set(it.node.nodeId, it.node);
          for (const [origin, d] of it.deltas ?? []) {
            let t = next.get(origin);
            if (!t) {
              const cur = this.totals.get(origin);
              next.set(origin, (t = cur ? { ...cur } : { requests: 0n, failures: 0n, firstSeenMs: d.atMs, lastSeenMs: d.atMs }));
            }
            t.requests += d.requests;
            t.failures += d.failures;
            if (d.atMs > t.lastSeenMs) t.lastSeenMs = d.atMs;
          }
        }
        try {
          await this.store.writeCounted(seqs, next, nodes.values());
        } catch (err) {
          this.fail(group, seqs, err);
          continue;
        }
        for (const [origin, t] of next) {
          const cur = this.totals.get(origin);
          if (cur) Object.assign(cur, t);
          else this.totals.set(origin, t);
        }
        for (const [nodeId, seq] of seqs) {
          const hw = this.highWater.get(nodeId);
          if (hw === undefined || seq > hw) this.highWater.set(nodeId, seq);
        }
        for (const it of group) it.resolve();
      }
    } finally {
      this.writing = false;
    }
  }

  private fail(group: Item[], seqs: Map<string, bigint>, err: unknown): void {
    const lost = new Set(seqs.keys());
    const keep: Item[] = [];
    const dropped: Item[] = [];
    for (const it of this.pending) (it.nodeId !== undefined && lost.has(it.nodeId) ? dropped : keep).push(it);
    this.pending = keep;
    try {
      this.onFailure?.(lost, err);
    } finally {
      for (const it of group) it.reject(err);
      for (const it of dropped) it.reject(err);
    }
  }

  /** Batches and records waiting for a write (tests, metrics). */
  get waiting(): number {
    return this.pending.length;
  }
}
