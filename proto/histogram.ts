/**
 * Mergeable TTFB histograms on the contract's Histogram message. Every
 * component uses DEFAULT_BOUNDS_MS so sidecar windows merge by adding counts;
 * histograms with other bounds are merged by re-bucketing at bucket upper bounds.
 * Senders use the compact form (bounds_schema = 1, sparse buckets): a window's
 * histogram is then tens of bytes instead of ~1 kB, and cheap to decode.
 */
import { create } from "@bufbuild/protobuf";
import { type Histogram, HistogramSchema } from "./gen/originwatch/v1/common_pb.js";

/** Roughly 4 buckets per doubling from 1 ms to ~65 s: p95 error under ~19 %. */
export const DEFAULT_BOUNDS_MS: readonly number[] = Object.freeze(
  Array.from({ length: 65 }, (_, i) => Math.round(2 ** (i / 4) * 1000) / 1000),
);

/** bounds_schema value for DEFAULT_BOUNDS_MS. */
export const BOUNDS_SCHEMA_DEFAULT = 1;

/**
 * Bounds and dense bucket counts of a histogram in either form (the one place
 * that reads the wire forms). Undefined when it holds no bucket.
 */
export function denseOf(h: Histogram | undefined): { bounds: readonly number[]; counts: number[] } | undefined {
  if (!h) return undefined;
  if (h.boundsSchema === BOUNDS_SCHEMA_DEFAULT) {
    if (h.sparseIndex.length === 0 && h.counts.length === 0) return undefined;
    const counts = new Array<number>(DEFAULT_BOUNDS_MS.length + 1).fill(0);
    const n = Math.min(h.sparseIndex.length, h.sparseCount.length);
    for (let i = 0; i < n; i++) if (h.sparseIndex[i] < counts.length) counts[h.sparseIndex[i]] += h.sparseCount[i];
    for (let i = 0; i < h.counts.length && i < counts.length; i++) counts[i] += Number(h.counts[i]);
    return { bounds: DEFAULT_BOUNDS_MS, counts };
  }
  if (h.counts.length === 0) return undefined;
  return { bounds: h.boundsMs, counts: h.counts.map(Number) };
}

export function newHistogram(bounds: readonly number[] = DEFAULT_BOUNDS_MS): Histogram {
  return create(HistogramSchema, {
    boundsMs: [...bounds],
    counts: new Array<bigint>(bounds.length + 1).fill(0n),
    sumMs: 0,
    count: 0n,
  });
}

/** Index of the bucket for a value: first bound >= value, else the overflow bucket. */
export function bucketIndex(bounds: readonly number[], valueMs: number): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (bounds[mid] >= valueMs) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** A plain-number histogram for hot paths; convert with toHistogram(). */
export class HistogramAccumulator {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[] = DEFAULT_BOUNDS_MS) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }
  record(valueMs: number): void {
    this.counts[bucketIndex(this.bounds, valueMs)]++;
    this.sum += valueMs;
    this.count++;
  }
  add(h: Histogram): void {
    this.sum += h.sumMs;
    this.count += Number(h.count);
    if (h.boundsSchema === BOUNDS_SCHEMA_DEFAULT && this.bounds === DEFAULT_BOUNDS_MS && h.counts.length === 0) {
      const n = Math.min(h.sparseIndex.length, h.sparseCount.length);
      for (let i = 0; i < n; i++) if (h.sparseIndex[i] < this.counts.length) this.counts[h.sparseIndex[i]] += h.sparseCount[i];
      return;
    }
    const d = denseOf(h);
    if (!d) return;
    if (sameBounds(d.bounds, this.bounds)) {
      for (let i = 0; i < this.counts.length && i < d.counts.length; i++) this.counts[i] += d.counts[i];
    } else {
      for (let i = 0; i < d.counts.length; i++) {
        const n = d.counts[i];
        if (n === 0) continue;
        const upper = i < d.bounds.length ? d.bounds[i] : Number.POSITIVE_INFINITY;
        this.counts[bucketIndex(this.bounds, upper)] += n;
      }
    }
  }
  quantile(q: number): number {
    return quantileOf(this.bounds, this.counts, q);
  }
  /** The compact wire form on DEFAULT_BOUNDS_MS, the dense form on other bounds. */
  toHistogram(): Histogram {
    if (sameBounds(this.bounds, DEFAULT_BOUNDS_MS)) {
      const sparseIndex: number[] = [];
      const sparseCount: number[] = [];
      for (let i = 0; i < this.counts.length; i++) {
        if (this.counts[i] !== 0) {
          sparseIndex.push(i);
          sparseCount.push(this.counts[i]);
        }
      }
      return create(HistogramSchema, { boundsSchema: BOUNDS_SCHEMA_DEFAULT, sparseIndex, sparseCount, sumMs: this.sum, count: BigInt(this.count) });
    }
    return this.toDenseHistogram();
  }

  /** The dense wire form (explicit bounds and every bucket). */
  toDenseHistogram(): Histogram {
    return create(HistogramSchema, {
      boundsMs: [...this.bounds],
      counts: this.counts.map((n) => BigInt(n)),
      sumMs: this.sum,
      count: BigInt(this.count),
    });
  }
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Merge b into a (a is modified and returned, in a's form). */
export function mergeHistogram(a: Histogram, b: Histogram): Histogram {
  const acc = new HistogramAccumulator(denseOf(a)?.bounds ?? DEFAULT_BOUNDS_MS);
  acc.add(a);
  acc.add(b);
  const merged = a.boundsSchema === BOUNDS_SCHEMA_DEFAULT ? acc.toHistogram() : acc.toDenseHistogram();
  a.boundsMs = merged.boundsMs;
  a.counts = merged.counts;
  a.sumMs = merged.sumMs;
  a.count = merged.count;
  a.boundsSchema = merged.boundsSchema;
  a.sparseIndex = merged.sparseIndex;
  a.sparseCount = merged.sparseCount;
  return a;
}

/**
 * Quantile estimate: the upper bound of the bucket holding the q-th value,
 * interpolated linearly inside the bucket. 0 when empty. Values past the
 * last bound report the last bound (a floor, never invented).
 */
export function quantileOf(bounds: readonly number[], counts: readonly number[], q: number): number {
  let total = 0;
  for (const c of counts) total += c;
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] === 0) continue;
    if (seen + counts[i] >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1] ?? 0;
      const lower = i === 0 ? 0 : bounds[i - 1];
      const upper = bounds[i];
      return lower + ((upper - lower) * (rank - seen)) / counts[i];
    }
    seen += counts[i];
  }
  return bounds[bounds.length - 1] ?? 0;
}

export function histogramQuantile(h: Histogram, q: number): number {
  const d = denseOf(h);
  return d ? quantileOf(d.bounds, d.counts, q) : 0;
}
