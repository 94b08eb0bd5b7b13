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
 * Fair comparison: when it schedules, it also asks every sidecar of the
 * origin to send its open window now (FlushWindows, ArrivalOptions.flush).
 * Bounded: at most one pending timer per origin the lookback holds.
 * Timers are unref'd; shutdown() is idempotent.
 */

/** Wait after the first failing window of an origin before evaluating it. */
export const ARRIVAL_DEBOUNCE_MS = 150;

/** At most one FlushWindows round per origin this often. */
export const FLUSH_MIN_INTERVAL_MS = 5000;

export interface ArrivalOptions {
  debounceMs?: number;
  /**
   * Ask every sidecar of the origin to send its open window now
   * (FlushWindows), so the evaluation compares every node over the same span
   * of time: a node that cut its window at a fault's onset is otherwise
   * compared with peers that have not reported that span yet (a uniform
   * partial failure would blame the first node to cut). Called when an
   * evaluation is scheduled and `wantFlush(origin)`, at most once per
   * FLUSH_MIN_INTERVAL_MS per origin.
   */
  flush?: (origin: string) => void;
  wantFlush?: (origin: string) => boolean;
  now?: () => number;
}

export class ArrivalScheduler {
  private pending = new Map<string, NodeJS.Timeout>();
  /** Last FlushWindows round per origin (pruned of entries older than the interval). */
  private flushed = new Map<string, number>();
  private stopped = false;
  private readonly debounceMs: number;
  private readonly now: () => number;

  constructor(
    private readonly evaluate: (origin: string) => void,
    private readonly opts: ArrivalOptions = {},
  ) {
    this.debounceMs = opts.debounceMs ?? ARRIVAL_DEBOUNCE_MS;
    this.now = opts.now ?? Date.now;
  }

  /** A failing window of `origin` arrived: evaluate it soon (once per debounce). */
  note(origin: string): void {
    if (this.stopped || this.pending.has(origin)) return;
    this.maybeFlush(origin);
    const t = setTimeout(() => {
      this.pending.delete(origin);
      if (!this.stopped) this.evaluate(origin);
    }, this.debounceMs);
    t.unref();
    this.pending.set(origin, t);
  }

  private maybeFlush(origin: string): void {
    const { flush, wantFlush } = this.opts;
    if (!flush || (wantFlush && !wantFlush(origin))) return;
    const now = this.now();
    const last = this.flushed.get(origin);
    if (last !== undefined && now - last < FLUSH_MIN_INTERVAL_MS) return;
    if (this.flushed.size > 1024) for (const [o, t] of this.flushed) if (now - t >= FLUSH_MIN_INTERVAL_MS) this.flushed.delete(o);
    this.flushed.set(origin, now);
    try {
      flush(origin);
    } catch {
      /* a failed send must not stop the evaluation */
    }
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
