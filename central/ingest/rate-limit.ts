/**
 * Per-session token bucket for inbound ingest messages. Over the rate, the
 * session's reader waits instead of failing: HTTP/2 flow control then holds
 * back that one stream, so a flooding node slows itself down and the other
 * nodes keep their latency, without losing a batch.
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

  /** Milliseconds to wait before one more message may be handled (0 = now); takes the token. */
  take(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.ratePerSec) / 1000);
    this.last = t;
    this.tokens -= 1;
    if (this.tokens >= 0) return 0;
    return (-this.tokens * 1000) / this.ratePerSec;
  }
}
