/**
 * Timeouts that work (issue 10 item 6): each test holds a slow or silent peer
 * open on a real socket against a real central (small limits through its
 * config) and sees it closed, refused or capped; long-lived ingest and watch
 * streams stay open past every timer and are bounded by keepalive instead.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import tls from "node:tls";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { Health } from "../../proto/gen/grpc/health/v1/health_pb.js";
import * as reflV1 from "../../proto/gen/grpc/reflection/v1/reflection_pb.js";
import { type CentralMessage, IngestService, type SidecarMessage, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { grpcService } from "../../proto/grpc-bridge.js";
import { startFaultRelay } from "../../tools/fault-relay.js";
import { initPki } from "../../tools/certs.js";
import type { CentralConfig } from "../config.js";
import { type Central, startCentral } from "../main.js";

const LIMITS: Partial<CentralConfig> = {
  sniffTimeoutMs: 300,
  headersTimeoutMs: 400,
  requestTimeoutMs: 800,
  idleTimeoutMs: 600,
  keepaliveMs: 250,
  keepaliveTimeoutMs: 400,
  maxConcurrentStreams: 5,
  maxHealthWatches: 2,
  maxReflectionStreams: 2,
};

let dir = "";
let central: Central;
let port = 0;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-timeouts-"));
  central = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "data"), ...LIMITS }, pino({ level: "silent" }));
  port = Number(central.address.split(":")[1]);
});
test.after(async () => {
  await central.close();
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens a raw socket, runs `drive` on it, resolves with ms until the central closed it (-1: still open after limitMs). */
function closedAfter(drive: (s: net.Socket) => void, limitMs = 8000): Promise<number> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    const t0 = Date.now();
    const give = setTimeout(() => {
      s.destroy();
      resolve(-1);
    }, limitMs);
    s.on("error", () => {});
    s.on("data", () => {});
    s.on("close", () => {
      clearTimeout(give);
      resolve(Date.now() - t0);
    });
    s.on("connect", () => drive(s));
  });
}

/** Writes `chunk` every `everyMs` while the socket is open (a slowloris). */
function drip(s: net.Socket, chunk: string, everyMs: number): void {
  const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write(chunk)), everyMs);
  s.on("close", () => clearInterval(t));
}

test("a socket that sends nothing is closed after the sniff timeout", async () => {
  const ms = await closedAfter(() => {});
  assert.ok(ms >= 250 && ms < 8000, `closed after ${ms} ms`);
});

test("a partial HTTP/2 preface is closed after the sniff timeout", async () => {
  const ms = await closedAfter((s) => s.write("PRI * HTTP/2.0\r\n"));
  assert.ok(ms >= 250 && ms < 8000, `closed after ${ms} ms`);
});

