/**
 * The verdict engine: every tick (default 1 s) it slides the lookback,
 * evaluates every origin with the pure policy, asks for confirmation probes
 * on doubt, runs the incident state machines, and reports what changed
 * (state changes, incident open / escalate / close) to its listeners.
 *
 * It decides; it neither distributes (the ingest sends probe requests for it,
 * through ProbeTarget) nor stores (VerdictStore listens to its changes).
 * Timers are unref'd; shutdown() is idempotent and safe before start().
 */
import { FaultScope, IncidentKind, OriginState } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { ProbeResult } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { ArrivalScheduler } from "./arrival.js";
import { Confirmer } from "./confirmation.js";
import { type IncidentRecord, type Observation, type Track, isIdle, newTrack, step, subjectOf } from "./hysteresis.js";
import type { WindowColumns } from "../ingest/window-columns.js";
import { LookbackAggregator, type NodeLabels, type WindowLike } from "./lookback.js";
import { type Confirmation, type FaultFinding, type NodeInput, type Verdict, evaluate } from "./policy.js";
import { ProbeBroker, type ProbeTarget } from "./probe-broker.js";
import { DEFAULT_SETTINGS, type VerdictSettings, type VerdictThresholds } from "./settings.js";

export interface OriginVerdictState {
  origin: string;
  state: OriginState;
  stateSinceMs: number;
  faults: FaultFinding[];
  reason: string;
  confirming: boolean;
  /** The last full evaluation (figures, breakdown); absent after a restart until the first tick. */
  verdict?: Verdict;
  evaluatedMs: number;
}

export type EngineChange =
  /** status is a snapshot taken at the change. */
  | { type: "state"; timeMs: number; origin: string; previous: OriginState; status: OriginVerdictState }
  | { type: "incident"; timeMs: number; transition: "opened" | "reopened" | "escalated" | "closed"; incident: IncidentRecord };

export interface EngineOptions {
  /** Settings for an origin (defaults + pushed config + override). */
  settingsFor?: (origin: string) => VerdictSettings;
  /** Connected sidecars that route to the origin, for confirmation probes. */
  probeTargets?: (origin: string) => ProbeTarget[];
  now?: () => number;
  /**
   * A node whose last batch is older than this is stale (default: the lookback,
   * at least 3 windows), whatever batching its sidecar uses; a node whose
   * session closed is stale at once.
   */
  staleAfterMs?: number;
  /** After an origin was DOWN, network faults are held this long (default: the lookback). */
  quietAfterDownMs?: number;
  /** Ask the origin's sidecars to send their open windows now (FlushWindows; arrival.ts). */
  requestFlush?: (origin: string) => void;
}

/** The last evaluation of an origin and what it was computed from: reused while none of it changed. */
interface Evaluated {
  version: number;
  staleKey: string;
  thresholds: VerdictThresholds;
  confirmation: Confirmation | undefined;
  verdict: Verdict;
  nodes: number;
}

interface OriginRuntime {
  status: OriginVerdictState;
  lastDownMs: number;
  /** Fleet failure ratio at the previous tick (for the ramp guard). */
  lastRatio: number;
  /** Last tick with traffic (or the restore time): a bad state is not cleared by silence alone. */
  lastDataMs: number;
  /** Last tick whose verdict needed no confirmation (or the restore time): see `unwitnessed` in evaluateOrigin. */
  lastConclusiveMs: number;
}

/**
 * An origin that goes silent while DOWN or DEGRADED (sidecars reconnecting
 * after a central restart, traffic drained away) keeps its state and incident
 * this long before silence counts as recovery.
 */
const SILENCE_HOLD_MS = 60_000;

/**
 * Ramp guard: a DEGRADED verdict while the fleet failure ratio moves by at
 * least this much per tick is a fault arriving or leaving (which then
 * localises, or becomes DOWN), not a steady degradation: wait for it to settle.
 */
const RAMP_PER_TICK = 0.1;

const KIND_OF_SCOPE: Record<FaultScope, IncidentKind> = {
  [FaultScope.UNSPECIFIED]: IncidentKind.NODE_FAULT,
  [FaultScope.NODE]: IncidentKind.NODE_FAULT,
  [FaultScope.ISP]: IncidentKind.ISP_FAULT,
  [FaultScope.REGION]: IncidentKind.REGION_FAULT,
};

export interface TickReport {
  origins: number;
  nodes: number;
  durationMs: number;
}

