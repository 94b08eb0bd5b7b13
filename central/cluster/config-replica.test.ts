/**
 * Config across replicas (issue 16, item 4), with a real 3-server nats
 * cluster, 3 in-process centrals in cluster mode and real sidecars: a
 * SetConfig made through replica A reaches sidecars connected to B and C,
 * which ACK it; each ACK/NACK and applied version is visible from any replica;
 * a stale SetConfig is refused on every replica like on the embedded central.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Code, ConnectError } from "@connectrpc/connect";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { type InProcessReplicas, startInProcessReplicas } from "../../tools/nats/in-process-replicas.js";
import { type Origin, startOrigin } from "../../tools/origin.js";
import { type Harness, startHarness } from "../../tools/test/sidecar-harness.js";
import { eventually } from "../../tools/test/proc.js";

if (requireNats("config across replicas")) {
  let cluster: NatsCluster;
  let reps: InProcessReplicas;
  let origin: Origin;
  let dir = "";
  const sidecars: Harness[] = [];

  test.before(async () => {
    cluster = await startNatsCluster({ servers: 3 });
    await cluster.ready();
    reps = await startInProcessReplicas(cluster, 3);
    origin = await startOrigin();
    dir = await mkdtemp(join(tmpdir(), "ow-config-replica-"));
    // edge-b on replica 1 (B), edge-c on replica 2 (C) with a 500 ms first-byte timeout: stall_ms 1000 is bad for it only.
    sidecars.push(await startHarness({ nodeId: "edge-b", central: `http://${reps.centrals[1].address}`, stateDir: join(dir, "b"), origins: [`www.example=${origin.url}`] }));
    sidecars.push(await startHarness({ nodeId: "edge-c", central: `http://${reps.centrals[2].address}`, stateDir: join(dir, "c"), origins: [`www.example=${origin.url}`], firstByteTimeoutMs: 500 }));
    await eventually(() => sidecars.every((h) => h.sc.stream.state === "connected"), 15_000);
  });

  test.after(async () => {
    for (const h of sidecars) await h.close();
    await reps?.close();
    await origin?.close();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("a SetConfig through replica A is pushed by B and C to their sidecars, which ACK it; every replica shows the applied version", async () => {
    const r = await reps.api(0).config.setConfig({ config: { sampling: { successRate: 0.02, errorRate: 0.5 }, updatedBy: "ops" }, expectedVersion: 0n });
    assert.is(r.config!.version, 1n);
    await eventually(() => sidecars.every((h) => h.sc.directives.current.version === 1n), 10_000);
    assert.is(reps.centrals[1].ingest.sessions.has("edge-b"), true, "edge-b is on B, not A");
    assert.is(reps.centrals[0].ingest.sessions.size, 0, "A holds no session");
    for (let i = 0; i < 3; i++) {
      assert.is((await reps.api(i).config.getConfig({})).config!.version, 1n, `GetConfig on replica ${i}`);
      const nodes = await eventually(async () => {
        const list = (await reps.api(i).query.listNodes({})).nodes;
        const b = list.find((n) => n.nodeId === "edge-b");
        const c = list.find((n) => n.nodeId === "edge-c");
        return b?.appliedConfigVersion === 1n && c?.appliedConfigVersion === 1n ? { b, c } : undefined;
      }, 10_000);
      assert.is(nodes!.b!.lastNackReason, "");
    }
  });

  test("a stale SetConfig is refused on every replica with FAILED_PRECONDITION and a reason; the history is the same everywhere", async () => {
    for (let i = 0; i < 3; i++) {
      try {
        await reps.api(i).config.setConfig({ config: { windowMs: 1000 }, expectedVersion: 0n });
        assert.unreachable(`replica ${i} accepted a stale version`);
      } catch (err) {
        const e = ConnectError.from(err);
        assert.is(e.code, Code.FailedPrecondition, `replica ${i}`);
        assert.match(e.rawMessage, /expected_version 0 is not the current version/);
        assert.match(e.rawMessage, /CENTRAL_CONFIG_CONFLICT/);
      }
    }
    for (let i = 0; i < 3; i++) {
      const h = await reps.api(i).config.listConfigHistory({});
      assert.equal(
        h.configs.map((c) => c.version),
        [1n],
        `history on replica ${i}`,
      );
    }
  });

  test("a NACK from a sidecar on C is visible from A; the ACKing sidecar on B applies the version", async () => {
    await reps.api(0).config.setConfig({ config: { stallMs: 1000 }, expectedVersion: 1n });
    const c = await eventually(async () => {
      const n = (await reps.api(0).query.listNodes({})).nodes.find((x) => x.nodeId === "edge-c");
      return n?.lastNackReason ? n : undefined;
    }, 10_000);
    assert.match(c!.lastNackReason, /^version 2: stall_ms \(1000\) must be below the first-byte timeout \(500 ms\)/);
    assert.is(c!.appliedConfigVersion, 1n, "the NACKing node keeps its applied version");
    const b = await eventually(async () => {
      const n = (await reps.api(0).query.listNodes({})).nodes.find((x) => x.nodeId === "edge-b");
      return n?.appliedConfigVersion === 2n ? n : undefined;
    }, 10_000);
    assert.is(b!.lastNackReason, "");
    const rec = reps.centrals[0].fleetConfig.current();
    assert.is(rec.version, 2n);
  });
}

test.run();