test("a slowloris HTTP/1.1 head (one header line every 100 ms) is closed by the headers timeout", async () => {
  const ms = await closedAfter((s) => {
    s.write("POST /originwatch.v1.QueryService/ListOrigins HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    drip(s, "X-Slow: 1\r\n", 100);
  });
  assert.ok(ms >= 350 && ms < 8000, `closed after ${ms} ms`);
});

test("an HTTP/1.1 body that never completes is closed by the request timeout", async () => {
  const ms = await closedAfter((s) => {
    s.write("POST /originwatch.v1.QueryService/ListOrigins HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{");
    drip(s, " ", 100);
  });
  assert.ok(ms >= 700 && ms < 8000, `closed after ${ms} ms`);
});

test("an idle HTTP/1.1 keep-alive connection is closed after the idle timeout", async () => {
  let answered = false;
  const ms = await closedAfter((s) => {
    s.on("data", () => (answered = true));
    s.write("POST /originwatch.v1.QueryService/ListOrigins HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  });
  assert.ok(answered);
  assert.ok(ms >= 500 && ms < 8000, `closed after ${ms} ms`);
});

test("Upgrade requests (websocket, h2c) are answered as plain HTTP/1.1, never switched, and not held past the idle timeout", async () => {
  for (const head of [
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    "POST /originwatch.v1.QueryService/ListOrigins HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
  ]) {
    let got = "";
    const ms = await closedAfter((s) => {
      s.on("data", (d: Buffer) => (got += d.toString()));
      s.write(head);
    });
    assert.match(got, /^HTTP\/1\.1 200 /, got.split("\r\n")[0]);
    assert.ok(ms >= 500 && ms < 8000, `closed after ${ms} ms`);
  }
});

test("an HTTP/2 preface followed by silence is closed after the idle timeout", async () => {
  const ms = await closedAfter((s) => s.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  assert.ok(ms >= 500 && ms < 8000, `closed after ${ms} ms`);
});

test("an idle HTTP/2 session (no streams) is closed after the idle timeout", async () => {
  const before = central.server.counters().http2IdleClosed;
  const s = http2.connect(`http://127.0.0.1:${port}`);
  s.on("error", () => {});
  const t0 = Date.now();
  const ms = await new Promise<number>((resolve) => {
    const give = setTimeout(() => resolve(-1), 8000);
    s.on("close", () => {
      clearTimeout(give);
      resolve(Date.now() - t0);
    });
  });
  s.destroy();
  assert.ok(ms >= 500 && ms < 8000, `closed after ${ms} ms`);
  assert.ok(central.server.counters().http2IdleClosed > before);
});

test("HTTP/2 advertises the stream cap; a unary stream whose body never ends is reset by the request timeout", async () => {
  const s = http2.connect(`http://127.0.0.1:${port}`);
  s.on("error", () => {});
  await new Promise<void>((r) => s.once("remoteSettings", () => r()));
  assert.is(s.remoteSettings.maxConcurrentStreams, 5);
  const before = central.server.counters().http2StreamTimeouts;
  const st = s.request({ ":method": "POST", ":path": "/originwatch.v1.QueryService/ListOrigins", "content-type": "application/grpc" }, { endStream: false });
  st.on("error", () => {});
  st.write(Buffer.from([0, 0, 0, 0, 10])); // a frame header promising 10 bytes that never come
  const t0 = Date.now();
  const ms = await new Promise<number>((resolve) => {
    const give = setTimeout(() => resolve(-1), 8000);
    st.on("close", () => {
      clearTimeout(give);
      resolve(Date.now() - t0);
    });
  });
  s.destroy();
  assert.ok(ms >= 700 && ms < 8000, `reset after ${ms} ms`);
  assert.ok(central.server.counters().http2StreamTimeouts > before);
});

const IngestClient = grpc.makeGenericClientConstructor(grpcService(IngestService), "IngestService");
type Ingest = grpc.Client & { stream(): grpc.ClientDuplexStream<SidecarMessage, CentralMessage> };
const hello = (nodeId: string) =>
  create(SidecarMessageSchema, { kind: { case: "hello", value: { node: { nodeId, isp: "isp-a", region: "eu", version: "t" }, origins: ["img.example"] } } });

/** Opens an ingest stream, sends hello, resolves once welcomed. */
async function openIngest(target: string, nodeId: string) {
  const client = new IngestClient(target, grpc.credentials.createInsecure()) as unknown as Ingest;
  const call = client.stream();
  let ended: string | undefined;
  call.on("error", (e: grpc.ServiceError) => (ended ??= `error ${e.code} ${e.details}`));
  call.on("end", () => (ended ??= "end"));
  const welcomed = new Promise<void>((resolve, reject) => {
    call.on("data", (m: CentralMessage) => m.kind.case === "welcome" && resolve());
    call.on("error", reject);
  });
  call.write(hello(nodeId));
  await welcomed;
  return { client, call, ended: () => ended };
}

test("a long-lived ingest stream and a Health.Watch stay open past the idle and request timeouts (keepalive answered)", async () => {
  const ing = await openIngest(`127.0.0.1:${port}`, "long-lived");
  const ac = new AbortController();
  const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  const watched: number[] = [];
  const watch = (async () => {
    for await (const r of health.watch({}, { signal: ac.signal })) watched.push(r.status);
  })().catch(() => {});
  await sleep(3 * LIMITS.requestTimeoutMs! + LIMITS.idleTimeoutMs!);
  assert.is(ing.ended(), undefined);
  assert.ok(central.ingest.sessions.has("long-lived"));
  assert.equal(watched, [1]);
  ac.abort();
  await watch;
  ing.call.cancel();
  ing.client.close();
});

test("a session whose peer stops answering PINGs (blackholed path) is closed by keepalive", async () => {
  const relay = await startFaultRelay({ target: { host: "127.0.0.1", port } });
  try {
    const ing = await openIngest(relay.address, "blackholed");
    const before = central.server.counters().http2KeepaliveClosed;
    await relay.setMode({ kind: "blackhole" });
    const t0 = Date.now();
    while (central.server.counters().http2KeepaliveClosed === before && Date.now() - t0 < 8000) await sleep(50);
    const ms = Date.now() - t0;
    assert.ok(central.server.counters().http2KeepaliveClosed > before, "keepalive never closed the session");
    assert.ok(ms < 8000, `closed after ${ms} ms`);
    ing.call.cancel();
    ing.client.close();
  } finally {
    await relay.close();
  }
});

test("Health.Watch and reflection streams are capped server-wide: RESOURCE_EXHAUSTED over the cap", async () => {
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` });
  const health = createClient(Health, transport);
  const ac = new AbortController();
  const first = async (it: AsyncIterable<unknown>) => {
    for await (const _ of it) return "ok";
    return "ended";
  };
  const open = [health.watch({}, { signal: ac.signal }), health.watch({}, { signal: ac.signal })].map((it) => it[Symbol.asyncIterator]());
  for (const it of open) assert.ok(!(await it.next()).done);
  const third = await first(health.watch({}, { signal: ac.signal })).catch((e) => ConnectError.from(e).code);
  assert.is(third, Code.ResourceExhausted);

  const refl = createClient(reflV1.ServerReflection, transport);
  async function* hold(signal: AbortSignal) {
    yield create(reflV1.ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } });
    await new Promise((r) => signal.addEventListener("abort", r));
  }
  const r1 = refl.serverReflectionInfo(hold(ac.signal), { signal: ac.signal })[Symbol.asyncIterator]();
  const r2 = refl.serverReflectionInfo(hold(ac.signal), { signal: ac.signal })[Symbol.asyncIterator]();
  assert.ok(!(await r1.next()).done);
  assert.ok(!(await r2.next()).done);
  const r3 = await first(refl.serverReflectionInfo(hold(ac.signal), { signal: ac.signal })).catch((e) => ConnectError.from(e).code);
  assert.is(r3, Code.ResourceExhausted);
  ac.abort();
  await sleep(100);
  // Released: a new watch is served again.
  const again = await first(health.watch({}, { signal: AbortSignal.timeout(2000) })).catch((e) => ConnectError.from(e).code);
  assert.is(again, "ok");
});

test("over the connection cap, new connections are closed at once and counted", async () => {
  const c = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "cap"), maxConnections: 3, sniffTimeoutMs: 30_000 }, pino({ level: "silent" }));
  const capPort = Number(c.address.split(":")[1]);
  const sockets: net.Socket[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const s = net.connect(capPort, "127.0.0.1");
      s.on("error", () => {});
      await new Promise((r) => s.once("connect", r));
      sockets.push(s);
    }
    await sleep(100);
    assert.is(c.server.connections(), 3);
    const extra = net.connect(capPort, "127.0.0.1");
    extra.on("error", () => {});
    sockets.push(extra);
    const closed = await new Promise<boolean>((resolve) => {
      const give = setTimeout(() => resolve(false), 3000);
      extra.on("close", () => (clearTimeout(give), resolve(true)));
    });
    assert.ok(closed, "the fourth connection stayed open");
    assert.is(c.server.counters().connectionsRefused, 1);
    // The three held ones are still open.
    assert.ok(sockets.slice(0, 3).every((s) => !s.destroyed));
  } finally {
    for (const s of sockets) s.destroy();
    await c.close();
  }
});

test("with TLS: a silent socket, a slowloris HTTP/1.1 head and an idle HTTP/2 session are closed too", async () => {
  const pki = initPki(join(dir, "pki"));
  const c = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "tls"), tlsCert: pki.centralCert, tlsKey: pki.centralKey, tlsCa: pki.ca, ...LIMITS }, pino({ level: "silent" }));
  const tlsPort = Number(c.address.split(":")[1]);
  const ca = await readFile(pki.ca);
  const waitClose = (s: net.Socket | tls.TLSSocket | http2.ClientHttp2Session, t0: number) =>
    new Promise<number>((resolve) => {
      const give = setTimeout(() => resolve(-1), 8000);
      s.on("close", () => (clearTimeout(give), resolve(Date.now() - t0)));
    });
  try {
    const silent = net.connect(tlsPort, "127.0.0.1");
    silent.on("error", () => {});
    const a = await waitClose(silent, Date.now());
    assert.ok(a >= 250 && a < 8000, `silent TLS socket closed after ${a} ms`);

    const t1 = Date.now();
    const slow = tls.connect({ port: tlsPort, host: "127.0.0.1", servername: "localhost", ca, ALPNProtocols: ["http/1.1"] });
    slow.on("error", () => {});
    slow.on("secureConnect", () => {
      slow.write("POST /originwatch.v1.QueryService/ListOrigins HTTP/1.1\r\nHost: localhost\r\n");
      drip(slow, "X-Slow: 1\r\n", 100);
    });
    const b = await waitClose(slow, t1);
    assert.ok(b >= 350 && b < 8000, `TLS slowloris closed after ${b} ms`);

    const t2 = Date.now();
    const session = http2.connect(`https://localhost:${tlsPort}`, { ca });
    session.on("error", () => {});
    const d = await waitClose(session, t2);
    session.destroy();
    assert.ok(d >= 500 && d < 8000, `idle TLS HTTP/2 session closed after ${d} ms`);
  } finally {
    await c.close();
  }
});

test.run();
