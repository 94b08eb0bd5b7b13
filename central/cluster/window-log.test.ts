/**
 * The window log against a real 3-server JetStream cluster: streams created
 * idempotently, one message per (batch, partition), dedup of a replayed batch,
 * publishing through a `kill -9` of the stream leader without loss, replay
 * from a stream sequence.
 */
import { create } from "@bufbuild/protobuf";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { NatsConnection } from "@nats-io/transport-node";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NodeIdentitySchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { BatchSchema, WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { ExemplarSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import type { PartitionBatch } from "../../proto/gen/originwatch/v1/cluster_pb.js";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { CentralError } from "../errors.js";
import { NATS_DEFAULTS } from "./nats-options.js";
import { partitionOf } from "./partition.js";
import { createWindowLogPublisher, ensureWindowStreams, readPartition, splitByPartition, windowMsgId, windowStream } from "./window-log.js";

const P = 4;
const LOG = { ...NATS_DEFAULTS, partitions: P };
const node = create(NodeIdentitySchema, { nodeId: "edge-1", isp: "isp-a", region: "eu" });

/** An origin name in partition p. */
function originIn(p: number, k = 0): string {
  for (let i = 0, found = 0; ; i++) {
    const o = `o${i}.example`;
    if (partitionOf(o, P) === p && found++ === k) return o;
  }
}

const windowOf = (origin: string, ok = 1) => create(WindowSummarySchema, { origin, startUnixMs: 1_700_000_000_000n, lengthMs: 1000, packedCounts: [ok] });
const batchOf = (seq: number, origins: string[]) => create(BatchSchema, { seq: BigInt(seq), windows: origins.map((o) => windowOf(o, seq)) });

test("splitByPartition: one share per partition touched, windows and exemplars in batch order", () => {
  const [a, b, a2] = [originIn(0), originIn(2), originIn(0, 1)];
  const batch = create(BatchSchema, {
    seq: 7n,
    windows: [windowOf(a, 1), windowOf(b, 2), windowOf(a2, 3)],
    exemplars: [create(ExemplarSchema, { origin: b, status: 502 })],
  });
  const shares = splitByPartition(batch, P);
  assert.equal([...shares.keys()].sort(), [0, 2]);
  assert.equal(shares.get(0)!.windows.map((w) => w.origin), [a, a2]);
  assert.equal(shares.get(0)!.exemplars, []);
  assert.equal(shares.get(2)!.windows.map((w) => w.origin), [b]);
  assert.is(shares.get(2)!.exemplars[0].status, 502);
  assert.is(splitByPartition(create(BatchSchema, { seq: 1n }), P).size, 0);
});

if (requireNats("window log")) {
  let cluster: NatsCluster;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  test.before(async () => {
    cluster = await startNatsCluster({ servers: 3 });
    await cluster.ready();
    nc = await cluster.connect();
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    await ensureWindowStreams(jsm, LOG);
  });
  test.after(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  const count = async (p: number) => (await jsm.streams.info(windowStream(p))).state.messages;

  test("ensureWindowStreams: P R3 streams, idempotent, limits updated, a replica with fewer partitions refused", async () => {
    await ensureWindowStreams(jsm, LOG);
    for (let p = 0; p < P; p++) {
      const si = await jsm.streams.info(windowStream(p));
      assert.equal(si.config.subjects, [`ow.win.${p}`]);
      assert.is(si.config.num_replicas, 3);
      assert.is(si.config.max_age, 15 * 60 * 1e9);
      assert.is(si.config.duplicate_window, 5 * 60 * 1e9);
    }
    await ensureWindowStreams(jsm, { ...LOG, dedupWindowMs: 120_000 });
    assert.is((await jsm.streams.info(windowStream(1))).config.duplicate_window, 120 * 1e9);
    await ensureWindowStreams(jsm, LOG);
    try {
      await ensureWindowStreams(jsm, { ...LOG, partitions: 2 });
      assert.unreachable("fewer partitions accepted");
    } catch (err) {
      assert.is((err as CentralError).code, "CENTRAL_BAD_CONFIG");
      assert.match((err as Error).message, /OW_WIN_[23].*--partitions 2/);
    }
  });

  test("one message per (batch, partition) with msgID node:seq:p; the same batch replayed is stored once", async () => {
    const pub = createWindowLogPublisher(js, { partitions: P });
    const origins = [0, 1, 2, 3].flatMap((p) => [originIn(p), originIn(p, 1)]);
    const before = await Promise.all([0, 1, 2, 3].map(count));
    const first = await pub.publish(node, batchOf(41, origins));
    assert.equal(first, { messages: 4, duplicates: 0 });
    const again = await pub.publish(node, batchOf(41, origins));
    assert.equal(again, { messages: 4, duplicates: 4 }, "the replay is acknowledged as a duplicate");
    const after = await Promise.all([0, 1, 2, 3].map(count));
    assert.equal(after, before.map((n) => n + 1), "one stored message per partition");
    const stored = await jsm.streams.getMessage(windowStream(3), { last_by_subj: "ow.win.3" });
    assert.is(stored!.header.get("Nats-Msg-Id"), windowMsgId("edge-1", 41, 3));
  });

  test("a partition reader replays from a stream sequence, in order, one message at a time", async () => {
    const pub = createWindowLogPublisher(js, { partitions: P });
    const o = originIn(1);
    const base = (await jsm.streams.info(windowStream(1))).state.last_seq;
    for (let s = 100; s < 120; s++) await pub.publish(node, batchOf(s, [o]));
    const got: Array<{ seq: number; batch: PartitionBatch }> = [];
    let inHandler = 0;
    let maxConcurrent = 0;
    const reader = await readPartition(js, 1, {
      fromSeq: base + 11,
      maxBuffered: 4,
      handler: async (batch, seq) => {
        maxConcurrent = Math.max(maxConcurrent, ++inHandler);
        await new Promise((r) => setTimeout(r, 5));
        got.push({ seq, batch });
        inHandler--;
      },
    });
    const deadline = Date.now() + 10_000;
    while (got.length < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await reader.stop();
    assert.equal(got.map((g) => g.seq), Array.from({ length: 10 }, (_, i) => base + 11 + i));
    assert.equal(got.map((g) => Number(g.batch.seq)), Array.from({ length: 10 }, (_, i) => 110 + i));
    assert.is(got[0].batch.node?.isp, "isp-a");
    assert.is(got[0].batch.partition, 1);
    assert.is(got[0].batch.windows[0].origin, o);
    assert.is(maxConcurrent, 1, "the handler is never entered twice at once");
    assert.is(reader.lastSeq(), base + 20);
  });

  test("a node's concurrent batches are stored in call order; after a failure the queued ones fail unpublished", async () => {
    const node2 = create(NodeIdentitySchema, { nodeId: "edge-2", isp: "isp-b", region: "us" });
    const pub = createWindowLogPublisher(js, { partitions: P });
    const o = originIn(0);
    const base = (await jsm.streams.info(windowStream(0))).state.last_seq;
    await Promise.all(Array.from({ length: 20 }, (_, i) => pub.publish(node2, batchOf(200 + i, [o]))));
    const got: number[] = [];
    const reader = await readPartition(js, 0, { fromSeq: base + 1, handler: (b) => void got.push(Number(b.seq)) });
    const deadline = Date.now() + 5_000;
    while (got.length < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await reader.stop();
    assert.equal(got, Array.from({ length: 20 }, (_, i) => 200 + i));

    // 8 partitions against a log of 4: an origin in partition 4..7 has no stream, its publish fails.
    const wide = createWindowLogPublisher(js, { partitions: 8, retryForMs: 500, ackTimeoutMs: 200 });
    const pick = (want: (p: number) => boolean) => Array.from({ length: 500 }, (_, i) => `w${i}.example`).find((x) => want(partitionOf(x, 8)))!;
    const [lost, fine] = [pick((p) => p >= 4), pick((p) => p < 4)];
    const before = await count(partitionOf(fine, 8));
    const r = await Promise.allSettled([wide.publish(node2, batchOf(300, [lost])), wide.publish(node2, batchOf(301, [fine]))]);
    assert.equal(r.map((x) => x.status), ["rejected", "rejected"]);
    for (const x of r) assert.is(((x as PromiseRejectedResult).reason as CentralError).code, "CENTRAL_NATS_UNAVAILABLE");
    assert.is(await count(partitionOf(fine, 8)), before, "the batch queued behind the failed one was not published");
    await wide.publish(node2, batchOf(300, [fine]));
    assert.is(await count(partitionOf(fine, 8)), before + 1, "a new call after the queue drained publishes");
  });

  test("publishing survives kill -9 of the stream leader: every batch acknowledged, none lost or doubled", async () => {
    const p = 2;
    const o = originIn(p);
    const pub = createWindowLogPublisher(js, { partitions: P, ackTimeoutMs: 2_000 });
    const leader = await cluster.streamLeader(windowStream(p));
    const base = (await jsm.streams.info(windowStream(p))).state.last_seq;
    const N = 60;
    let slowest = 0;
    for (let s = 1000; s < 1000 + N; s++) {
      if (s === 1000 + N / 3) await cluster.kill(leader);
      const t0 = Date.now();
      await pub.publish(node, batchOf(s, [o]));
      slowest = Math.max(slowest, Date.now() - t0);
    }
    process.stderr.write(`window log: longest publish across the leader kill ${slowest} ms\n`);
    assert.is.not(await cluster.streamLeader(windowStream(p)), leader);
    // Read back with the killed server restarted: on 2.9.10, creating a consumer right after the meta leader
    // died failed for up to ~30 s here (README, failures), which is not what this test is about.
    await cluster.restart(leader);
    await cluster.ready();
    const got: number[] = [];
    const reader = await readPartition(js, p, { fromSeq: base + 1, handler: (b) => void got.push(Number(b.seq)) });
    const deadline = Date.now() + 15_000;
    while (got.length < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    await reader.stop();
    assert.equal(got, Array.from({ length: N }, (_, i) => 1000 + i), "every batch once, in order");
  });
}

test.run();