export class VerdictEngine {
  readonly lookback: LookbackAggregator;
  readonly broker = new ProbeBroker();
  readonly confirmer: Confirmer;
  private lastSeen = new Map<string, number>();
  private origins = new Map<string, OriginRuntime>();
  /** Tracks by origin, then subject ("" = the origin track). */
  private tracks = new Map<string, Map<string, Track>>();
  private listeners: Array<(c: EngineChange) => void> = [];
  /** Per origin: its last evaluation and inputs (the policy is pure: same inputs, same verdict). */
  private evaluated = new Map<string, Evaluated>();
  /** Per tick: the stale nodes for each staleness edge, as a key (see staleKey). */
  private staleKeys = new Map<number, string>();
  private timer: NodeJS.Timeout | undefined;
  /** Evaluation on arrival of failing windows (arrival.ts); set by start(). */
  private arrivals: ArrivalScheduler | undefined;
  private stopped = false;
  private readonly now: () => number;
  private readonly settingsFor: (origin: string) => VerdictSettings;
  lastTick: TickReport = { origins: 0, nodes: 0, durationMs: 0 };

  constructor(private opts: EngineOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.settingsFor = opts.settingsFor ?? (() => DEFAULT_SETTINGS);
    this.lookback = new LookbackAggregator(this.settingsFor("").lookbackMs);
    this.confirmer = new Confirmer(this.broker, this.now);
  }

  onChange(fn: (c: EngineChange) => void): void {
    this.listeners.push(fn);
  }

  private faultListeners: Array<(origin: string) => void> = [];

  /**
   * The set of faults an origin shows changed without a state change (an ISP fault appears on a HEALTHY
   * origin): no event (incidents follow their hysteresis), but a reader elsewhere must see the verdict
   * promptly (cluster mode writes the origin's status record at once).
   */
  onFaultsChange(fn: (origin: string) => void): void {
    this.faultListeners.push(fn);
  }

  private emit(c: EngineChange): void {
    for (const l of this.listeners) {
      try {
        l(c);
      } catch {
        /* a listener's failure must not stop the engine */
      }
    }
  }

  private readonly noteArrival = (origin: string): void => this.arrivals?.note(origin);

  /** Window summaries of one batch from one node (already deduplicated by the ingest). */
  observe(node: NodeLabels, windows: Iterable<WindowLike>, nowMs = this.now()): void {
    this.lastSeen.set(node.nodeId, nowMs);
    for (const w of windows) if (this.lookback.add(node, w)) this.arrivals?.note(w.origin);
  }

  /** The windows of one batch of one node as the ingest converted them on arrival (the hot path). */
  observeColumns(node: NodeLabels, windows: WindowColumns, nowMs = this.now()): void {
    this.lastSeen.set(node.nodeId, nowMs);
    this.lookback.addColumns(node, windows, this.arrivals ? this.noteArrival : undefined);
  }

  /** A node is alive (hello, empty batch): keeps it from going stale. */
  /** The node's session closed: what it reported is left out until it speaks again. */
  disconnected(nodeId: string): void {
    this.lastSeen.set(nodeId, Number.NEGATIVE_INFINITY);
  }

  touch(nodeId: string, nowMs = this.now()): void {
    this.lastSeen.set(nodeId, nowMs);
  }

  /**
   * Operator forget / age-out of an origin: its lookback, verdict state and
   * tracks. Returns the incidents that were open (the caller closes their
   * records); no event is emitted.
   */
  forgetOrigin(origin: string, nowMs = this.now()): IncidentRecord[] {
    this.lookback.forgetOrigin(origin);
    this.origins.delete(origin);
    this.evaluated.delete(origin);
    this.confirmer.clear(origin);
    const closed: IncidentRecord[] = [];
    for (const t of this.tracks.get(origin)?.values() ?? []) {
      if (t.incident?.open) closed.push({ ...t.incident, open: false, closedMs: nowMs });
    }
    this.tracks.delete(origin);
    return closed;
  }

  /** Operator forget / age-out of a node: its sums in every origin and its liveness. */
  forgetNode(nodeId: string): void {
    this.lookback.forgetNode(nodeId);
    this.lastSeen.delete(nodeId);
  }

  /** Origins the engine holds (state, tracks or lookback). */
  knows(origin: string): boolean {
    return this.origins.has(origin) || this.tracks.has(origin) || this.lookback.has(origin);
  }

  onProbeResult(nodeId: string, r: ProbeResult): boolean {
    return this.broker.onResult(nodeId, r);
  }

