/**
 * The verdict worker of a cluster replica (issue 16): the replica's one
 * VerdictEngine, fed by the partition owner with the windows of the
 * partitions it owns (deduplicated by the high-water marks), never by its own
 * sessions (VerdictService `observeIngest: false`). Per partition:
 * - start: the snapshot's statuses and tracks are restored, so an open
 *   incident keeps its id and is not opened again by the next owner;
 * - until caught up, the origins' changes are muted (no event, no store
 *   write, no alert: VerdictService `mute`): the replay rebuilds state the
 *   previous owner already announced;
 * - caught up: Alertmanager is sent the partition's incidents at once (open
 *   ones fire, recently closed ones resolve: AlertmanagerSender.sendState);
 *   from then on this replica's re-send rounds carry its open incidents;
 * - an incident transition asks for a snapshot at once (a successor must
 *   know the incident), on top of the periodic ones;
 * - a state change, an incident transition or a new fault set asks for the origin's OW_STATUS
 *   record at once (every replica reads it: the verdict must show promptly);
 * - stop (lease lost, rebalance, fenced): the origins are forgotten quietly
 *   (engine.forgetOrigin emits nothing; the successor carries on).
 */
import { columnsOfBatch } from "../ingest/window-columns.js";
import type { PartitionBatch } from "../../proto/gen/originwatch/v1/cluster_pb.js";
import type { Track } from "../verdict/hysteresis.js";
import type { OriginVerdictState, VerdictEngine } from "../verdict/engine.js";
import type { VerdictService } from "../verdict/service.js";
import type { VerdictStatusRecord } from "./origin-status.js";
import { partitionOf } from "./partition.js";
import type { PartitionHooks } from "./partition-owner.js";

/** What a partition snapshot carries for the verdict (plain JSON). */
export interface VerdictSnapshot {
  statuses: Array<Omit<OriginVerdictState, "verdict">>;
  tracks: Track[];
}

export class ClusterVerdict implements PartitionHooks {
  /** Owned partitions → caught up. */
  private readonly owned = new Map<number, boolean>();
  /** Set by the wiring: save partition p's snapshot soon. */
  saveSoon: (p: number) => void = () => {};
  /** Set by the wiring: write partition p's changed OW_STATUS records soon. */
  flushSoon: (p: number) => void = () => {};
  private verdict?: VerdictService;

  constructor(private readonly partitions: number) {}

  /** Attach the replica's VerdictService (constructed with `mute: (o) => cv.muted(o)`, `observeIngest: false`). */
  attach(verdict: VerdictService): void {
    this.verdict = verdict;
    verdict.engine.onChange((c) => {
      const p = partitionOf(c.type === "state" ? c.origin : c.incident.origin, this.partitions);
      if (!this.owned.get(p)) return;
      if (c.type === "incident") this.saveSoon(p);
      this.flushSoon(p);
    });
    // A fault appearing or leaving on an origin whose state stays: written at once too, not at the next flush.
    verdict.engine.onFaultsChange((origin) => {
      const p = partitionOf(origin, this.partitions);
      if (this.owned.get(p)) this.flushSoon(p);
    });
  }

  private get engine(): VerdictEngine {
    if (!this.verdict) throw new Error("ClusterVerdict used before attach()");
    return this.verdict.engine;
  }

  /** True when this replica must not announce changes of `origin` (not owned, or still replaying). Node events ("") pass. */
  muted(origin: string): boolean {
    if (origin === "") return false;
    return this.owned.get(partitionOf(origin, this.partitions)) !== true;
  }

  start(p: number, state: unknown): void {
    this.owned.set(p, false);
    this.forget(p); // anything left from an earlier ownership or a local restore: the snapshot is the truth
    const s = state as VerdictSnapshot | undefined;
    if (s) this.engine.restore(s.statuses.map((x) => ({ ...x, confirming: false })), s.tracks);
  }

  apply(_p: number, b: PartitionBatch, _live: boolean, lookbackOnly = false): void {
    if (!b.node) return;
    const now = Date.now();
    // Converted once, as the embedded ingest does (window-columns.ts), then the same two readers.
    const columns = columnsOfBatch(b);
    this.engine.observeColumns({ nodeId: b.node.nodeId, isp: b.node.isp, region: b.node.region }, columns, now);
    // A refill after a hand-over: the previous owner put these windows in its history already.
    if (!lookbackOnly) this.verdict?.history.addColumns(columns, now);
  }

  lookbackMs(): number {
    return this.verdict?.settingsFor("").lookbackMs ?? 5_000;
  }

  caughtUp(p: number): void {
    if (!this.owned.has(p)) return;
    this.owned.set(p, true);
    // Alertmanager is state-based: the new owner sends its partition's incidents at once (open ones fire,
    // recently closed ones resolve), then re-sends the open ones every round as the previous owner did.
    const am = this.verdict?.alertmanager;
    if (am) {
      const incidents = this.engine.tracksWithIncidents().filter((t) => t.incident && partitionOf(t.origin, this.partitions) === p).map((t) => t.incident!);
      void am.sendState(incidents).catch(() => undefined);
    }
  }

  save(p: number): VerdictSnapshot {
    const mine = (origin: string) => partitionOf(origin, this.partitions) === p;
    return {
      statuses: this.engine.statuses().filter((s) => mine(s.origin)).map(({ verdict: _v, ...rest }) => rest),
      tracks: this.engine.tracksWithIncidents().filter((t) => mine(t.origin)),
    };
  }

  stop(p: number): void {
    this.owned.delete(p);
    this.forget(p);
  }

  /** Drops partition p's origins from the engine quietly (no event: forgetOrigin emits none). */
  private forget(p: number): void {
    const mine = (origin: string) => partitionOf(origin, this.partitions) === p;
    const origins = new Set([...this.engine.statuses().map((s) => s.origin), ...this.engine.tracksWithIncidents().map((t) => t.origin)].filter(mine));
    for (const o of origins) this.engine.forgetOrigin(o);
  }

  statusOf(origin: string): VerdictStatusRecord | undefined {
    const st = this.engine.status(origin);
    if (!st) return undefined;
    const v = st.verdict;
    return {
      state: st.state,
      stateSinceMs: st.stateSinceMs,
      reason: st.reason,
      confirming: st.confirming,
      faults: st.faults,
      requestRate: v ? v.requests / (this.verdict!.settingsFor(origin).lookbackMs / 1000) : 0,
      failureRatio: v?.failureRatio ?? 0,
      p95TtfbMs: v?.p95TtfbMs ?? 0,
      incidents: this.engine.tracksWithIncidents().filter((t) => t.origin === origin && t.incident).map((t) => t.incident!),
    };
  }
}
