/**
 * The sidecar is not an open proxy, and framing tricks cannot smuggle a second
 * request to the origin. Raw bytes on a socket, so nothing is normalised first.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startOrigin, type Origin } from "../../tools/origin.js";
import { rawRequest, request } from "../../tools/test/http-request.js";
import { startHarness, type Harness } from "../../tools/test/sidecar-harness.js";

const NAME = "www.example.com";
/** The same origin under a name that opted in to upgrades. */
const WS = "ws.example.com";
let o: Origin;
let h: Harness;

const statusOf = (raw: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);

test.before(async () => {
  o = await startOrigin();
  h = await startHarness({ origins: [{ name: NAME, url: o.url }, { name: WS, url: o.url, upgrade: true }] });
});
test.after(async () => {
  await h.close();
  await o.close();
});
test.before.each(() => o.resetCounts());

test("unknown Host: 421 and no upstream connection", async () => {
  const raw = await rawRequest(h.address, "GET / HTTP/1.1\r\nHost: attacker.example\r\n\r\n");
  assert.is(statusOf(raw), 421);
  assert.is(o.connections, 0);
});

test("absolute-form target naming another host: 421, no upstream connection, even with a configured Host", async () => {
  const raw = await rawRequest(h.address, `GET http://169.254.169.254/latest/meta-data HTTP/1.1\r\nHost: ${NAME}\r\n\r\n`);
  assert.is(statusOf(raw), 421);
  assert.is(o.connections, 0);
});

test("absolute-form target naming a configured origin is served from that origin", async () => {
  const raw = await rawRequest(h.address, `GET http://${NAME}/abs?q=1 HTTP/1.1\r\nHost: ${NAME}\r\nConnection: close\r\n\r\n`);
  assert.is(statusOf(raw), 200);
  assert.is(o.log[0].url, "/abs?q=1");
  assert.is(o.log[0].headers.host, NAME);
});

test("CONNECT is refused with 405 and no upstream connection", async () => {
  const raw = await rawRequest(h.address, `CONNECT ${NAME}:443 HTTP/1.1\r\nHost: ${NAME}:443\r\n\r\n`);
  assert.is(statusOf(raw), 405);
  const raw2 = await rawRequest(h.address, `CONNECT 127.0.0.1:${o.port} HTTP/1.1\r\nHost: 127.0.0.1:${o.port}\r\n\r\n`);
  assert.is(statusOf(raw2), 405);
  assert.is(o.connections, 0);
});

