/**
 * The central's one internal shape of a batch's window summaries: columns
 * (typed arrays) built once on arrival — by the hot decoder straight from the
 * wire (batch-decoder.ts) or from a decoded Batch message (columnsOfBatch) —
 * and read by everything after it: validation, totals, the verdict lookback and
 * the history rollups. Nothing converts a window again.
 *
 * Counts are dense in COUNT_FIELDS order (window i at [i*F, (i+1)*F)). TTFB
 * is re-bucketed onto DEFAULT_BOUNDS_MS as sparse (bucket, count) pairs:
 * window i's pairs are [ttfbStart[i], ttfbStart[i+1]) of ttfbIdx / ttfbN.
 * A histogram that is not the compact form (explicit bounds, dense counts, or
 * anything malformed) is kept as its message in `histograms` so validation
 * can name what is wrong with it; its pairs are still filled (re-bucketed).
 */
import type { Histogram, OutcomeCounts } from "../../proto/gen/originwatch/v1/common_pb.js";
import type { Batch } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { BOUNDS_SCHEMA_DEFAULT, DEFAULT_BOUNDS_MS, bucketIndex } from "../../proto/histogram.js";
import { COUNT_FIELDS, type Counts, failuresOf, requestsOf } from "../../proto/outcomes.js";

/** Count fields per window. */
export const F = COUNT_FIELDS.length;
/** TTFB buckets on DEFAULT_BOUNDS_MS. */
export const NB = DEFAULT_BOUNDS_MS.length + 1;

const COMPLETED_IDX = COUNT_FIELDS.map((_, i) => i).filter((i) => requestsOf(unit(i)) === 1 && COUNT_FIELDS[i] !== "stall");
const FAILURE_IDX = COUNT_FIELDS.map((_, i) => i).filter((i) => failuresOf(unit(i)) === 1 && COUNT_FIELDS[i] !== "stall");
function unit(i: number): Counts {
  const c = Object.fromEntries(COUNT_FIELDS.map((k) => [k, 0])) as Counts;
  c[COUNT_FIELDS[i]] = 1;
  return c;
}

/** A batch's windows as columns (read only): the builder's fields. */
export type WindowColumns = Readonly<Omit<ColumnsBuilder, "pairs" | "reserve" | "pair" | "setCountsMessage" | "setHistogram" | "end" | "done">>;

/** Builds columns window by window (the decoder and columnsOfBatch share it). */
export class ColumnsBuilder {
  readonly origin: string[];
  readonly startMs: Float64Array;
  readonly lengthMs: Float64Array;
  /** Dense counts, F per window. */
  readonly counts: Float64Array;
  /** packed_counts entries beyond the known fields (validation refuses them). */
  readonly extraCounts: Uint32Array;
  /** Length of the packed form as sent (for the refusal's message). */
  readonly packedLength: Uint32Array;
  /** Window i's TTFB pairs are [ttfbStart[i], ttfbStart[i + 1]) of ttfbIdx / ttfbN. */
  readonly ttfbStart: Uint32Array;
  ttfbIdx: Uint8Array;
  ttfbN: Float64Array;
  /** Samples a compact histogram claims: max(sum of its buckets, its count field). */
  readonly ttfbClaimed: Float64Array;
  /** Histograms not in the compact form (or malformed), by window index, as sent. */
  readonly histograms = new Map<number, Histogram>();
  /** Pairs written so far. */
  pairs = 0;

  constructor(readonly length: number) {
    this.origin = new Array<string>(length).fill("");
    this.startMs = new Float64Array(length);
    this.lengthMs = new Float64Array(length);
    this.counts = new Float64Array(length * F);
    this.extraCounts = new Uint32Array(length);
    this.packedLength = new Uint32Array(length);
    this.ttfbStart = new Uint32Array(length + 1);
    const guess = Math.max(16, length * 8);
    this.ttfbIdx = new Uint8Array(guess);
    this.ttfbN = new Float64Array(guess);
    this.ttfbClaimed = new Float64Array(length);
  }

  /** Room for n more TTFB pairs. */
  reserve(n: number): void {
    if (this.pairs + n <= this.ttfbIdx.length) return;
    const size = Math.max(this.ttfbIdx.length * 2, this.pairs + n);
    const idx = new Uint8Array(size);
    idx.set(this.ttfbIdx.subarray(0, this.pairs));
    const cnt = new Float64Array(size);
    cnt.set(this.ttfbN.subarray(0, this.pairs));
    this.ttfbIdx = idx;
    this.ttfbN = cnt;
  }

  pair(bucket: number, n: number): void {
    this.reserve(1);
    this.ttfbIdx[this.pairs] = bucket;
    this.ttfbN[this.pairs++] = n;
  }

  /** Window i's counts from an OutcomeCounts message (the previous release's form). */
  setCountsMessage(i: number, c: OutcomeCounts): void {
    const o = i * F;
    for (let k = 0; k < F; k++) this.counts[o + k] = Number(c[COUNT_FIELDS[k]]);
  }

