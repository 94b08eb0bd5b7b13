/**
 * The hot path's decoder: a Batch (ingest.proto) read with protobuf-es's
 * BinaryReader straight into WindowColumns, without a WindowSummary,
 * OutcomeCounts or Histogram message per window (protobuf-es's reflective
 * decode of those was most of the ingest's CPU; measurements in
 * ../../proto/README.md). Everything else in a batch — exemplars, an
 * OutcomeCounts of the previous release, a histogram that is not the compact
 * form — is decoded by protobuf-es's generated code, as before.
 *
 * Same wire semantics as fromBinary: unknown fields are skipped, packed and
 * unpacked repeated fields are both read, the last scalar wins. A malformed
 * message throws an Error whose message starts with "parse binary" (as
 * protobuf-es's does, so the stream ends INVALID_ARGUMENT the same way).
 */
import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { type Exemplar, ExemplarSchema, HistogramSchema, OutcomeCountsSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { ColumnsBuilder, F, NB, type WindowColumns } from "./window-columns.js";

/** A Batch as the central uses it: its scalars, its windows as columns, its exemplars as messages. */
export interface DecodedBatch {
  seq: bigint;
  windows: WindowColumns;
  exemplars: Exemplar[];
  droppedBatches: bigint;
  bufferedBatches: bigint;
  clockSkewMs: bigint;
  rejectedBatches: bigint;
  /**
   * The batch's wire bytes, kept by the ingest for a sink that forwards the
   * batch (cluster mode re-reads them with protobuf-es to split by partition).
   */
  bytes?: Uint8Array;
}

const LEN = WireType.LengthDelimited;
const VARINT = WireType.Varint;

/** Reads an unsigned varint of up to 64 bits as a Number (exact below 2^53). */
function varNum(r: BinaryReader, buf: Uint8Array): number {
  let pos = r.pos;
  let b = buf[pos++];
  if (b < 0x80) {
    r.pos = pos;
    return b;
  }
  let n = b & 0x7f;
  let mul = 0x80;
  for (let i = 1; i < 10; i++) {
    if (pos >= buf.length) throw new Error("parse binary: premature EOF");
    b = buf[pos++];
    n += (b & 0x7f) * mul;
    if (b < 0x80) {
      r.pos = pos;
      return n;
    }
    mul *= 0x80;
  }
  throw new Error("parse binary: invalid varint");
}

/** A signed int64 varint as a Number (negative values come as 10-byte two's complement). */
function int64Num(r: BinaryReader, buf: Uint8Array): number {
  const start = r.pos;
  const n = varNum(r, buf);
  if (r.pos - start < 10) return n;
  r.pos = start;
  return Number(BigInt.asIntN(64, BigInt(r.uint64())));
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Interned origin names: the same few thousand names arrive in every batch, so
 * a name is looked up by a hash of its bytes and the string made once (no
 * string per window; Map lookups by the interned string reuse its hash).
 */
const interned = new Map<number, string[]>();
let internedCount = 0;
const MAX_INTERNED = 100_000;

/** A string field (origin names): interned when ASCII and short, otherwise decoded. */
function str(r: BinaryReader, buf: Uint8Array): string {
  const len = r.uint32();
  const start = r.pos;
  const end = start + len;
  if (end > buf.length) throw new Error("parse binary: premature EOF");
  r.pos = end;
  if (len > 253) return decodeUtf8(buf, start, end);
  let h = 0x811c9dc5 ^ len;
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c >= 0x80) return decodeUtf8(buf, start, end);
    h = Math.imul(h ^ c, 0x01000193);
  }
  const list = interned.get(h);
  if (list) {
    for (const s of list) if (sameAscii(s, buf, start, end)) return s;
  }
  const s = decodeUtf8(buf, start, end);
  if (internedCount >= MAX_INTERNED) {
    interned.clear();
    internedCount = 0;
  }
  if (list) list.push(s);
  else interned.set(h, [s]);
  internedCount++;
  return s;
}

function sameAscii(s: string, buf: Uint8Array, start: number, end: number): boolean {
  if (s.length !== end - start) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== buf[start + i]) return false;
  return true;
}

