/**
 * The webhook outbox in LevelDB (sublevel "alerts-outbox" of the central's
 * store). put() is synced (fsync before it resolves): a notification the
 * engine raised must survive a machine crash until the receiver answered 2xx.
 * del() is not: a delete lost in a crash only re-sends an alert, and the
 * receiver deduplicates on its dedupe_key.
 */
import type { KV } from "../verdict/verdict-store.js";
import type { OutboxStore, WebhookPayload } from "./webhook.js";

export function levelOutbox(kv: KV<WebhookPayload>): OutboxStore {
  return {
    put: (k, v) => kv.put(k, v, { sync: true }),
    del: (k) => kv.del(k),
    entries: async () => {
      const out: Array<[string, WebhookPayload]> = [];
      for await (const e of kv.iterator()) out.push(e);
      return out;
    },
  };
}
