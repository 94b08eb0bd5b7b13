/**
 * A sidecar whose clock is 10 minutes ahead (an injected clock; the system
 * clock is never touched) measures its skew from the central's timestamps,
 * reports it (Batch.clock_skew_ms, /metrics, /status) and sends windows on the
 * central's clock, so every request is counted. Against a real grpc-js server
 * speaking the contract (tools/test/fake-central.ts) on the real clock.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { WindowSummarySchema } from "../proto/gen/originwatch/v1/ingest_pb.js";
import { validateSidecarConfig } from "./config.js";
import { type Sidecar, startSidecar } from "./main.js";
import { ClockSkew } from "./stream/clock-skew.js";
import { StreamClient } from "./stream/client.js";
import { startOrigin } from "../tools/origin.js";
import { startFakeCentral } from "../tools/test/fake-central.js";
import { request } from "../tools/test/http-request.js";
import { eventually } from "../tools/test/proc.js";
import { startTraffic } from "../tools/test/traffic.js";

const HOST = "skew.origin";
const AHEAD = 10 * 60_000;

test("a sidecar 10 minutes ahead: skew measured and reported, windows on the central's clock, every request counted", async () => {
  const fc = await startFakeCentral();
  const origin = await startOrigin();
  let sc: Sidecar | undefined;
  try {
    sc = await startSidecar(
      validateSidecarConfig({ central: fc.url, listen: "127.0.0.1:0", admin: "127.0.0.1:0", nodeId: "skew-1", isp: "isp-a", region: "eu", origins: [`${HOST}=${origin.url}`] }),
      { clock: () => Date.now() + AHEAD },
    );
    const traffic = startTraffic([{ address: sc.address, host: HOST }], 20);
    await new Promise((r) => setTimeout(r, 2500));
    await traffic.stop();
    assert.equal(traffic.failures, []);
    await eventually(() => (fc.counted.get(HOST) ?? 0) === origin.requests, 10_000).catch((e) => {
      throw new Error(`${(e as Error).message}: counted ${fc.counted.get(HOST)} vs origin ${origin.requests}`);
    });
    assert.ok(fc.maxWindowLeadMs < 2000, `windows start at most ~1 window ahead of the central (${fc.maxWindowLeadMs} ms)`);
    const skew = Number(fc.batches.at(-1)!.clockSkewMs);
    assert.ok(Math.abs(skew - AHEAD) < 1000, `Batch.clock_skew_ms ${skew}`);
    const metrics = (await request(sc.adminAddress!, { path: "/metrics" })).body.toString();
    const gauge = Number(/^originwatch_sidecar_clock_skew_seconds (\S+)$/m.exec(metrics)?.[1]);
    assert.ok(Math.abs(gauge - AHEAD / 1000) < 1, `gauge ${gauge}`);
    const status = JSON.parse((await request(sc.adminAddress!, { path: "/status" })).body.toString());
    assert.ok(Math.abs(status.stream.clockSkew.appliedMs - AHEAD) < 1000, JSON.stringify(status.stream.clockSkew));
    assert.is(status.stream.state, "connected");
  } finally {
    await sc?.shutdown();
    await origin.close();
    fc.close();
  }
});

test("batches made before the first Welcome (taken on the wrong clock) are re-dated before they are sent", async () => {
  const fc = await startFakeCentral();
  const skew = new ClockSkew({ clock: () => Date.now() + AHEAD });
  const c = new StreamClient({ central: fc.url, node: { nodeId: "skew-2", isp: "isp-a", region: "eu" }, origins: [HOST], skew, initialBackoffMs: 50 });
  try {
    const start = Math.floor(skew.now() / 1000) * 1000 - 1000;
    c.send([create(WindowSummarySchema, { origin: HOST, startUnixMs: BigInt(start), lengthMs: 1000, counts: { ok: 4n } })]);
    c.start();
    await eventually(() => c.ackedSeq === 1n);
    assert.ok(Math.abs(skew.appliedMs - AHEAD) < 1000);
    assert.ok(fc.maxWindowLeadMs < 0 && fc.maxWindowLeadMs > -5000, `lead ${fc.maxWindowLeadMs}`);
    assert.is(Number(fc.batches[0].windows[0].startUnixMs) % 1000, 0, "still aligned to the window length");
    assert.is(fc.counted.get(HOST), 4);
  } finally {
    await c.shutdown();
    fc.close();
  }
});

test("a clock within the threshold is reported but not corrected", async () => {
  const fc = await startFakeCentral({ clock: () => Date.now() - 100 });
  const skew = new ClockSkew();
  const c = new StreamClient({ central: fc.url, node: { nodeId: "skew-3", isp: "isp-a", region: "eu" }, origins: [HOST], skew });
  try {
    c.start();
    c.send([]);
    await eventually(() => c.ackedSeq === 1n && skew.samples >= 2);
    assert.ok(skew.estimateMs > 50 && skew.estimateMs < 250, `estimate ${skew.estimateMs}`);
    assert.is(skew.appliedMs, 0);
  } finally {
    await c.shutdown();
    fc.close();
  }
});

test.run();
