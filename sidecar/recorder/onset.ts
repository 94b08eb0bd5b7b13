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
 * An onset that straddles a window boundary is split there too (the closing
 * window as its part before the mark and since) and its failures carry into
 * the next window, so the cut does not wait for minFailures more.
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
  /** Requests and failures since the onset in earlier windows (an onset that straddles a boundary). */
  carryR: number;
  carryF: number;
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

  private watch(origin: string, window: object, fromMs: number): Watch {
    let w = this.watches.get(origin);
    if (!w) this.watches.set(origin, (w = { window, mark: zeroCounts(), markAtMs: fromMs, carryR: 0, carryF: 0, armed: true }));
    else if (w.window !== window) {
      w.window = window;
      w.mark = zeroCounts();
      w.markAtMs = fromMs;
    }
    return w;
  }

  /**
   * One poll of an origin's open window (`window` identifies it, `fromMs` is
   * where it starts, `counts` its live counts). Returns the cut when one is
   * due; the caller then closes the window's parts.
   */
  poll(origin: string, window: object, fromMs: number, counts: Counts, nowMs: number, minFailures: number): OnsetCut | undefined {
    const w = this.watch(origin, window, fromMs);
    if (!w.armed) return undefined;
    const df = failuresOf(counts) - failuresOf(w.mark);
    const dr = requestsOf(counts) - requestsOf(w.mark);
    const tf = df + w.carryF;
    const tr = dr + w.carryR;
    if (tf >= Math.max(1, minFailures) && tf >= ONSET_RATIO * tr) {
      w.armed = false;
      w.carryR = w.carryF = 0;
      return { before: w.mark, atMs: w.markAtMs };
    }
    if (dr > 0 && df * 2 < dr) {
      // Healthy requests since the mark: no onset; the mark follows.
      w.mark = { ...counts };
      w.markAtMs = nowMs;
      w.carryR = w.carryF = 0;
    } else if (tf === 0) {
      // Nothing failed since the mark: it follows, so a cut starts close to the onset.
      w.mark = { ...counts };
      w.markAtMs = nowMs;
    }
    return undefined;
  }

  /**
   * A window of the origin closes with these counts. When an onset is under
   * way in it (failures since the mark, at ONSET_RATIO), it returns where to
   * split the window and carries the failures since the mark into the next
   * window, so an onset that straddles a boundary is cut as soon as it has
   * minFailures in all. A healthy window re-arms the cut.
   */
  closed(origin: string, window: object, fromMs: number, counts: Counts): OnsetCut | undefined {
    const w = this.watches.get(origin);
    if (!w) return undefined;
    if (!w.armed) {
      if (failuresOf(counts) * 2 < requestsOf(counts)) w.armed = true;
      return undefined;
    }
    if (w.window !== window) {
      w.carryR = w.carryF = 0;
      return undefined;
    }
    const df = failuresOf(counts) - failuresOf(w.mark);
    const dr = requestsOf(counts) - requestsOf(w.mark);
    // Two failures at least: one failed request as a window's last is not worth a split.
    if (df >= 2 && df + w.carryF >= ONSET_RATIO * (dr + w.carryR)) {
      w.carryF += df;
      w.carryR += dr;
      return w.markAtMs > fromMs && requestsOf(w.mark) > 0 ? { before: w.mark, atMs: w.markAtMs } : undefined;
    }
    w.carryR = w.carryF = 0;
    return undefined;
  }

  /** Forget every mark (the clock was corrected: window times moved). */
  clear(): void {
    this.watches.clear();
  }
}