  /** Restore what survived a restart: verdict states and tracks with open (or flap-window) incidents. */
  restore(statuses: OriginVerdictState[], tracks: Track[]): void {
    for (const s of statuses) this.origins.set(s.origin, { status: { ...s, confirming: false, verdict: undefined }, lastDownMs: 0, lastRatio: 0, lastDataMs: this.now(), lastConclusiveMs: this.now() });
    for (const t of tracks) this.trackMap(t.origin).set(t.subject, t);
  }

  status(origin: string): OriginVerdictState | undefined {
    return this.origins.get(origin)?.status;
  }

  /**
   * The current verdict of an origin with the full breakdown (per-node
   * figures, p95 per ISP and region), evaluated now on the same lookback.
   */
  detailed(origin: string, nowMs = this.now()): Verdict | undefined {
    const raw = this.lookback.nodes(origin);
    if (raw.length === 0) return undefined;
    const s = this.settingsFor(origin);
    const staleAfter = this.staleAfter(s);
    const nodes = this.withStale(raw, nowMs - staleAfter);
    return evaluate({ nodes, thresholds: s.thresholds, confirmation: this.confirmer.confirmation(origin), breakdown: true });
  }

  statuses(): OriginVerdictState[] {
    return [...this.origins.values()].map((o) => o.status);
  }

  /** Every track that holds an incident (open, or closed within its flap window). */
  tracksWithIncidents(): Track[] {
    const out: Track[] = [];
    for (const m of this.tracks.values()) for (const t of m.values()) if (t.incident) out.push(t);
    return out;
  }

  openIncidents(): IncidentRecord[] {
    return this.tracksWithIncidents()
      .map((t) => t.incident!)
      .filter((i) => i.open);
  }

  private trackMap(origin: string): Map<string, Track> {
    let m = this.tracks.get(origin);
    if (!m) this.tracks.set(origin, (m = new Map()));
    return m;
  }