  /** Window i's histogram in any form other than the fast compact one: kept, and re-bucketed into pairs. */
  setHistogram(i: number, h: Histogram): void {
    this.histograms.set(i, h);
    if (h.boundsSchema === BOUNDS_SCHEMA_DEFAULT) {
      const n = Math.min(h.sparseIndex.length, h.sparseCount.length);
      const dense = new Array<number>(NB).fill(0);
      for (let k = 0; k < n; k++) if (h.sparseIndex[k] < NB) dense[h.sparseIndex[k]] += h.sparseCount[k];
      for (let k = 0; k < h.counts.length && k < NB; k++) dense[k] += Number(h.counts[k]);
      for (let k = 0; k < NB; k++) if (dense[k] > 0) this.pair(k, dense[k]);
      return;
    }
    const dense = new Array<number>(NB).fill(0);
    for (let k = 0; k < h.counts.length; k++) {
      const n = Number(h.counts[k]);
      if (!(n > 0)) continue;
      const upper = k < h.boundsMs.length ? h.boundsMs[k] : Number.POSITIVE_INFINITY;
      dense[bucketIndex(DEFAULT_BOUNDS_MS, upper)] += n;
    }
    for (let k = 0; k < NB; k++) if (dense[k] > 0) this.pair(k, dense[k]);
  }

  /** Window i is complete (its pairs end here). */
  end(i: number): void {
    this.ttfbStart[i + 1] = this.pairs;
  }

  done(): WindowColumns {
    return this;
  }
}

/** Columns of a decoded Batch message (tests, tools, and any path that already holds the message). */
export function columnsOfBatch(batch: Pick<Batch, "windows">): WindowColumns {
  const ws = batch.windows;
  const b = new ColumnsBuilder(ws.length);
  for (let i = 0; i < ws.length; i++) {
    const w = ws[i];
    b.origin[i] = w.origin;
    b.startMs[i] = Number(w.startUnixMs);
    b.lengthMs[i] = w.lengthMs;
    if (w.counts) b.setCountsMessage(i, w.counts);
    else {
      const p = w.packedCounts;
      const n = Math.min(p.length, F);
      for (let k = 0; k < n; k++) b.counts[i * F + k] = p[k];
      b.extraCounts[i] = p.length - n;
      b.packedLength[i] = p.length;
    }
    const h = w.ttfb;
    if (h) {
      if (isFastCompact(h)) {
        let total = 0;
        for (let k = 0; k < h.sparseIndex.length; k++) {
          if (h.sparseCount[k] > 0) b.pair(h.sparseIndex[k], h.sparseCount[k]);
          total += h.sparseCount[k];
        }
        b.ttfbClaimed[i] = Math.max(total, Number(h.count));
      } else b.setHistogram(i, h);
    }
    b.end(i);
  }
  return b.done();
}

/** The compact form validation needs no message for: standard bounds, well-formed sparse buckets, a finite sum (as batch-decoder.ts's fast path). */
function isFastCompact(h: Histogram): boolean {
  // (An empty histogram of schema 0 is the compact form's "nothing" too.)
  if (h.boundsMs.length !== 0 || h.counts.length !== 0) return false;
  if (h.boundsSchema !== BOUNDS_SCHEMA_DEFAULT && !(h.boundsSchema === 0 && h.sparseIndex.length === 0 && h.sparseCount.length === 0)) return false;
  if (h.sparseIndex.length !== h.sparseCount.length || !Number.isFinite(h.sumMs) || h.sumMs < 0) return false;
  for (let k = 0; k < h.sparseIndex.length; k++) {
    if (h.sparseIndex[k] >= NB || (k > 0 && h.sparseIndex[k] <= h.sparseIndex[k - 1])) return false;
  }
  return true;
}

/** Completed requests of window i (every outcome class, stalls excluded): what the totals count. */
export function completedAt(c: WindowColumns, i: number): number {
  const o = i * F;
  let n = 0;
  for (let k = 0; k < COMPLETED_IDX.length; k++) n += c.counts[o + COMPLETED_IDX[k]];
  return n;
}

/** Completed failures of window i (stalls excluded). */
export function completedFailuresAt(c: WindowColumns, i: number): number {
  const o = i * F;
  let n = 0;
  for (let k = 0; k < FAILURE_IDX.length; k++) n += c.counts[o + FAILURE_IDX[k]];
  return n;
}

const STALL = COUNT_FIELDS.indexOf("stall");
const STALL_RECOVERED = COUNT_FIELDS.indexOf("stallRecovered");

/** Requests of window i as requestsOf counts them: completed plus the stalls not answered in it. */
export function requestsAt(c: WindowColumns, i: number): number {
  return completedAt(c, i) + Math.max(0, c.counts[i * F + STALL] - c.counts[i * F + STALL_RECOVERED]);
}

/** Failures of window i as failuresOf counts them: completed failures plus the stalls not answered in it. */
export function failuresAt(c: WindowColumns, i: number): number {
  return completedFailuresAt(c, i) + Math.max(0, c.counts[i * F + STALL] - c.counts[i * F + STALL_RECOVERED]);
}
