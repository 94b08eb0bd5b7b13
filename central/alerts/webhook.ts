/**
 * Webhook alerts (issue 4 step 5): a JSON POST per incident open, reopen and
 * close — origin incidents always, network incidents when asked — delivered
 * at least once: each notification sits in an outbox (in LevelDB when a
 * store is given, so it survives a restart) until the receiver answers 2xx,
 * retried with exponential backoff and jitter. The receiver deduplicates on
 * `dedupe_key` (also sent as the Idempotency-Key header), which is stable
 * across retries and restarts: incident dedupe key + action + reopen count.
 *
 * Durable before delivered: notify() writes the notification to the outbox
 * (synced, see outbox.ts) and delivery of it waits for that write; a failed
 * write is reported (onOutboxError, counted in outboxWriteFailures) and the
 * notification is still delivered from memory. flushWrites() resolves once
 * every outbox write started so far has settled.
 *
 * Delivery is sequential per sender, so a receiver sees open before close.
 * Timers are unref'd; shutdown() is idempotent and safe before start(); it
 * resolves once pending outbox writes have settled.
 */
import { IncidentKind } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { IncidentRecord, Transition } from "../verdict/hysteresis.js";

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
}

/** Where pending notifications wait (a LevelDB sublevel in the central). */
export interface OutboxStore {
  put(key: string, value: WebhookPayload): Promise<void>;
  del(key: string): Promise<void>;
  entries(): Promise<Array<[string, WebhookPayload]>>;
}

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
  const r = { includeNetwork: false, maxAttempts: 20, initialBackoffMs: 500, maxBackoffMs: 60_000, timeoutMs: 5_000, ...o };
  for (const k of ["maxAttempts", "initialBackoffMs", "maxBackoffMs", "timeoutMs"] as const) {
    if (!Number.isFinite(r[k]) || r[k] <= 0) throw new Error(`webhook ${k} must be a positive number, got ${r[k]}`);
  }
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

interface Item {
  key: string;
  payload: WebhookPayload;
  attempts: number;
  /** Settles when the outbox write of this item is done (or failed). */
  persisted?: Promise<void>;
}

export class WebhookSender {
  private queue: Item[] = [];
  private running = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private readonly o: ReturnType<typeof validateWebhookOptions>;
  private writes = new Set<Promise<void>>();
  delivered = 0;
  dropped = 0;
  outboxWriteFailures = 0;

  constructor(options: WebhookOptions) {
    this.o = validateWebhookOptions(options);
  }

  /** Reload what a previous run left in the outbox, then deliver. */
  async start(): Promise<void> {
    if (this.stopped) return;
    if (this.o.outbox) {
      const pending = await this.o.outbox.entries();
      pending.sort(([a], [b]) => (a < b ? -1 : 1));
      for (const [key, payload] of pending) {
        if (this.queue.some((i) => i.key === key)) continue;
        this.queue.push({ key, payload, attempts: 0 });
        const n = Number(key.split("-")[0]);
        if (Number.isFinite(n) && n >= this.seq) this.seq = n + 1;
      }
    }
    this.kick(0);
  }

  /** An incident transition from the engine; escalations are not alerts. */
  notify(transition: Transition, inc: IncidentRecord): void {
    if (transition === "escalated" || this.stopped) return;
    if (!this.o.includeNetwork && !ORIGIN_KINDS.has(inc.kind)) return;
    const payload = payloadOf(inc, transition);
    const key = `${String(Date.now() * 1000 + (this.seq++ % 1000)).padStart(16, "0")}-${payload.dedupe_key}`;
    const item: Item = { key, payload, attempts: 0 };
    if (this.o.outbox) {
      const write = this.o.outbox.put(key, payload).catch((err: unknown) => {
        this.outboxWriteFailures++;
        this.o.onOutboxError?.(payload, err);
      });
      item.persisted = this.track(write);
    }
    this.queue.push(item);
    this.kick(0);
  }

  /** Keeps an outbox write (never rejecting) in the set flushWrites() waits for. */
  private track(write: Promise<void>): Promise<void> {
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
    return write;
  }

  /** Resolves once every outbox write (put or delete) started so far has settled. */
  async flushWrites(): Promise<void> {
    await Promise.all([...this.writes]);
  }

  pending(): number {
    return this.queue.length;
  }

  shutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.flushWrites();
  }

  private kick(delayMs: number): void {
    if (this.running || this.stopped || this.queue.length === 0) return;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.drain();
    }, delayMs);
    this.timer.unref();
  }

  private backoff(attempts: number): number {
    const base = Math.min(this.o.maxBackoffMs, this.o.initialBackoffMs * 2 ** (attempts - 1));
    return base / 2 + Math.random() * (base / 2);
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const item = this.queue[0];
        // Durable before delivered: the outbox write of this item comes first.
        if (item.persisted) await item.persisted;
        if (this.stopped) break;
        item.attempts++;
        const result = await this.post(item.payload);
        if (result === "ok" || result === "rejected" || item.attempts >= this.o.maxAttempts) {
          this.queue.shift();
          if (this.o.outbox) await this.track(this.o.outbox.del(item.key).catch(() => {}));
          if (result === "ok") {
            this.delivered++;
            this.o.onDelivered?.(item.payload, item.attempts);
          } else {
            this.dropped++;
            this.o.onDropped?.(item.payload, result === "rejected" ? "receiver rejected it (4xx)" : `gave up after ${item.attempts} attempts`);
          }
          continue;
        }
        this.running = false;
        this.kick(this.backoff(item.attempts));
        return;
      }
    } finally {
      this.running = false;
    }
  }

  /** ok: 2xx; rejected: a 4xx other than 408/429 (retrying cannot help); retry otherwise. */
  private async post(p: WebhookPayload): Promise<"ok" | "rejected" | "retry"> {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), this.o.timeoutMs);
    t.unref();
    try {
      const res = await fetch(this.o.url, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": p.dedupe_key, "user-agent": "originwatch-central" },
        body: JSON.stringify(p),
        signal: ctl.signal,
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return "ok";
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) return "rejected";
      return "retry";
    } catch {
      return "retry";
    } finally {
      clearTimeout(t);
    }
  }
}
