import { test } from "uvu";
import * as assert from "uvu/assert";
import net from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startOrigin } from "../tools/origin.js";
import { startOriginwatch, type Proc } from "../tools/test/proc.js";
import { request } from "../tools/test/http-request.js";

/** A loopback port with nothing listening: the central is absent. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test("the sidecar process proxies to its origin with the central absent (fail-open) and refuses unknown Hosts without an upstream connection", async () => {
  const origin = await startOrigin();
  let sc: Proc | undefined;
  try {
    sc = await startOriginwatch([
      "sidecar",
      "--central", `http://127.0.0.1:${await deadPort()}`,
      "--listen", "127.0.0.1:0",
      "--admin", "127.0.0.1:0",
      "--node-id", "edge-test-1",
      "--isp", "isp-a",
      "--region", "eu-west",
      "--origin", `www.example.com=${origin.url}`,
    ]);
    assert.is(sc.ready.component, "sidecar");
    assert.match(String(sc.ready.admin), /^127\.0\.0\.1:\d+$/);

    const bad = await request(sc.address, { headers: { host: "evil.example.net" } });
    assert.is(bad.status, 421);
    assert.is(origin.connections, 0, "no upstream connection for an unknown Host");

    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const ok = await request(sc.address, { path: `/item/${i}`, headers: { host: "www.example.com" } });
      assert.is(ok.status, 200);
      assert.is(ok.body.toString(), "ok\n");
      assert.ok(performance.now() - t0 < 1000, "the request path never waits for the central");
    }
    assert.is(origin.requests, 5);
    assert.is(origin.log[0].url, "/item/0");

    const metrics = await request(String(sc.ready.admin), { path: "/metrics" });
    assert.match(metrics.body.toString(), /originwatch_sidecar_requests_total\{origin="www.example.com",outcome="ok"\} 5/);
    assert.match(metrics.body.toString(), /originwatch_sidecar_stream_state\{state="connected"\} 0/);
  } finally {
    const code = await sc?.stop();
    await origin.close();
    assert.is(code, 0, "SIGTERM shuts down cleanly");
  }
});

test("a bad flag stops the process with an error naming the field", async () => {
  try {
    await startOriginwatch(["sidecar", "--listen", "127.0.0.1:0", "--node-id", "n", "--isp", "i", "--region", "r", "--origin", "www.example.com"], { timeoutMs: 15_000 });
    assert.unreachable("must not start");
  } catch (err) {
    assert.match((err as Error).message, /origins\[0\]\.url/);
  }
});

test("timeouts per origin from a --config file (many origins) and from flags", async () => {
  const hole = await startOrigin({ mode: { kind: "blackhole" } });
  const dir = mkdtempSync(join(tmpdir(), "ow-sidecar-"));
  const file = join(dir, "sidecar.json");
  writeFileSync(
    file,
    JSON.stringify({
      nodeId: "edge-cfg",
      isp: "isp-b",
      region: "ap",
      origins: [
        { name: "fast.example.com", url: hole.url, firstByteTimeoutMs: 300 },
        { name: "slow.example.com", url: hole.url, firstByteTimeoutMs: 1500 },
        { name: "default.example.com", url: hole.url },
      ],
    }),
  );
  let sc: Proc | undefined;
  try {
    sc = await startOriginwatch([
      "sidecar",
      "--config", file,
      "--first-byte-timeout-ms", "800",
      "--central", `http://127.0.0.1:${await deadPort()}`,
      "--listen", "127.0.0.1:0",
      "--admin", "127.0.0.1:0",
    ]);
    const timed = async (host: string) => {
      const t0 = performance.now();
      const r = await request(sc!.address, { headers: { host } });
      return { status: r.status, outcome: r.headers["x-originwatch-outcome"], ms: performance.now() - t0 };
    };
    const [fast, slow, dflt] = await Promise.all([timed("fast.example.com"), timed("slow.example.com"), timed("default.example.com")]);
    assert.is(fast.status, 504);
    assert.is(fast.outcome, "first_byte_timeout");
    assert.ok(fast.ms >= 280 && fast.ms < 1000, `fast took ${fast.ms}`);
    assert.ok(slow.ms >= 1450 && slow.ms < 3000, `slow took ${slow.ms}`);
    assert.ok(dflt.ms >= 780 && dflt.ms < 1450, `flag default took ${dflt.ms}`);

    const admin = String(sc.ready.admin);
    assert.is((await request(admin, { path: "/healthz" })).status, 200);
    assert.is((await request(admin, { path: "/readyz" })).status, 200);
    assert.is((await request(admin, { path: "/nope" })).status, 404);
    const m = (await request(admin, { path: "/metrics" })).body.toString();
    assert.match(m, /originwatch_sidecar_requests_total\{origin="fast.example.com",outcome="first_byte_timeout"\} 1/);
    assert.match(m, /originwatch_sidecar_request_duration_seconds_bucket\{le="0.5",origin="fast.example.com"\} 1/);
    assert.match(m, /originwatch_sidecar_stream_state\{state="(backoff|connecting)"\} 1/);
    assert.match(m, /originwatch_sidecar_stream_buffered_batches \d+/);
    assert.match(m, /originwatch_sidecar_stream_dropped_batches 0/);
    assert.match(m, /process_resident_memory_bytes \d+/);
  } finally {
    await sc?.stop();
    await hole.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an unreadable --config file is reported, not a crash", async () => {
  try {
    await startOriginwatch(["sidecar", "--config", "/nonexistent/sidecar.json", "--listen", "127.0.0.1:0"], { timeoutMs: 15_000 });
    assert.unreachable("must not start");
  } catch (err) {
    assert.match((err as Error).message, /CONFIG_UNREADABLE/);
  }
});

test.run();
