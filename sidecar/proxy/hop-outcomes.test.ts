/**
 * Every row of the outcome table driven by a real socket-level cause on
 * loopback: the controllable origin and the TCP fault relay.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import { startOrigin, type Origin } from "../../tools/origin.js";
import { startFaultRelay } from "../../tools/fault-relay.js";
import { startDnsStub } from "../../tools/test/dns-stub.js";
import { makeTlsFixture } from "../../tools/test/tls-fixtures.js";
import { request, splitAddress } from "../../tools/test/http-request.js";
import { startHarness, type Harness } from "../../tools/test/sidecar-harness.js";
import { eventually } from "../../tools/test/proc.js";

const NAME = "www.example.com";
const get = (h: Harness, path = "/") => request(h.address, { path, headers: { host: NAME } });

async function withOrigin(
  originOpts: Parameters<typeof startOrigin>[0],
  sidecarOpts: Record<string, unknown>,
  fn: (o: Origin, h: Harness) => Promise<void>,
): Promise<void> {
  const o = await startOrigin(originOpts);
  const h = await startHarness({ origins: [{ name: NAME, url: o.url, ...sidecarOpts }] });
  try {
    await fn(o, h);
  } finally {
    await h.close();
    await o.close();
  }
}

test("ok: 2xx passes through, outcome ok, TTFB and total time measured", async () => {
  await withOrigin({}, {}, async (_o, h) => {
    const r = await get(h);
    assert.is(r.status, 200);
    assert.is(r.headers["x-originwatch-outcome"], undefined);
    const c = await h.nthCompleted(1);
    assert.is(c.outcome, "ok");
    assert.is(c.status, 200);
    assert.ok(c.ttfbMs !== undefined && c.ttfbMs > 0);
    assert.ok(c.totalMs >= c.ttfbMs!);
    assert.is(h.count("ok"), 1);
    const w = h.windows()[0];
    assert.is(w.ttfb!.count, 1n);
    assert.is(w.bytesIn, 3n);
  });
});

test("3xx counts as ok", async () => {
  await withOrigin({ mode: { kind: "ok", status: 301, headers: { location: "/elsewhere" } } }, {}, async (_o, h) => {
    const r = await get(h);
    assert.is(r.status, 301);
    assert.is(r.headers.location, "/elsewhere");
    assert.is((await h.nthCompleted(1)).outcome, "ok");
  });
});

test("4xx: client_error, passed through untouched", async () => {
  await withOrigin({ mode: { kind: "status", status: 404 } }, {}, async (_o, h) => {
    const r = await get(h);
    assert.is(r.status, 404);
    assert.is(r.body.toString(), "404\n");
    assert.is((await h.nthCompleted(1)).outcome, "client_error");
    assert.is(h.count("clientError"), 1);
  });
});

test("5xx: server_error, the origin's response passed through", async () => {
  await withOrigin({ mode: { kind: "status", status: 503 } }, {}, async (_o, h) => {
    const r = await get(h);
    assert.is(r.status, 503);
    assert.is(r.body.toString(), "503\n");
    assert.is(r.headers["x-originwatch-outcome"], undefined, "the origin answered: no sidecar verdict header");
    assert.is((await h.nthCompleted(1)).outcome, "server_error");
    assert.is(h.count("serverError"), 1);
  });
});

test("connect refused (relay listener closed): 502 connect_refused", async () => {
  const o = await startOrigin();
  const relay = await startFaultRelay({ target: { host: o.host, port: o.port }, mode: { kind: "refuse" } });
  const h = await startHarness({ origins: [{ name: NAME, url: `http://${relay.address}` }] });
  try {
    const r = await get(h);
    assert.is(r.status, 502);
    assert.is(r.headers["x-originwatch-outcome"], "connect_refused");
    const c = await h.nthCompleted(1);
    assert.is(c.outcome, "connect_refused");
    assert.is(c.ttfbMs, undefined);
    assert.is(h.count("connectRefused"), 1);
    assert.is(o.requests, 0);
    // the same path recovers when the relay passes again
    await relay.setMode({ kind: "pass" });
    assert.is((await get(h)).status, 200);
  } finally {
    await h.close();
    await relay.close();
    await o.close();
  }
});

test("connect timeout (SYNs unanswered): 504 connect_timeout after the per-origin deadline", async () => {
  const o = await startOrigin();
  const relay = await startFaultRelay({ target: { host: o.host, port: o.port }, mode: { kind: "drop-syn" } });
  const h = await startHarness({ origins: [{ name: NAME, url: `http://${relay.address}`, connectTimeoutMs: 300 }] });
  try {
    const t0 = performance.now();
    const r = await get(h);
    const took = performance.now() - t0;
    assert.is(r.status, 504);
    assert.is(r.headers["x-originwatch-outcome"], "connect_timeout");
    assert.ok(took >= 280 && took < 2500, `took ${took} ms`);
    assert.is((await h.nthCompleted(1)).outcome, "connect_timeout");
    assert.is(o.requests, 0);
  } finally {
    await h.close();
    await relay.close();
    await o.close();
  }
});

test("DNS failure (name does not resolve on the configured resolver): 502 dns; a known name resolves", async () => {
  const o = await startOrigin();
  const dns = await startDnsStub({ "origin.test": "127.0.0.1" });
  const h = await startHarness({
    resolver: dns.address,
    origins: [
      { name: NAME, url: `http://missing.test:${o.port}` },
      { name: "good.example.com", url: `http://origin.test:${o.port}` },
    ],
  });
  try {
    const r = await get(h);
    assert.is(r.status, 502);
    assert.is(r.headers["x-originwatch-outcome"], "dns");
    assert.is((await h.nthCompleted(1)).outcome, "dns");
    dns.mode = "servfail";
    const r2 = await get(h);
    assert.is(r2.headers["x-originwatch-outcome"], "dns", "SERVFAIL is a DNS failure too");
    dns.mode = "answer";
    const ok = await request(h.address, { headers: { host: "good.example.com" } });
    assert.is(ok.status, 200);
    assert.ok(dns.queries >= 3);
    assert.is(o.requests, 1);
  } finally {
    await h.close();
    await dns.close();
    await o.close();
  }
});

test("TLS: an untrusted certificate is a tls failure (verification never silently off); the right CA passes, with SNI", async () => {
  const fx = makeTlsFixture(["DNS:origin.test", "DNS:localhost", "IP:127.0.0.1"]);
  const o = await startOrigin({ tls: { key: fx.key, cert: fx.cert } });
  const url = `https://127.0.0.1:${o.port}`;
  const h = await startHarness({
    origins: [
      { name: "untrusted.example.com", url },
      { name: "wrongca.example.com", url, caFile: fx.otherCaFile },
      // SNI/verification use the origin's TLS identity (explicit servername, else the URL's host), never the cache's Host
      { name: "origin.test", url, caFile: fx.caFile, servername: "origin.test" },
      { name: "mismatch.example.com", url: `https://localhost:${o.port}`, caFile: fx.caFile, preserveHost: true, servername: "mismatch.example.com" },
    ],
  });
  try {
    const bad = await request(h.address, { headers: { host: "untrusted.example.com" } });
    assert.is(bad.status, 502);
    assert.is(bad.headers["x-originwatch-outcome"], "tls");
    const wrong = await request(h.address, { headers: { host: "wrongca.example.com" } });
    assert.is(wrong.headers["x-originwatch-outcome"], "tls");
    const mismatch = await request(h.address, { headers: { host: "mismatch.example.com" } });
    assert.is(mismatch.headers["x-originwatch-outcome"], "tls", "certificate does not name mismatch.example.com");
    assert.is(o.requests, 0, "no request is sent over an unverified connection");
    const good = await request(h.address, { headers: { host: "origin.test" } });
    assert.is(good.status, 200);
    assert.ok(o.sniNames.includes("origin.test"), `SNI seen: ${o.sniNames.join(",")}`);
    assert.is(h.completed.filter((c) => c.outcome === "tls").length, 3);
  } finally {
    await h.close();
    await o.close();
    fx.cleanup();
  }
});

test("a TLS handshake that never completes counts against the connect deadline: 504 connect_timeout", async () => {
  const fx = makeTlsFixture(["DNS:origin.test"]);
  const o = await startOrigin({ tls: { key: fx.key, cert: fx.cert } });
  const relay = await startFaultRelay({ target: { host: o.host, port: o.port }, mode: { kind: "blackhole" } });
  const h = await startHarness({ origins: [{ name: "origin.test", url: `https://${relay.address}`, caFile: fx.caFile, connectTimeoutMs: 300 }] });
  try {
    const r = await request(h.address, { headers: { host: "origin.test" } });
    assert.is(r.status, 504);
    assert.is(r.headers["x-originwatch-outcome"], "connect_timeout");
    assert.is(relay.connections, 1, "TCP connected; the handshake is what hung");
  } finally {
    await h.close();
    await relay.close();
    await o.close();
    fx.cleanup();
  }
});

test("reset before the response head (origin RST, and relay RST at accept): 502 reset", async () => {
  await withOrigin({ mode: { kind: "reset" } }, {}, async (_o, h) => {
    const r = await get(h);
    assert.is(r.status, 502);
    assert.is(r.headers["x-originwatch-outcome"], "reset");
    assert.is((await h.nthCompleted(1)).outcome, "reset");
  });
  const o = await startOrigin();
  const relay = await startFaultRelay({ target: { host: o.host, port: o.port }, mode: { kind: "reset" } });
  const h = await startHarness({ origins: [{ name: NAME, url: `http://${relay.address}` }] });
  try {
    const r = await get(h);
    assert.is(r.headers["x-originwatch-outcome"], "reset");
  } finally {
    await h.close();
    await relay.close();
    await o.close();
  }
});

test("first-byte timeout (origin accepts, never answers; relay blackhole): 504 first_byte_timeout", async () => {
  await withOrigin({ mode: { kind: "blackhole" } }, { firstByteTimeoutMs: 300 }, async (o, h) => {
    const t0 = performance.now();
    const r = await get(h);
    assert.is(r.status, 504);
    assert.is(r.headers["x-originwatch-outcome"], "first_byte_timeout");
    assert.ok(performance.now() - t0 >= 280);
    assert.is((await h.nthCompleted(1)).outcome, "first_byte_timeout");
    assert.is(o.requests, 1);
    await eventually(() => o.openConnections() === 0, 3000);
  });
  const o = await startOrigin();
  const relay = await startFaultRelay({ target: { host: o.host, port: o.port }, mode: { kind: "blackhole" } });
  const h = await startHarness({ origins: [{ name: NAME, url: `http://${relay.address}`, firstByteTimeoutMs: 300 }] });
  try {
    const r = await get(h);
    assert.is(r.headers["x-originwatch-outcome"], "first_byte_timeout");
  } finally {
    await h.close();
    await relay.close();
    await o.close();
  }
});

test("body error (origin dies mid-body; relay resets mid-body): body_error, the cache sees a truncated response", async () => {
  await withOrigin({ mode: { kind: "die-mid-body", bytes: 1000 } }, {}, async (_o, h) => {
    const err = await get(h).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.ok(err, "the truncated response must fail on the client side");
    const c = await h.nthCompleted(1);
    assert.is(c.outcome, "body_error");
    assert.ok(c.ttfbMs !== undefined);
    assert.is(h.count("bodyError"), 1);
  });
  const o = await startOrigin({ mode: { kind: "stream", bytes: 1 << 20, lengthKnown: true } });
  const relay = await startFaultRelay({ target: { host: o.host, port: o.port }, mode: { kind: "reset", afterBytes: 100_000 } });
  const h = await startHarness({ origins: [{ name: NAME, url: `http://${relay.address}` }] });
  try {
    await get(h).catch(() => undefined);
    assert.is((await h.nthCompleted(1)).outcome, "body_error");
  } finally {
    await h.close();
    await relay.close();
    await o.close();
  }
});

test("client abort: the cache going away aborts the upstream request and counts client_abort", async () => {
  await withOrigin({ mode: { kind: "delay", ms: 5000 } }, {}, async (o, h) => {
    const [host, port] = splitAddress(h.address);
    const req = http.request({ host, port, path: "/slow", headers: { host: NAME }, agent: false });
    req.on("error", () => {});
    req.end();
    await eventually(() => o.requests === 1, 3000, 10);
    req.destroy();
    const c = await h.nthCompleted(1);
    assert.is(c.outcome, "client_abort");
    await eventually(() => o.openConnections() === 0, 3000);
    assert.is(h.count("clientAbort"), 1);
  });
});

test("client abort mid-upload: the cache dies while sending the body; the upstream request is aborted, outcome client_abort", async () => {
  await withOrigin({ mode: { kind: "blackhole" } }, {}, async (o, h) => {
    const [host, port] = splitAddress(h.address);
    const req = http.request({ host, port, method: "PUT", path: "/upload", headers: { host: NAME, "content-length": 1 << 20 }, agent: false });
    req.on("error", () => {});
    req.write(Buffer.alloc(64 * 1024, "u"));
    await eventually(() => o.requests === 1 && (o.log[0]?.bodyBytes ?? 0) > 0, 3000, 10);
    req.destroy();
    const c = await h.nthCompleted(1);
    assert.is(c.outcome, "client_abort");
    await eventually(() => o.openConnections() === 0, 3000);
  });
});

test("stall: counted once at crossing stall_ms, in that window; recovery counted when the first byte lands", async () => {
  await withOrigin({ mode: { kind: "delay", ms: 700 } }, { stallMs: 200 }, async (_o, h) => {
    const p = get(h);
    await new Promise((r) => setTimeout(r, 400));
    assert.is(h.count("stall"), 1, "a stall shows up before the request completes");
    assert.is(h.count("ok"), 0);
    assert.is((await p).status, 200);
    await h.nthCompleted(1);
    assert.is(h.count("stall"), 1, "counted once");
    assert.is(h.count("stallRecovered"), 1);
    assert.is(h.count("ok"), 1);
  });
  await withOrigin({ mode: { kind: "blackhole" } }, { stallMs: 200, firstByteTimeoutMs: 800 }, async (_o, h) => {
    const r = await get(h);
    assert.is(r.status, 504);
    assert.is(h.count("stall"), 1);
    assert.is(h.count("stallRecovered"), 0, "a stall that ends in a timeout never recovers");
    assert.is(h.count("firstByteTimeout"), 1);
  });
});

test.run();
