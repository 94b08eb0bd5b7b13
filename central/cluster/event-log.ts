/**
 * The cluster's events (issue 16): stream `OW_EVENTS` (subject `ow.evt`), so
 * WatchEvents on any replica sees what another decided. Only a partition's
 * owner emits its origins' events (the others are muted, VerdictService
 * `mute`), and each event is published with a deterministic msgID — the
 * event's id, derived from what it is (origin, kind, states, incident id and
 * transition, time) — so a re-publish (a retry after a lost PubAck) is stored
 * once, and every replica shows the same id. Every replica reads new events
 * with an ordered consumer and hands each to its VerdictService
 * (`receiveEvent`: local store, WatchEvents hub, metrics), also skipping an id
 * it has already seen.
 */
import { createHash } from "node:crypto";
import { nanos } from "@nats-io/transport-node";
import { DeliverPolicy, DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { EventRecord } from "../verdict/verdict-store.js";
import type { ClusterContext } from "./cluster-context.js";

export const EVENTS_STREAM = "OW_EVENTS";
export const EVENTS_SUBJECT = "ow.evt";
/** Events kept in the stream (a replica starting reads only new ones; its own store keeps history). */
const EVENTS_MAX_AGE_MS = 24 * 3600_000;

/** The event's id: time-ordered (16 digits of ms) then 12 hex of a hash of what the event is. */
export function eventId(e: Omit<EventRecord, "id">): string {
  const what = [e.kind, e.origin, e.previousState, e.state, e.nodeId, e.incident?.id ?? "", e.incident?.reopenCount ?? "", e.incident?.open ?? "", e.timeMs].join("\u0000");
  return `${String(e.timeMs).padStart(16, "0")}${createHash("sha256").update(what).digest("hex").slice(0, 12)}`;
}

export interface EventLog {
  /** Publishes an event (retried in the background with the same msgID for up to 30 s). */
  publish(e: Omit<EventRecord, "id">): void;
  stop(): Promise<void>;
}

export async function startEventLog(ctx: ClusterContext, o: { log: Logger; receive: (e: Omit<EventRecord, "id">, id: string) => void }): Promise<EventLog> {
  const config = {
    name: EVENTS_STREAM,
    subjects: [EVENTS_SUBJECT],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: ctx.options.replicas,
    max_age: nanos(EVENTS_MAX_AGE_MS),
    duplicate_window: nanos(ctx.options.dedupWindowMs),
  };
  let lastSeq = 0;
  try {
    lastSeq = (await ctx.jsm.streams.info(EVENTS_STREAM)).state.last_seq; // read only what comes next
  } catch (err) {
    if (!(err instanceof JetStreamApiError)) throw err;
    await ctx.jsm.streams.add(config);
  }
  const seen = new Set<string>();
  let stopped = false;
  let current: { stop(): void } | undefined;
  // The reader resumes after the last event it handed over whenever its consumer ends or fails (a
  // nats-server gone, a stream leader change the ordered consumer did not ride out): none skipped, none twice.
  const done = (async () => {
    while (!stopped) {
      try {
        const start = { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1 };
        const consumer = await ctx.js.consumers.get(EVENTS_STREAM, start);
        const messages = await consumer.consume({ max_messages: 256 });
        current = messages;
        if (stopped) messages.stop();
        for await (const m of messages) {
          if (stopped) break;
          lastSeq = m.seq;
          try {
            const rec = m.json<EventRecord>();
            if (seen.has(rec.id)) continue;
            seen.add(rec.id);
            if (seen.size > 10_000) seen.delete(seen.values().next().value!);
            const { id, ...rest } = rec;
            o.receive(rest, id);
          } catch (err) {
            o.log.warn({ seq: m.seq, err: (err as Error).message }, "undecodable event skipped");
          }
        }
      } catch (err) {
        if (!stopped) o.log.warn({ err: (err as Error).message }, "events reader failed; resuming");
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 1_000).unref());
    }
  })();
  // A consumer that stalls without ending (the stream moved on, nothing delivered since the last check) is
  // stopped; the loop above resumes after the last event.
  let checked = -1;
  const watchdog = setInterval(() => {
    void ctx.jsm.streams.info(EVENTS_STREAM).then(
      (info) => {
        if (info.state.last_seq > lastSeq && checked === lastSeq) {
          o.log.warn({ at: lastSeq, stream: info.state.last_seq }, "events reader stalled; resuming");
          current?.stop();
        }
        checked = lastSeq;
      },
      () => undefined,
    );
  }, 5_000);
  watchdog.unref();
  return {
    publish(e) {
      const id = eventId(e);
      const bytes = JSON.stringify({ ...e, id });
      const deadline = Date.now() + 30_000;
      const attempt = (wait: number): void => {
        ctx.js.publish(EVENTS_SUBJECT, bytes, { msgID: id, expect: { streamName: EVENTS_STREAM } }).catch((err: Error) => {
          if (Date.now() + wait > deadline) return o.log.error({ id, err: err.message }, "event not published: lost for the other replicas [CENTRAL_NATS_UNAVAILABLE]");
          setTimeout(() => attempt(Math.min(wait * 2, 1_000)), wait).unref();
        });
      };
      attempt(100);
    },
    async stop() {
      stopped = true;
      clearInterval(watchdog);
      current?.stop();
      await done.catch(() => undefined);
    },
  };
}
