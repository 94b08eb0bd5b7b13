/**
 * GetOrigin's per-ISP/region/node breakdown in cluster mode (issue 16): on a
 * real 3-server nats cluster whose only user has exactly the least
 * permissions, 3 in-process centrals, fake sidecars on one replica and the
 * origin's partition owned by another: every replica answers GetOrigin with
 * the owner's breakdown; with the owner cut off from NATS, GetOrigin still
 * answers (state, totals) with the breakdown empty and `breakdown_note` saying
 * the owner did not answer; once another replica owns the partition, the
 * breakdown is back.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { type InProcessReplicas, startInProcessReplicas } from "../../tools/nats/in-process-replicas.js";
import { FakeSidecar } from "../../tools/scenarios/fake-sidecar.js";
import { eventually } from "../../tools/test/proc.js";
import { CENTRAL_NATS_PERMISSIONS } from "./nats-permissions.js";
import { partitionOf } from "./partition.js";

const P = 4;
const ORIGIN = "img.example";

if (requireNats("origin breakdown")) {
  let cluster: NatsCluster;
  let reps: InProcessReplicas;
  const sidecars: FakeSidecar[] = [];

  const live = () => [0, 1, 2].filter((i) => !reps.cutOff.has(i));
  /** "isps/regions/nodes|note" of GetOrigin on replica i. */
  const asked = async (i: number) => {
    const r = await reps.api(i).query.getOrigin({ origin: ORIGIN });
    const o = r.origin!;
    return `${o.isps.map((x) => x.key).sort().join(",")}/${o.regions.map((x) => x.key).sort().join(",")}/${o.nodes.length}|${r.breakdownNote}`;
  };

  test.before(async () => {
    cluster = await startNatsCluster({ servers: 3, users: [{ user: "central", password: "pw-central-0123", permissions: CENTRAL_NATS_PERMISSIONS }] });
    await cluster.ready();
    reps = await startInProcessReplicas(cluster, 3, { nats: { leaseTtlMs: 4000, partitions: P }, central: { lookbackMs: 3000, evalIntervalMs: 200 } });
  });

  test.after(async () => {
    for (const s of sidecars) s.close();
    await reps?.close();
    await cluster?.stop();
  });

  test("every replica answers GetOrigin with the owner's breakdown; the owner cut off: the answer comes without it and says why; a new owner: back", async () => {
    const p = partitionOf(ORIGIN, P);
    await reps.settled();
    const owner = reps.ownerOf(p)!;
    const feeder = live().find((i) => i !== owner)!;
    for (const isp of ["isp-a", "isp-b", "isp-c"]) {
      const s = new FakeSidecar({ address: reps.centrals[feeder].address, nodeId: `${isp}-eu`, isp, region: "eu", origins: [ORIGIN], traffic: () => ({ ok: 4 }) });
      s.start();
      sidecars.push(s);
    }
    const full = "isp-a,isp-b,isp-c/eu/3|";
    await eventually(async () => (await Promise.all(live().map(asked))).every((x) => x === full), 20_000);

    await reps.cut(owner);
    const other = live().find((i) => i !== feeder) ?? feeder;
    // Until the lease expires the owner is still named: nothing listens on its subject any more.
    const without = await eventually(async () => {
      const r = await reps.api(other).query.getOrigin({ origin: ORIGIN });
      return r.breakdownNote ? r : undefined;
    }, 10_000, 50);
    assert.ok(without!.origin!.totalRequests > 0n, "the rest of the answer is there");
    assert.is(without!.origin!.isps.length, 0);
    console.log(`without the owner: ${without!.breakdownNote}`);
    assert.match(without!.breakdownNote, new RegExp(`the owner of partition ${p}, did not answer|no replica owns partition ${p}|does not own partition ${p}|still replaying`));

    await eventually(() => reps.ownerOf(p) !== undefined, 20_000);
    await eventually(async () => (await Promise.all(live().map(asked))).every((x) => x === full), 20_000);
  });

  test.run();
}
