/**
 * The latest N exemplars per origin, in memory (a ring per origin). Fed only
 * with batches counted for the first time, so a replayed batch never adds its
 * exemplars twice. node_id is set from the session, never trusted from the wire.
 */
import { clone } from "@bufbuild/protobuf";
import { type Exemplar, ExemplarSchema } from "../../proto/gen/originwatch/v1/common_pb.js";

export class ExemplarStore {
  private byOrigin = new Map<string, Exemplar[]>();

  constructor(readonly perOrigin: number) {}

  add(nodeId: string, exemplars: Iterable<Exemplar>): void {
    for (const e of exemplars) {
      const x = clone(ExemplarSchema, e);
      x.nodeId = nodeId;
      let list = this.byOrigin.get(x.origin);
      if (!list) this.byOrigin.set(x.origin, (list = []));
      list.push(x);
      if (list.length > this.perOrigin) list.splice(0, list.length - this.perOrigin);
    }
  }

  /** Newest first, at most limit. */
  latest(origin: string, limit: number): Exemplar[] {
    const list = this.byOrigin.get(origin) ?? [];
    const n = Math.min(Math.max(limit || 100, 1), this.perOrigin);
    return list.slice(-n).reverse();
  }
}
