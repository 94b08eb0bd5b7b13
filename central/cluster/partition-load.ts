/**
 * A partition's load as its owner measures it (issue 16): the rate of a
 * growing count (windows applied) over the last `windowMs` (~30 s). The owner
 * publishes it with its lease heartbeat; placement (partition-placement.ts)
 * balances by it.
 *
 * Why a sliding window and not an EWMA: after a change of load every meter
 * older than the window reports the same, exact, figure, whatever its
 * history (an EWMA keeps a trace of each meter's past, different for each
 * partition, which placement would read as imbalance).
 *
 * Contract: `value()` is undefined until the meter has observed `warmMs`
 * (a rate over a few seconds is noise), unless it was seeded with the load
 * the previous owner published (a hand-over keeps the figure: the partition
 * did not change, only its owner); the seed fills the part of the window not
 * observed yet. A count that goes backwards (the owner restarted the
 * partition) starts the window afresh, seeded with the last figure.
 */
export class LoadMeter {
  /** Samples, oldest first; the first one is at or before the window's start once the window is full. */
  private samples: Array<{ count: number; at: number }> = [];

  constructor(
    private readonly windowMs: number,
    private readonly warmMs: number,
    private seed?: number,
  ) {
    if (seed !== undefined && !(Number.isFinite(seed) && seed >= 0)) this.seed = undefined;
  }

  /** Folds in the count as of `atMs`; undefined = not counting now (skipped). */
  sample(count: number | undefined, atMs: number): void {
    if (count === undefined) return;
    const last = this.samples.at(-1);
    if (last && atMs <= last.at) return;
    if (last && count < last.count) {
      this.seed = this.value() ?? this.seed;
      this.samples = [];
    }
    this.samples.push({ count, at: atMs });
    while (this.samples.length > 2 && this.samples[1].at <= atMs - this.windowMs) this.samples.shift();
  }

  /** The rate per second over the last window, or undefined while the meter is warming up. */
  value(): number | undefined {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    const covered = first && last ? Math.min(this.windowMs, last.at - first.at) : 0;
    if (covered <= 0 || !first || !last) return this.seed;
    // The oldest sample may lie before the window: count its interval pro rata.
    const counted = ((last.count - first.count) * covered) / (last.at - first.at);
    if (this.seed !== undefined) return (this.seed * (this.windowMs - covered) + counted * 1000) / this.windowMs;
    if (covered < this.warmMs) return undefined;
    return (counted * 1000) / covered;
  }
}
