import { test } from "uvu";
import * as assert from "uvu/assert";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { IncidentKind, type IncidentRecord } from "../verdict/hysteresis.js";
import { type OutboxStore, type WebhookPayload, WebhookSender, payloadOf, validateWebhookOptions } from "./webhook.js";

const incident = (over: Partial<IncidentRecord> = {}): IncidentRecord => ({
  id: "inc1",
  kind: IncidentKind.ORIGIN_DOWN,
  origin: "o",
  scopeKey: "",
  openedMs: 1_700_000_000_000,
  closedMs: 0,
  open: true,
  flapping: false,
  reopenCount: 0,
  peakFailureRatio: 1,
  peakP95TtfbMs: 0,
  dedupeKey: "o/origin/inc1",
  summary: "down",
  ...over,
});

/** Servers to close even when a test fails (an open server would keep the run alive). */
const servers: Server[] = [];
test.after(() => {
  for (const s of servers) s.close();
});

/** A receiver that fails the first `failures` requests with 503 and records the rest. */
async function receiver(failures = 0): Promise<{ url: string; got: Array<{ key: string; body: WebhookPayload }>; server: Server; hits: () => number }> {
  const got: Array<{ key: string; body: WebhookPayload }> = [];
  let hits = 0;
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      hits++;
      if (hits <= failures) {
        res.writeHead(503).end();
        return;
      }
      got.push({ key: String(req.headers["idempotency-key"]), body: JSON.parse(body) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, server, hits: () => hits };
}

const until = async (cond: () => boolean, ms = 5000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
};

function memoryOutbox(): OutboxStore & { map: Map<string, WebhookPayload> } {
  const map = new Map<string, WebhookPayload>();
  return {
    map,
    async put(k, v) {
      map.set(k, v);
    },
    async del(k) {
      map.delete(k);
    },
    async entries() {
      return [...map.entries()];
    },
  };
}

test("dedupe keys are stable per incident action and reopen, distinct between open and close", () => {
  const open = payloadOf(incident(), "opened");
  assert.is(open.dedupe_key, payloadOf(incident(), "opened").dedupe_key);
  assert.is.not(open.dedupe_key, payloadOf(incident({ open: false, closedMs: 1 }), "closed").dedupe_key);
  assert.is.not(open.dedupe_key, payloadOf(incident({ reopenCount: 1 }), "reopened").dedupe_key);
  assert.is(open.kind, "ORIGIN_DOWN");
  assert.is(open.closed, null);
});

test("retries with backoff until the receiver answers, in order, each alert delivered once", async () => {
  const r = await receiver(3);
  const s = new WebhookSender({ url: r.url, initialBackoffMs: 10, maxBackoffMs: 40 });
  try {
    await s.start();
    s.notify("opened", incident());
    s.notify("closed", incident({ open: false, closedMs: 1_700_000_060_000 }));
    await until(() => r.got.length === 2);
    await until(() => s.pending() === 0);
    assert.equal(r.got.map((g) => g.body.action), ["opened", "closed"]);
    assert.equal(r.got.map((g) => g.key), r.got.map((g) => g.body.dedupe_key));
    assert.is(r.hits(), 5);
    assert.is(s.delivered, 2);
  } finally {
    s.shutdown();
    r.server.close();
  }
});

test("network incidents are sent only when asked; escalations never", async () => {
  const r = await receiver();
  const s = new WebhookSender({ url: r.url });
  await s.start();
  s.notify("opened", incident({ kind: IncidentKind.ISP_FAULT, scopeKey: "isp-a", dedupeKey: "o/isp:isp-a/x" }));
  s.notify("escalated", incident());
  const s2 = new WebhookSender({ url: r.url, includeNetwork: true });
  await s2.start();
  s2.notify("opened", incident({ kind: IncidentKind.ISP_FAULT, scopeKey: "isp-a", dedupeKey: "o/isp:isp-a/x" }));
  await until(() => r.got.length === 1);
  await new Promise((x) => setTimeout(x, 50));
  assert.is(r.got.length, 1);
  assert.is(r.got[0].body.scope_key, "isp-a");
  s.shutdown();
  s2.shutdown();
  r.server.close();
});

test("what was not delivered survives a restart through the outbox", async () => {
  const outbox = memoryOutbox();
  const dead = new WebhookSender({ url: "http://127.0.0.1:9/", outbox, initialBackoffMs: 5, maxBackoffMs: 10 });
  await dead.start();
  dead.notify("opened", incident());
  await until(() => outbox.map.size === 1);
  await new Promise((x) => setTimeout(x, 30));
  dead.shutdown();
  assert.is(outbox.map.size, 1, "still pending after failures");
  const r = await receiver();
  const again = new WebhookSender({ url: r.url, outbox });
  await again.start();
  await until(() => r.got.length === 1);
  await until(() => outbox.map.size === 0);
  assert.is(r.got[0].body.action, "opened");
  again.shutdown();
  r.server.close();
});

test("a 4xx rejection is dropped, not retried forever", async () => {
  const server = createServer((_q, res) => res.writeHead(400).end());
  servers.push(server);
  await new Promise<void>((x) => server.listen(0, "127.0.0.1", x));
  let reason = "";
  const s = new WebhookSender({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, onDropped: (_p, why) => (reason = why) });
  await s.start();
  s.notify("opened", incident());
  await until(() => s.dropped === 1);
  assert.match(reason, /4xx/);
  s.shutdown();
  server.close();
});

test("options are validated with the field named", () => {
  assert.throws(() => validateWebhookOptions({ url: "not a url" }), /webhook url/);
  assert.throws(() => validateWebhookOptions({ url: "ftp://x/" }), /http or https/);
  assert.throws(() => validateWebhookOptions({ url: "http://x/", maxAttempts: 0 }), /maxAttempts/);
});

test.run();
