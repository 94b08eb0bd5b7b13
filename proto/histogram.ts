/**
 * Mergeable TTFB histograms on the contract's Histogram message. Every
 * component uses DEFAULT_BOUNDS_MS so sidecar windows merge by adding counts;
 * histograms with other bounds are merged by re-bucketing at bucket upper bounds.
 */
import { create } from "@bufbuild/protobuf";
import { type Histogram, HistogramSchema } from "./gen/originwatch/v1/common_pb.js";

/** Roughly 4 buckets per doubling from 1 ms to ~65 s: p95 error under ~19 %. */
export const DEFAULT_BOUNDS_MS: readonly number[] = Object.freeze(
  Array.from({ length: 65 }, (_, i) => Math.round(2 ** (i / 4) * 1000) / 1000),
);

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
    if (sameBounds(h.boundsMs, this.bounds)) {
      for (let i = 0; i < this.counts.length && i < h.counts.length; i++) this.counts[i] += Number(h.counts[i]);
    } else {
      for (let i = 0; i < h.counts.length; i++) {
        const n = Number(h.counts[i]);
        if (n === 0) continue;
        const upper = i < h.boundsMs.length ? h.boundsMs[i] : Number.POSITIVE_INFINITY;
        this.counts[bucketIndex(this.bounds, upper)] += n;
      }
    }
    this.sum += h.sumMs;
    this.count += Number(h.count);
  }
  quantile(q: number): number {
    return quantileOf(this.bounds, this.counts, q);
  }
  toHistogram(): Histogram {
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

/** Merge b into a (a is modified and returned). */
export function mergeHistogram(a: Histogram, b: Histogram): Histogram {
  const acc = new HistogramAccumulator(a.boundsMs.length ? a.boundsMs : DEFAULT_BOUNDS_MS);
  acc.add(a);
  acc.add(b);
  const merged = acc.toHistogram();
  a.boundsMs = merged.boundsMs;
  a.counts = merged.counts;
  a.sumMs = merged.sumMs;
  a.count = merged.count;
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
  return quantileOf(h.boundsMs, h.counts.map(Number), q);
}
