/**
 * A cap on how many label values one metric family may export (issue 15:
 * stated and capped cardinality). Admission is first come, first kept: a value
 * admitted once stays exported until it is forgotten (the origin or node aged
 * out), so Prometheus never sees a series appear and vanish because another one
 * pushed it out. Values over the cap are not exported but counted: overCap()
 * is exported as originwatch_central_metrics_over_cap{family}.
 */
export class SeriesBudget {
  private admitted = new Set<string>();
  private over = new Set<string>();

  constructor(
    readonly family: string,
    readonly cap: number,
  ) {
    if (!Number.isInteger(cap) || cap <= 0) throw new Error(`${family} cap must be a positive integer, got ${cap}`);
  }

  /** Whether `key` may be exported; a new key over the cap is counted instead. */
  admit(key: string): boolean {
    if (this.admitted.has(key)) return true;
    if (this.admitted.size < this.cap) {
      this.admitted.add(key);
      this.over.delete(key);
      return true;
    }
    this.over.add(key);
    return false;
  }

  /**
   * Keep only the keys still present (called once per scrape with the live
   * set): forgotten keys free their slot, and keys waiting over the cap take
   * free slots at the next admit().
   */
  retain(live: (key: string) => boolean): void {
    for (const k of this.admitted) if (!live(k)) this.admitted.delete(k);
    for (const k of this.over) if (!live(k)) this.over.delete(k);
  }

  /** Distinct keys seen and not exported because of the cap (still live). */
  overCap(): number {
    return this.over.size;
  }

  size(): number {
    return this.admitted.size;
  }
}
