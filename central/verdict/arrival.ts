/**
 * Evaluation on arrival (issue 13 item 2): a batch that brings a failing
 * window (lookback.add says so) schedules one evaluation of its origin
 * ARRIVAL_DEBOUNCE_MS later, instead of waiting up to a whole tick. The
 * debounce lets the other nodes' windows of the same fault onset (each
 * sidecar cuts its own, within ~100 ms of the others) arrive first, so the
 * verdict is taken on the fleet, not on the first node heard from.
 *
 * What it does not change: healthy traffic schedules nothing (steady state
 * costs one Map lookup per failing window); the tick still evaluates every
 * origin every second and is the only one that steps the incident state
 * machines, so hysteresis (open after 2 ticks, close after 5) and flapping
 * keep their meaning, and recovery is only ever seen by the tick.
 * Bounded: at most one pending timer per origin the lookback holds.
 * Timers are unref'd; shutdown() is idempotent.
 */

/** Wait after the first failing window of an origin before evaluating it. */
export const ARRIVAL_DEBOUNCE_MS = 150;

export class ArrivalScheduler {
  private pending = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly evaluate: (origin: string) => void,
    private readonly debounceMs = ARRIVAL_DEBOUNCE_MS,
  ) {}

  /** A failing window of `origin` arrived: evaluate it soon (once per debounce). */
  note(origin: string): void {
    if (this.stopped || this.pending.has(origin)) return;
    const t = setTimeout(() => {
      this.pending.delete(origin);
      if (!this.stopped) this.evaluate(origin);
    }, this.debounceMs);
    t.unref();
    this.pending.set(origin, t);
  }

  /** Evaluations scheduled and not yet run. */
  get size(): number {
    return this.pending.size;
  }

  shutdown(): void {
    this.stopped = true;
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }
}
