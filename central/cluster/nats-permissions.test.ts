/**
 * The permissions the README recommends are enough for every cluster module
 * (and no more than the module needs: a core subscription to the window log is
 * refused), on a real cluster whose only client user has exactly them.
 */
import { create } from "@bufbuild/protobuf";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NodeIdentitySchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { ConfigSchema } from "../../proto/gen/originwatch/v1/config_pb.js";
import { BatchSchema, WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { ConfigKv } from "./config-kv.js";
import { NATS_DEFAULTS } from "./nats-options.js";
import { CENTRAL_NATS_PERMISSIONS } from "./nats-permissions.js";
import { openLeaseBucket, startPartitionLeases } from "./partition-lease.js";
import { SnapshotStore } from "./snapshot.js";
import { createWindowLogPublisher, ensureWindowStreams, readPartition } from "./window-log.js";

if (requireNats("nats permissions")) {
  test("a user with only CENTRAL_NATS_PERMISSIONS runs the window log, leases, config and snapshots; a raw subscription to ow.win.> is refused", async () => {
    const cluster = await startNatsCluster({ servers: 3, users: [{ user: "central", password: "pw-central-0123", permissions: CENTRAL_NATS_PERMISSIONS }] });
    const nc = await cluster.connect();
    try {
      await cluster.ready();
      const js = jetstream(nc);
      await ensureWindowStreams(await jetstreamManager(nc), { ...NATS_DEFAULTS, partitions: 2 });
      const node = create(NodeIdentitySchema, { nodeId: "edge-1", isp: "i", region: "r" });
      const out = await createWindowLogPublisher(js, { partitions: 2 }).publish(node, create(BatchSchema, { seq: 1n, windows: [create(WindowSummarySchema, { origin: "a.example", packedCounts: [1] })] }));
      assert.is(out.messages, 1);
      const seen: bigint[] = [];
      for (const q of [0, 1]) {
        const r = await readPartition(js, q, { fromSeq: 1, handler: (bs) => void seen.push(...bs.map((b) => b.seq)) });
        const deadline = Date.now() + 1_500;
        while (r.lastSeq() < 1 && Date.now() < deadline) await new Promise((x) => setTimeout(x, 20));
        await r.stop();
      }
      assert.equal(seen, [1n], "read back from its partition");

      const kv = await openLeaseBucket(js, { ttlMs: 5_000, replicas: 3 });
      const owned: number[] = [];
      const leases = startPartitionLeases(kv, { workerId: "w1", partitions: 2, ttlMs: 5_000, onAcquire: (x) => void owned.push(x), onRelease: () => {} });
      await leases.tick();
      await leases.tick();
      assert.equal(leases.owned(), [0, 1]);
      await leases.stop();

      const configs = await ConfigKv.open(js, { replicas: 3, replica: "A" });
      const changed: bigint[] = [];
      configs.on("changed", (c) => changed.push(c.version));
      await configs.set(create(ConfigSchema, { windowMs: 1000 }), 0n);
      await configs.recordAck("edge-1", { version: 1n, accepted: true, reason: "" });
      assert.is((await configs.nodes()).length, 1);
      assert.equal(changed, [1n]);
      configs.close();

      const snaps = await SnapshotStore.open<{ n: number }>(js, { replicas: 3 });
      const claim = await snaps.claim(0, "w1", 1);
      await snaps.save({ partition: 0, streamSeq: 1, hwm: {}, state: { n: 1 }, owner: "w1", leaseRevision: 1, atMs: 0 }, claim.revision);

      const sub = nc.subscribe("ow.win.>");
      let err: unknown;
      try {
        for await (const _ of sub) break;
      } catch (e) {
        err = e;
      }
      assert.match(String(err), /Permissions Violation/i);
    } finally {
      await nc.close().catch(() => undefined);
      await cluster.stop();
    }
  });
}

test.run();
