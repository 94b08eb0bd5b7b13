/**
 * Group commit of counted batches: every pending (node, seq) and the current
 * totals of the origins they touched go to LevelDB in one atomic batch; a
 * batch is acknowledged only after the write that contains it completes.
 * Writes are strictly sequential, so persisted totals never go backwards.
 */
import type { LevelStore, NodeRecord, OriginTotals } from "../store/level-store.js";

export class Committer {
  private pendingSeq = new Map<string, bigint>();
  private pendingNodes = new Map<string, NodeRecord>();
  private dirty = new Set<string>();
  private waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private writing = false;

  constructor(
    private store: LevelStore,
    private totals: Map<string, OriginTotals>,
  ) {}

  /** Resolves once (nodeId, seq) and the totals of `origins` are durable. */
  commit(nodeId: string, seq: bigint, origins: Iterable<string>, node?: NodeRecord): Promise<void> {
    const prev = this.pendingSeq.get(nodeId);
    if (prev === undefined || seq > prev) this.pendingSeq.set(nodeId, seq);
    if (node) this.pendingNodes.set(nodeId, node);
    for (const o of origins) this.dirty.add(o);
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    void this.drain();
    return p;
  }

  /** Resolves once every write issued before the call is done (a forget orders its deletes after them). */
  settled(): Promise<void> {
    if (!this.writing) return Promise.resolve();
    return new Promise<void>((resolve) => this.waiters.push({ resolve, reject: () => resolve() }));
  }

  private async drain(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.waiters.length > 0) {
        const waiters = this.waiters;
        const seqs = this.pendingSeq;
        const nodes = this.pendingNodes;
        const dirty = this.dirty;
        this.waiters = [];
        this.pendingSeq = new Map();
        this.pendingNodes = new Map();
        this.dirty = new Set();
        const totals: Array<[string, OriginTotals]> = [];
        for (const o of dirty) {
          const t = this.totals.get(o);
          if (t) totals.push([o, { ...t }]);
        }
        try {
          await this.store.writeCounted(seqs, totals, nodes.values());
          for (const w of waiters) w.resolve();
        } catch (err) {
          for (const w of waiters) w.reject(err);
        }
      }
    } finally {
      this.writing = false;
    }
  }
}
