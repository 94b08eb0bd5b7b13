/**
 * Permanent vs transient on the ingest stream (issue 11 item 1), each case
 * against a real grpc-js server speaking the contract (tools/test/fake-central.ts).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ExemplarSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { SidecarMessageSchema, type WindowSummary, WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { eventually } from "../../tools/test/proc.js";
import { type FakeCentral, startFakeCentral } from "../../tools/test/fake-central.js";
import { StreamClient, type StreamClientOptions } from "./client.js";
import { TOO_LARGE_CODE } from "./rejections.js";

const ORIGIN = "www.example.com";
let t = 1_700_000_000_000;
/** One window with `ok` requests (distinct start times). */
const win = (ok = 1, origin = ORIGIN): WindowSummary =>
  create(WindowSummarySchema, { origin, startUnixMs: BigInt((t += 1000)), lengthMs: 1000, counts: { ok: BigInt(ok) } });
const total = (fc: FakeCentral) => fc.counted.get(ORIGIN) ?? 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function client(fc: FakeCentral, extra: Partial<StreamClientOptions> = {}) {
  const logs: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  const rejected: Array<[string, number]> = [];
  const c = new StreamClient({
    central: fc.url,
    node: { nodeId: "edge-1", isp: "isp-a", region: "eu" },
    origins: [ORIGIN],
    initialBackoffMs: 50,
    maxBackoffMs: 200,
    log: (level, msg, fields) => logs.push({ level, msg, fields }),
    onRejected: (code, n) => rejected.push([code, n]),
    ...extra,
  });
  return { c, logs, rejected };
}

test("a BatchReject drops that batch only: counted by code, reason logged once, the batches behind it acknowledged on the same stream", async () => {
  const fc = await startFakeCentral({
    onBatch: (b) => (b.seq === 2n || b.seq === 4n ? { reject: { code: "CENTRAL_ORIGIN_NOT_DECLARED", reason: "batch.windows[0].origin \"x\" was not declared" } } : "ack"),
  });
  const { c, logs, rejected } = client(fc);
  try {
    c.start();
    for (let i = 0; i < 6; i++) c.send([win(10)]);
    await eventually(() => c.ackedSeq === 6n && c.bufferedBatches === 0);
    assert.equal(fc.rejected, [2n, 4n]);
    assert.is(total(fc), 40, "every batch but the two refused was counted");
    assert.is(c.rejectedBatches, 2);
    assert.equal(c.rejections.counts(), { CENTRAL_ORIGIN_NOT_DECLARED: 2 });
    assert.equal(rejected, [["CENTRAL_ORIGIN_NOT_DECLARED", 1], ["CENTRAL_ORIGIN_NOT_DECLARED", 1]]);
    assert.is(logs.filter((l) => l.fields?.code === "CENTRAL_ORIGIN_NOT_DECLARED").length, 1, "the reason is logged once per code");
    assert.is(c.connects, 1, "a reject never restarts the stream");
    c.send([win(1)]);
    await eventually(() => c.ackedSeq === 7n);
    assert.is(fc.batches.at(-1)!.rejectedBatches, 2n, "Batch.rejected_batches is cumulative");
  } finally {
    await c.shutdown();
    fc.close();
  }
});

test("a central that refuses every batch never trips the ack timeout into a reconnect loop", async () => {
  const fc = await startFakeCentral({ onBatch: () => ({ reject: { code: "CENTRAL_WINDOW_SKEW", reason: "too far ahead" } }) });
  const { c, logs } = client(fc, { ackTimeoutMs: 150 });
  try {
    c.start();
    await eventually(() => c.state === "connected");
    for (let i = 0; i < 8; i++) {
      c.send([win()]);
      await sleep(100);
    }
    await eventually(() => c.rejectedBatches === 8);
    assert.is(c.connects, 1);
    assert.is(c.bufferedBatches, 0);
    assert.is(logs.filter((l) => l.msg.startsWith("dropping")).length, 1);
  } finally {
    await c.shutdown();
    fc.close();
  }
});

for (const code of [grpc.status.UNAVAILABLE, grpc.status.INTERNAL, grpc.status.CANCELLED, grpc.status.DEADLINE_EXCEEDED]) {
  test(`a stream ended with ${grpc.status[code]} is transient: reconnect and replay, nothing dropped`, async () => {
    const fc = await startFakeCentral({ onBatch: (_b, seen) => (seen === 2 ? { end: { code, details: "try later" } } : "ack") });
    const { c } = client(fc);
    try {
      c.start();
      for (let i = 0; i < 3; i++) c.send([win(5)]);
      await eventually(() => c.ackedSeq === 3n && c.bufferedBatches === 0, 10_000);
      assert.is(total(fc), 15, "the batch the stream ended on was replayed and counted once");
      assert.is(c.rejectedBatches, 0);
      assert.ok(c.connects >= 2);
      assert.is(c.lastEnd?.kind, "transient");
    } finally {
      await c.shutdown();
      fc.close();
    }
  });
}

test("INVALID_ARGUMENT at Hello is a configuration error: logged as an error, retried only at the maximum backoff, send() still returns at once", async () => {
  const fc = await startFakeCentral({ refuseHello: { code: grpc.status.INVALID_ARGUMENT, details: "hello.node.isp must match ^[A-Za-z0-9]... [CENTRAL_BAD_MESSAGE]" } });
  const { c, logs } = client(fc, { maxBackoffMs: 1500 });
  try {
    c.start();
    await eventually(() => c.configError !== undefined);
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) c.send([win()]);
    assert.ok(performance.now() - t0 < 500, "send never waits");
    await sleep(1000);
    // With a transient ending the client would have retried ~5 times in this second (50 ms base).
    assert.ok(fc.hellos.length <= 2, `hellos ${fc.hellos.length}`);
    assert.match(c.configError!, /hello\.node\.isp/);
    const err = logs.find((l) => l.level === "error");
    assert.ok(err, "logged loudly");
    assert.match(err!.msg, /--isp/);
    assert.is(c.lastEnd?.kind, "config_error");
    assert.is(c.bufferedBatches, 100, "nothing dropped while the config is wrong");
  } finally {
    await c.shutdown();
    fc.close();
  }
});