  start(intervalMs = 1000): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
    this.evaluateOnArrival();
  }

  /**
   * Evaluate an origin shortly after a failing window of it arrives, between
   * ticks (arrival.ts). start() turns it on; a caller that runs its own tick
   * timer calls this once.
   */
  evaluateOnArrival(debounceMs?: number): void {
    if (this.arrivals || this.stopped) return;
    this.arrivals = new ArrivalScheduler((origin) => this.evaluateNow(origin), {
      debounceMs,
      flush: this.opts.requestFlush,
      // An origin already DOWN needs no fairer comparison; its sidecars are spared the extra messages.
      wantFlush: (origin) => this.origins.get(origin)?.status.state !== OriginState.DOWN,
      now: this.now,
    });
  }

  /**
   * Evaluate one origin now, between ticks (arrival.ts): its state and faults
   * change at once; incident tracks and the ramp guard's baseline move only
   * on the tick.
   */
  evaluateNow(origin: string, nowMs = this.now()): void {
    this.lookback.advance(nowMs);
    this.evaluateOrigin(origin, nowMs, false);
  }

  shutdown(): void {
    this.arrivals?.shutdown();
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  tick(nowMs = this.now()): TickReport {
    const t0 = performance.now();
    this.lookback.setLookback(this.settingsFor("").lookbackMs);
    this.lookback.advance(nowMs);
    this.staleKeys.clear();
    const names = new Set<string>(this.lookback.origins());
    for (const o of this.origins.keys()) names.add(o);
    for (const o of this.tracks.keys()) names.add(o);
    let nodes = 0;
    for (const origin of names) nodes += this.evaluateOrigin(origin, nowMs);
    this.lastTick = { origins: names.size, nodes, durationMs: performance.now() - t0 };
    return this.lastTick;
  }

  /** Marks nodes not heard from since `since` as stale (copies the list and those nodes only when one is). */
  private withStale(raw: readonly NodeInput[], since: number): readonly NodeInput[] {
    let out: NodeInput[] | undefined;
    for (let i = 0; i < raw.length; i++) {
      if ((this.lastSeen.get(raw[i].nodeId) ?? 0) < since) (out ??= raw.slice())[i] = { ...raw[i], stale: true };
    }
    return out ?? raw;
  }

  /**
   * The nodes heard from before `since`, as one string (usually ""), computed
   * once per tick per staleness edge: when it is unchanged, no node of any
   * origin became stale or fresh. (A node the engine never heard from is stale
   * and stays so until a batch of it, which changes the sums.)
   */
  private staleKey(since: number): string {
    let key = this.staleKeys.get(since);
    if (key === undefined) {
      const ids: string[] = [];
      for (const [id, t] of this.lastSeen) if (t < since) ids.push(id);
      key = ids.sort().join("\n");
      this.staleKeys.set(since, key);
    }
    return key;
  }

  private staleAfter(s: VerdictSettings): number {
    return this.opts.staleAfterMs ?? Math.max(s.lookbackMs, 3 * s.windowMs);
  }

  private evaluateOrigin(origin: string, nowMs: number, onTick = true): number {
    const s = this.settingsFor(origin);
    const staleAfter = this.staleAfter(s);
    let confirmation = this.confirmer.confirmation(origin);
    // Only origins whose sums, stale nodes, thresholds or confirmation changed are evaluated again.
    const version = this.lookback.version(origin);
    const staleKey = this.staleKey(nowMs - staleAfter);
    let e = this.evaluated.get(origin);
    if (!e || e.version !== version || e.staleKey !== staleKey || e.confirmation !== confirmation || !sameThresholds(e.thresholds, s.thresholds)) {
      // No node heard from before the edge: none is stale (every node in the lookback came through observe()).
      const raw = this.lookback.nodes(origin);
      const nodes = staleKey === "" ? raw : this.withStale(raw, nowMs - staleAfter);
      const verdict = evaluate({ nodes, thresholds: s.thresholds, confirmation, breakdown: false, totalTtfb: this.lookback.totalTtfb(origin) });
      e = { version, staleKey, thresholds: { ...s.thresholds }, confirmation, verdict, nodes: nodes.length };
      this.evaluated.set(origin, e);
    }
    let v = e.verdict;
    let hold = false;
    if (v.doubt) {
      const targets = () => (this.opts.probeTargets ? this.opts.probeTargets(origin) : []);
      const asked = this.confirmer.request(origin, v.suspectIsp, s.probe, targets());
      if (!confirmation) {
        // No answer yet: hold incidents while a round is under way; otherwise decide on the passive data alone.
        hold = asked === "started" || asked === "pending";
      }
    } else if (confirmation) {
      this.confirmer.clear(origin);
      confirmation = undefined;
    }

    let rt = this.origins.get(origin);
    if (!rt) {
      rt = {
        status: { origin, state: OriginState.NO_DATA, stateSinceMs: nowMs, faults: [], reason: "", confirming: false, evaluatedMs: 0 },
        lastDownMs: 0,
        lastRatio: v.failureRatio,
        lastDataMs: nowMs,
        lastConclusiveMs: nowMs,
      };
      this.origins.set(origin, rt);
    }
    const st = rt.status;
    st.verdict = v;
    st.evaluatedMs = nowMs;
    st.confirming = hold;
    if (v.state !== OriginState.NO_DATA) rt.lastDataMs = nowMs;
    if (v.state !== OriginState.NO_DATA && !v.doubt) rt.lastConclusiveMs = nowMs;
    const bad = st.state === OriginState.DOWN || st.state === OriginState.DEGRADED;
    const silentWhileBad = v.state === OriginState.NO_DATA && bad && nowMs - rt.lastDataMs < SILENCE_HOLD_MS;
    // Nodes going away is not the origin recovering: when what is left is in doubt (failing, no healthy witness,
    // no probe answer — the other ISPs' sidecars disconnected, or are reconnecting after a central restart), a
    // DOWN or DEGRADED origin keeps its verdict and incident, as it does through silence.
    const unwitnessed =
      !hold && !confirmation && v.doubt && bad && v.state !== OriginState.DOWN && v.state !== OriginState.NO_DATA && nowMs - rt.lastConclusiveMs < SILENCE_HOLD_MS;
    // A slow origin leaving DOWN (its stalls answering) steps down to DEGRADED at once.
    const ramping =
      v.state === OriginState.DEGRADED &&
      !(v.slow && st.state === OriginState.DOWN) &&
      Math.abs(v.failureRatio - rt.lastRatio) >= RAMP_PER_TICK;
    if (onTick) rt.lastRatio = v.failureRatio;
    if (silentWhileBad) {
      st.reason = `no traffic reported since ${new Date(rt.lastDataMs).toISOString()}; keeping the last verdict until traffic resumes or ${SILENCE_HOLD_MS / 1000} s pass`;
    } else if (unwitnessed) {
      st.reason = `keeping the last verdict: what still reports is in doubt (${v.reason}) and nothing shows the origin answers (no healthy witness, no probe answer) — until something does or ${SILENCE_HOLD_MS / 1000} s pass`;
    } else if (!hold && ramping) {
      st.reason = `${v.reason} — failure ratio moving fast, waiting for it to settle`;
    } else if (!hold) {
      const previous = st.state;
      if (this.faultListeners.length && v.state === previous && faultKeysDiffer(st.faults, v.faults)) {
        for (const l of this.faultListeners) l(origin);
      }
      st.faults = v.faults;
      st.reason = v.reason;
      if (v.state !== previous) {
        st.state = v.state;
        st.stateSinceMs = nowMs;
        this.emit({ type: "state", timeMs: nowMs, origin, previous, status: { ...st } });
      }
    } else {
      st.reason = `${v.reason} — confirming with probes from other ISPs`;
    }
    if (st.state === OriginState.DOWN) rt.lastDownMs = nowMs;

    const keep = silentWhileBad || unwitnessed;
    if (onTick) this.runTracks(origin, v, hold || keep, hold || ramping || keep, rt, s, nowMs);
    return e.nodes;
  }

  private runTracks(origin: string, v: Verdict, hold: boolean, holdOrigin: boolean, rt: OriginRuntime, s: VerdictSettings, nowMs: number): void {
    const tracks = this.trackMap(origin);
    // The origin track: DOWN and DEGRADED are one incident (escalating), so flapping is one incident.
    let originObs: Observation;
    if (holdOrigin) originObs = "hold";
    else if (v.state === OriginState.DOWN || v.state === OriginState.DEGRADED) {
      originObs = {
        bad: true,
        kind: v.state === OriginState.DOWN ? IncidentKind.ORIGIN_DOWN : IncidentKind.ORIGIN_DEGRADED,
        failureRatio: v.failureRatio,
        p95TtfbMs: v.p95TtfbMs,
        summary: v.reason,
      };
    } else originObs = { bad: false };
    this.advanceTrack(tracks, origin, "", originObs, s, nowMs);

    // Network tracks: held while probes are out and around an origin DOWN (its onset and recovery
    // pass through partial failures that must not open network incidents).
    const quiet = this.opts.quietAfterDownMs ?? s.lookbackMs;
    const networkHold = hold || v.state === OriginState.DOWN || nowMs - rt.lastDownMs <= quiet;
    const seen = new Set<string>();
    if (!networkHold) {
      for (const f of v.faults) {
        const kind = KIND_OF_SCOPE[f.scope];
        const subject = subjectOf(kind, f.key);
        seen.add(subject);
        const p95 = (f.scope === FaultScope.NODE ? v.nodes : f.scope === FaultScope.ISP ? v.isps : v.regions).find((x) => x.key === f.key)?.p95TtfbMs ?? 0;
        this.advanceTrack(tracks, origin, subject, { bad: true, kind, failureRatio: f.failureRatio, p95TtfbMs: p95, summary: `${origin}: ${f.reason}` }, s, nowMs);
      }
    }
    for (const [subject, t] of [...tracks]) {
      if (subject === "" || seen.has(subject)) continue;
      this.advanceTrack(tracks, origin, subject, networkHold ? "hold" : { bad: false }, s, nowMs);
      if (isIdle(tracks.get(subject) ?? t, nowMs, s.hysteresis)) tracks.delete(subject);
    }
    const ot = tracks.get("");
    if (ot && isIdle(ot, nowMs, s.hysteresis)) tracks.delete("");
    if (tracks.size === 0) this.tracks.delete(origin);
    // An origin with no traffic, no incident and no state worth keeping is forgotten.
    if (!tracks.size && v.state === OriginState.NO_DATA && rt.status.state === OriginState.NO_DATA && nowMs - rt.status.stateSinceMs > 10 * 60_000) {
      this.origins.delete(origin);
      this.evaluated.delete(origin);
    }
  }

  private advanceTrack(tracks: Map<string, Track>, origin: string, subject: string, obs: Observation, s: VerdictSettings, nowMs: number): void {
    const before = tracks.get(subject) ?? newTrack(origin, subject);
    const r = step(before, obs, nowMs, s.hysteresis);
    tracks.set(subject, r.track);
    if (r.transition) this.emit({ type: "incident", timeMs: nowMs, transition: r.transition, incident: { ...r.track.incident! } });
  }
}

function sameThresholds(a: VerdictThresholds, b: VerdictThresholds): boolean {
  for (const k in b) if (a[k as keyof VerdictThresholds] !== b[k as keyof VerdictThresholds]) return false;
  for (const k in a) if (!(k in b)) return false;
  return true;
}

/** True when two fault lists name different (scope, key) sets. */
function faultKeysDiffer(a: readonly FaultFinding[], b: readonly FaultFinding[]): boolean {
  if (a.length !== b.length) return true;
  const keys = new Set(a.map((f) => `${f.scope}:${f.key}`));
  return b.some((f) => !keys.has(`${f.scope}:${f.key}`));
}
