/**
 * Incident identity across a clean hand-over (issue 16), in-process centrals
 * on a real nats-server: replica A owns both partitions while two origins
 * (one per partition) go DOWN, each with an open incident; replica B joins,
 * A releases one partition (rebalance: last snapshot saved, then forgotten),
 * B claims it. Every origin stays DOWN under the same incident id, read from
 * either replica, and the moved one is now written by B.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { Kvm } from "@nats-io/kv";
import { type Central, startCentral } from "../main.js";
import { validateNatsOptions } from "./nats-options.js";
import { partitionOf } from "./partition.js";
import { LEASE_BUCKET, heartbeatKey, parseHeartbeat } from "./partition-lease.js";
import { FakeSidecar } from "../../tools/scenarios/fake-sidecar.js";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { eventually } from "../../tools/test/proc.js";

const P = 2;
const CANDIDATES = ["a.example", "b.example", "c.example", "d.example", "e.example", "f.example"];
const ORIGINS = [CANDIDATES.find((o) => partitionOf(o, P) === 0)!, CANDIDATES.find((o) => partitionOf(o, P) === 1)!];

if (requireNats("cluster rebalance")) {
  let dir = "";
  let nats: NatsCluster;
  const centrals: Central[] = [];
  const sidecars: FakeSidecar[] = [];

  const start = async (i: number) => {
    const o = validateNatsOptions({ servers: nats.urls, user: nats.user.user, replicas: 1, partitions: P, leaseTtlMs: 4000 }, { ORIGINWATCH_NATS_PASSWORD: nats.user.password });
    const c = await startCentral({ listen: "127.0.0.1:0", data: join(dir, `c${i}`), lookbackMs: 2000, evalIntervalMs: 200 }, pino({ level: "silent" }), { nats: o, replicaId: `t${i}` });
    centrals.push(c);
    return c;
  };
  /** "STATE incident-id owner" of an origin as replica c reads it (from OW_STATUS, as its GetOrigin does). */
  const view = async (c: Central, origin: string) => {
    await c.cluster!.status.origin(origin);
    const r = c.cluster!.records.get(origin);
    const open = r?.verdict?.incidents.filter((i) => i.open).map((i) => i.id) ?? [];
    return { state: r?.verdict?.state, incidents: open.join(","), owner: r?.owner };
  };

  test.before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ow-cl-rebalance-"));
    nats = await startNatsCluster({ servers: 1 });
    await nats.ready();
  });

  test.after(async () => {
    for (const s of sidecars) s.close();
    for (const c of centrals) await c.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("a partition handed over on rebalance keeps its origin DOWN under the same incident id", async () => {
    assert.is.not(partitionOf(ORIGINS[0], P), partitionOf(ORIGINS[1], P));
    const a = await start(0);
    await eventually(() => a.cluster!.owner!.partitions().live.length === P, 15_000);
    let down = false;
    for (const isp of ["isp-a", "isp-b", "isp-c"]) {
      for (const region of ["eu", "us"]) {
        const s = new FakeSidecar({ address: a.address, nodeId: `${isp}-${region}`, isp, region, origins: ORIGINS, traffic: () => (down ? { connectRefused: 4 } : { ok: 4 }) });
        s.start();
        sidecars.push(s);
      }
    }
    const every = async (c: Central, ok: (v: Awaited<ReturnType<typeof view>>) => boolean) => (await Promise.all(ORIGINS.map((o) => view(c, o)))).every(ok);
    await eventually(() => every(a, (v) => v.state === 2), 15_000); // HEALTHY
    down = true;
    await eventually(() => every(a, (v) => v.state === 4 && v.incidents !== ""), 15_000); // DOWN, incident open
    const before = await Promise.all(ORIGINS.map(async (o) => (await view(a, o)).incidents));

    const b = await start(1);
    await eventually(() => b.cluster!.owner!.partitions().live.length === 1 && a.cluster!.owner!.partitions().owned.length === 1, 20_000);
    const movedP = b.cluster!.owner!.partitions().live[0];
    const moved = ORIGINS[movedP === partitionOf(ORIGINS[0], P) ? 0 : 1];
    // B's lookback was refilled with A's last seconds (windows A had counted before its snapshot): at 6 nodes ×
    // 5 batches/s, a lookback (2 s) and a second are ~15 batches; without the refill B would start from none.
    const refilled = b.cluster!.owner!.refilledBatches.get(movedP) ?? 0;
    process.stderr.write(`rebalance: B read ${refilled} batches of A's last lookback again\n`);
    assert.ok(refilled >= 5, `B read ${refilled} batches of A's last lookback again`);
    assert.ok((b.verdict.engine.detailed(moved)?.requests ?? 0) > 0, "B's lookback holds the moved origin's traffic");
    await eventually(async () => (await view(a, moved)).owner === "t1" && (await view(b, moved)).owner === "t1", 10_000);
    await new Promise((r) => setTimeout(r, 1500));
    for (const [i, o] of ORIGINS.entries()) {
      for (const c of [a, b]) {
        const v = await view(c, o);
        assert.is(v.state, 4, `${o} still DOWN on ${c.cluster!.ctx.replicaId}`);
        assert.is(v.incidents, before[i], `${o}: the same open incident on ${c.cluster!.ctx.replicaId}`);
      }
    }
  });

  test("the owners publish each partition's load (windows/s, from what they apply) in their lease heartbeat", async () => {
    const leases = await new Kvm(centrals[1].cluster!.ctx.js).open(LEASE_BUCKET);
    const beat = async (id: string) => parseHeartbeat((await leases.get(heartbeatKey(id)))?.string() ?? "");
    for (const c of centrals) {
      const id = c.cluster!.ctx.replicaId;
      const [p] = c.cluster!.owner!.partitions().owned;
      await eventually(async () => ((await beat(id)).p[p] ?? 0) > 0, 20_000);
    }
  });

  test.run();
}
