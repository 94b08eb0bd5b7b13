/**
 * The ingest caps on a real central (small values, so each is reached
 * quickly): nodes in total, origins in total and per node, the per-node
 * window throttle across streams, and probe results only from the node asked.
 * Over a cap: refused with a clear status or a BatchReject, and counted.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { create, toBinary } from "@bufbuild/protobuf";
import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { Outcome } from "../../proto/gen/originwatch/v1/common_pb.js";
import { type ProbeResult, type SidecarMessage, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { IngestStream, batch, hello, win } from "../../tools/test/ingest-client.js";
import type { CentralConfig } from "../config.js";
import { type Central, startCentral } from "../main.js";
import { MAX_OUTBOUND } from "./ingest-service.js";

async function withCentral(partial: Partial<CentralConfig>, fn: (c: Central) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "ow-caps-"));
  const c = await startCentral({ listen: "127.0.0.1:0", data: dir, ...partial }, pino({ level: "silent" }));
  try {
    await fn(c);
  } finally {
    await c.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const welcomed = async (s: IngestStream) => (await s.until((g) => g.length >= 1))[0].kind.case === "welcome";

test("nodes over --max-nodes: a new node's hello is refused RESOURCE_EXHAUSTED and counted; known nodes still come back", () =>
  withCentral({ maxNodes: 2 }, async (c) => {
    const streams = ["n1", "n2"].map((id) => new IngestStream(c.address));
    await streams[0].send(hello("n1", ["a.example"]));
    await streams[1].send(hello("n2", ["a.example"]));
    for (const s of streams) assert.ok(await welcomed(s));
    const third = new IngestStream(c.address);
    await third.send(hello("n3", ["a.example"]));
    const end = await third.ended;
    assert.is(end.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(end.details, /at most 2 nodes \(--max-nodes\) and node n3 is new \[CENTRAL_NODE_LIMIT\]/);
    assert.is(c.ingest.stats().refusedHellos, 1);
    assert.is(c.query.nodes.has("n3"), false);
    streams[0].close();
    const back = new IngestStream(c.address);
    await back.send(hello("n1", ["a.example"]));
    assert.ok(await welcomed(back), "a node the central knows is not new");
    for (const s of [...streams, third, back]) s.close();
  }),
);

test("origins over --max-origins: a batch that would add one too many is rejected CENTRAL_ORIGIN_LIMIT and counted; known origins keep counting", () =>
  withCentral({ maxOrigins: 4, maxOriginsPerNode: 3 }, async (c) => {
    const a = new IngestStream(c.address);
    await a.send(hello("o1", ["a.example", "b.example", "c.example"]), batch(1, { windows: [win("a.example"), win("b.example"), win("c.example")] }));
    await a.until(() => a.acks().includes(1n));
    const b = new IngestStream(c.address);
    await b.send(
      hello("o2", ["c.example", "d.example", "e.example"]),
      batch(1, { windows: [win("d.example"), win("e.example")] }), // 3 + 2 > 4
      batch(2, { windows: [win("d.example", { ok: 2n })] }), // 4: fits
      batch(3, { windows: [win("e.example")] }), // 5th
      batch(4, { windows: [win("c.example", { ok: 5n })] }), // known
    );
    await b.until(() => b.acks().includes(4n));
    assert.equal(b.rejects().map((r) => [r.seq, r.code]), [
      [1n, "CENTRAL_ORIGIN_LIMIT"],
      [3n, "CENTRAL_ORIGIN_LIMIT"],
    ]);
    assert.match(b.rejects()[0].reason, /would add 2 new origins .* more than 4 \(--max-origins\)/);
    assert.is(c.ingest.stats().origins, 4);
    assert.is(c.ingest.stats().rejectedByCode.CENTRAL_ORIGIN_LIMIT, 2);
    assert.is(c.query.totals.has("e.example"), false);
    assert.is(c.query.totals.get("c.example")!.requests, 6n);
    assert.is(c.query.nodes.get("o2")!.rejectedBatches, 2);
    // Forgetting an origin frees its place under the cap.
    c.ingest.forgetOrigin("a.example");
    await b.send(batch(5, { windows: [win("e.example", { ok: 3n })] }));
    await b.until(() => b.acks().includes(5n));
    assert.is(c.query.totals.get("e.example")!.requests, 3n);
    a.close();
    b.close();
  }),
);

test("the window throttle is per node across its streams: a reconnect does not refill it; a batch larger than the bucket is rejected at once", () =>
  withCentral({ ingestRatePerSec: 100, ingestBurst: 100 }, async (c) => {
    const hundred = () => Array.from({ length: 100 }, () => win("t.example"));
    const s1 = new IngestStream(c.address);
    await s1.send(hello("t1", ["t.example"]), batch(1, { windows: hundred() }));
    await s1.until(() => s1.acks().includes(1n));
    s1.close();
    // A new stream of the same node at once: its bucket is still empty, so 100 windows wait ~1 s.
    const s2 = new IngestStream(c.address);
    await s2.send(hello("t1", ["t.example"]));
    await s2.until((g) => g.length >= 1);
    const sentAt = Date.now();
    await s2.send(batch(2, { windows: hundred() }));
    await s2.until(() => s2.acks().includes(2n));
    assert.ok(Date.now() - sentAt >= 600, `acked after ${Date.now() - sentAt} ms: the reconnect refilled the bucket`);
    // Another node has its own bucket.
    const other = new IngestStream(c.address);
    await other.send(hello("t2", ["t.example"]), batch(1, { windows: hundred() }));
    await other.until(() => other.acks().includes(1n));
    // 101 windows can never fit a bucket of 100: refused at once, not waited for.
    await s2.send(batch(3, { windows: [...hundred(), win("t.example")] }), batch(4, { windows: [win("t.example")] }));
    await s2.until(() => s2.rejects().length === 1);
    assert.equal(s2.rejects().map((r) => [r.seq, r.code]), [[3n, "CENTRAL_BATCH_TOO_LARGE"]]);
    const w = s2.received[0].kind;
    if (w.case === "welcome") assert.is(w.value.limits?.maxWindowsPerBatch, 100, "Welcome tells the batch cap the bucket allows");
    await s2.until(() => s2.acks().includes(4n));
    assert.is(c.query.totals.get("t.example")!.requests, 301n);
    s2.close();
    other.close();
  }),
);

test("a node may only answer a probe sent to it: others, replays and malformed results are refused and counted", () =>
  withCentral({}, async (c) => {
    const p1 = new IngestStream(c.address);
    const p2 = new IngestStream(c.address);
    await p1.send(hello("p1", ["probe.example"]));
    await p2.send(hello("p2", ["probe.example"]));
    await p1.until((g) => g.length >= 1);
    await p2.until((g) => g.length >= 1);
    const accepted: Array<[string, ProbeResult]> = [];
    c.ingest.on("probe-result", (s, r) => accepted.push([s.node!.nodeId, r]));
    c.ingest.sessions.get("p1")!.send({ case: "probeRequest", value: { probeId: "probe-1", origin: "probe.example", method: "HEAD", path: "/", count: 3, timeoutMs: 1000 } });
    await p1.until((g) => g.some((m) => m.kind.case === "probeRequest"));
    const result = (probeId: string, origin: string, attempts: Array<{ outcome: Outcome; status: number; ttfbMs: number }>) =>
      create(SidecarMessageSchema, { kind: { case: "probeResult", value: { probeId, origin, attempts } } });
    const ok = { outcome: Outcome.OK, status: 200, ttfbMs: 5 };
    await p2.send(result("probe-1", "probe.example", [ok, ok, ok])); // another node's probe
    await p1.send(
      result("probe-9", "probe.example", [ok]), // never sent
      result("probe-1", "other.example", [ok]), // wrong origin
      result("probe-1", "probe.example", [ok, ok, ok, ok]), // more attempts than asked
      result("probe-1", "probe.example", [{ ...ok, ttfbMs: Number.NaN }]),
      result("probe-1", "probe.example", [{ ...ok, outcome: 99 as Outcome }]),
      result("probe-1", "probe.example", [ok, ok, ok]), // the real answer
      result("probe-1", "probe.example", [ok, ok, ok]), // answered twice
      batch(1, { windows: [win("probe.example")] }),
    );
    await p1.until(() => p1.acks().includes(1n));
    await p2.send(batch(1, { windows: [win("probe.example")] }));
    await p2.until(() => p2.acks().includes(1n));
    assert.equal(accepted.map(([n, r]) => [n, r.probeId, r.attempts.length]), [["p1", "probe-1", 3]]);
    assert.is(c.query.nodes.get("p1")!.refusedProbeResults, 6);
    assert.is(c.query.nodes.get("p2")!.refusedProbeResults, 1);
    assert.is(c.ingest.stats().refusedProbeResults, 7);
    p1.close();
    p2.close();
  }),
);

test("a sidecar that sends but never reads its acks is ended once MAX_OUTBOUND messages wait: nothing piles up", () =>
  withCentral({}, async (c) => {
    // A raw HTTP/2 gRPC stream that is never read: its flow-control window
    // fills, the central's writes stop, and its acks would queue up.
    const h2 = http2.connect(`http://${c.address}`);
    const req = h2.request({ ":method": "POST", ":path": "/originwatch.v1.IngestService/Stream", "content-type": "application/grpc", te: "trailers" });
    req.pause();
    req.on("error", () => {});
    const frame = (m: SidecarMessage) => {
      const b = toBinary(SidecarMessageSchema, m);
      const head = Buffer.alloc(5);
      head.writeUInt32BE(b.length, 1);
      return Buffer.concat([head, b]);
    };
    req.write(frame(hello("deaf-1", ["deaf.example"])));
    for (let i = 1; i <= 3 * MAX_OUTBOUND; i++) req.write(frame(batch(i)));
    const deadline = Date.now() + 20_000;
    while (!c.ingest.sessions.get("deaf-1")?.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const session = c.ingest.sessions.get("deaf-1");
    assert.ok(session?.closed, "the session was ended");
    assert.ok(session!.outbound.size <= MAX_OUTBOUND);
    const seen = c.query.nodes.get("deaf-1")!.lastSeenMs;
    await new Promise((r) => setTimeout(r, 500));
    assert.is(c.query.nodes.get("deaf-1")!.lastSeenMs, seen, "nothing more is read from it");
    req.close();
    h2.destroy();
  }),
);

test.run();
