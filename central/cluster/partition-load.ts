/**
 * A partition's load as its owner measures it (issue 16): the rate of a
 * growing count (windows applied), smoothed by an exponentially weighted
 * moving average over `tauMs` (~30 s). The owner publishes it with its lease
 * heartbeat; placement (partition-placement.ts) balances by it.
 *
 * Contract: `value()` is undefined until the meter has observed `warmMs` of
 * samples (a rate over a few seconds is noise), unless it was seeded with the
 * load the previous owner published (a hand-over keeps the figure: the
 * partition did not change, only its owner). The average is bias-corrected,
 * so a young meter reports the mean of what it saw, not a value pulled
 * towards zero. A count that goes backwards (the owner restarted the
 * partition) restarts the rate from there, never a negative sample.
 */
export class LoadMeter {
  private avg = 0;
  private weight = 0;
  private observedMs = 0;
  private last?: { count: number; at: number };

  constructor(
    private readonly tauMs: number,
    private readonly warmMs: number,
    seed?: number,
  ) {
    if (seed !== undefined && Number.isFinite(seed) && seed >= 0) {
      // The seed weighs as much as warmMs of observation.
      this.weight = 1 - Math.exp(-warmMs / tauMs);
      this.avg = seed * this.weight;
      this.observedMs = warmMs;
    }
  }

  /** Folds in the count as of `atMs`; undefined = not counting now (skipped). */
  sample(count: number | undefined, atMs: number): void {
    if (count === undefined) return;
    const last = this.last;
    this.last = { count, at: atMs };
    if (!last || atMs <= last.at || count < last.count) return;
    const dt = atMs - last.at;
    const rate = ((count - last.count) * 1000) / dt;
    const a = 1 - Math.exp(-dt / this.tauMs);
    this.avg += a * (rate - this.avg);
    this.weight += a * (1 - this.weight);
    this.observedMs += dt;
  }

  /** The smoothed rate per second, or undefined while the meter is warming up. */
  value(): number | undefined {
    if (this.observedMs < this.warmMs || this.weight <= 0) return undefined;
    return this.avg / this.weight;
  }
}
