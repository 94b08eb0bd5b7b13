/**
 * Batches dropped for good, by code: refused by the central (BatchReject,
 * or a batch the central kept refusing with INVALID_ARGUMENT), or too large to
 * send at all. The codes come from the peer, so the set is bounded: a code
 * that is not an upper-case identifier, or any code beyond MAX_CODES distinct
 * ones, is tallied as OTHER. This is the one owner of that label set —
 * /metrics labels and the once-per-code log both use `record()`'s answer.
 */

/** Distinct codes kept apart; the rest share OTHER (so at most MAX_CODES + 1 labels). */
export const MAX_CODES = 16;
export const OTHER_CODE = "OTHER";
/** The sidecar's own code for an item or batch no split can bring under the central's message limit. */
export const TOO_LARGE_CODE = "SIDECAR_MESSAGE_TOO_LARGE";
/** The code used when an older central ends the stream with INVALID_ARGUMENT instead of a BatchReject. */
export const INVALID_ARGUMENT_CODE = "INVALID_ARGUMENT";

const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

export class Rejections {
  private readonly byCode = new Map<string, number>();
  /** Batches dropped for good (cumulative), reported in Batch.rejected_batches. */
  total = 0;

  /** The label a code is tallied under. */
  labelOf(code: string): string {
    if (this.byCode.has(code)) return code;
    if (!CODE.test(code) || this.byCode.size >= MAX_CODES) return OTHER_CODE;
    return code;
  }

  /**
   * Count n dropped batches under `code`. `first` is true the first time a
   * label is seen (log the reason then, not for every batch).
   */
  record(code: string, n = 1): { label: string; first: boolean } {
    const label = this.labelOf(code);
    const before = this.byCode.get(label);
    this.byCode.set(label, (before ?? 0) + n);
    this.total += n;
    return { label, first: before === undefined };
  }

  /** Counts by label (a copy). */
  counts(): Record<string, number> {
    return Object.fromEntries(this.byCode);
  }
}
