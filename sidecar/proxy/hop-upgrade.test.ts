/**
 * Upgrades (WebSocket) under the same rules as every other request (issue 11
 * item 2): only for origins with `upgrade: true`; hop-by-hop fields and the
 * client's X-Forwarded-For never reach the origin; absolute-form targets
 * rewrite Host; recorded once as `upgrade` (or by their failure); deadlines
 * and a tunnel idle timeout. Raw sockets against tools/origin.ts.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import net from "node:net";
import { startOrigin, type Origin } from "../../tools/origin.js";
import { startFaultRelay } from "../../tools/fault-relay.js";
import { rawRequest, splitAddress } from "../../tools/test/http-request.js";
import { startHarness, deadPort, type Harness } from "../../tools/test/sidecar-harness.js";

const WS = "ws.example.com";
const statusOf = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

function upgradeHead(path: string, host: string, extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n${extra}\r\n`;
}

/** Open an upgrade, wait for the 101, send `ping`, resolve with everything read once the echo arrives. */
function tunnel(address: string, head: string): Promise<{ text: string; socket: net.Socket }> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve, reject) => {
    const c = net.connect(port, host, () => c.write(head));
    let buf = "";
    let pinged = false;
    c.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      if (!pinged && buf.includes("\r\n\r\n")) {
        if (!buf.startsWith("HTTP/1.1 101")) return reject(new Error(`not upgraded: ${JSON.stringify(buf)}`));
        pinged = true;
        c.write("ping");
      }
      if (buf.includes("echo:ping")) resolve({ text: buf, socket: c });
    });
    c.on("error", reject);
    setTimeout(() => reject(new Error(`no echo: ${JSON.stringify(buf)}`)), 5000).unref();
  });
}

async function withUpgradeOrigin(originOpts: Parameters<typeof startOrigin>[0], sidecar: Record<string, unknown>, fn: (o: Origin, h: Harness) => Promise<void>): Promise<void> {
  const o = await startOrigin({ upgrade: "echo", ...originOpts });
  const h = await startHarness({ origins: [{ name: WS, url: o.url, upgrade: true, ...sidecar }] });
  try {
    await fn(o, h);
  } finally {
    await h.close();
    await o.close();
  }
}

test("an upgrade carries no client X-Forwarded-For or hop-by-hop fields to the origin; Connection/Upgrade are re-added; recorded once as upgrade", async () => {
  await withUpgradeOrigin({}, {}, async (o, h) => {
    const t = await tunnel(
      h.address,
      upgradeHead("/chat?room=1", WS, "X-Forwarded-For: 6.6.6.6\r\nProxy-Authorization: Basic c2VjcmV0\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nX-Conn-Named: drop-me\r\nConnection: X-Conn-Named\r\n"),
    );
    t.socket.destroy();
    assert.match(t.text, /^HTTP\/1\.1 101/);
    assert.match(t.text, /\r\nSec-WebSocket-Accept: /i, "the origin's end-to-end fields reach the cache");
    assert.is(o.upgrades.length, 1);
    const up = o.upgrades[0].headers;
    assert.is(o.upgrades[0].url, "/chat?room=1");
    // The harness's cache is on loopback, a trusted peer by default: its XFF is appended to, exactly as
    // for a normal request (the cache in front sets it; tools/caches). An untrusted peer's is replaced (below).
    assert.is(up["x-forwarded-for"], "6.6.6.6, 127.0.0.1");
    for (const f of ["proxy-authorization", "keep-alive", "te", "proxy-connection", "x-conn-named"]) assert.is(up[f], undefined, `${f} reached the origin`);
    assert.is(String(up.connection).toLowerCase(), "upgrade");
    assert.is(up.upgrade, "websocket");
    assert.is(up.host, WS);
    assert.is(up["sec-websocket-key"], KEY);
    assert.is(h.count("upgrade"), 1);
    assert.is(h.count("ok"), 0);
    const c = await h.nthCompleted(1);
    assert.is(c.outcome, "upgrade");
    assert.is(c.status, 101);
  });
});

test("an upgrade from an untrusted peer: its X-Forwarded-For is replaced by the peer address", async () => {
  await withUpgradeOrigin({}, {}, async (o) => {
    const h = await startHarness({ origins: [{ name: WS, url: o.url, upgrade: true }], trustedPeers: "10.255.255.1" });
    try {
      const t = await tunnel(h.address, upgradeHead("/chat", WS, "X-Forwarded-For: 6.6.6.6\r\n"));
      t.socket.destroy();
      assert.is(o.upgrades[0].headers["x-forwarded-for"], "127.0.0.1");
    } finally {
      await h.close();
    }
  });
});