test("RESOURCE_EXHAUSTED for a too-large message: the limit is learned, the held batch split under it, every request counted", async () => {
  // No limits in Welcome (an older central) and a real 8 KiB read limit: the 1 MiB default is too big.
  const fc = await startFakeCentral({ maxMessageBytes: 8192 });
  const { c } = client(fc);
  try {
    c.start();
    await eventually(() => c.state === "connected");
    const windows = Array.from({ length: 400 }, () => win(3));
    c.send(windows);
    await eventually(() => c.bufferedBatches === 0 && total(fc) === 1200, 10_000).catch((e) => {
      throw new Error(`${(e as Error).message}: counted ${total(fc)}, buffered ${c.bufferedBatches}, ${JSON.stringify(c.status())}`);
    });
    assert.ok(c.limits.maxMessageBytes <= 8192, `learned ${c.limits.maxMessageBytes}`);
    assert.ok(c.splitBatches > 0);
    assert.is(c.rejectedBatches, 0);
    assert.ok(c.connects <= 3, `connects ${c.connects}: no replay of the same too-big bytes`);
    assert.is(c.lastEnd?.kind, "too_large");
    for (const b of fc.batches) assert.ok(toBinary(SidecarMessageSchema, create(SidecarMessageSchema, { kind: { case: "batch", value: b } })).length <= 8192);
  } finally {
    await c.shutdown();
    fc.close();
  }
});

test("a window that no split can bring under the central's limit is dropped, counted as SIDECAR_MESSAGE_TOO_LARGE, and never replayed", async () => {
  const fc = await startFakeCentral({ maxMessageBytes: 1024 });
  const { c } = client(fc);
  try {
    c.start();
    await eventually(() => c.state === "connected");
    const huge = create(WindowSummarySchema, {
      origin: ORIGIN,
      startUnixMs: BigInt((t += 1000)),
      lengthMs: 1000,
      counts: { ok: 7n },
      ttfb: { boundsMs: Array.from({ length: 300 }, (_, i) => i + 1), counts: Array.from({ length: 301 }, () => 1n), count: 301n },
    });
    c.send([win(2), huge, win(2)]);
    await eventually(() => c.bufferedBatches === 0 && total(fc) === 4, 10_000);
    assert.equal(c.rejections.counts(), { [TOO_LARGE_CODE]: 1 });
    assert.ok(c.connects <= 3);
    c.send([win(1)]);
    await eventually(() => total(fc) === 5);
  } finally {
    await c.shutdown();
    fc.close();
  }
});

test("limits from Welcome: no batch over max windows, max exemplars or max bytes; each part its own seq; all counted", async () => {
  const fc = await startFakeCentral({ limits: { maxWindowsPerBatch: 10, maxExemplarsPerBatch: 5, maxMessageBytes: 4096 }, maxMessageBytes: 4096 });
  const { c } = client(fc);
  try {
    c.start();
    await eventually(() => c.state === "connected");
    const ex = Array.from({ length: 23 }, () => create(ExemplarSchema, { origin: ORIGIN, path: `/${"p".repeat(255)}`, method: "GET", timeUnixMs: 1n }));
    c.send(Array.from({ length: 95 }, () => win(1)), ex);
    await eventually(() => c.bufferedBatches === 0 && total(fc) === 95);
    assert.equal(c.limits, { maxMessageBytes: 4096, maxWindowsPerBatch: 10, maxExemplarsPerBatch: 5, maxOriginsPerNode: 1000 });
    for (const b of fc.batches) {
      assert.ok(b.windows.length <= 10 && b.exemplars.length <= 5, `batch ${b.seq}: ${b.windows.length} windows, ${b.exemplars.length} exemplars`);
      assert.ok(toBinary(SidecarMessageSchema, create(SidecarMessageSchema, { kind: { case: "batch", value: b } })).length <= 4096);
    }
    assert.is(fc.batches.reduce((n, b) => n + b.exemplars.length, 0), 23);
    assert.equal(fc.batches.map((b) => b.seq), fc.batches.map((_, i) => BigInt(i + 1)));
    assert.is(c.connects, 1, "nothing had to be refused");
  } finally {
    await c.shutdown();
    fc.close();
  }
});

test("an older central that ends the stream with INVALID_ARGUMENT on a bad batch: that batch is dropped after two streams, the rest flow", async () => {
  const fc = await startFakeCentral({
    onBatch: (b) => (b.seq === 2n ? { end: { code: grpc.status.INVALID_ARGUMENT, details: "batch.windows[0].origin was not declared [CENTRAL_BAD_MESSAGE]" } } : "ack"),
  });
  const { c } = client(fc);
  try {
    c.start();
    for (let i = 0; i < 4; i++) c.send([win(10)]);
    await eventually(() => c.bufferedBatches === 0 && c.ackedSeq === 4n, 10_000);
    assert.is(total(fc), 30);
    assert.equal(c.rejections.counts(), { CENTRAL_BAD_MESSAGE: 1 });
    assert.ok(c.connects <= 4, `connects ${c.connects}`);
  } finally {
    await c.shutdown();
    fc.close();
  }
});

test.run();
