/**
 * Ingest throttle: one token bucket per node, kept across its streams and
 * reconnects, charged by what costs (window summaries and exemplars, a
 * message at least 1). Over the rate, the node's reader waits instead of
 * failing: HTTP/2 flow control then holds back that stream, so a flooding
 * node slows itself down, the other nodes keep their latency, and no batch
 * is lost. A reconnect does not refill the bucket.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    private now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /**
   * Takes n tokens (the bucket may go into debt) and returns the milliseconds
   * to wait before the work they pay for may proceed (0 = now).
   */
  take(n = 1): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.ratePerSec) / 1000);
    this.last = t;
    this.tokens -= n;
    if (this.tokens >= 0) return 0;
    return (-this.tokens * 1000) / this.ratePerSec;
  }
}

/** The buckets by node_id; bounded by the node cap (a bucket exists only for a welcomed node). */
export class NodeBuckets {
  private buckets = new Map<string, TokenBucket>();

  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    private now?: () => number,
  ) {}

  /** The node's bucket, created full on first use. */
  of(nodeId: string): TokenBucket {
    let b = this.buckets.get(nodeId);
    if (!b) this.buckets.set(nodeId, (b = new TokenBucket(this.ratePerSec, this.burst, this.now)));
    return b;
  }

  forget(nodeId: string): void {
    this.buckets.delete(nodeId);
  }

  get size(): number {
    return this.buckets.size;
  }
}
