/**
 * The latest exemplars per origin, in memory: at most perOrigin per origin
 * and maxTotal across all origins (the oldest arrival leaves first), so the
 * store is bounded however many origins report. Fed only with batches counted
 * for the first time, so a replayed batch never adds its exemplars twice.
 * node_id is set from the session, never trusted from the wire.
 */
import { clone } from "@bufbuild/protobuf";
import { type Exemplar, ExemplarSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { Fifo } from "./fifo.js";

interface Entry {
  x: Exemplar;
  /** Left its origin's list (per-origin cap or forget); skipped when it reaches the head. */
  gone: boolean;
}

export class ExemplarStore {
  private byOrigin = new Map<string, Fifo<Entry>>();
  private arrivals = new Fifo<Entry>();
  private live = 0;
  /** Exemplars ever added per origin: positions for stable paging (ListExemplars). */
  private added = new Map<string, number>();

  constructor(
    readonly perOrigin: number,
    readonly maxTotal: number = Number.POSITIVE_INFINITY,
  ) {}

  add(nodeId: string, exemplars: Iterable<Exemplar>): void {
    for (const e of exemplars) {
      const x = clone(ExemplarSchema, e);
      x.nodeId = nodeId;
      let list = this.byOrigin.get(x.origin);
      if (!list) this.byOrigin.set(x.origin, (list = new Fifo()));
      const entry = { x, gone: false };
      list.push(entry);
      this.added.set(x.origin, (this.added.get(x.origin) ?? 0) + 1);
      this.arrivals.push(entry);
      this.live++;
      if (list.size > this.perOrigin) this.leave(list.shift()!);
      while (this.live > this.maxTotal) {
        const oldest = this.arrivals.shift()!;
        if (oldest.gone) continue;
        const l = this.byOrigin.get(oldest.x.origin)!;
        l.shift(); // the oldest arrival heads its origin's list too
        if (l.size === 0) this.byOrigin.delete(oldest.x.origin);
        this.live--;
      }
      // Entries that left by the per-origin cap wait in arrivals until they reach its head: bound that too.
      if (this.arrivals.size > 2 * this.live + 1024) this.arrivals.retain((en) => !en.gone);
    }
  }

  private leave(e: Entry): void {
    e.gone = true;
    this.live--;
  }

  /** Newest first, at most limit. */
  latest(origin: string, limit: number): Exemplar[] {
    const list = this.byOrigin.get(origin);
    if (!list) return [];
    const n = Math.min(Math.max(limit || 100, 1), this.perOrigin);
    return [...list].slice(-n).reverse().map((e) => e.x);
  }

  /** The kept exemplars of an origin (oldest first) and how many were ever added (read only). */
  snapshot(origin: string): { list: readonly Exemplar[]; added: number } {
    const list = this.byOrigin.get(origin);
    return { list: list ? [...list].map((e) => e.x) : [], added: this.added.get(origin) ?? 0 };
  }

  /** Forget an origin's exemplars (operator forget, ageing out). */
  forget(origin: string): void {
    this.added.delete(origin);
    const list = this.byOrigin.get(origin);
    if (!list) return;
    for (const e of list) this.leave(e);
    this.byOrigin.delete(origin);
  }

  get size(): number {
    return this.live;
  }
}
