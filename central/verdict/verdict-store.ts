/**
 * What the verdict engine keeps in LevelDB, in its own sublevels of the
 * central's store (JSON values):
 *   incidents   <id>                      IncidentRecord (ids sort by open time)
 *   events      <ms:16><seq:6>            EventRecord (retention by count)
 *   verdicts    <origin>                  last state per origin (survives restart)
 *   tracks      <origin>\0<subject>       incident tracks (open or in flap window)
 *   rollups     <origin>\0<minute ms:16>  per-minute history (retention by age)
 * Writes are queued and applied in order; a failed write is logged by the
 * caller's onError and never stops the engine.
 *
 * Durability (the table in store/level-store.ts): incidents, tracks and
 * events are written with `sync: true` (state operators act on; incident
 * identity must survive a machine crash); rollups are written one synced batch
 * per flush through putRollups(), whose promise rejects on failure so the
 * caller marks a minute clean only after its write succeeded; the last
 * verdict per origin is not synced (recomputed within one lookback).
 */
import type { IncidentRecord, Track } from "./hysteresis.js";
import type { OriginVerdictState } from "./engine.js";
import type { FaultFinding } from "./policy.js";

/** The part of a LevelDB sublevel we use (level 10 sublevels satisfy it). */
export interface KV<V> {
  put(key: string, value: V, options?: WriteOptions): Promise<void>;
  batch(ops: Array<{ type: "put"; key: string; value: V } | { type: "del"; key: string }>, options?: WriteOptions): Promise<void>;
  get(key: string): Promise<V | undefined>;
  del(key: string): Promise<void>;
  iterator(options?: { gt?: string; gte?: string; lt?: string; lte?: string; reverse?: boolean; limit?: number }): AsyncIterable<[string, V]>;
  keys(options?: { gt?: string; gte?: string; lt?: string; lte?: string; reverse?: boolean; limit?: number }): AsyncIterable<string>;
}

/** classic-level's write options: sync fsyncs the log before the write resolves. */
export interface WriteOptions {
  sync?: boolean;
}
const SYNC: WriteOptions = { sync: true };

/** Opens a named JSON sublevel (LevelStore.sublevel in the central). */
export type SublevelOpener = <V>(name: string) => KV<V>;

export interface EventRecord {
  id: string;
  timeMs: number;
  /** EventKind number. */
  kind: number;
  origin: string;
  previousState: number;
  state: number;
  faults: FaultFinding[];
  incident?: IncidentRecord;
  nodeId: string;
  message: string;
  /** INCIDENT_CLOSED by forgetting the origin (ForgetOrigin, age-out): no webhook, as on one central. */
  forgotten?: boolean;
}

export interface RollupRecord {
  requests: number;
  failures: number;
  /** Sparse TTFB buckets on DEFAULT_BOUNDS_MS: index -> count. */
  ttfb: Record<number, number>;
  /** Worst OriginState seen in the minute (number). */
  state: number;
}

export type StoredStatus = Omit<OriginVerdictState, "verdict">;

const pad = (n: number, w: number) => String(Math.max(0, Math.floor(n))).padStart(w, "0");
export const rollupKey = (origin: string, minuteMs: number) => `${origin}\u0000${pad(minuteMs, 16)}`;

export interface VerdictStoreOptions {
  maxEvents?: number;
  onError?: (err: unknown, what: string) => void;
}

export class VerdictStore {
  readonly incidents: KV<IncidentRecord>;
  readonly events: KV<EventRecord>;
  readonly verdicts: KV<StoredStatus>;
  readonly tracks: KV<Track>;
  readonly rollups: KV<RollupRecord>;
  private chain: Promise<void> = Promise.resolve();
  private eventSeq = 0;
  private eventCount = -1;
  private readonly maxEvents: number;

  constructor(open: SublevelOpener, private opts: VerdictStoreOptions = {}) {
    this.incidents = open<IncidentRecord>("incidents");
    this.events = open<EventRecord>("events");
    this.verdicts = open<StoredStatus>("verdicts");
    this.tracks = open<Track>("tracks");
    this.rollups = open<RollupRecord>("rollups");
    this.maxEvents = opts.maxEvents ?? 100_000;
  }

  /** Queue a write; writes apply in call order. */
  private enqueue(what: string, fn: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(fn).catch((err) => this.opts.onError?.(err, what));
    return this.chain;
  }

  /** Resolves when every queued write is done. */
  flush(): Promise<void> {
    return this.chain;
  }

  putIncident(inc: IncidentRecord): Promise<void> {
    return this.enqueue("incident", () => this.incidents.put(inc.id, inc, SYNC));
  }

  putTrack(t: Track): Promise<void> {
    return this.enqueue("track", () => this.tracks.put(`${t.origin}\u0000${t.subject}`, t, SYNC));
  }

  putStatus(s: OriginVerdictState): Promise<void> {
    const { verdict: _v, ...rest } = s;
    return this.enqueue("verdict", () => this.verdicts.put(s.origin, { ...rest, confirming: false }));
  }

  /** Assigns the event id (time-ordered) and appends it. */
  /** Stores an event under a new id, or under `givenId` (cluster mode: the id every replica shows). */
  appendEvent(e: Omit<EventRecord, "id">, givenId?: string): EventRecord {
    const id = givenId ?? `${pad(e.timeMs, 16)}${pad(this.eventSeq++ % 1_000_000, 6)}`;
    const rec = { ...e, id };
    void this.enqueue("event", async () => {
      await this.events.put(id, rec, SYNC);
      if (this.eventCount < 0) {
        let n = 0;
        for await (const _k of this.events.keys()) n++;
        this.eventCount = n;
      } else this.eventCount++;
      if (this.eventCount > this.maxEvents * 1.1) await this.pruneEvents();
    });
    return rec;
  }

