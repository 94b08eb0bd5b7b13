/**
 * Unacknowledged batches, oldest first, bounded in bytes (and in count):
 * overflow drops the oldest and counts it (DESIGN.md §6, at-least-once with a
 * bounded loss window). Batches are held encoded, so the bound is on what is
 * really kept in memory, and a replay writes the same bytes again.
 * seq is strictly increasing; push, ackThrough and drop are O(1) amortised;
 * remove (one refused batch) and rebuild (re-split after a Welcome) are O(n)
 * and rare.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { wireCounts } from "../../proto/outcomes.js";
import { type Batch, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";

export interface BufferedBatch {
  seq: bigint;
  /** The encoded SidecarMessage {batch}. */
  bytes: Uint8Array;
  /** Window and exemplar counts (checked against the central's limits without decoding). */
  windows: number;
  exemplars: number;
  /** The clock-skew correction its times were taken with (clock-skew.ts). */
  skewMs: number;
  /**
   * When it was last written to a stream (local clock; for the RTT of its
   * ack). Undefined while never written. Once written, seq and bytes are the
   * batch's identity on every central it is replayed to (a central that
   * stored it may not have acknowledged it): rebuild() keeps them.
   */
  sentAtMs?: number;
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

  /** Encode and append (seq must increase); drops the oldest beyond the bounds. Returns the entry. */
  push(b: Batch, skewMs = 0): BufferedBatch {
    const entry = entryOf(b, skewMs);
    this.items.push(entry);
    this._bytes += entry.bytes.length;
    while (this.size > 1 && (this._bytes > this.maxBytes || this.size > this.maxBatches)) {
      this.removeHead();
      this.dropped++;
    }
    return entry;
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

  /** Index of the first entry with seq > after. */
  private indexAfter(after: bigint): number {
    let lo = this.head;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid].seq <= after) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Batches with seq > after, oldest first. */
  *after(after: bigint): Generator<BufferedBatch> {
    for (let i = this.indexAfter(after); i < this.items.length; i++) yield this.items[i];
  }

  /** The entry with this seq, if held. */
  get(seq: bigint): BufferedBatch | undefined {
    const i = this.indexAfter(seq - 1n);
    return i < this.items.length && this.items[i].seq === seq ? this.items[i] : undefined;
  }

  /**
   * Forget one batch (the central refused it for good: BatchReject), keeping
   * the ones around it. Returns it, or undefined when it is not held (already
   * acknowledged, dropped, or refused before).
   */
  remove(seq: bigint): BufferedBatch | undefined {
    const i = this.indexAfter(seq - 1n);
    if (i >= this.items.length || this.items[i].seq !== seq) return undefined;
    const [e] = this.items.splice(i, 1);
    this._bytes -= e.bytes.length;
    return e;
  }

  first(): BufferedBatch | undefined {
    return this.size > 0 ? this.items[this.head] : undefined;
  }

  last(): BufferedBatch | undefined {
    return this.size > 0 ? this.items[this.items.length - 1] : undefined;
  }

  /**
   * Rewrite the held batches that may change and number them again
   * contiguously: each batch for which `keep(entry)` is true stays as it is,
   * under its seq (a batch once written to a stream: a central may have
   * stored it without acknowledging, and a replay to another central must
   * carry the same (node, seq) and content for it to be counted once); of the
   * others, each for which `needs(entry)` is true is decoded and replaced by
   * `transform(batch)` (zero, one or several batches, seqs ignored), the rest
   * are kept (re-encoded only when their seq moves). They are numbered from
   * the first of them, or after the last kept batch when that is higher.
   * Returns the seq after the last held batch (undefined when nothing changed).
   */
  rebuild(
    needs: (e: BufferedBatch) => boolean,
    transform: (b: Batch, e: BufferedBatch) => Batch[],
    skewMs: number,
    keep: (e: BufferedBatch) => boolean = () => false,
  ): bigint | undefined {
    const held = this.items.slice(this.head);
    const kept = held.filter(keep);
    const old = held.filter((e) => !keep(e));
    if (old.length === 0 || !old.some(needs)) return undefined;
    const afterKept = kept.length > 0 ? kept[kept.length - 1].seq + 1n : 0n;
    let seq = old[0].seq > afterKept ? old[0].seq : afterKept;
    const out: BufferedBatch[] = [...kept];
    for (const e of old) {
      if (!needs(e)) {
        out.push(e.seq === seq ? e : renumbered(e, seq));
        seq++;
        continue;
      }
      const msg = fromBinary(SidecarMessageSchema, e.bytes);
      if (msg.kind.case !== "batch") continue;
      for (const b of transform(msg.kind.value, e)) {
        b.seq = seq++;
        out.push(entryOf(b, skewMs));
      }
    }
    this.items = out;
    this.head = 0;
    this._bytes = out.reduce((n, e) => n + e.bytes.length, 0);
    while (this.size > 1 && (this._bytes > this.maxBytes || this.size > this.maxBatches)) {
      this.removeHead();
      this.dropped++;
    }
    return seq;
  }

  /** Add delta to every buffered seq (a restarted sidecar resuming above the central's high-water mark). */
  shift(delta: bigint): void {
    for (let i = this.head; i < this.items.length; i++) {
      const e = this.items[i];
      const n = renumbered(e, e.seq + delta);
      this._bytes += n.bytes.length - e.bytes.length;
      this.items[i] = n;
    }
  }
}

function entryOf(b: Batch, skewMs: number): BufferedBatch {
  const bytes = toBinary(SidecarMessageSchema, create(SidecarMessageSchema, { kind: { case: "batch", value: compactBatch(b) } }));
  return { seq: b.seq, bytes, windows: b.windows.length, exemplars: b.exemplars.length, skewMs };
}

/**
 * The batch as it goes on the wire: window counts in the compact form
 * (WindowSummary.packed_counts), which the central decodes without a nested
 * message or 64-bit integers. A window whose counts do not fit a uint32 keeps
 * the OutcomeCounts form (both are read). The caller's batch is not changed.
 */
export function compactBatch(b: Batch): Batch {
  const windows = b.windows.map((w) => {
    return w.counts ? { ...w, ...wireCounts(w.counts) } : w;
  });
  return { ...b, windows };
}

/** The same batch under another seq. */
function renumbered(e: BufferedBatch, seq: bigint): BufferedBatch {
  const msg = fromBinary(SidecarMessageSchema, e.bytes);
  if (msg.kind.case === "batch") msg.kind.value.seq = seq;
  return { ...e, seq, bytes: toBinary(SidecarMessageSchema, msg), sentAtMs: undefined };
}
