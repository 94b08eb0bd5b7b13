/**
 * The window log against a real 3-server JetStream cluster: streams created
 * idempotently, the batches taken within the linger coalesced into one message
 * per partition (in order, split at the size cap, over max_payload one by
 * one), a node's later batch never stored over a failed earlier one,
 * publishing through a `kill -9` of the stream leader without loss, replay
 * from a stream sequence, the first (one batch per message) format still read.
 */
import { create } from "@bufbuild/protobuf";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { NatsConnection } from "@nats-io/transport-node";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NodeIdentitySchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { BatchSchema, WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { ExemplarSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { type PartitionBatch, PartitionBatchSchema } from "../../proto/gen/originwatch/v1/cluster_pb.js";
import { toBinary } from "@bufbuild/protobuf";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { CentralError } from "../errors.js";
import { NATS_DEFAULTS } from "./nats-options.js";
import { partitionOf } from "./partition.js";
import { ENTRIES_HEADER, createWindowLogPublisher, ensureWindowStreams, readPartition, splitByPartition, windowStream, windowSubject } from "./window-log.js";

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

  /** Every batch stored in partition p after stream seq `after`, as [stream seq, node, batch seq], read back. */
  async function readBack(p: number, after: number, want: number): Promise<Array<[number, string, number]>> {
    const got: Array<[number, string, number]> = [];
    const reader = await readPartition(js, p, { fromSeq: after + 1, handler: (bs, seq) => void got.push(...bs.map((b) => [seq, b.node!.nodeId, Number(b.seq)] as [number, string, number])) });
    const deadline = Date.now() + 10_000;
    while (got.length < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    await reader.stop();
    return got;
  }

  test("the batches taken within the linger go out as one message per partition, in call order, with a per-message msgID", async () => {
    const pub = createWindowLogPublisher(js, { partitions: P, lingerMs: 150, name: "r-test" });
    const nodes = ["edge-a", "edge-b", "edge-c"].map((id) => create(NodeIdentitySchema, { nodeId: id, isp: "isp-a", region: "eu" }));
    const origins = [0, 1, 2, 3].flatMap((p) => [originIn(p), originIn(p, 1)]);
    const before = await Promise.all([0, 1, 2, 3].map(count));
    const t0 = Date.now();
    const outs = await Promise.all(nodes.flatMap((n, i) => [pub.publish(n, batchOf(50 + i, origins)), pub.publish(n, batchOf(60 + i, origins.slice(0, 2)))]));
    assert.ok(Date.now() - t0 >= 140, "sent once the linger ended");
    assert.equal(outs.map((o) => o.messages), [4, 1, 4, 1, 4, 1], "each batch names the messages that carry its shares");
    const after = await Promise.all([0, 1, 2, 3].map(count));
    assert.equal(after, before.map((n) => n + 1), "one message per partition for all six batches");
    const stored = await jsm.streams.getMessage(windowStream(0), { last_by_subj: "ow.win.0" });
    assert.is(stored!.header.get(ENTRIES_HEADER), "6");
    assert.match(stored!.header.get("Nats-Msg-Id"), /^r-test\.[A-Za-z0-9_-]+:\d+:0$/);
    const got = await readBack(0, before[0], 6);
    assert.equal(got.map(([, n, s]) => `${n}:${s}`), ["edge-a:50", "edge-a:60", "edge-b:51", "edge-b:61", "edge-c:52", "edge-c:62"], "call order, a node's seqs ascending");
    assert.ok(got.every(([seq]) => seq === before[0] + 1), "one stream sequence names them all");

    // A replay (the same node and seqs again, an ingest failover) is a new message: the owners' marks drop it.
    await pub.publish(nodes[0], batchOf(50, origins));
    assert.equal(await Promise.all([0, 1, 2, 3].map(count)), after.map((n) => n + 1));
  });

  test("a message that would grow past the size cap goes early; a node's batch waits for its in-flight message", async () => {
    const pub = createWindowLogPublisher(js, { partitions: P, lingerMs: 1_500, maxMessageBytes: 600 });
    const o = originIn(3);
    const before = await count(3);
    const t0 = Date.now();
    const many = Array.from({ length: 24 }, (_, i) => create(BatchSchema, { seq: BigInt(500 + i), windows: Array.from({ length: 3 }, () => windowOf(o, i)) }));
    await Promise.all(many.map((b) => pub.publish(node, b)));
    assert.ok(Date.now() - t0 < 4_000, `full messages go at once, only the last one waits for the 1.5 s linger (${Date.now() - t0} ms)`);
    const stored = (await count(3)) - before;
    assert.ok(stored >= 4 && stored < 24, `several batches per message, several messages (${stored})`);
    const got = await readBack(3, before, 24);
    assert.equal(got.map(([, , s]) => s), many.map((b) => Number(b.seq)), "every batch once, in order");
  });

  test("over the servers' max_payload a message is sent one batch at a time; a batch too large alone fails alone", async () => {
    // The servers' max_payload is 1 MiB: three ~400 KB batches (14,000 windows) coalesce into one ~1.2 MB message, refused, then sent one by one.
    const pub = createWindowLogPublisher(js, { partitions: P, lingerMs: 100, maxMessageBytes: 4 * 1024 * 1024 });
    const o = originIn(2);
    const big = (seq: number, n: number) => create(BatchSchema, { seq: BigInt(seq), windows: Array.from({ length: n }, (_, i) => windowOf(`${o}`, i + 1)) });
    const nodeB = create(NodeIdentitySchema, { nodeId: "edge-big", isp: "isp-a", region: "eu" });
    const before = await count(2);
    
    const outs = await Promise.allSettled([big(701, 14_000), big(702, 14_000), big(703, 14_000)].map((b, i) => pub.publish(i === 1 ? nodeB : node, b)));
    assert.equal(outs.map((x) => x.status), ["fulfilled", "fulfilled", "fulfilled"], String(outs.map((x) => (x as PromiseRejectedResult).reason)));
    assert.is((await count(2)) - before, 3, "one message each");


    const huge = await Promise.allSettled([pub.publish(nodeB, big(704, 40_000)), pub.publish(node, batchOf(705, [o]))]);
    assert.is(huge[0].status, "rejected");
    assert.is(((huge[0] as PromiseRejectedResult).reason as CentralError).code, "CENTRAL_BATCH_TOO_LARGE");
    assert.is(huge[1].status, "fulfilled", "another node's batch in the same round is stored");
  });

  test("a message of the first format (one PartitionBatch, no entries header) is still read", async () => {
    const before = (await jsm.streams.info(windowStream(1))).state.last_seq;
    const old = create(PartitionBatchSchema, { node, seq: 9n, partition: 1, windows: [windowOf(originIn(1), 4)] });
    await js.publish(windowSubject(1), toBinary(PartitionBatchSchema, old), { msgID: "edge-1:9:1" });
    const got = await readBack(1, before, 1);
    assert.equal(got, [[before + 1, "edge-1", 9]]);
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
      handler: async (batches, seq) => {
        maxConcurrent = Math.max(maxConcurrent, ++inHandler);
        await new Promise((r) => setTimeout(r, 5));
        assert.is(batches.length, 1, "published one at a time: one batch per message");
        got.push({ seq, batch: batches[0] });
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

  test("a node's concurrent batches are stored in call order; a batch behind a failed one fails, and is not published once that one was sent", async () => {
    const node2 = create(NodeIdentitySchema, { nodeId: "edge-2", isp: "isp-b", region: "us" });
    const pub = createWindowLogPublisher(js, { partitions: P });
    const o = originIn(0);
    const base = (await jsm.streams.info(windowStream(0))).state.last_seq;
    await Promise.all(Array.from({ length: 20 }, (_, i) => pub.publish(node2, batchOf(200 + i, [o]))));
    const got = await readBack(0, base, 20);
    assert.equal(got.map(([, , s]) => s), Array.from({ length: 20 }, (_, i) => 200 + i));

    // 8 partitions against a log of 4: an origin in partition 4..7 has no stream, its publish fails.
    const wide = createWindowLogPublisher(js, { partitions: 8, retryForMs: 500, ackTimeoutMs: 200 });
    const pick = (want: (p: number) => boolean) => Array.from({ length: 500 }, (_, i) => `w${i}.example`).find((x) => want(partitionOf(x, 8)))!;
    const [lost, fine] = [pick((p) => p >= 4), pick((p) => p < 4)];
    const fineP = partitionOf(fine, 8);
    // Same round: 301's share is stored (another partition's message), but 301 fails with 300.
    let before = await count(fineP);
    let r = await Promise.allSettled([wide.publish(node2, batchOf(300, [lost])), wide.publish(node2, batchOf(301, [fine]))]);
    assert.equal(r.map((x) => x.status), ["rejected", "rejected"]);
    for (const x of r) assert.is(((x as PromiseRejectedResult).reason as CentralError).code, "CENTRAL_NATS_UNAVAILABLE");
    assert.is(await count(fineP), before + 1, "stored, not acknowledged: the replay is dropped by the owner's mark");
    // 303 taken after 302's message was sent: it waits for it, and is not published when it fails.
    before = await count(fineP);
    const first = wide.publish(node2, batchOf(302, [lost]));
    await new Promise((x) => setImmediate(x));
    await new Promise((x) => setImmediate(x));
    r = await Promise.allSettled([first, wide.publish(node2, batchOf(303, [fine]))]);
    assert.equal(r.map((x) => x.status), ["rejected", "rejected"]);
    assert.is(await count(fineP), before, "the batch queued behind the failed one was not published");
    await wide.publish(node2, batchOf(302, [fine]));
    assert.is(await count(fineP), before + 1, "a new call after the queue drained publishes");
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
    const reader = await readPartition(js, p, { fromSeq: base + 1, handler: (bs) => void got.push(...bs.map((b) => Number(b.seq))) });
    const deadline = Date.now() + 15_000;
    while (got.length < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    await reader.stop();
    assert.equal(got, Array.from({ length: N }, (_, i) => 1000 + i), "every batch once, in order");
  });
}

test.run();
