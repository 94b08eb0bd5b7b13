/**
 * The latest N exemplars per origin, in memory (a ring per origin). Fed only
 * with batches counted for the first time, so a replayed batch never adds its
 * exemplars twice. node_id is set from the session, never trusted from the wire.
 */
import { clone } from "@bufbuild/protobuf";
import { type Exemplar, ExemplarSchema } from "../../proto/gen/originwatch/v1/common_pb.js";

export class ExemplarStore {
  private byOrigin = new Map<string, Exemplar[]>();
  /** Exemplars ever added per origin: positions for stable paging (ListExemplars). */
  private added = new Map<string, number>();

  constructor(readonly perOrigin: number) {}

  add(nodeId: string, exemplars: Iterable<Exemplar>): void {
    for (const e of exemplars) {
      const x = clone(ExemplarSchema, e);
      x.nodeId = nodeId;
      let list = this.byOrigin.get(x.origin);
      if (!list) this.byOrigin.set(x.origin, (list = []));
      list.push(x);
      this.added.set(x.origin, (this.added.get(x.origin) ?? 0) + 1);
      if (list.length > this.perOrigin) list.splice(0, list.length - this.perOrigin);
    }
  }

  /** The kept exemplars of an origin (oldest first) and how many were ever added (read only). */
  snapshot(origin: string): { list: readonly Exemplar[]; added: number } {
    return { list: this.byOrigin.get(origin) ?? [], added: this.added.get(origin) ?? 0 };
  }

  /** Operator forget / age-out of an origin. */
  forget(origin: string): void {
    this.byOrigin.delete(origin);
    this.added.delete(origin);
  }

  /** Newest first, at most limit. */
  latest(origin: string, limit: number): Exemplar[] {
    const list = this.byOrigin.get(origin) ?? [];
    const n = Math.min(Math.max(limit || 100, 1), this.perOrigin);
    return list.slice(-n).reverse();
  }
}