test("an absolute-form upgrade with a forged Host reaches the origin with the configured Host; another authority is 421", async () => {
  await withUpgradeOrigin({}, {}, async (o, h) => {
    const t = await tunnel(h.address, upgradeHead(`http://${WS}/abs`, "evil.example"));
    t.socket.destroy();
    assert.is(o.upgrades[0].headers.host, WS);
    assert.is(o.upgrades[0].url, "/abs");
    const raw = await rawRequest(h.address, upgradeHead("http://evil.example/abs", WS));
    assert.is(statusOf(raw), 421);
    assert.is(o.upgrades.length, 1);
  });
});

test("upgrades follow the method and protocol rules: non-GET 405, h2c 501, a body 400 — none reaches the origin", async () => {
  await withUpgradeOrigin({}, {}, async (o, h) => {
    const post = await rawRequest(h.address, `POST /chat HTTP/1.1\r\nHost: ${WS}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n`);
    assert.is(statusOf(post), 405);
    assert.match(post, /allow: GET/i);
    const h2c = await rawRequest(h.address, `GET / HTTP/1.1\r\nHost: ${WS}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`);
    assert.is(statusOf(h2c), 501);
    const body = await rawRequest(h.address, `GET /chat HTTP/1.1\r\nHost: ${WS}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello`);
    assert.is(statusOf(body), 400);
    assert.is(o.connections, 0);
    assert.is(h.count("upgrade"), 0);
  });
});

test("an upgraded tunnel with no byte either way is closed after upgradeIdleTimeoutMs", async () => {
  await withUpgradeOrigin({}, { upgradeIdleTimeoutMs: 300 }, async (o, h) => {
    const t = await tunnel(h.address, upgradeHead("/idle", WS));
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      t.socket.once("close", () => resolve());
      setTimeout(() => reject(new Error("tunnel still open after 5 s")), 5000).unref();
    });
    const ms = performance.now() - t0;
    assert.ok(ms >= 250 && ms < 4000, `closed after ${ms.toFixed(0)} ms`);
    // the origin's side is closed too
    const until = Date.now() + 3000;
    while (o.openConnections() > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.is(o.openConnections(), 0);
  });
});

test("an origin that declines the upgrade: its answer reaches the cache and is recorded by status", async () => {
  await withUpgradeOrigin({ upgrade: "decline" }, {}, async (_o, h) => {
    const raw = await rawRequest(h.address, upgradeHead("/chat", WS));
    assert.is(statusOf(raw), 426);
    assert.match(raw, /declined/);
    assert.is((await h.nthCompleted(1)).outcome, "client_error");
    assert.is(h.count("upgrade"), 0);
  });
});

test("an upgrade to a dead origin: 502 connect_refused, recorded; to a blackholed one: 504 first_byte_timeout at the deadline", async () => {
  const h = await startHarness({ origins: [{ name: WS, url: `http://127.0.0.1:${await deadPort()}`, upgrade: true }] });
  try {
    const raw = await rawRequest(h.address, upgradeHead("/chat", WS));
    assert.is(statusOf(raw), 502);
    assert.match(raw, /x-originwatch-outcome: connect_refused/);
    assert.is((await h.nthCompleted(1)).outcome, "connect_refused");
  } finally {
    await h.close();
  }
  const o = await startOrigin();
  const relay = await startFaultRelay({ target: { host: o.host, port: o.port }, mode: { kind: "blackhole" } });
  const h2 = await startHarness({ origins: [{ name: WS, url: `http://${relay.address}`, upgrade: true, firstByteTimeoutMs: 300 }] });
  try {
    const t0 = performance.now();
    const raw = await rawRequest(h2.address, upgradeHead("/chat", WS), 5000);
    assert.is(statusOf(raw), 504, raw);
    assert.match(raw, /x-originwatch-outcome: first_byte_timeout/);
    assert.ok(performance.now() - t0 < 4000);
    assert.is(h2.count("firstByteTimeout"), 1);
  } finally {
    await h2.close();
    await relay.close();
    await o.close();
  }
});

test.run();
