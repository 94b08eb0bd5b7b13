/**
 * What the query API reads of the verdict: one narrow interface, so
 * QueryService (ListOrigins, GetOrigin) and the age-out read the verdict's
 * own state and lookback directly — the one in-memory copy of recent windows —
 * instead of a second store or a closure in main.ts. VerdictService implements it.
 */
import type { Fault, ScopeStats } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { OriginState } from "../../proto/gen/originwatch/v1/query_pb.js";

/** Figures over the lookback and the breakdown (computed when read: GetOrigin asks, ListOrigins does not). */
export interface OriginFigures {
  requestRate: number;
  failureRatio: number;
  p95TtfbMs: number;
  readonly isps: ScopeStats[];
  readonly regions: ScopeStats[];
  readonly nodes: ScopeStats[];
}

/** The verdict of one origin as the query API shows it. */
export interface OriginVerdict {
  state: OriginState;
  faults: Fault[];
  reason: string;
  stateSinceMs: number;
  confirming: boolean;
  /** Absent when the verdict holds no window of the origin and has not evaluated it. */
  figures?: OriginFigures;
}

export interface VerdictView {
  /** The origin's verdict (NO_DATA with a reason when the verdict knows nothing of it). */
  originVerdict(origin: string): OriginVerdict;
  /** Origins with windows in the lookback (reported in the last seconds). */
  liveOrigins(): Iterable<string>;
  /** Whether the lookback holds a window of the origin. */
  isLive(origin: string): boolean;
}
