/**
 * Which partition an origin belongs to (issue 16): p = FNV-1a-32(UTF-8 bytes
 * of the origin name) mod P. FNV-1a is fixed here for good: every replica, in
 * any version or language, must put an origin in the same partition, or two
 * owners would judge it. Changing P remaps origins, so P is the same on every
 * replica (--partitions) and changes only with the cluster drained.
 *
 * Balance (tools/bench/shard-balance.ts): the hash spreads origin *names*
 * evenly; what a partition costs is its summaries per second, and a worker
 * owns ceil(P / workers) partitions, so the figure that matters is summaries
 * per worker under a skewed (Zipf) origin popularity.
 */

const encoder = new TextEncoder();

/** FNV-1a, 32 bits, over the UTF-8 bytes of `s` (offset basis 2166136261, prime 16777619). */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of encoder.encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The partition of `origin` among `partitions` (an integer ≥ 1). */
export function partitionOf(origin: string, partitions: number): number {
  return fnv1a32(origin) % partitions;
}
