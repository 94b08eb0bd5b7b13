import { test } from "uvu";
import * as assert from "uvu/assert";
import net from "node:net";
import { startFaultRelay, type FaultRelay } from "./fault-relay.js";

/** A TCP echo server that closes its side 50 ms after the client's FIN. */
async function echoServer() {
  const server = net.createServer((s) => {
    s.on("data", (d) => s.write(d));
    s.on("end", () => setTimeout(() => s.end(), 50));
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

type Outcome = { connected: boolean; data: string; error?: string; closedAtMs?: number; firstDataMs?: number };

/** Connect through the relay, send "ping", half-close, collect what comes back within waitMs. */
function exchange(relay: FaultRelay, waitMs = 400, halfClose = true): Promise<Outcome> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const out: Outcome = { connected: false, data: "" };
    const s = net.connect(relay.port, relay.host);
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const timer = setTimeout(done, waitMs);
    s.on("connect", () => {
      out.connected = true;
      if (halfClose) s.end("ping");
      else s.write("ping");
    });
    s.on("data", (d) => {
      out.firstDataMs ??= performance.now() - t0;
      out.data += d.toString();
    });
    s.on("error", (e: NodeJS.ErrnoException) => {
      out.error = e.code;
      done();
    });
    s.on("close", () => {
      out.closedAtMs = performance.now() - t0;
      done();
    });
  });
}

let echo: Awaited<ReturnType<typeof echoServer>>;
let relay: FaultRelay;
test.before(async () => {
  echo = await echoServer();
  relay = await startFaultRelay({ target: { host: "127.0.0.1", port: echo.port } });
});
test.after(async () => {
  await relay.close();
  await echo.close();
});

test("pass forwards both ways and closes cleanly", async () => {
  await relay.setMode({ kind: "pass" });
  const o = await exchange(relay);
  assert.is(o.data, "ping");
  assert.is(o.error, undefined);
  assert.ok(o.closedAtMs !== undefined);
});

test("refuse: connects are refused, and pass brings the same port back", async () => {
  await relay.setMode({ kind: "refuse" });
  assert.is((await exchange(relay)).error, "ECONNREFUSED");
  await relay.setMode({ kind: "pass" });
  assert.is((await exchange(relay)).data, "ping");
});

test("drop-syn: a connect neither completes nor fails", async () => {
  await relay.setMode({ kind: "drop-syn" });
  const o = await exchange(relay, 600);
  assert.is(o.connected, false);
  assert.is(o.error, undefined);
  await relay.setMode({ kind: "pass" });
  assert.is((await exchange(relay)).data, "ping");
});

test("blackhole: connected but nothing arrives; held bytes are delivered when it clears", async () => {
  await relay.setMode({ kind: "blackhole" });
  const t0 = performance.now();
  const p = exchange(relay, 1500);
  await new Promise((r) => setTimeout(r, 400));
  await relay.setMode({ kind: "pass" });
  const o = await p;
  assert.ok(o.connected);
  assert.is(o.data, "ping");
  assert.ok(o.firstDataMs! >= 380, `data arrived after ${o.firstDataMs} ms, before the path cleared`);
  void t0;
});

test("delay adds latency in each direction", async () => {
  await relay.setMode({ kind: "delay", ms: 150 });
  const o = await exchange(relay, 1500);
  assert.is(o.data, "ping");
  assert.ok(o.firstDataMs! >= 280, `round trip ${o.firstDataMs} ms`);
});

test("reset: the connection is reset at once", async () => {
  await relay.setMode({ kind: "reset" });
  const o = await exchange(relay);
  assert.is(o.error, "ECONNRESET");
  assert.is(o.data, "");
});

test("reset after N bytes cuts the stream with an RST", async () => {
  await relay.setMode({ kind: "reset", afterBytes: 2 });
  const o = await exchange(relay);
  assert.is(o.data, "pi");
  assert.is(o.error, "ECONNRESET");
});

test("slow-close holds the client side open after the target closed", async () => {
  await relay.setMode({ kind: "pass" });
  const fast = await exchange(relay, 2000);
  await relay.setMode({ kind: "slow-close", ms: 500 });
  const slow = await exchange(relay, 2000);
  assert.is(slow.data, "ping");
  assert.ok(slow.closedAtMs! - fast.closedAtMs! >= 400, `fast ${fast.closedAtMs} ms, slow ${slow.closedAtMs} ms`);
});

test("counts connections", async () => {
  const before = relay.connections;
  await relay.setMode({ kind: "pass" });
  await exchange(relay);
  assert.is(relay.connections, before + 1);
});

test.run();
