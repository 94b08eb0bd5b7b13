import { test } from "uvu";
import * as assert from "uvu/assert";
import { createServer, type Server } from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { Outcome } from "../../proto/gen/originwatch/v1/common_pb.js";
import { ProbeRequestSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import type { OriginConfig } from "../config.js";
import { MAX_ATTEMPTS, runProbe } from "./probe.js";

const origin = (url: string): OriginConfig => ({
  name: "shop.example",
  url: new URL(url),
  preserveHost: true,
  connectTimeoutMs: 1000,
  firstByteTimeoutMs: 5000,
  stallMs: 2000,
  maxSockets: 10,
  maxFreeSockets: 2,
  bodyIdleTimeoutMs: 30_000,
  upgrade: false,
  upgradeIdleTimeoutMs: 60_000,
});
const req = (over: Partial<{ method: string; path: string; count: number; timeoutMs: number; origin: string }> = {}) =>
  create(ProbeRequestSchema, { probeId: "p1", origin: "shop.example", method: "HEAD", path: "/", count: 3, timeoutMs: 500, ...over });

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server; seen: Array<{ method: string; url: string; host: string }> }> {
  const seen: Array<{ method: string; url: string; host: string }> = [];
  const server = createServer((q, r) => {
    seen.push({ method: q.method ?? "", url: q.url ?? "", host: q.headers.host ?? "" });
    handler!(q, r);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/base`, server, seen };
}

test("a healthy origin answers every attempt: OK with status and TTFB, Host and base path as the hop sends them", async () => {
  const s = await serve((_q, r) => r.writeHead(204).end());
  const r = await runProbe(req({ path: "/health" }), origin(s.url));
  assert.equal(r.attempts.map((a) => a.outcome), [Outcome.OK, Outcome.OK, Outcome.OK]);
  assert.ok(r.attempts.every((a) => a.status === 204 && a.ttfbMs >= 0));
  assert.equal(s.seen[0], { method: "HEAD", url: "/base/health", host: "shop.example" });
  assert.is(r.probeId, "p1");
  s.server.close();
});

test("503 answers are server errors", async () => {
  const s = await serve((_q, r) => r.writeHead(503).end());
  const r = await runProbe(req(), origin(s.url));
  assert.equal(r.attempts.map((a) => a.outcome), [Outcome.SERVER_ERROR, Outcome.SERVER_ERROR, Outcome.SERVER_ERROR]);
  s.server.close();
});

test("a refusing origin is connect_refused", async () => {
  const tmp = net.createServer();
  await new Promise<void>((r) => tmp.listen(0, "127.0.0.1", r));
  const port = (tmp.address() as AddressInfo).port;
  await new Promise((r) => tmp.close(r));
  const r = await runProbe(req({ count: 2 }), origin(`http://127.0.0.1:${port}/`));
  assert.equal(r.attempts.map((a) => a.outcome), [Outcome.CONNECT_REFUSED, Outcome.CONNECT_REFUSED]);
});

test("an origin that accepts and never answers stalls within the probe timeout", async () => {
  const sockets: net.Socket[] = [];
  const hole = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => hole.listen(0, "127.0.0.1", r));
  const t0 = Date.now();
  const r = await runProbe(req({ count: 2, timeoutMs: 300 }), origin(`http://127.0.0.1:${(hole.address() as AddressInfo).port}/`));
  assert.equal(r.attempts.map((a) => a.outcome), [Outcome.STALL, Outcome.STALL]);
  assert.ok(Date.now() - t0 < 2000);
  for (const s of sockets) s.destroy();
  hole.close();
});

test("unknown origins and unsafe methods send nothing; attempts are capped", async () => {
  const s = await serve((_q, r) => r.writeHead(200).end());
  assert.equal((await runProbe(req(), undefined)).attempts, []);
  assert.equal((await runProbe(req({ method: "POST" }), origin(s.url))).attempts, []);
  assert.is(s.seen.length, 0);
  const many = await runProbe(req({ count: 1000 }), origin(s.url));
  assert.is(many.attempts.length, MAX_ATTEMPTS);
  s.server.close();
});

test.run();
