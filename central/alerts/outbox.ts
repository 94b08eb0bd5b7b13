/**
 * The alert outbox (one concept for every sink: the webhook and each
 * Alertmanager): where a notification waits until its receiver took it. In
 * the central it is a LevelDB sublevel of the central's store. put() is synced
 * (fsync before it resolves): a notification the engine raised must survive a
 * machine crash until the receiver answered 2xx. del() is not: a delete lost in
 * a crash only re-sends an alert, and receivers deduplicate (the webhook's
 * dedupe_key, Alertmanager's label set).
 */
import type { KV } from "../verdict/verdict-store.js";

/** Where pending notifications of one sink wait. Keys sort in delivery order. */
export interface Outbox<T> {
  put(key: string, value: T): Promise<void>;
  del(key: string): Promise<void>;
  entries(): Promise<Array<[string, T]>>;
}

/**
 * An outbox in a LevelDB sublevel. With a prefix, several sinks share one
 * sublevel (one Alertmanager each): entries() returns only this prefix's.
 */
export function levelOutbox<T>(kv: KV<T>, prefix = ""): Outbox<T> {
  return {
    put: (k, v) => kv.put(prefix + k, v, { sync: true }),
    del: (k) => kv.del(prefix + k),
    entries: async () => {
      const out: Array<[string, T]> = [];
      const range = prefix ? { gte: prefix, lt: `${prefix}\uffff` } : {};
      for await (const [k, v] of kv.iterator(range)) out.push([k.slice(prefix.length), v]);
      return out;
    },
  };
}
