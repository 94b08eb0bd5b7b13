/**
 * Webhooks in cluster mode (issue 16): sent once per incident transition for
 * the whole cluster, whichever replica decided it and whichever replica dies.
 *
 * The events are already in stream `OW_EVENTS` with deterministic ids
 * (event-log.ts). Every replica started with `--webhook URL` pulls from ONE
 * durable consumer `OW_NOTIFY_<hash of URL>` on that stream (so replicas with
 * the same receiver share it, and a receiver never gets another receiver's
 * events). The server hands each event to one puller; that replica sends the
 * webhook with the WebhookSender's retry and backoff (dedupe key and
 * Idempotency-Key as on one central, plus `event_id`) and acks the event only
 * after the receiver took it (2xx) or after giving up (4xx, out of attempts:
 * logged, counted as dropped). While it retries it tells the server it is
 * still working every ackWait / 3, so a replica that dies mid-delivery stops
 * doing so and the server hands the event to another replica after ackWait.
 *
 * Consumer: explicit ack, `max_ack_pending` 1 (one event in flight in the
 * cluster: the receiver sees open before close, as from one central's
 * sequential outbox), `ack_wait` 30 s, `max_deliver` 10 (an event handed over
 * ten times is given up by the server), deliver policy "new" when first
 * created (a new receiver is not sent the last 24 h). Nats 2.9 features only.
 *
 * Exactly once: msgID dedup stores each event once; one consumer hands it to
 * one replica at a time; and a transition decided twice (an owner that died
 * after publishing it and before the snapshot that recorded it: the next
 * owner decides it again, under another event id and the same dedupe key) is
 * sent once, because the replica marks each delivered dedupe key in KV
 * `OW_NOTIFIED` (bucket TTL 24 h, the events' max age) and drops an event
 * whose key is marked. What remains is at least once: a replica that dies
 * after the receiver's 2xx and before its ack (or its mark) — the next one
 * sends it again with the same dedupe key, which the receiver drops.
 *
 * The events that are not webhooks (state changes, node events, escalations,
 * network incidents without --webhook-network, incidents closed by forgetting
 * the origin) are acked at once.
 */
import { createHash } from "node:crypto";
import { nanos } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, type JsMsg, JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { EventKind } from "../../proto/gen/originwatch/v1/query_pb.js";
import { type WebhookPayload, WebhookSender } from "../alerts/webhook.js";
import type { Transition } from "../verdict/hysteresis.js";
import type { EventRecord } from "../verdict/verdict-store.js";
import type { ClusterContext } from "./cluster-context.js";
import { EVENTS_STREAM } from "./event-log.js";

export const NOTIFIED_BUCKET = "OW_NOTIFIED";
/** Delivered dedupe keys are kept as long as the events stream keeps events. */
const NOTIFIED_TTL_MS = 24 * 3600_000;

/** Consumer settings (one place; the README's table quotes them). */
export const NOTIFY_DEFAULTS = { ackWaitMs: 30_000, maxDeliver: 10 };

/** The durable consumer of one webhook receiver: `OW_NOTIFY_` + 12 hex of the URL's SHA-256. */
export function notifyConsumerName(url: string): string {
  return `OW_NOTIFY_${createHash("sha256").update(url).digest("hex").slice(0, 12)}`;
}

