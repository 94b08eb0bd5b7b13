/**
 * The session directory on a real 3-server nats cluster: every replica sees
 * every replica's sessions; a node that moved keeps its new replica's record
 * when the old one lets go; a replica that dies without deleting stops being
 * listed after the TTL.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { eventually } from "../../tools/test/proc.js";
import { type SessionDirectory, openSessionDirectory } from "./session-directory.js";

if (requireNats("session directory")) {
  let cluster: NatsCluster;
  const conns: NatsConnection[] = [];
  const dirs: SessionDirectory[] = [];
  const open = async (replicaId: string, ttlMs: number) => {
    const nc = await cluster.connect();
    conns.push(nc);
    const d = await openSessionDirectory({ nc, js: jetstream(nc), replicaId, options: { replicas: 3 } }, { ttlMs, bucket: `OW_SESSIONS_${ttlMs}` });
    dirs.push(d);
    return d;
  };

  test.before(async () => {
    cluster = await startNatsCluster({ servers: 3 });
    await cluster.ready();
  });

  test.after(async () => {
    for (const d of dirs) d.close();
    for (const nc of conns) await nc.close().catch(() => {});
    await cluster?.stop();
  });

  test("each replica lists every replica's sessions; a moved node keeps its new record when the old replica removes it", async () => {
    const a = await open("A", 60_000);
    const b = await open("B", 60_000);
    await a.add({ nodeId: "edge-1", isp: "i", region: "r", origins: ["o.example"] });
    await b.add({ nodeId: "edge-2", isp: "i", region: "r", origins: ["o.example"] });
    for (const d of [a, b]) await eventually(() => d.list().length === 2, 5_000);
    assert.is(a.get("edge-2")?.replica, "B");
    // edge-1 moves to B, then A sees its old session close.
    await b.add({ nodeId: "edge-1", isp: "i", region: "r", origins: ["o.example"] });
    await eventually(() => a.get("edge-1")?.replica === "B", 5_000);
    await a.remove("edge-1");
    await new Promise((r) => setTimeout(r, 300));
    for (const d of [a, b]) assert.is(d.get("edge-1")?.replica, "B");
    // A node that just leaves is gone everywhere.
    await b.remove("edge-2");
    await eventually(() => a.get("edge-2") === undefined, 5_000);
  });

  test("a replica that stops refreshing (died) is no longer listed after the TTL; a live one stays", async () => {
    const a = await open("A", 1_500);
    const b = await open("B", 1_500);
    await a.add({ nodeId: "edge-a", isp: "i", region: "r", origins: [] });
    await b.add({ nodeId: "edge-b", isp: "i", region: "r", origins: [] });
    await eventually(() => b.list().length === 2, 5_000);
    a.close(); // no refresh, no delete: like a kill -9
    await eventually(() => b.get("edge-a") === undefined, 5_000);
    assert.is(b.get("edge-b")?.replica, "B", "refreshed every ttl/3, so still listed");
  });
}

test.run();
