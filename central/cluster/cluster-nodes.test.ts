/**
 * ListNodes, ForgetNode and the node age-out alike on every replica (issue 16),
 * with a real 3-server nats cluster and 3 in-process centrals: a node whose
 * sidecar is connected to replica A is listed connected, on A, by A, B and C;
 * ForgetNode is refused on every replica while it is connected; once it left,
 * a forget on C is seen by every replica; the age-out does not forget a node
 * connected elsewhere, and a node aged out on one replica is gone from all.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Code, ConnectError } from "@connectrpc/connect";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { type InProcessReplicas, startInProcessReplicas } from "../../tools/nats/in-process-replicas.js";
import { FakeSidecar } from "../../tools/scenarios/fake-sidecar.js";
import { eventually } from "../../tools/test/proc.js";
import { Writable } from "node:stream";
import { runCtl } from "../../tools/ctl/ctl.js";

const DAY_MS = 24 * 3600_000;

if (requireNats("nodes across replicas")) {
  let cluster: NatsCluster;
  let reps: InProcessReplicas;
  const sidecars: FakeSidecar[] = [];

  /** "connected@replica" of a node as replica i lists it; "absent" when not listed. */
  const listed = async (i: number, nodeId: string) => {
    const n = (await reps.api(i).query.listNodes({})).nodes.find((x) => x.nodeId === nodeId);
    return n ? `${n.connected}@${n.replica}` : "absent";
  };
  const everywhere = async (nodeId: string) => Promise.all([0, 1, 2].map((i) => listed(i, nodeId)));
  const sidecar = (i: number, nodeId: string) => {
    const s = new FakeSidecar({ address: reps.centrals[i].address, nodeId, isp: "isp-a", region: "eu", origins: ["www.example"], traffic: () => ({ ok: 1 }) });
    s.start();
    sidecars.push(s);
    return s;
  };

  test.before(async () => {
    cluster = await startNatsCluster({ servers: 3 });
    await cluster.ready();
    reps = await startInProcessReplicas(cluster, 3);
  });

  test.after(async () => {
    for (const s of sidecars) s.close();
    await reps?.close();
    await cluster?.stop();
  });

  test("a node connected to A is listed connected on A by every replica; ForgetNode is refused on every replica until it leaves; a forget on C is seen by all", async () => {
    const s = sidecar(0, "edge-a");
    await eventually(async () => (await everywhere("edge-a")).every((x) => x === "true@r0"), 15_000);
    // `ctl nodes` on another replica names the replica holding the session.
    let text = "";
    const out = new Writable({ write: (c, _e, cb) => ((text += String(c)), cb()) });
    const code = await runCtl(["--central", reps.centrals[2].address, "nodes"], { out, err: out, env: {} });
    assert.is(code, 0, text);
    assert.match(text, /REPLICA/);
    assert.ok(/edge-a\s+isp-a\s+eu\s+yes \([^)]*\)\s+r0\s/.test(text), text);
    for (const i of [0, 1, 2]) {
      const err = await reps.api(i).query.forgetNode({ nodeId: "edge-a" }).then(() => undefined, (e: unknown) => ConnectError.from(e));
      assert.is(err?.code, Code.FailedPrecondition, `refused on replica ${i}`);
      assert.match(err!.rawMessage, /live session/);
    }
    s.close();
    await eventually(async () => (await everywhere("edge-a")).every((x) => x === "false@"), 15_000);
    await reps.api(2).query.forgetNode({ nodeId: "edge-a" });
    await eventually(async () => (await everywhere("edge-a")).every((x) => x === "absent"), 15_000);
  });

  test("the age-out keeps a node connected elsewhere, and a node aged out on one replica is gone from every replica", async () => {
    const s = sidecar(1, "edge-b");
    await eventually(async () => (await everywhere("edge-b")).every((x) => x === "true@r1"), 15_000);
    // Eight days from now: past the default 7-day node idle time on every replica's clock.
    const later = Date.now() + 8 * DAY_MS;
    assert.equal((await reps.centrals[2].ageOut(later)).nodes, [], "connected on B: kept by C's sweep");
    s.close();
    await eventually(async () => (await everywhere("edge-b")).every((x) => x === "false@"), 15_000);
    // Just disconnected: not idle on C (its record was seen with the session: the hello, the directory).
    assert.equal((await reps.centrals[2].ageOut(Date.now() + 60_000)).nodes, [], "not idle yet on C");
    assert.equal((await reps.centrals[2].ageOut(later)).nodes, ["edge-b"]);
    await eventually(async () => (await everywhere("edge-b")).every((x) => x === "absent"), 15_000);
  });

  test.run();
}