function decodeUtf8(buf: Uint8Array, start: number, end: number): string {
  try {
    return utf8.decode(buf.subarray(start, end));
  } catch {
    throw new Error("parse binary: invalid UTF-8 in a string field");
  }
}

/** The body of a length-delimited field: [start, end). */
function body(r: BinaryReader, buf: Uint8Array): number {
  const len = r.uint32();
  const end = r.pos + len;
  if (end > buf.length) throw new Error("parse binary: premature EOF");
  return end;
}

/** Counts the windows of a batch (field 2) to size the columns. */
function countWindows(buf: Uint8Array): number {
  const r = new BinaryReader(buf);
  let n = 0;
  while (r.pos < buf.length) {
    const tag = r.uint32();
    if (tag === ((2 << 3) | LEN)) n++;
    r.skip(tag & 7, tag >>> 3);
  }
  return n;
}

/** Decodes a Batch message body (the bytes of SidecarMessage.batch) into columns. */
export function decodeBatch(buf: Uint8Array): DecodedBatch {
  try {
    return decode(buf);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(msg.startsWith("parse binary") ? msg : `parse binary: ${msg}`);
  }
}

function decode(buf: Uint8Array): DecodedBatch {
  const b = new ColumnsBuilder(countWindows(buf));
  const out: DecodedBatch = { seq: 0n, windows: b, exemplars: [], droppedBatches: 0n, bufferedBatches: 0n, clockSkewMs: 0n, rejectedBatches: 0n };
  const r = new BinaryReader(buf);
  let i = 0;
  while (r.pos < buf.length) {
    const tag = r.uint32();
    const no = tag >>> 3;
    const wt = tag & 7;
    if (no === 2 && wt === LEN) {
      window(r, buf, b, i, body(r, buf));
      b.end(i++);
      continue;
    }
    if (wt === VARINT) {
      if (no === 1) out.seq = BigInt.asUintN(64, BigInt(r.uint64()));
      else if (no === 4) out.droppedBatches = BigInt.asUintN(64, BigInt(r.uint64()));
      else if (no === 5) out.bufferedBatches = BigInt.asUintN(64, BigInt(r.uint64()));
      else if (no === 6) out.clockSkewMs = BigInt.asIntN(64, BigInt(r.int64()));
      else if (no === 7) out.rejectedBatches = BigInt.asUintN(64, BigInt(r.uint64()));
      else r.skip(wt, no);
      continue;
    }
    if (no === 3 && wt === LEN) {
      out.exemplars.push(fromBinary(ExemplarSchema, r.bytes()));
      continue;
    }
    r.skip(wt, no);
  }
  return out;
}

function window(r: BinaryReader, buf: Uint8Array, b: ColumnsBuilder, i: number, end: number): void {
  const o = i * F;
  let packed = 0;
  let countsMessage = false;
  while (r.pos < end) {
    const tag = r.uint32();
    const no = tag >>> 3;
    const wt = tag & 7;
    switch (no) {
      case 1:
        if (wt !== LEN) break;
        b.origin[i] = str(r, buf);
        continue;
      case 2:
        if (wt !== VARINT) break;
        b.startMs[i] = int64Num(r, buf);
        continue;
      case 3:
        if (wt !== VARINT) break;
        b.lengthMs[i] = r.uint32();
        continue;
      case 4: {
        if (wt !== LEN) break;
        // The previous release's OutcomeCounts: generated code (its 64-bit counters), then numbers.
        const c = fromBinary(OutcomeCountsSchema, r.bytes());
        if (!countsMessage) b.counts.fill(0, o, o + F);
        countsMessage = true;
        b.setCountsMessage(i, c);
        continue;
      }
      case 5:
        if (wt !== LEN) break;
        histogram(r, buf, b, i, body(r, buf));
        continue;
      case 8:
        if (wt === LEN) {
          const e = body(r, buf);
          while (r.pos < e) packed = packedCount(b, i, o, packed, varNum(r, buf), countsMessage);
          if (r.pos !== e) throw new Error("parse binary: packed_counts overruns its length");
          continue;
        }
        if (wt === VARINT) {
          packed = packedCount(b, i, o, packed, varNum(r, buf), countsMessage);
          continue;
        }
        break;
    }
    r.skip(wt, no);
  }
  if (r.pos !== end) throw new Error("parse binary: window summary overruns its length");
}

