/**
 * Snapshot + replay against a real 3-server cluster: an owner applies the
 * window log with high-water marks and snapshots part-way; a new owner claims
 * the snapshot, replays from its stream seq and ends with totals that count
 * every (node, seq) exactly once — replayed batches (stored again: the
 * ingest's msgIDs name its messages, not batches) included. Writes under an older lease are fenced; a stale
 * save that slipped in anyway is overwritten by the newer lease's next save.
 */
import { create } from "@bufbuild/protobuf";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { NatsConnection } from "@nats-io/transport-node";
import { type JetStreamClient, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { NodeIdentitySchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { BatchSchema, WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import type { PartitionBatch } from "../../proto/gen/originwatch/v1/cluster_pb.js";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { CentralError } from "../errors.js";
import { HighWaterMarks } from "./high-water.js";
import { NATS_DEFAULTS } from "./nats-options.js";
import { SnapshotStore } from "./snapshot.js";
import { createWindowLogPublisher, ensureWindowStreams, readPartition, windowStream } from "./window-log.js";

type Totals = Record<string, number>;

/** A minimal partition owner: exactly-once totals of requests per origin. */
class Owner {
  constructor(
    public hwm = new HighWaterMarks(),
    public totals: Totals = {},
    public seq = 0,
  ) {}
  apply(batches: readonly PartitionBatch[], streamSeq: number): void {
    for (const b of batches) {
      if (this.hwm.accept(b.node!.nodeId, b.seq)) {
        for (const w of b.windows) this.totals[w.origin] = (this.totals[w.origin] ?? 0) + w.packedCounts.reduce((a, x) => a + x, 0);
      }
    }
    this.seq = streamSeq;
  }
}

/** Applies stream seqs fromSeq..lastSeq (nothing after, though the reader may have pulled more). */
async function readUntil(js: JetStreamClient, fromSeq: number, lastSeq: number, owner: Owner): Promise<void> {
  const reader = await readPartition(js, 0, { fromSeq, handler: (b, s) => (s <= lastSeq ? owner.apply(b, s) : undefined) });
  const deadline = Date.now() + 10_000;
  while (reader.lastSeq() < lastSeq && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await reader.stop();
  assert.is(owner.seq, lastSeq);
}

if (requireNats("partition snapshots")) {
  let cluster: NatsCluster;
  let nc: NatsConnection;
  test.before(async () => {
    cluster = await startNatsCluster({ servers: 3 });
    await cluster.ready();
    nc = await cluster.connect();
  });
  test.after(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  test("a new owner loads the snapshot, replays from its seq and counts every batch exactly once; writes under an older lease are fenced", async () => {
    const js = jetstream(nc);
    await ensureWindowStreams(await jetstreamManager(nc), { ...NATS_DEFAULTS, partitions: 1, dedupWindowMs: 1_000 });
    const pub = createWindowLogPublisher(js, { partitions: 1 });
    const nodes = ["edge-a", "edge-b"].map((id) => create(NodeIdentitySchema, { nodeId: id, isp: "isp", region: "r" }));
    const batch = (seq: number, ok: number) => create(BatchSchema, { seq: BigInt(seq), windows: [create(WindowSummarySchema, { origin: "shop.example", lengthMs: 1000, packedCounts: [ok] }), create(WindowSummarySchema, { origin: "api.example", lengthMs: 1000, packedCounts: [1] })] });
    const expected: Totals = { "shop.example": 0, "api.example": 0 };
    for (let s = 1; s <= 20; s++) {
      for (const n of nodes) {
        await pub.publish(n, batch(s, s));
        expected["shop.example"] += s;
        expected["api.example"] += 1;
      }
      if (s === 8) await pub.publish(nodes[0], batch(3, 3)); // a replay (an ingest failover): stored again, the marks drop it
    }
    await new Promise((r) => setTimeout(r, 1_200));
    await pub.publish(nodes[1], batch(5, 5)); // another replay, later
    await pub.publish(nodes[0], batch(21, 21)); // one more new batch after it
    expected["shop.example"] += 21;
    expected["api.example"] += 1;
    const last = (await (await jetstreamManager(nc)).streams.info(windowStream(0))).state.last_seq;
    assert.is(last, 20 * 2 + 3, "one message per batch (published one at a time), the replays stored too");

    const store = await SnapshotStore.open<Totals>(js, { replicas: 3 });
    const a = new Owner();
    const claimA = await store.claim(0, "worker-a", 11);
    assert.is(claimA.snapshot, undefined, "nothing to load yet");
    await readUntil(js, 1, 25, a);
    const revA = await store.save({ partition: 0, streamSeq: a.seq, hwm: a.hwm.toRecord(), state: a.totals, owner: "worker-a", leaseRevision: 11, atMs: Date.now() }, claimA.revision);
    await readUntil(js, a.seq + 1, 30, a); // applied after the snapshot, then "crashes" without saving

    const claimB = await store.claim(0, "worker-b", 12);
    assert.ok(claimB.snapshot);
    assert.is(claimB.snapshot!.streamSeq, 25);
    assert.is(claimB.snapshot!.owner, "worker-a");
    const b = new Owner(HighWaterMarks.fromRecord(claimB.snapshot!.hwm), { ...claimB.snapshot!.state }, claimB.snapshot!.streamSeq);
    await readUntil(js, b.seq + 1, last, b);
    assert.equal(b.totals, expected, "every (node, seq) counted once");

    // nats-server < 2.9.21 can accept a stale save racing the claim (nats-io/nats-server#4320): what it leaves behind
    await (await new Kvm(js).open("OW_SNAPSHOTS")).put("s.0", JSON.stringify({ partition: 0, streamSeq: a.seq, hwm: a.hwm.toRecord(), state: a.totals, owner: "worker-a", leaseRevision: 11, atMs: 0 }));
    const revB = await store.save({ partition: 0, streamSeq: b.seq, hwm: b.hwm.toRecord(), state: b.totals, owner: "worker-b", leaseRevision: 12, atMs: Date.now() }, claimB.revision);
    for (const stale of [() => store.save({ partition: 0, streamSeq: a.seq, hwm: a.hwm.toRecord(), state: a.totals, owner: "worker-a", leaseRevision: 11, atMs: Date.now() }, revA), () => store.claim(0, "worker-old", 10)]) {
      try {
        await stale();
        assert.unreachable("a write under an older lease went through");
      } catch (err) {
        assert.is((err as CentralError).code, "CENTRAL_PARTITION_FENCED", (err as Error).message);
      }
    }
    const c = await store.claim(0, "worker-c", 13);
    assert.is(c.snapshot?.owner, "worker-b", "the newer lease's save overwrote the stale one");
    assert.is(c.snapshot?.streamSeq, last);
    assert.equal(c.snapshot?.state, expected);
    assert.ok(c.revision > revB);
  });
}

test.run();
