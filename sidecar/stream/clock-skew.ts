/**
 * This sidecar's clock minus the central's, measured from the central's
 * timestamps (Welcome and BatchAck `server_time_unix_ms`) and applied to
 * window alignment, so a sidecar whose clock is off still reports windows the
 * central accepts and lines up with its peers.
 *
 * Estimate: each sample is (send + RTT/2) − server time, where send is when the
 * message the central answered was written (the Hello, or the acknowledged
 * batch). The central stamps its answer after its durable write, so a sample's
 * error grows with its RTT: of the last FILTER_SAMPLES samples the one with the
 * shortest RTT is taken (NTP's clock filter), then smoothed by an EWMA, except
 * that a jump of more than STEP_MS (a clock stepped by NTP, a first sample) is
 * taken at once.
 * Correction: `appliedMs` follows the estimate only when they differ by at
 * least `thresholdMs` (default 250 ms), and is 0 while |estimate| is below it:
 * a few ms of jitter never moves windows. `now()` is the local clock minus the
 * applied correction — the central's clock as far as this sidecar knows it.
 * Listeners hear every change of the applied correction (the recorder re-dates
 * its open windows). Synchronous and cheap: `now()` is on the request path.
 */

export interface ClockSkewOptions {
  /** The local clock, ms since the epoch (tests inject a skewed one). */
  clock?: () => number;
  /** Smallest |skew| that is corrected (and smallest change of the correction). */
  thresholdMs?: number;
  /** EWMA weight of a new sample. */
  alpha?: number;
}

/** Samples kept for the shortest-RTT choice. */
export const FILTER_SAMPLES = 8;
/** A sample this far from the estimate replaces it instead of being smoothed in. */
export const STEP_MS = 10_000;
/** A sample whose RTT is longer than this says too little about the offset (unless it is the first). */
export const MAX_SAMPLE_RTT_MS = 5_000;

export class ClockSkew {
  readonly clock: () => number;
  private readonly thresholdMs: number;
  private readonly alpha: number;
  private estimate: number | undefined;
  private applied = 0;
  private recent: Array<{ offset: number; rtt: number }> = [];
  private readonly listeners: Array<(appliedMs: number, deltaMs: number) => void> = [];
  /** Samples taken (for status and tests). */
  samples = 0;

  constructor(opts: ClockSkewOptions = {}) {
    this.clock = opts.clock ?? Date.now;
    this.thresholdMs = opts.thresholdMs ?? 250;
    this.alpha = opts.alpha ?? 0.2;
  }

  /** Estimated local − central clock in ms (0 before the first sample). */
  get estimateMs(): number {
    return Math.round(this.estimate ?? 0);
  }

  /** The correction in force: window times are local time minus this. */
  get appliedMs(): number {
    return this.applied;
  }

  /** The central's clock as this sidecar knows it. */
  now(): number {
    return this.clock() - this.applied;
  }

  /** Called with the new correction and its change (new − old) whenever the correction changes. */
  onChange(fn: (appliedMs: number, deltaMs: number) => void): void {
    this.listeners.push(fn);
  }

  /**
   * One measurement: the message answered was written at local `sentMs`, the
   * answer stamped `serverMs` by the central arrived at local `receivedMs`.
   * A zero or missing server time (an older central) is ignored.
   */
  sample(sentMs: number, receivedMs: number, serverMs: number | bigint | undefined): void {
    const server = Number(serverMs ?? 0);
    if (!Number.isFinite(server) || server <= 0) return;
    const rtt = Math.max(0, receivedMs - sentMs);
    if (rtt > MAX_SAMPLE_RTT_MS && this.estimate !== undefined) return;
    const offset = sentMs + rtt / 2 - server;
    this.samples++;
    if (this.estimate === undefined || Math.abs(offset - this.estimate) > STEP_MS) {
      this.recent = [{ offset, rtt }];
      this.estimate = offset;
    } else {
      this.recent.push({ offset, rtt });
      if (this.recent.length > FILTER_SAMPLES) this.recent.shift();
      const best = this.recent.reduce((a, b) => (b.rtt < a.rtt ? b : a));
      this.estimate += this.alpha * (best.offset - this.estimate);
    }
    this.update();
  }

  private update(): void {
    const est = this.estimate ?? 0;
    // Moves only when the estimate is a threshold away from the correction in force (hysteresis).
    if (Math.abs(est - this.applied) < this.thresholdMs) return;
    const target = Math.abs(est) < this.thresholdMs ? 0 : Math.round(est);
    const delta = target - this.applied;
    if (delta === 0) return;
    this.applied = target;
    for (const fn of this.listeners) fn(target, delta);
  }
}
