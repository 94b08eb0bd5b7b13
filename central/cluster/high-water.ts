/**
 * Exactly-once application of a partition's batches (issue 16): the owner
 * applies a PartitionBatch only when its seq is above the node's high-water
 * mark for this partition. This is what removes replays (a sidecar replaying
 * to another replica, a re-read after a failover: the window log's msgIDs
 * name the ingest's messages, not batches). It relies on the window log
 * storing a node's batches in seq order with no later seq over a missing
 * earlier one (the publisher's order rules). The marks travel in the
 * partition snapshot.
 */
export class HighWaterMarks {
  private readonly marks = new Map<string, bigint>();

  /** True (and the mark moves to seq) when (nodeId, seq) is new; false for a seq at or below the mark. */
  accept(nodeId: string, seq: bigint): boolean {
    if (seq <= (this.marks.get(nodeId) ?? 0n)) return false;
    this.marks.set(nodeId, seq);
    return true;
  }

  /** The node's mark (0 before its first batch). */
  get(nodeId: string): bigint {
    return this.marks.get(nodeId) ?? 0n;
  }

  get size(): number {
    return this.marks.size;
  }

  /** Forgets a node (it aged out); a later batch of it is accepted again. */
  forget(nodeId: string): void {
    this.marks.delete(nodeId);
  }

  /** JSON form for snapshots (decimal strings: seqs are 64-bit). */
  toRecord(): Record<string, string> {
    return Object.fromEntries([...this.marks].map(([k, v]) => [k, v.toString()]));
  }

  static fromRecord(r: Record<string, string>): HighWaterMarks {
    const h = new HighWaterMarks();
    for (const [k, v] of Object.entries(r)) {
      if (!/^\d{1,20}$/.test(v)) throw new Error(`high-water mark of ${JSON.stringify(k)} must be a decimal seq, got ${JSON.stringify(v)}`);
      h.marks.set(k, BigInt(v));
    }
    return h;
  }
}
