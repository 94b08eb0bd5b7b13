/**
 * Versioned config in JetStream KV against a real 3-server cluster, with two
 * clients acting as two replicas (each on its own connection to its own
 * server): optimistic concurrency decided by JetStream, every version pushed
 * to every replica once and in order, node ACK/NACK records readable anywhere.
 */
import { create } from "@bufbuild/protobuf";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { type Config, ConfigSchema } from "../../proto/gen/originwatch/v1/config_pb.js";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { CentralError } from "../errors.js";
import { ConfigKv } from "./config-kv.js";

const cfg = (windowMs: number, by = "test") => create(ConfigSchema, { windowMs, updatedBy: by });

async function refused(p: Promise<unknown>, code: string): Promise<CentralError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, CentralError);
    assert.is((err as CentralError).code, code, (err as Error).message);
    return err as CentralError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error("unreachable");
}

if (requireNats("config kv")) {
  let cluster: NatsCluster;
  const conns: NatsConnection[] = [];
  const replicas: ConfigKv[] = [];
  let n = 0;
  test.before(async () => {
    cluster = await startNatsCluster({ servers: 3 });
    await cluster.ready();
  });
  test.after.each(async () => {
    for (const r of replicas.splice(0)) r.close();
    await Promise.all(conns.splice(0).map((c) => c.close()));
  });
  test.after(async () => cluster?.stop());

  /** A replica named `name` connected to server i only, on bucket `bucket`. */
  async function replica(name: string, i: number, bucket: string): Promise<ConfigKv> {
    const nc = await connect({ servers: cluster.urls[i], user: cluster.user.user, pass: cluster.user.password });
    conns.push(nc);
    const r = await ConfigKv.open(jetstream(nc), { replicas: 3, replica: name, bucket });
    replicas.push(r);
    return r;
  }
  const pair = async () => {
    const bucket = `OW_CONFIG_T${++n}`;
    return [await replica("A", 0, bucket), await replica("B", 1, bucket)] as const;
  };
  const seen = (r: ConfigKv) => {
    const out: Config[] = [];
    r.on("changed", (c) => out.push(c));
    return out;
  };

  test("a version set through A reaches B's watch once, in order, and B's current()", async () => {
    const [a, b] = await pair();
    const onA = seen(a);
    const onB = seen(b);
    assert.is(b.current().version, 0n);
    const v1 = await a.set(cfg(1000, "ops"), 0n);
    assert.is(v1.version, 1n);
    assert.is(v1.updatedBy, "ops");
    const v2 = await a.set(cfg(2000), 1n);
    while (b.current().version < 2n) await new Promise((r) => setTimeout(r, 20));
    const v3 = await b.set(cfg(3000), 2n);
    assert.equal([v2.version, v3.version], [2n, 3n]);
    const deadline = Date.now() + 5_000;
    while ((onA.length < 3 || onB.length < 3) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(onA.map((c) => [c.version, c.windowMs]), [[1n, 1000], [2n, 2000], [3n, 3000]]);
    assert.equal(onB.map((c) => [c.version, c.windowMs]), [[1n, 1000], [2n, 2000], [3n, 3000]]);
    assert.is(a.current().version, 3n);
    assert.is(b.current().version, 3n);
  });

  test("a stale expected version is refused on either replica; of two racing setters exactly one wins", async () => {
    const [a, b] = await pair();
    await a.set(cfg(1000), 0n);
    const err = await refused(a.set(cfg(2000), 0n), "CENTRAL_CONFIG_CONFLICT");
    assert.match(err.message, /expected_version 0 is not the current version 1/);
    assert.is(err.toConnectError().code, 9, "FAILED_PRECONDITION");
    while (b.current().version < 1n) await new Promise((r) => setTimeout(r, 20));
    await refused(b.set(cfg(2000), 0n), "CENTRAL_CONFIG_CONFLICT");
    await refused(b.set(cfg(2000), 7n), "CENTRAL_CONFIG_CONFLICT");
    for (let round = 0; round < 5; round++) {
      const cur = a.current().version;
      while (b.current().version < cur) await new Promise((r) => setTimeout(r, 20));
      const results = await Promise.allSettled([a.set(cfg(1000 + round), cur), b.set(cfg(2000 + round), cur)]);
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      assert.is(won.length, 1, `round ${round}: ${JSON.stringify(results.map((r) => r.status))}`);
      assert.is((lost[0].reason as CentralError).code, "CENTRAL_CONFIG_CONFLICT");
      while (a.current().version <= cur) await new Promise((r) => setTimeout(r, 20));
    }
    const { configs } = await a.historyPage(100);
    assert.equal(configs.map((c) => c.version), [6n, 5n, 4n, 3n, 2n, 1n], "no gap, no version twice");
  });

  test("a replica whose view lags can only refuse, never leave a gap", async () => {
    const [a, b] = await pair();
    b.close(); // B stops seeing new versions
    await a.set(cfg(1000), 0n);
    await a.set(cfg(2000), 1n);
    assert.is(b.current().version, 0n);
    await refused(b.set(cfg(3000), 0n), "CENTRAL_CONFIG_CONFLICT");
    const { configs } = await a.historyPage();
    assert.equal(configs.map((c) => c.version), [2n, 1n]);
  });

  test("an invalid config is refused with CENTRAL_CONFIG_INVALID naming the field, and not stored", async () => {
    const [a] = await pair();
    const err = await refused(a.set(cfg(5), 0n), "CENTRAL_CONFIG_INVALID");
    assert.match(err.message, /config\.window_ms/);
    assert.is(a.current().version, 0n);
    assert.equal((await a.historyPage()).configs, []);
  });

  test("ACK/NACK and applied versions recorded by A are readable from B; a replica opened later loads the latest and the history", async () => {
    const [a, b] = await pair();
    await a.set(cfg(1000), 0n);
    await a.set(cfg(2000), 1n);
    await a.recordApplied("edge:1", 0n);
    await a.recordAck("edge:1", { version: 1n, accepted: true, reason: "" });
    await a.recordAck("edge:1", { version: 2n, accepted: false, reason: "requires capability x" });
    await b.recordAck("edge-2", { version: 2n, accepted: true, reason: "" });
    const rec = await b.node("edge:1");
    assert.equal(rec && { ...rec, atMs: 0 }, { nodeId: "edge:1", appliedVersion: "1", lastAck: { version: "2", accepted: false, reason: "requires capability x" }, replica: "A", atMs: 0 });
    assert.equal((await a.nodes()).map((r) => [r.nodeId, r.appliedVersion, r.replica]), [["edge-2", "2", "B"], ["edge:1", "1", "A"]]);
    assert.is(await b.node("never-seen"), undefined);
    const c = await replica("C", 2, `OW_CONFIG_T${n}`);
    assert.is(c.current().version, 2n);
    assert.is(c.current().windowMs, 2000);
    const page = await c.historyPage(1);
    assert.equal([page.configs.map((x) => x.version), page.more], [[2n], true]);
    assert.equal((await c.historyPage(10, 2n)).configs.map((x) => x.version), [1n]);
  });
}

test.run();
