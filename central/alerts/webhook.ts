/**
 * Webhook alerts (issue 4 step 5): a JSON POST per incident open, reopen and
 * close — origin incidents always, network incidents when asked — delivered
 * at least once: each notification sits in an outbox (in LevelDB when a
 * store is given, so it survives a restart) until the receiver answers 2xx,
 * retried with exponential backoff and jitter. The receiver deduplicates on
 * `dedupe_key` (also sent as the Idempotency-Key header), which is stable
 * across retries and restarts: incident dedupe key + action + reopen count.
 *
 * The outbox, retries and durability are the shared DeliveryQueue's
 * (delivery-queue.ts, outbox.ts): durable before delivered, sequential (a
 * receiver sees open before close), shutdown() idempotent and safe before
 * start(). This file owns only the webhook's payload and its POST.
 */
import { IncidentKind } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { IncidentRecord, Transition } from "../verdict/hysteresis.js";
import { DeliveryQueue, postJson, validateRetry } from "./delivery-queue.js";
import type { Outbox } from "./outbox.js";

export interface WebhookPayload {
  dedupe_key: string;
  incident_key: string;
  action: "opened" | "reopened" | "closed";
  kind: string;
  origin: string;
  scope_key: string;
  incident_id: string;
  opened: string;
  closed: string | null;
  flapping: boolean;
  reopen_count: number;
  peak_failure_ratio: number;
  peak_p95_ttfb_ms: number;
  summary: string;
  /** Cluster mode: the id of the OW_EVENTS event this notification comes from (absent on one central). */
  event_id?: string;
}

/** Where pending notifications wait (a LevelDB sublevel in the central). */
export type OutboxStore = Outbox<WebhookPayload>;

export interface WebhookOptions {
  url: string;
  /** Also send ISP, region and node incidents (default: origin incidents only). */
  includeNetwork?: boolean;
  /** Give up on one notification after this many attempts (default 20, ~10 min). */
  maxAttempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  timeoutMs?: number;
  outbox?: OutboxStore;
  onDelivered?: (p: WebhookPayload, attempts: number) => void;
  onDropped?: (p: WebhookPayload, reason: string) => void;
  /** An outbox write failed: the alert is still delivered from memory, but would not survive a crash. */
  onOutboxError?: (p: WebhookPayload, err: unknown) => void;
}

export function validateWebhookOptions(o: WebhookOptions): Required<Omit<WebhookOptions, "outbox" | "onDelivered" | "onDropped" | "onOutboxError">> & WebhookOptions {
  let u: URL;
  try {
    u = new URL(o.url);
  } catch {
    throw new Error(`webhook url must be an absolute http(s) URL, got ${JSON.stringify(o.url)}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(`webhook url must be http or https, got ${u.protocol}`);
  const r = validateRetry("webhook", { includeNetwork: false, timeoutMs: 5_000, ...o });
  if (!Number.isFinite(r.timeoutMs) || r.timeoutMs <= 0) throw new Error(`webhook timeoutMs must be a positive number, got ${r.timeoutMs}`);
  return r;
}

const ORIGIN_KINDS = new Set([IncidentKind.ORIGIN_DOWN, IncidentKind.ORIGIN_DEGRADED]);

export function payloadOf(inc: IncidentRecord, action: WebhookPayload["action"]): WebhookPayload {
  return {
    dedupe_key: `${inc.dedupeKey}/${action === "closed" ? "close" : "open"}/${inc.reopenCount}`,
    incident_key: inc.dedupeKey,
    action,
    kind: IncidentKind[inc.kind],
    origin: inc.origin,
    scope_key: inc.scopeKey,
    incident_id: inc.id,
    opened: new Date(inc.openedMs).toISOString(),
    closed: inc.closedMs ? new Date(inc.closedMs).toISOString() : null,
    flapping: inc.flapping,
    reopen_count: inc.reopenCount,
    peak_failure_ratio: inc.peakFailureRatio,
    peak_p95_ttfb_ms: inc.peakP95TtfbMs,
    summary: inc.summary,
  };
}

export class WebhookSender {
  private readonly o: ReturnType<typeof validateWebhookOptions>;
  /** The shared outbox machinery (delivery-queue.ts). */
  readonly queue: DeliveryQueue<WebhookPayload>;

  constructor(options: WebhookOptions) {
    this.o = validateWebhookOptions(options);
    const o = this.o;
    this.queue = new DeliveryQueue<WebhookPayload>({
      deliver: (p) => postJson(o.url, p, { "idempotency-key": p.dedupe_key }, o.timeoutMs),
      outbox: o.outbox,
      maxAttempts: o.maxAttempts,
      initialBackoffMs: o.initialBackoffMs,
      maxBackoffMs: o.maxBackoffMs,
      onDelivered: o.onDelivered,
      onDropped: o.onDropped,
      onOutboxError: o.onOutboxError,
    });
  }

  /** The receiver's URL (may hold a secret: log or export only its host). */
  get url(): string {
    return this.o.url;
  }

  get delivered(): number {
    return this.queue.delivered;
  }

  get dropped(): number {
    return this.queue.dropped;
  }

  get outboxWriteFailures(): number {
    return this.queue.outboxWriteFailures;
  }

  /** Reload what a previous run left in the outbox, then deliver. */
  start(): Promise<void> {
    return this.queue.start();
  }

  /** An incident transition from the engine: queues its notification (see payloadFor). */
  notify(transition: Transition, inc: IncidentRecord): void {
    const payload = this.payloadFor(transition, inc);
    if (payload) this.send(payload);
  }

  /**
   * The notification of an incident transition, or undefined when it is not an
   * alert (an escalation; a network incident without includeNetwork). Cluster
   * mode adds the id of the event it comes from (`event_id`).
   */
  payloadFor(transition: Transition, inc: IncidentRecord, eventId?: string): WebhookPayload | undefined {
    if (transition === "escalated") return undefined;
    if (!this.o.includeNetwork && !ORIGIN_KINDS.has(inc.kind)) return undefined;
    const payload = payloadOf(inc, transition);
    if (eventId) payload.event_id = eventId;
    return payload;
  }

  /** Queues a notification (outbox, then delivery with retries). */
  send(payload: WebhookPayload): void {
    this.queue.enqueue(payload.dedupe_key, payload);
  }

  /** Resolves once every outbox write (put or delete) started so far has settled. */
  flushWrites(): Promise<void> {
    return this.queue.flushWrites();
  }

  pending(): number {
    return this.queue.pending();
  }

  shutdown(): Promise<void> {
    return this.queue.shutdown();
  }
}
