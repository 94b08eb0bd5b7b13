/**
 * The webhook outbox is durable before delivery (issue 10 item 8): a process
 * killed right after an alert was raised delivers it after the restart; the
 * outbox write is synced and delivery waits for it.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Level } from "level";
import { IncidentKind, type IncidentRecord } from "../verdict/hysteresis.js";
import type { KV, WriteOptions } from "../verdict/verdict-store.js";
import { levelOutbox } from "./outbox.js";
import { type OutboxStore, type WebhookPayload, WebhookSender } from "./webhook.js";

const FIXTURE = fileURLToPath(new URL("./testdata/notify-then-crash.ts", import.meta.url));

async function receiver() {
  const got: Array<{ key: string; body: WebhookPayload }> = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push({ key: String(req.headers["idempotency-key"]), body: JSON.parse(body) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, close: () => server.close() };
}

const until = async (cond: () => boolean, ms = 5000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
};

test("an alert raised just before the process is killed (SIGKILL) is delivered after the restart", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-outbox-"));
  const r = await receiver();
  try {
    const child = spawn(process.execPath, ["--import", "tsx", FIXTURE, dir, "http://127.0.0.1:9/hook"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (err += c));
    const signal = await new Promise<string | null>((resolve) => child.on("exit", (_code, sig) => resolve(sig)));
    assert.is(signal, "SIGKILL", err);
    assert.match(out, /persisted/);

    const db = new Level<string, unknown>(dir, { valueEncoding: "json" });
    await db.open();
    const outbox = levelOutbox(db.sublevel<string, WebhookPayload>("alerts-outbox", { valueEncoding: "json" }) as unknown as KV<WebhookPayload>);
    assert.is((await outbox.entries()).length, 1);
    const sender = new WebhookSender({ url: r.url, outbox });
    await sender.start();
    await until(() => r.got.length === 1);
    assert.is(r.got[0].body.incident_id, "inc-crash");
    assert.is(r.got[0].key, "img.example/origin/inc-crash/open/0");
    await until(() => sender.pending() === 0);
    await sender.shutdown();
    assert.is((await outbox.entries()).length, 0);
    await db.close();
  } finally {
    r.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("the outbox put is synced, and delivery waits for it", async () => {
  const calls: WriteOptions[] = [];
  let release!: () => void;
  const gate = new Promise<void>((res) => (release = res));
  const map = new Map<string, WebhookPayload>();
  const kv = {
    put: async (k: string, v: WebhookPayload, o?: WriteOptions) => {
      calls.push(o ?? {});
      await gate;
      map.set(k, v);
    },
    del: async (k: string) => void map.delete(k),
    iterator: async function* () {
      yield* map.entries();
    },
  } as unknown as KV<WebhookPayload>;
  const outbox: OutboxStore = levelOutbox(kv);
  const r = await receiver();
  const sender = new WebhookSender({ url: r.url, outbox });
  await sender.start();
  const inc: IncidentRecord = {
    id: "i1", kind: IncidentKind.ORIGIN_DOWN, origin: "o", scopeKey: "", openedMs: 1, closedMs: 0, open: true, flapping: false,
    reopenCount: 0, peakFailureRatio: 1, peakP95TtfbMs: 0, dedupeKey: "o/origin/i1", summary: "",
  };
  sender.notify("opened", inc);
  await new Promise((x) => setTimeout(x, 200));
  assert.is(r.got.length, 0, "delivered before the outbox write finished");
  assert.equal(calls, [{ sync: true }]);
  release();
  await until(() => r.got.length === 1);
  await sender.shutdown();
  r.close();
});

test("a failed outbox write is reported and counted; the alert is still delivered", async () => {
  const failures: string[] = [];
  const outbox: OutboxStore = {
    put: async () => {
      throw new Error("disk full");
    },
    del: async () => {},
    entries: async () => [],
  };
  const r = await receiver();
  const sender = new WebhookSender({ url: r.url, outbox, onOutboxError: (p, e) => failures.push(`${p.incident_id}: ${(e as Error).message}`) });
  await sender.start();
  sender.notify("opened", {
    id: "i2", kind: IncidentKind.ORIGIN_DOWN, origin: "o", scopeKey: "", openedMs: 1, closedMs: 0, open: true, flapping: false,
    reopenCount: 0, peakFailureRatio: 1, peakP95TtfbMs: 0, dedupeKey: "o/origin/i2", summary: "",
  });
  await until(() => r.got.length === 1);
  assert.equal(failures, ["i2: disk full"]);
  assert.is(sender.outboxWriteFailures, 1);
  await sender.shutdown();
  r.close();
});

test("each Alertmanager's outbox shares one LevelDB sublevel by prefix and sees only its own entries; restart reloads them", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-outbox-prefix-"));
  const db = new Level<string, unknown>(dir, { valueEncoding: "json" });
  try {
    await db.open();
    const kv = db.sublevel<string, { n: number }>("alertmanager-outbox", { valueEncoding: "json" }) as unknown as KV<{ n: number }>;
    const a = levelOutbox(kv, "aaaa/");
    const b = levelOutbox(kv, "bbbb/");
    await a.put("0001-x", { n: 1 });
    await a.put("0002-y", { n: 2 });
    await b.put("0001-x", { n: 3 });
    assert.equal(await a.entries(), [["0001-x", { n: 1 }], ["0002-y", { n: 2 }]]);
    assert.equal(await b.entries(), [["0001-x", { n: 3 }]]);
    await a.del("0001-x");
    assert.equal(await b.entries(), [["0001-x", { n: 3 }]]);
    // A DeliveryQueue on the reopened outbox finds what is left, in key order.
    const seen: number[] = [];
    const { DeliveryQueue } = await import("./delivery-queue.js");
    const q = new DeliveryQueue<{ n: number }>({ outbox: a, deliver: async (p) => (seen.push(p.n), "ok") });
    await q.start();
    await until(() => q.pending() === 0);
    await q.shutdown();
    assert.equal(seen, [2]);
    assert.equal(await a.entries(), []);
    assert.is((await b.entries()).length, 1);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
