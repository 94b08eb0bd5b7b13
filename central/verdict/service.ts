/**
 * Wires the verdict engine into the central without reaching into the other
 * parts: it listens to the ingest's events (batches, probe results, node
 * connects), sends probe requests through the ingest's sessions, persists
 * through its own sublevels of the central's LevelStore, and offers the
 * query handlers it owns (ListIncidents, WatchEvents, GetOriginHistory,
 * ProbeOrigin) plus the VerdictView that ListOrigins / GetOrigin read.
 *
 * start() restores verdict states and open incidents before the first tick;
 * close() is idempotent and safe before start().
 */
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import { FlushWindowsSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { Config } from "../../proto/gen/originwatch/v1/config_pb.js";
import { EventKind, IncidentKind, OriginState, type QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { type WebhookPayload, WebhookSender } from "../alerts/webhook.js";
import { levelOutbox } from "../alerts/outbox.js";
import { AlertmanagerSender, type QueuedAlert } from "../alerts/alertmanager.js";
import type { Ingest, Session } from "../ingest/ingest-service.js";
import type { OriginFigures, OriginVerdict, VerdictView } from "../query/verdict-view.js";
import type { LevelStore } from "../store/level-store.js";
import { type EngineChange, type TickReport, VerdictEngine } from "./engine.js";
import { EventHub, SlowWatcherError } from "./event-hub.js";
import { HistoryRollups, MINUTE_MS } from "./history.js";
import type { ScopeFigures, Verdict } from "./policy.js";
import type { ProbeBroker, ProbeTarget } from "./probe-broker.js";
import { eventToProto, faultToProto, historyPointToProto, incidentToProto, scopeToProto } from "./proto-convert.js";
import { DEFAULT_SETTINGS, type VerdictSettings, resolveSettings } from "./settings.js";
import { type EventRecord, type KV, VerdictStore } from "./verdict-store.js";

export interface VerdictServiceOptions {
  ingest: Ingest;
  store: LevelStore;
  log: Logger;
  /** Evaluation tick (default 1000 ms). */
  tickMs?: number;
  /** Lookback when no config says otherwise (default 5000 ms). */
  lookbackMs?: number;
  /** Per-minute history kept this long (default 7 days). */
  historyRetentionMs?: number;
  webhook?: { url: string; includeNetwork?: boolean };
  /** Send incidents to these Alertmanagers (API v2); externalUrl is the dashboard's base URL (generatorURL). */
  alertmanager?: {
    urls: string[];
    externalUrl: string;
    resendMs?: number;
    /**
     * Keep pending alerts in the LevelDB outbox (default true). Cluster mode
     * turns it off: the alert state lives in the partition snapshots, the next
     * owner re-sends it (ClusterVerdict.caughtUp), and a replica restarting
     * must not re-deliver old alerts of partitions it no longer owns.
     */
    outbox?: boolean;
  };
  /** Cluster mode: probe targets on other replicas (probe-relay.ts), asked besides this central's sessions. */
  remoteProbeTargets?: (origin: string, broker: ProbeBroker) => ProbeTarget[];
  /** Cluster mode: FlushWindows to the origin's sidecars on other replicas (flush-relay.ts), besides this central's sessions. */
  remoteFlush?: (origin: string) => void;
  /**
   * Cluster mode (central/cluster/cluster-verdict.ts): false = the engine is
   * fed by the partition owner from the window log, not by this replica's
   * sessions (default true).
   */
  observeIngest?: boolean;
  /** Cluster mode: changes of an origin this replica does not own (or is still replaying) cause no event, store write or alert. */
  mute?: (origin: string) => boolean;
  /**
   * Cluster mode: events go here instead of into this replica's store and
   * hub (the events stream, central/cluster/event-log.ts); every replica then
   * takes them back with receiveEvent, the deciding one included.
   */
  eventSink?: (e: Omit<EventRecord, "id">) => void;
}

const ORIGIN_KINDS = new Set([IncidentKind.ORIGIN_DOWN, IncidentKind.ORIGIN_DEGRADED]);

export class VerdictService implements VerdictView {
  readonly engine: VerdictEngine;
  readonly store: VerdictStore;
  readonly hub = new EventHub();
  readonly history: HistoryRollups;
  readonly webhook: WebhookSender | undefined;
  readonly alertmanager: AlertmanagerSender | undefined;
  /** Every tick's report and every event recorded (the central's metrics listen here). */
  readonly signals = new EventEmitter<{ tick: [TickReport]; event: [EventRecord] }>();
  private config: Config | undefined;
  private timers: NodeJS.Timeout[] = [];
  private started = false;
  private closed = false;
  private readonly lookbackMs: number;

  constructor(private o: VerdictServiceOptions) {
    this.lookbackMs = o.lookbackMs ?? DEFAULT_SETTINGS.lookbackMs;
    const open = <V>(name: string) => o.store.sublevel<V>(`verdict-${name}`) as unknown as KV<V>;
    this.store = new VerdictStore(open, { onError: (err, what) => o.log.error({ err, what }, "verdict store write failed") });
    this.history = new HistoryRollups(this.store, o.historyRetentionMs ?? 7 * 24 * 3600_000);
    this.engine = new VerdictEngine({
      settingsFor: (origin) => this.settingsFor(origin),
      probeTargets: (origin) => this.probeTargets(origin),
      requestFlush: (origin) => {
        for (const t of this.sessionsOf(origin)) t.send({ case: "flushWindows", value: create(FlushWindowsSchema, { origin }) });
        o.remoteFlush?.(origin);
      },
    });
    this.engine.confirmer.onRound = (origin, answers, result) =>
      o.log.info({ origin, result: result ?? "no answer", answers: answers.map((a) => ({ node: a.nodeId, isp: a.isp, attempts: a.attempts.length, error: a.error })) }, "confirmation probes");
    if (o.webhook) {
      const outbox = levelOutbox(o.store.sublevel<WebhookPayload>("alerts-outbox") as unknown as KV<WebhookPayload>);
      this.webhook = new WebhookSender({
        url: o.webhook.url,
        includeNetwork: o.webhook.includeNetwork,
        outbox,
        onDelivered: (p, attempts) => o.log.info({ key: p.dedupe_key, attempts }, "webhook delivered"),
        onDropped: (p, reason) => o.log.warn({ key: p.dedupe_key, reason }, "webhook dropped"),
        onOutboxError: (p, err) => o.log.error({ key: p.dedupe_key, err }, "webhook outbox write failed: the alert is delivered but would not survive a crash"),
      });
    }
    if (o.alertmanager?.urls.length) {
      const kv = o.store.sublevel<QueuedAlert>("alertmanager-outbox") as unknown as KV<QueuedAlert>;
      this.alertmanager = new AlertmanagerSender({
        ...o.alertmanager,
        openIncidents: () => this.engine.openIncidents(),
        outbox: o.alertmanager.outbox === false ? undefined : (receiver) => levelOutbox(kv, `${receiver}/`),
        onDropped: (url, q, reason) => o.log.warn({ url, alert: q.alert.labels, reason }, "alertmanager alert dropped"),
        onOutboxError: (url, q, err) => o.log.error({ url, alert: q.alert.labels, err }, "alertmanager outbox write failed: the alert is delivered but would not survive a crash"),
      });
    }
    this.engine.onChange((c) => this.onChange(c));
  }

  /** Apply a fleet config (thresholds, hysteresis, probes, per-origin overrides). */
  setConfig(config: Config | undefined): void {
    this.config = config;
  }

  settingsFor(origin: string): VerdictSettings {
    const s = resolveSettings(this.config, origin);
    return this.config?.lookbackMs ? s : { ...s, lookbackMs: this.lookbackMs };
  }

  async start(): Promise<void> {
    if (this.started || this.closed) return;
    this.started = true;
    const now = Date.now();
    const [statuses, tracks] = await Promise.all([this.store.loadStatuses(), this.store.loadTracks(now, this.settingsFor("").hysteresis.flapWindowMs)]);
    this.engine.restore(statuses, tracks);
    if (statuses.length || tracks.length) this.o.log.info({ origins: statuses.length, incidents: tracks.filter((t) => t.incident?.open).length }, "verdicts restored");
    const ingest = this.o.ingest;
    if (this.o.observeIngest !== false) ingest.on("batch", (session, batch) => {
      const node = session.node;
      if (!node) return;
      const now = Date.now();
      this.engine.observeColumns(node, batch.windows, now);
      this.history.addColumns(batch.windows, now);
    });
    ingest.on("probe-result", (session, r) => {
      if (session.node) this.engine.onProbeResult(session.node.nodeId, r);
    });
    ingest.on("node-connected", (s) => this.nodeEvent(s, EventKind.NODE_CONNECTED));
    ingest.on("node-disconnected", (s) => this.nodeEvent(s, EventKind.NODE_DISCONNECTED));
    await this.webhook?.start();
    await this.alertmanager?.start();
    const every = (ms: number, fn: () => unknown) => {
      const t = setInterval(() => {
        try {
          const r = fn();
          if (r instanceof Promise) r.catch((err) => this.o.log.error({ err }, "verdict background task failed"));
        } catch (err) {
          this.o.log.error({ err }, "verdict background task failed");
        }
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.o.tickMs ?? 1000, () => {
      const r = this.engine.tick();
      for (const st of this.engine.statuses()) this.history.noteState(st.origin, Date.now(), st.state);
      this.signals.emit("tick", r);
      if (r.durationMs > 250) this.o.log.warn({ ...r }, "slow verdict tick");
    });
    this.engine.evaluateOnArrival();
    every(10_000, () => this.history.flush());
    every(3600_000, async () => {
      await this.history.prune();
      // Closed incidents are kept as long as the history they belong to.
      await this.store.pruneIncidents(Date.now() - this.history.retentionMs);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.engine.shutdown();
    await this.webhook?.shutdown();
    await this.alertmanager?.shutdown();
    if (this.started) {
      await this.history.flush().catch(() => {});
      await this.store.flush();
    }
  }

  private nodeEvent(s: Session, kind: EventKind): void {
    const node = s.node;
    if (!node) return;
    if (kind === EventKind.NODE_CONNECTED) this.engine.touch(node.nodeId);
    else this.engine.disconnected(node.nodeId);
    this.emitEvent({
      timeMs: Date.now(),
      kind,
      origin: "",
      previousState: 0,
      state: 0,
      faults: [],
      nodeId: node.nodeId,
      message: `${node.nodeId} (${node.isp}, ${node.region}) ${kind === EventKind.NODE_CONNECTED ? "connected" : "disconnected"}`,
    });
  }

  private emitEvent(e: Omit<EventRecord, "id">): void {
    if (this.o.eventSink) return this.o.eventSink(e);
    this.receiveEvent(e);
  }

  /** An event decided here or (cluster mode) by any replica: stored, shown to WatchEvents, counted. */
  receiveEvent(e: Omit<EventRecord, "id">, id?: string): void {
    const rec = this.store.appendEvent(e, id);
    this.hub.publish(rec);
    this.signals.emit("event", rec);
  }

  private onChange(c: EngineChange): void {
    if (this.o.mute?.(c.type === "state" ? c.origin : c.incident.origin)) return;
    if (c.type === "state") {
      void this.store.putStatus(c.status);
      this.emitEvent({
        timeMs: c.timeMs,
        kind: EventKind.STATE_CHANGED,
        origin: c.origin,
        previousState: c.previous,
        state: c.status.state,
        faults: c.status.faults,
        nodeId: "",
        message: `${c.origin}: ${OriginState[c.previous]} -> ${OriginState[c.status.state]}: ${c.status.reason}`,
      });
      this.o.log.info({ origin: c.origin, from: OriginState[c.previous], to: OriginState[c.status.state], reason: c.status.reason }, "origin state changed");
      return;
    }
    const inc = c.incident;
    void this.store.putIncident(inc);
    const track = this.engine.tracksWithIncidents().find((t) => t.incident?.id === inc.id);
    if (track) void this.store.putTrack(track);
    const st = this.engine.status(inc.origin);
    const kind = c.transition === "closed" ? EventKind.INCIDENT_CLOSED : c.transition === "escalated" ? EventKind.INCIDENT_UPDATED : EventKind.INCIDENT_OPENED;
    this.emitEvent({
      timeMs: c.timeMs,
      kind,
      origin: inc.origin,
      previousState: st?.state ?? 0,
      state: st?.state ?? 0,
      faults: st?.faults ?? [],
      incident: inc,
      nodeId: "",
      message: `${IncidentKind[inc.kind]} ${inc.scopeKey || inc.origin} ${c.transition}${inc.flapping ? " (flapping)" : ""}: ${inc.summary}`,
    });
    this.o.log.info({ origin: inc.origin, kind: IncidentKind[inc.kind], scope: inc.scopeKey, transition: c.transition, id: inc.id }, "incident");
    this.webhook?.notify(c.transition, inc);
    this.alertmanager?.notify(c.transition, inc);
    // Every state also persists while an origin incident is open, so a restart resumes it.
    if (ORIGIN_KINDS.has(inc.kind) && st) void this.store.putStatus(st);
  }

  /** Whether the verdict holds anything for the origin (state, tracks, lookback). */
  knows(origin: string): boolean {
    return this.engine.knows(origin);
  }

  /**
   * Operator forget / age-out of an origin, verdict side: its state, lookback
   * and tracks go; open incidents are closed (recorded, with an event, no
   * webhook); history and closed incidents keep their own retention.
   * Resolves once the records are gone; returns how many incidents it closed.
   */
  async forgetOrigin(origin: string, why: string): Promise<number> {
    const nowMs = Date.now();
    const closed = this.engine.forgetOrigin(origin, nowMs);
    for (const inc of closed) {
      inc.summary = `${inc.summary} (closed: ${why})`;
      void this.store.putIncident(inc);
      // Alertmanager holds a firing alert until told: resolve it (the webhook is not told, see above).
      this.alertmanager?.notify("closed", inc);
      this.emitEvent({ timeMs: nowMs, kind: EventKind.INCIDENT_CLOSED, origin, previousState: 0, state: 0, faults: [], incident: inc, nodeId: "", message: `${IncidentKind[inc.kind]} ${inc.scopeKey || origin} closed: ${why}`, forgotten: true });
    }
    await this.store.forgetOrigin(origin);
    return closed.length;
  }

  /** Operator forget / age-out of a node, verdict side: its lookback sums and liveness. */
  forgetNode(nodeId: string): void {
    this.engine.forgetNode(nodeId);
  }

  /** Open sessions of sidecars that route to the origin. */
  private *sessionsOf(origin: string) {
    for (const s of this.o.ingest.sessions.values()) {
      const node = s.node;
      if (!node || s.closed || !(s.hello?.origins ?? node.origins).includes(origin)) continue;
      yield s;
    }
  }

  /** Sessions of sidecars that route to the origin (cluster mode: on any replica, this one's first). */
  private probeTargets(origin: string): ProbeTarget[] {
    const out = this.localProbeTargets(origin);
    if (!this.o.remoteProbeTargets) return out;
    const here = new Set(out.map((t) => t.nodeId));
    return [...out, ...this.o.remoteProbeTargets(origin, this.engine.broker).filter((t) => !here.has(t.nodeId))];
  }

  /** Sessions on this replica of sidecars that route to the origin. */
  private localProbeTargets(origin: string): ProbeTarget[] {
    const out: ProbeTarget[] = [];
    for (const s of this.sessionsOf(origin)) {
      const node = s.node!;
      out.push({
        nodeId: node.nodeId,
        isp: node.isp,
        region: node.region,
        send: (req) => s.send({ case: "probeRequest", value: req }),
      });
    }
    return out;
  }

  /** VerdictView (query/verdict-view.ts): the state of an origin, and its figures read from the lookback. */
  originVerdict(origin: string): OriginVerdict {
    const st = this.engine.status(origin);
    const figures = this.figuresOf(origin);
    if (!st) return { state: OriginState.NO_DATA, faults: [], reason: "no node reported traffic for this origin in the lookback", stateSinceMs: 0, confirming: false, figures };
    return { state: st.state, faults: st.faults.map(faultToProto), reason: st.reason, stateSinceMs: st.stateSinceMs, confirming: st.confirming, figures };
  }

  /** VerdictView: origins with windows in the lookback. */
  liveOrigins(): Iterable<string> {
    return this.engine.lookback.origins();
  }

  /** VerdictView: whether the lookback holds a window of the origin. */
  isLive(origin: string): boolean {
    return this.engine.lookback.has(origin);
  }

  /** Figures and the per-ISP, per-region and per-node breakdown, from the verdict's own arithmetic. */
  private figuresOf(origin: string): OriginFigures | undefined {
    const tickVerdict = this.engine.status(origin)?.verdict;
    if (!tickVerdict && !this.engine.lookback.has(origin)) return undefined;
    const lookbackS = this.settingsFor(origin).lookbackMs / 1000;
    // The breakdown costs a full evaluation: done only when GetOrigin reads it, once per call.
    let detail: Verdict | undefined | null = null;
    const detailed = () => (detail === null ? (detail = this.engine.detailed(origin)) : detail);
    const conv = (l: ScopeFigures[] | undefined) => (l ?? []).map(scopeToProto);
    const head = tickVerdict ?? detailed();
    return {
      requestRate: (head?.requests ?? 0) / lookbackS,
      failureRatio: head?.failureRatio ?? 0,
      p95TtfbMs: head?.p95TtfbMs ?? 0,
      get isps() {
        return conv(detailed()?.isps);
      },
      get regions() {
        return conv(detailed()?.regions);
      },
      get nodes() {
        return conv(detailed()?.nodes);
      },
    };
  }

  /** The QueryService methods the verdict owns. */
  queryHandlers(): Partial<ServiceImpl<typeof QueryService>> {
    const self = this;
    return {
      async listIncidents(req) {
        const r = await self.store.listIncidents({ origin: req.origin, openOnly: req.openOnly, pageSize: req.pageSize, pageToken: req.pageToken });
        return { incidents: r.incidents.map(incidentToProto), nextPageToken: r.nextPageToken };
      },
      async *watchEvents(req, ctx) {
        const w = self.hub.watch((e) => !req.origin || e.origin === req.origin);
        const stop = () => w.close();
        ctx.signal.addEventListener("abort", stop, { once: true });
        try {
          for await (const e of w) yield { event: eventToProto(e) };
        } catch (err) {
          if (err instanceof SlowWatcherError) throw new ConnectError(err.message, Code.ResourceExhausted);
          throw err;
        } finally {
          ctx.signal.removeEventListener("abort", stop);
          w.close();
        }
      },
      async getOriginHistory(req) {
        if (!req.origin) throw new ConnectError("origin is required", Code.InvalidArgument);
        const now = Date.now();
        const to = req.to ? timestampMs(req.to) : now;
        const from = req.from ? timestampMs(req.from) : to - 3600_000;
        if (from > to) throw new ConnectError("from must not be after to", Code.InvalidArgument);
        const points = await self.history.query(req.origin, from, to);
        return { points: points.map(historyPointToProto), stepSeconds: MINUTE_MS / 1000 };
      },
      async probeOrigin(req) {
        if (!req.origin) throw new ConnectError("origin is required", Code.InvalidArgument);
        const s = self.settingsFor(req.origin).probe;
        const targets = self.probeTargets(req.origin).filter((t) => !req.isp || t.isp === req.isp).slice(0, 20);
        if (targets.length === 0) {
          throw new ConnectError(`no connected sidecar routes to ${JSON.stringify(req.origin)}${req.isp ? ` on ${req.isp}` : ""}`, Code.FailedPrecondition);
        }
        const count = Math.min(Math.max(req.count || s.count, 1), 20);
        const answers = await self.engine.broker.round(targets, { origin: req.origin, method: s.method, path: s.path, count, timeoutMs: s.timeoutMs });
        return { results: answers.map((a) => ({ nodeId: a.nodeId, isp: a.isp, region: a.region, attempts: a.attempts, error: a.error })) };
      },
    };
  }
}