  private async pruneEvents(): Promise<void> {
    const drop = this.eventCount - this.maxEvents;
    let n = 0;
    for await (const k of this.events.keys({ limit: drop })) {
      await this.events.del(k);
      n++;
    }
    this.eventCount -= n;
  }

  putRollup(origin: string, minuteMs: number, r: RollupRecord): Promise<void> {
    return this.enqueue("rollup", () => this.rollups.put(rollupKey(origin, minuteMs), r));
  }

  /**
   * Writes rollups in one synced batch, in order with the other writes. Unlike
   * the other writes, the returned promise rejects when the write failed (it
   * is also reported to onError), so the caller can keep the minutes dirty.
   */
  putRollups(entries: Array<{ origin: string; minuteMs: number; rec: RollupRecord }>): Promise<void> {
    const done = this.chain.then(() =>
      entries.length === 0 ? undefined : this.rollups.batch(entries.map((e) => ({ type: "put" as const, key: rollupKey(e.origin, e.minuteMs), value: e.rec })), SYNC),
    );
    this.chain = done.catch((err) => this.opts.onError?.(err, "rollup"));
    return done;
  }

  async getRollup(origin: string, minuteMs: number): Promise<RollupRecord | undefined> {
    return this.rollups.get(rollupKey(origin, minuteMs));
  }

  async rollupRange(origin: string, fromMs: number, toMs: number): Promise<Array<[number, RollupRecord]>> {
    const out: Array<[number, RollupRecord]> = [];
    for await (const [k, v] of this.rollups.iterator({ gte: rollupKey(origin, fromMs), lte: rollupKey(origin, toMs) })) {
      out.push([Number(k.slice(k.indexOf("\u0000") + 1)), v]);
    }
    return out;
  }

  /** Deletes rollups older than cutoffMs (all origins). */
  pruneRollups(cutoffMs: number): Promise<void> {
    return this.enqueue("rollup-prune", async () => {
      const stale: string[] = [];
      for await (const k of this.rollups.keys()) {
        const minute = Number(k.slice(k.indexOf("\u0000") + 1));
        if (minute < cutoffMs) stale.push(k);
      }
      for (const k of stale) await this.rollups.del(k);
    });
  }

  /** Deletes closed incidents that closed before cutoffMs (open ones are never pruned). */
  pruneIncidents(cutoffMs: number): Promise<void> {
    return this.enqueue("incident-prune", async () => {
      const stale: string[] = [];
      for await (const [k, inc] of this.incidents.iterator()) if (!inc.open && inc.closedMs && inc.closedMs < cutoffMs) stale.push(k);
      for (const k of stale) await this.incidents.del(k);
    });
  }

  /** Operator forget / age-out: the origin's last state and its tracks (history and incidents keep their retention). */
  forgetOrigin(origin: string): Promise<void> {
    return this.enqueue("forget", async () => {
      await this.verdicts.del(origin);
      const keys: string[] = [];
      for await (const k of this.tracks.keys({ gte: `${origin}\u0000`, lt: `${origin}\u0001` })) keys.push(k);
      for (const k of keys) await this.tracks.del(k);
    });
  }

  async loadStatuses(): Promise<StoredStatus[]> {
    const out: StoredStatus[] = [];
    for await (const [, v] of this.verdicts.iterator()) out.push(v);
    return out;
  }

  /** Tracks worth restoring: an open incident, or a closed one still inside its flap window. */
  async loadTracks(nowMs: number, flapWindowMs: number): Promise<Track[]> {
    const out: Track[] = [];
    const stale: string[] = [];
    for await (const [k, t] of this.tracks.iterator()) {
      const inc = t.incident;
      if (inc && (inc.open || nowMs - inc.closedMs <= flapWindowMs)) out.push({ ...t, badStreak: 0, goodStreak: 0 });
      else stale.push(k);
    }
    for (const k of stale) await this.tracks.del(k);
    return out;
  }

  /** Newest first; page_token is the last id of the previous page. */
  async listIncidents(q: { origin?: string; openOnly?: boolean; pageSize?: number; pageToken?: string }): Promise<{ incidents: IncidentRecord[]; nextPageToken: string }> {
    const size = Math.min(Math.max(q.pageSize || 100, 1), 1000);
    const out: IncidentRecord[] = [];
    const opts = q.pageToken ? { lt: q.pageToken, reverse: true } : { reverse: true };
    let last = "";
    let more = false;
    for await (const [k, inc] of this.incidents.iterator(opts)) {
      if (q.origin && inc.origin !== q.origin) continue;
      if (q.openOnly && !inc.open) continue;
      if (out.length === size) {
        more = true;
        break;
      }
      out.push(inc);
      last = k;
    }
    return { incidents: out, nextPageToken: more ? last : "" };
  }

  /** Events after (exclusive) an id, oldest first, for replay to a new watcher. */
  async eventsSince(afterId: string, limit = 1000): Promise<EventRecord[]> {
    const out: EventRecord[] = [];
    for await (const [, e] of this.events.iterator({ gt: afterId, limit })) out.push(e);
    return out;
  }
}
