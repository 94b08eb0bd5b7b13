/**
 * Unacknowledged batches, oldest first, bounded: overflow drops the oldest and
 * counts it (DESIGN.md §6, at-least-once with a bounded loss window).
 */
import type { Batch } from "../../proto/gen/originwatch/v1/ingest_pb.js";

export class ReplayBuffer {
  private items: Batch[] = [];
  /** Batches dropped because the buffer was full (cumulative). */
  dropped = 0;

  constructor(readonly max: number) {}

  get size(): number {
    return this.items.length;
  }

  /** Append (seq must increase); drops the oldest beyond max. */
  push(b: Batch): void {
    this.items.push(b);
    while (this.items.length > this.max) {
      this.items.shift();
      this.dropped++;
    }
  }

  /** Forget every batch with seq <= seq (cumulative ack). Returns how many were removed. */
  ackThrough(seq: bigint): number {
    let n = 0;
    while (n < this.items.length && this.items[n].seq <= seq) n++;
    if (n > 0) this.items.splice(0, n);
    return n;
  }

  /** Batches with seq > after, oldest first. */
  after(after: bigint): Batch[] {
    return this.items.filter((b) => b.seq > after);
  }

  first(): Batch | undefined {
    return this.items[0];
  }

  /** Add delta to every buffered seq (a restarted sidecar resuming above the central's high-water mark). */
  shift(delta: bigint): void {
    for (const b of this.items) b.seq += delta;
  }
}