test("an upgrade to an unconfigured host is refused with 421 and no upstream connection", async () => {
  const raw = await rawRequest(
    h.address,
    "GET /ws HTTP/1.1\r\nHost: attacker.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  );
  assert.is(statusOf(raw), 421);
  assert.is(o.connections, 0);
});

test("an upgrade to an origin that did not opt in is refused with 501 and no upstream connection", async () => {
  const raw = await rawRequest(h.address, `GET /ws HTTP/1.1\r\nHost: ${NAME}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
  assert.is(statusOf(raw), 501);
  assert.match(raw, /upgrade: true/);
  assert.is(o.connections, 0);
});

test("duplicate Host headers: 400 and no upstream connection (requests and upgrades)", async () => {
  const raw = await rawRequest(h.address, `GET / HTTP/1.1\r\nHost: ${NAME}\r\nHost: attacker.example\r\n\r\n`);
  assert.is(statusOf(raw), 400);
  assert.match(raw, /more than one Host/);
  const raw2 = await rawRequest(h.address, `GET / HTTP/1.1\r\nhost: attacker.example\r\nHOST: ${NAME}\r\n\r\n`);
  assert.is(statusOf(raw2), 400);
  const up = await rawRequest(h.address, `GET /ws HTTP/1.1\r\nHost: ${WS}\r\nHost: ${NAME}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
  assert.is(statusOf(up), 400);
  assert.is(o.connections, 0);
  const ok = await rawRequest(h.address, `GET / HTTP/1.1\r\nHost: ${NAME}\r\nConnection: close\r\n\r\n`);
  assert.is(statusOf(ok), 200, "one Host is fine");
});

test("an upgrade to an origin that opted in is tunnelled to that origin (101, then bytes both ways)", async () => {
  const onUpgrade = (req: import("node:http").IncomingMessage, socket: import("node:stream").Duplex) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\n\r\n`);
    socket.on("data", (d: Buffer) => socket.write(`echo:${d}`));
    socket.on("error", () => {});
  };
  o.server.on("upgrade", onUpgrade);
  try {
    const net = await import("node:net");
    const [host, port] = [h.address.slice(0, h.address.lastIndexOf(":")), Number(h.address.slice(h.address.lastIndexOf(":") + 1))];
    const got = await new Promise<string>((resolve, reject) => {
      const c = net.connect(port, host, () => c.write(`GET /chat HTTP/1.1\r\nHost: ${WS}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`));
      let buf = "";
      c.on("data", (d: Buffer) => {
        buf += d.toString();
        if (buf.includes("\r\n\r\n") && !buf.includes("echo:")) c.write("ping");
        if (buf.includes("echo:ping")) {
          c.destroy();
          resolve(buf);
        }
      });
      c.on("error", reject);
      setTimeout(() => reject(new Error(`no echo: ${JSON.stringify(buf)}`)), 3000).unref();
    });
    assert.match(got, /^HTTP\/1\.1 101/);
    assert.is(o.log.length, 0, "the upgrade is not a normal request at the origin");
  } finally {
    o.server.off("upgrade", onUpgrade);
  }
});

test("oversized request headers: 431", async () => {
  const raw = await rawRequest(h.address, `GET / HTTP/1.1\r\nHost: ${NAME}\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
  assert.is(statusOf(raw), 431);
  assert.is(o.requests, 0);
});

const SMUGGLED = "GET /smuggled HTTP/1.1\r\nHost: www.example.com\r\n\r\n";
const smuggling: Array<[string, string]> = [
  ["Content-Length with Transfer-Encoding (CL.TE)", `POST / HTTP/1.1\r\nHost: ${NAME}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ["Transfer-Encoding then Content-Length (TE.CL)", `POST / HTTP/1.1\r\nHost: ${NAME}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n${SMUGGLED}\r\n0\r\n\r\n`],
  ["duplicated Transfer-Encoding", `POST / HTTP/1.1\r\nHost: ${NAME}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ["obfuscated Transfer-Encoding (space before colon)", `POST / HTTP/1.1\r\nHost: ${NAME}\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ["obfuscated Transfer-Encoding (xchunked)", `POST / HTTP/1.1\r\nHost: ${NAME}\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ["Transfer-Encoding: chunked-false", `POST / HTTP/1.1\r\nHost: ${NAME}\r\nTransfer-Encoding: chunked-false\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ["Transfer-Encoding with tab obfuscation", `POST / HTTP/1.1\r\nHost: ${NAME}\r\nTransfer-Encoding:\tchunked\r\nTransfer-encoding: x\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ["chunked DELETE (http-proxy's deleteLength would add Content-Length: 0)", `DELETE / HTTP/1.1\r\nHost: ${NAME}\r\nTransfer-Encoding: chunked\r\n\r\n${(SMUGGLED.length).toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`],
  ["two Content-Length values", `POST / HTTP/1.1\r\nHost: ${NAME}\r\nContent-Length: 0\r\nContent-Length: 49\r\n\r\n${SMUGGLED}`],
];

for (const [name, bytes] of smuggling) {
  test(`smuggling: ${name} — reaches the origin at most once or is rejected with 400`, async () => {
    const raw = await rawRequest(h.address, bytes, 400);
    const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    assert.ok(statuses.length >= 1, `no response: ${JSON.stringify(raw.slice(0, 200))}`);
    assert.ok(o.requests <= 1, `origin saw ${o.requests} requests: ${o.log.map((r) => `${r.method} ${r.url}`).join(", ")}`);
    assert.ok(!o.log.some((r) => r.url === "/smuggled"), "a smuggled request reached the origin");
    if (o.requests === 0) assert.is(statuses[0], 400);
  });
}

test("TE: chunked-false is a hop-by-hop field: stripped, Content-Length framing kept, the body reaches the origin once", async () => {
  const raw = await rawRequest(h.address, `POST /te HTTP/1.1\r\nHost: ${NAME}\r\nTE: chunked-false\r\nContent-Length: 5\r\nConnection: close\r\n\r\n0\r\n\r\n`, 400);
  assert.is(statusOf(raw), 200);
  assert.is(o.requests, 1);
  assert.is(o.log[0].headers.te, undefined);
  assert.is(o.log[0].headers["transfer-encoding"], undefined);
  assert.is(o.log[0].body.toString(), "0\r\n\r\n");
});

test("malformed request lines never crash the sidecar", async () => {
  for (const junk of ["\x00\x01\x02\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", `GET /${"%".repeat(3)} HTTP/1.1\r\nHost: ${NAME}:99999\r\n\r\n`]) {
    await rawRequest(h.address, junk, 200);
  }
  const r = await request(h.address, { headers: { host: NAME } });
  assert.is(r.status, 200);
});

test.run();
