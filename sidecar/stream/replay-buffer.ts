/**
 * Unacknowledged batches, oldest first, bounded in bytes (and in count):
 * overflow drops the oldest and counts it (DESIGN.md §6, at-least-once with a
 * bounded loss window). Batches are held encoded, so the bound is on what is
 * really kept in memory, and a replay writes the same bytes again.
 * seq is strictly increasing; push, ackThrough and drop are O(1) amortised.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type Batch, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";

export interface BufferedBatch {
  seq: bigint;
  /** The encoded SidecarMessage {batch}. */
  bytes: Uint8Array;
}

export class ReplayBuffer {
  private items: BufferedBatch[] = [];
  private head = 0;
  private _bytes = 0;
  /** Batches dropped because the buffer was full (cumulative). */
  dropped = 0;

  constructor(
    readonly maxBytes: number,
    readonly maxBatches = Number.MAX_SAFE_INTEGER,
  ) {}

  get size(): number {
    return this.items.length - this.head;
  }

  /** Encoded bytes held. */
  get bytes(): number {
    return this._bytes;
  }

  /** Encode and append (seq must increase); drops the oldest beyond the bounds. */
  push(b: Batch): void {
    const bytes = toBinary(SidecarMessageSchema, create(SidecarMessageSchema, { kind: { case: "batch", value: b } }));
    this.items.push({ seq: b.seq, bytes });
    this._bytes += bytes.length;
    while (this.size > 1 && (this._bytes > this.maxBytes || this.size > this.maxBatches)) {
      this.removeHead();
      this.dropped++;
    }
  }

  private removeHead(): void {
    this._bytes -= this.items[this.head].bytes.length;
    this.items[this.head] = undefined as unknown as BufferedBatch;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Forget every batch with seq <= seq (cumulative ack). Returns how many were removed. */
  ackThrough(seq: bigint): number {
    let n = 0;
    while (this.size > 0 && this.items[this.head].seq <= seq) {
      this.removeHead();
      n++;
    }
    return n;
  }

  /** Batches with seq > after, oldest first. */
  *after(after: bigint): Generator<BufferedBatch> {
    let lo = this.head;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid].seq <= after) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.items.length; i++) yield this.items[i];
  }

  first(): BufferedBatch | undefined {
    return this.size > 0 ? this.items[this.head] : undefined;
  }

  /** Add delta to every buffered seq (a restarted sidecar resuming above the central's high-water mark). */
  shift(delta: bigint): void {
    for (let i = this.head; i < this.items.length; i++) {
      const e = this.items[i];
      const msg = fromBinary(SidecarMessageSchema, e.bytes);
      if (msg.kind.case !== "batch") continue;
      msg.kind.value.seq += delta;
      e.seq = msg.kind.value.seq;
      const bytes = toBinary(SidecarMessageSchema, msg);
      this._bytes += bytes.length - e.bytes.length;
      e.bytes = bytes;
    }
  }
}
