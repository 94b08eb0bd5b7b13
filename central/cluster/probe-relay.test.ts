/**
 * ProbeOrigin across replicas (issue 16, item 5), with a real 3-server nats
 * cluster, 3 in-process centrals in cluster mode and real sidecars: a probe
 * asked on replica A reaches the sidecars connected to B and C (NATS
 * request/reply on each replica's subject), and a replica that cannot answer
 * gives a partial answer naming it. The centrals' NATS user has exactly
 * CENTRAL_NATS_PERMISSIONS.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Outcome } from "../../proto/gen/originwatch/v1/common_pb.js";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { CENTRAL_NATS_PERMISSIONS } from "./nats-permissions.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { type InProcessReplicas, startInProcessReplicas } from "../../tools/nats/in-process-replicas.js";
import { type Origin, startOrigin } from "../../tools/origin.js";
import { type Harness, startHarness } from "../../tools/test/sidecar-harness.js";
import { eventually } from "../../tools/test/proc.js";
import { IngestStream, hello } from "../../tools/test/ingest-client.js";

if (requireNats("probes across replicas")) {
  let cluster: NatsCluster;
  let reps: InProcessReplicas;
  let origin: Origin;
  let dir = "";
  const sidecars: Harness[] = [];

  test.before(async () => {
    // The centrals run as a user with exactly the recommended permissions (directory, relay and config included).
    cluster = await startNatsCluster({ servers: 3, users: [{ user: "central", password: "pw-central-probe-0123", permissions: CENTRAL_NATS_PERMISSIONS }] });
    await cluster.ready();
    reps = await startInProcessReplicas(cluster, 3);
    origin = await startOrigin();
    dir = await mkdtemp(join(tmpdir(), "ow-probe-relay-"));
    for (const [i, node, isp] of [[1, "edge-b", "isp-b"], [2, "edge-c", "isp-c"]] as const) {
      sidecars.push(await startHarness({ nodeId: node, isp, central: `http://${reps.centrals[i].address}`, stateDir: join(dir, node), origins: [`www.example=${origin.url}`] }));
    }
    await eventually(() => sidecars.every((h) => h.sc.stream.state === "connected"), 15_000);
  });

  test.after(async () => {
    for (const h of sidecars) await h.close();
    await reps?.close();
    await origin?.close();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("ProbeOrigin on A, where no sidecar is connected, reaches the sidecars on B and C and returns their attempts", async () => {
    assert.is(reps.centrals[0].ingest.sessions.size, 0);
    const before = origin.requests;
    const r = await eventually(async () => {
      const res = await reps.api(0).query.probeOrigin({ origin: "www.example", count: 2 });
      return res.results.length === 2 ? res : undefined;
    }, 10_000);
    const byNode = new Map(r!.results.map((x) => [x.nodeId, x]));
    for (const [node, isp] of [["edge-b", "isp-b"], ["edge-c", "isp-c"]]) {
      const a = byNode.get(node);
      assert.ok(a, `${node} answered`);
      assert.is(a!.error, "", `${node}: ${a!.error}`);
      assert.is(a!.isp, isp);
      assert.is(a!.attempts.length, 2);
      assert.ok(a!.attempts.every((t) => t.outcome === Outcome.OK && t.status === 200), JSON.stringify(a!.attempts));
    }
    assert.ok(origin.requests - before >= 4, "the probes reached the origin");
    // An ISP filter applies to remote sidecars too.
    const onlyC = await reps.api(0).query.probeOrigin({ origin: "www.example", isp: "isp-c", count: 1 });
    assert.equal(onlyC.results.map((x) => x.nodeId), ["edge-c"]);
  });

  test("a sidecar on B that never answers its probe is named with its replica; the others' answers come back in the same round", async () => {
    const mute = new IngestStream(reps.centrals[1].address);
    try {
      await mute.send(hello("edge-mute", ["www.example"], "isp-m"));
      await mute.until((got) => got.some((m) => m.kind.case === "welcome"));
      await eventually(() => reps.centrals[0].ingest.sessions.size === 0 && reps.api(0).query.probeOrigin({ origin: "www.example", isp: "isp-m", count: 1 }).then((r) => r.results.length === 1), 10_000);
      const r = await reps.api(0).query.probeOrigin({ origin: "www.example", count: 1 });
      const byNode = new Map(r.results.map((x) => [x.nodeId, x]));
      assert.equal([...byNode.keys()].sort(), ["edge-b", "edge-c", "edge-mute"]);
      assert.match(byNode.get("edge-mute")!.error, /^the sidecar on replica r1 did not answer within 2000 ms$/);
      assert.ok(mute.received.some((m) => m.kind.case === "probeRequest" && m.kind.value.probeId.startsWith("r0/")), "the relayed probe id names the asking replica");
      for (const n of ["edge-b", "edge-c"]) assert.is(byNode.get(n)!.attempts.length, 1, n);
    } finally {
      mute.close();
    }
  });

  test("a replica cut off from NATS gives a partial answer that names it; the other replica's sidecar still answers", async () => {
    await reps.connections[2].close();
    const r = await reps.api(0).query.probeOrigin({ origin: "www.example", count: 1 });
    const byNode = new Map(r.results.map((x) => [x.nodeId, x]));
    assert.is(byNode.get("edge-b")!.error, "");
    assert.is(byNode.get("edge-b")!.attempts.length, 1);
    const c = byNode.get("edge-c")!;
    assert.is(c.attempts.length, 0);
    assert.match(c.error, /^replica r2 did not answer/);
    // no responders (its subscription is gone) or, when the server has not yet noticed the closed connection, the timeout
    assert.match(c.error, /nothing listens on ow\.probe\.r2|within \d+ ms/, c.error);
  });
}

test.run();
