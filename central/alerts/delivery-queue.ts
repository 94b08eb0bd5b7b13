/**
 * At-least-once delivery through an outbox: the machinery every alert sink
 * shares (the webhook, each Alertmanager). enqueue() writes the notification to
 * the outbox (synced, see outbox.ts) and delivery of it waits for that write; a
 * failed write is reported (onOutboxError, outboxWriteFailures) and the
 * notification is still delivered from memory. start() reloads what a previous
 * run left in the outbox. Delivery is sequential (a receiver sees open before
 * close), retried with exponential backoff and jitter until the sink's
 * deliver() says "ok" (2xx) or "rejected" (retrying cannot help), or
 * maxAttempts is reached; then the entry leaves the outbox.
 *
 * Timers are unref'd; shutdown() is idempotent and safe before start(); it
 * resolves once pending outbox writes have settled.
 */
import type { Outbox } from "./outbox.js";

export type DeliveryResult = "ok" | "rejected" | "retry";

export interface DeliveryQueueOptions<T> {
  /** Sends one notification; never throws (a failure is "retry"). */
  deliver: (payload: T) => Promise<DeliveryResult>;
  outbox?: Outbox<T>;
  /** Give up on one notification after this many attempts (default 20, ~10 min). */
  maxAttempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  onDelivered?: (p: T, attempts: number) => void;
  onDropped?: (p: T, reason: string) => void;
  /** An outbox write failed: the notification is still delivered from memory, but would not survive a crash. */
  onOutboxError?: (p: T, err: unknown) => void;
}

export const DELIVERY_DEFAULTS = { maxAttempts: 20, initialBackoffMs: 500, maxBackoffMs: 60_000 };

/** Fills the retry defaults and names a bad field (`what` prefixes the message: "webhook", "alertmanager"). */
export function validateRetry<O extends { maxAttempts?: number; initialBackoffMs?: number; maxBackoffMs?: number }>(what: string, o: O): O & typeof DELIVERY_DEFAULTS {
  const r = { ...DELIVERY_DEFAULTS, ...o };
  for (const k of ["maxAttempts", "initialBackoffMs", "maxBackoffMs"] as const) {
    if (!Number.isFinite(r[k]) || r[k] <= 0) throw new Error(`${what} ${k} must be a positive number, got ${r[k]}`);
  }
  return r;
}

interface Item<T> {
  key: string;
  payload: T;
  attempts: number;
  /** Settles when the outbox write of this item is done (or failed). */
  persisted?: Promise<void>;
}

export class DeliveryQueue<T> {
  private queue: Array<Item<T>> = [];
  private running = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private writes = new Set<Promise<void>>();
  private readonly o: DeliveryQueueOptions<T> & typeof DELIVERY_DEFAULTS;
  delivered = 0;
  dropped = 0;
  outboxWriteFailures = 0;

  constructor(options: DeliveryQueueOptions<T>) {
    this.o = validateRetry("delivery", options);
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

  /** Queue one notification; `id` names it in the outbox key (sorted after every earlier one). */
  enqueue(id: string, payload: T): void {
    if (this.stopped) return;
    const key = `${String(Date.now() * 1000 + (this.seq++ % 1000)).padStart(16, "0")}-${id}`;
    const item: Item<T> = { key, payload, attempts: 0 };
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

  /** Notifications waiting (in the outbox and not yet taken by the receiver). */
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
        const result = await this.o.deliver(item.payload);
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
}

/**
 * POSTs a JSON body with a timeout and classifies the answer: ok on 2xx;
 * rejected on a 4xx other than 408/429 (retrying cannot help); retry otherwise
 * (5xx, 408, 429, connection errors, timeouts).
 */
export async function postJson(url: string, body: unknown, headers: Record<string, string>, timeoutMs: number): Promise<DeliveryResult> {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), timeoutMs);
  t.unref();
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "originwatch-central", ...headers },
      body: JSON.stringify(body),
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