/** One packed_counts entry (ignored, as before, when the window also has an OutcomeCounts). */
function packedCount(b: ColumnsBuilder, i: number, o: number, k: number, v: number, countsMessage: boolean): number {
  if (!countsMessage) {
    if (k < F) b.counts[o + k] = v;
    else b.extraCounts[i]++;
  }
  b.packedLength[i] = k + 1;
  return k + 1;
}

/**
 * A Histogram. The compact form (bounds_schema 1, sparse buckets ascending
 * and in range, finite sum) goes straight into pairs; any other form, or
 * anything unusual, is decoded again by protobuf-es and kept as a message
 * (validation names its fault; ColumnsBuilder.setHistogram re-buckets it).
 */
function histogram(r: BinaryReader, buf: Uint8Array, b: ColumnsBuilder, i: number, end: number): void {
  const start = r.pos;
  const firstPair = b.pairs;
  let schema = 0;
  let count = 0;
  let total = 0;
  let nIdx = 0;
  let nCnt = 0;
  let fast = true;
  let lastIdx = -1;
  // Index and count fields may interleave; pairs are written as indexes arrive and counts fill them in.
  while (r.pos < end && fast) {
    const tag = r.uint32();
    const no = tag >>> 3;
    const wt = tag & 7;
    if ((no === 6 || no === 7) && wt !== LEN && wt !== VARINT) {
      fast = false;
      continue;
    }
    if (no === 6) {
      const e = wt === LEN ? body(r, buf) : -1;
      do {
        const idx = varNum(r, buf);
        if (idx <= lastIdx || idx >= NB) fast = false;
        lastIdx = idx;
        b.reserve(1);
        if (nIdx >= nCnt) b.ttfbN[firstPair + nIdx] = 0;
        b.ttfbIdx[firstPair + nIdx++] = idx;
        if (nIdx > b.pairs - firstPair) b.pairs = firstPair + nIdx;
      } while (e >= 0 && r.pos < e);
      continue;
    }
    if (no === 7) {
      const e = wt === LEN ? body(r, buf) : -1;
      do {
        const n = varNum(r, buf) >>> 0;
        b.reserve(1);
        if (nCnt >= nIdx) b.ttfbIdx[firstPair + nCnt] = 0;
        b.ttfbN[firstPair + nCnt++] = n;
        if (nCnt > b.pairs - firstPair) b.pairs = firstPair + nCnt;
        total += n;
      } while (e >= 0 && r.pos < e);
      continue;
    }
    if (no === 3 && wt === WireType.Bit64) {
      const s = r.double();
      if (!(s >= 0) || !Number.isFinite(s)) fast = false;
      continue;
    }
    if (no === 4 && wt === VARINT) {
      count = varNum(r, buf);
      continue;
    }
    if (no === 5 && wt === VARINT) {
      schema = r.uint32();
      continue;
    }
    if (no === 1 || no === 2) {
      fast = false;
      continue;
    }
    r.skip(wt, no);
  }
  if (fast && (nIdx !== nCnt || (nIdx > 0 && schema !== 1) || (schema !== 0 && schema !== 1))) fast = false;
  if (!fast) {
    b.pairs = firstPair;
    b.setHistogram(i, fromBinary(HistogramSchema, buf.subarray(start, end)));
    r.pos = end;
    return;
  }
  if (r.pos !== end) throw new Error("parse binary: histogram overruns its length");
  // Drop empty buckets (a zero count adds nothing).
  let w = firstPair;
  for (let k = firstPair; k < firstPair + nIdx; k++) {
    if (b.ttfbN[k] > 0) {
      b.ttfbIdx[w] = b.ttfbIdx[k];
      b.ttfbN[w++] = b.ttfbN[k];
    }
  }
  b.pairs = w;
  b.ttfbClaimed[i] = Math.max(total, count);
}
