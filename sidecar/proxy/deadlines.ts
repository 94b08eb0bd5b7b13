/**
 * The list of requests waiting on a deadline, and the one coarse interval
 * that sweeps it.
 *
 * Why: one interval checking every entry is cheaper on the hot path than three
 * timers per request (connect, first byte, stall), and a deadline fires at most
 * one interval late. The list is intrusive (links live in the entries):
 * unlinking drops every reference at once, so finished requests die young (a
 * Set here measurably promoted them to the old heap).
 */

/** Deadline granularity: a deadline fires at most this late. */
export const SWEEP_MS = 20;

/** The link fields an entry carries; owned by the list, never set elsewhere. */
export interface DeadlineLinks<T> {
  prev?: T;
  next?: T;
  linked: boolean;
}

/**
 * Contract: `check(entry, now)` is called for every linked entry on each sweep
 * (newest first) with `performance.now()`; it may remove that entry. The
 * interval starts on the first add and stops (cleared) on a sweep that finds
 * the list empty; it is unref'd, so it never keeps the process alive.
 */
export class DeadlineList<T extends DeadlineLinks<T>> {
  private head: T | undefined;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly sweepFn = () => this.sweep();

  constructor(private readonly check: (entry: T, now: number) => void) {}

  /** Link an entry (not already linked) and make sure the sweeper runs. */
  add(entry: T): void {
    entry.next = this.head;
    if (this.head) this.head.prev = entry;
    this.head = entry;
    entry.linked = true;
    this.count++;
    if (!this.timer) {
      this.timer = setInterval(this.sweepFn, SWEEP_MS);
      this.timer.unref();
    }
  }

  /** Unlink an entry; a no-op when it is not linked. */
  remove(entry: T): void {
    if (!entry.linked) return;
    entry.linked = false;
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    entry.prev = entry.next = undefined;
    this.count--;
  }

  private sweep(): void {
    if (this.count === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const now = performance.now();
    for (let e = this.head, next: T | undefined; e; e = next) {
      next = e.next;
      this.check(e, now);
    }
  }
}