export interface WebhookNotifierOptions {
  url: string;
  includeNetwork?: boolean;
  log: Logger;
  /** How long an event may stay unacked before the server hands it to another replica (default 30 s). */
  ackWaitMs?: number;
  /** Retry settings of the WebhookSender (defaults there). */
  maxAttempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface WebhookNotifier {
  /** The sender (delivered / dropped / pending counters for /metrics). */
  sender: WebhookSender;
  /** Events this replica handled (acked), webhooks or not. */
  handled(): number;
  /** Stops pulling; an event being delivered is handed back to the server at once (nak). Idempotent. */
  stop(): Promise<void>;
}

/** The webhook transition an event stands for, or undefined when it is not one. */
export function transitionOf(e: Omit<EventRecord, "id">): Transition | undefined {
  if (!e.incident || e.forgotten) return undefined;
  if (e.kind === EventKind.INCIDENT_CLOSED) return "closed";
  if (e.kind === EventKind.INCIDENT_OPENED) return e.incident.reopenCount > 0 ? "reopened" : "opened";
  return undefined;
}

async function ensureConsumer(ctx: ClusterContext, name: string, ackWaitMs: number): Promise<void> {
  const want = { ack_wait: nanos(ackWaitMs), max_deliver: NOTIFY_DEFAULTS.maxDeliver, max_ack_pending: 1 };
  try {
    const info = await ctx.jsm.consumers.info(EVENTS_STREAM, name);
    const c = info.config;
    if (c.ack_wait !== want.ack_wait || c.max_deliver !== want.max_deliver || c.max_ack_pending !== want.max_ack_pending) await ctx.jsm.consumers.update(EVENTS_STREAM, name, want);
  } catch (err) {
    if (!(err instanceof JetStreamApiError)) throw err;
    await ctx.jsm.consumers.add(EVENTS_STREAM, { durable_name: name, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New, ...want });
  }
}

/**
 * Starts pulling webhook events from the receiver's durable consumer (created
 * when missing). Needs the events stream (startEventLog creates it). Throws
 * when the consumer or the bucket cannot be set up.
 */
export async function startWebhookNotifier(ctx: ClusterContext, o: WebhookNotifierOptions): Promise<WebhookNotifier> {
  const ackWaitMs = o.ackWaitMs ?? NOTIFY_DEFAULTS.ackWaitMs;
  const name = notifyConsumerName(o.url);
  const log = o.log.child({ part: "webhook-notifier", consumer: name });
  await ensureConsumer(ctx, name, ackWaitMs);
  // No direct gets: a direct get may be served by a follower that has not applied the last mark yet, and the
  // next event may be checked on another replica right after this one marked and acked (a repeat sent).
  const notified: KV = await ctx.kvm.create(NOTIFIED_BUCKET, { replicas: ctx.options.replicas, history: 1, ttl: NOTIFIED_TTL_MS, allow_direct: false });
  const markOf = (p: WebhookPayload) => `${name}.${createHash("sha256").update(p.dedupe_key).digest("hex").slice(0, 32)}`;

  /** The delivery under way: its message and what to do when the sender settles it. */
  let inFlight: { msg: JsMsg; key: string; settle: (delivered: boolean) => void } | undefined;
  const sender = new WebhookSender({
    url: o.url,
    includeNetwork: o.includeNetwork,
    // Only the retry settings given (an undefined one would override the sender's default).
    ...Object.fromEntries(Object.entries({ maxAttempts: o.maxAttempts, initialBackoffMs: o.initialBackoffMs, maxBackoffMs: o.maxBackoffMs }).filter(([, v]) => v !== undefined)),
    onDelivered: (p, attempts) => {
      log.info({ key: p.dedupe_key, event: p.event_id, attempts }, "webhook delivered");
      if (inFlight?.key === p.dedupe_key) inFlight.settle(true);
    },
    onDropped: (p, reason) => {
      log.warn({ key: p.dedupe_key, event: p.event_id, reason }, "webhook dropped");
      if (inFlight?.key === p.dedupe_key) inFlight.settle(false);
    },
  });
  await sender.start();

  let stopped = false;
  let handled = 0;
  let current: { stop(): void } | undefined;

  const handle = async (m: JsMsg): Promise<void> => {
    let rec: EventRecord;
    try {
      rec = m.json<EventRecord>();
    } catch (err) {
      log.warn({ seq: m.seq, err: (err as Error).message }, "undecodable event skipped");
      m.term();
      return;
    }
    const transition = transitionOf(rec);
    const { id, ...event } = rec;
    if (!transition || !event.incident) {
      await m.ackAck();
      handled++;
      return;
    }
    const p = sender.payloadFor(transition, event.incident, id);
    if (!p) {
      await m.ackAck();
      handled++;
      return;
    }
    // A dedupe key already delivered (a transition decided again by the next owner): ack, do not send.
    const mark = markOf(p);
    if ((await notified.get(mark).catch(() => null))?.operation === "PUT") {
      log.info({ key: p.dedupe_key, event: id }, "webhook already delivered for this dedupe key: not sent again");
      await m.ackAck();
      handled++;
      return;
    }
    const delivered = await new Promise<boolean>((settle) => {
      inFlight = { msg: m, key: p.dedupe_key, settle };
      const working = setInterval(() => {
        try {
          m.working();
        } catch {
          // connection gone: the server hands the event to another replica after the ack wait
        }
      }, Math.max(100, Math.floor(ackWaitMs / 3)));
      working.unref();
      const done = inFlight.settle;
      inFlight.settle = (ok) => {
        clearInterval(working);
        inFlight = undefined;
        done(ok);
      };
      sender.send(p);
    });
    if (stopped) return; // nak'ed by stop(): another replica takes it
    if (delivered) await notified.put(mark, id).catch((err: Error) => log.warn({ key: p.dedupe_key, err: err.message }, "webhook delivered but not marked (a repeat decision could send it again)"));
    await m.ackAck();
    handled++;
  };

  // Pull until stopped; a consume that ends or fails (a nats-server gone, a leader change) starts again.
  const done = (async () => {
    while (!stopped) {
      try {
        const consumer = await ctx.js.consumers.get(EVENTS_STREAM, name);
        const messages = await consumer.consume({ max_messages: 1 });
        current = messages;
        if (stopped) messages.stop();
        for await (const m of messages) {
          if (stopped) break;
          try {
            await handle(m);
          } catch (err) {
            if (!stopped) log.warn({ seq: m.seq, err: (err as Error).message }, "webhook event not acked (redelivered after ack wait)");
          }
        }
      } catch (err) {
        if (!stopped) log.warn({ err: (err as Error).message }, "webhook consumer failed; resuming");
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 1_000).unref());
    }
  })();

  // A consume that stalls without ending (seen with nats.js 3.3.1 on 2.9.10 after a server kill): when the
  // consumer has events waiting, none in flight anywhere, and delivered nothing to anyone since the last
  // check (5 s), this replica restarts its consume.
  let lastDelivered = -1;
  const watchdog = setInterval(() => {
    void ctx.jsm.consumers.info(EVENTS_STREAM, name).then(
      (info) => {
        const delivered = info.delivered.consumer_seq;
        if (info.num_pending > 0 && info.num_ack_pending === 0 && delivered === lastDelivered && !inFlight) {
          log.warn({ pending: info.num_pending }, "webhook consumer stalled; resuming");
          current?.stop();
        }
        lastDelivered = delivered;
      },
      () => undefined,
    );
  }, 5_000);
  watchdog.unref();

  let stopping: Promise<void> | undefined;
  return {
    sender,
    handled: () => handled,
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        clearInterval(watchdog);
        const f = inFlight;
        if (f) {
          try {
            f.msg.nak();
          } catch {
            // connection gone: the server hands the event over after the ack wait instead
          }
          f.settle(false);
        }
        try {
          current?.stop();
        } catch {
          // connection gone: nothing to stop
        }
        await done.catch(() => undefined);
        await sender.shutdown();
      })()),
  };
}
