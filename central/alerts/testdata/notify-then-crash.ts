/**
 * Fixture for outbox.test.ts: raises one alert into a LevelDB outbox, waits
 * for the outbox write, prints "persisted" and kills itself with SIGKILL
 * before the alert can be delivered (its URL refuses connections): a crash
 * between "the engine raised it" and "the receiver got it".
 * Usage: notify-then-crash.ts DATA_DIR WEBHOOK_URL
 */
import { Level } from "level";
import { IncidentKind } from "../../verdict/hysteresis.js";
import type { KV } from "../../verdict/verdict-store.js";
import { levelOutbox } from "../outbox.js";
import { type WebhookPayload, WebhookSender } from "../webhook.js";

const [dir, url] = process.argv.slice(2);
const db = new Level<string, unknown>(dir, { valueEncoding: "json" });
await db.open();
const sender = new WebhookSender({
  url,
  initialBackoffMs: 60_000,
  outbox: levelOutbox(db.sublevel<string, WebhookPayload>("alerts-outbox", { valueEncoding: "json" }) as unknown as KV<WebhookPayload>),
});
await sender.start();
sender.notify("opened", {
  id: "inc-crash",
  kind: IncidentKind.ORIGIN_DOWN,
  origin: "img.example",
  scopeKey: "",
  openedMs: Date.now(),
  closedMs: 0,
  open: true,
  flapping: false,
  reopenCount: 0,
  peakFailureRatio: 1,
  peakP95TtfbMs: 0,
  dedupeKey: "img.example/origin/inc-crash",
  summary: "down",
});
await sender.flushWrites();
process.stdout.write("persisted\n", () => process.kill(process.pid, "SIGKILL"));
