/**
 * Onset detection for the recorder's early cut (issue 13 item 2): decides,
 * from two snapshots of one open window's counts, whether failures jumped.
 *
 * Per origin it keeps a mark: the window's counts at the last poll where
 * nothing pointed at a fault (no failure since the previous mark, or fewer
 * than half of the requests since it failed). A cut is due when, since the
 * mark, at least `minFailures` requests failed and they are at least
 * ONSET_RATIO of the requests since the mark — a hard fault's first
 * min_requests failures, with the healthy requests before it left out.
 *
 * Steady state costs nothing on the wire: an origin cuts at most once per
 * fault onset. After a cut it is disarmed until a window closes healthy
 * (failure ratio below one half), so a lasting fault, a partial failure that
 * crosses the bar once, or a flapping origin each cut at most once per
 * healthy-to-failing edge. Pure bookkeeping: no timers, no I/O.
 */
import { type Counts, failuresOf, requestsOf, zeroCounts } from "../../proto/outcomes.js";

/** Share of the requests since the mark that must fail for a cut (the central's fast path uses 0.8 too). */
export const ONSET_RATIO = 0.8;

/** How often the sidecar's window ticker polls for onsets. */
export const ONSET_POLL_MS = 100;

interface Watch {
  /** The open window (its accumulator object) the mark belongs to. */
  window: object;
  mark: Counts;
  markAtMs: number;
  armed: boolean;
}

export interface OnsetCut {
  /** The window's counts before the jump (the mark). */
  before: Counts;
  /** When the mark was taken: the part since the jump starts here. */
  atMs: number;
}

export class OnsetWatch {
  private watches = new Map<string, Watch>();

  /**
   * One poll of an origin's open window (`window` identifies it, `fromMs` is
   * where it starts, `counts` its live counts). Returns the cut when one is
   * due; the caller then closes the window's parts.
   */
  poll(origin: string, window: object, fromMs: number, counts: Counts, nowMs: number, minFailures: number): OnsetCut | undefined {
    let w = this.watches.get(origin);
    if (!w) this.watches.set(origin, (w = { window, mark: zeroCounts(), markAtMs: fromMs, armed: true }));
    else if (w.window !== window) {
      w.window = window;
      w.mark = zeroCounts();
      w.markAtMs = fromMs;
    }
    if (!w.armed) return undefined;
    const df = failuresOf(counts) - failuresOf(w.mark);
    const dr = requestsOf(counts) - requestsOf(w.mark);
    if (df >= Math.max(1, minFailures) && df >= ONSET_RATIO * dr) {
      w.armed = false;
      return { before: w.mark, atMs: w.markAtMs };
    }
    if (df === 0 || df * 2 < dr) {
      w.mark = { ...counts };
      w.markAtMs = nowMs;
    }
    return undefined;
  }

  /** A window of the origin closed with these counts: a healthy one re-arms the cut. */
  closed(origin: string, counts: Counts): void {
    const w = this.watches.get(origin);
    if (w && !w.armed && failuresOf(counts) * 2 < requestsOf(counts)) w.armed = true;
  }

  /** Forget every mark (the clock was corrected: window times moved). */
  clear(): void {
    this.watches.clear();
  }
}
