/**
 * The ingest of a cluster replica (issue 16), in-process centrals on a real
 * nats-server: a batch is acked only after its PubAck; with NATS gone the
 * batch is not acked and the stream ends with UNAVAILABLE (the sidecar
 * replays); the Welcome's high_water_seq is the node's cluster-wide mark, so
 * another replica (or the same one after a reconnect) resumes after what the
 * cluster stored, and the replay of an already-stored seq is acked without
 * being counted twice.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { status as grpcStatus } from "@grpc/grpc-js";
import { type Central, startCentral } from "../main.js";
import { validateNatsOptions } from "./nats-options.js";
import { IngestStream, batch, hello, win } from "../../tools/test/ingest-client.js";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { eventually } from "../../tools/test/proc.js";
import { jetstreamManager } from "@nats-io/jetstream";
import { partitionOf } from "./partition.js";
import { windowStream } from "./window-log.js";

const ORIGIN = "shop.example";

if (requireNats("cluster ingest")) {
  let dir = "";
  let nats: NatsCluster;
  const centrals: Central[] = [];

  const start = async (i: number) => {
    const nats0 = validateNatsOptions({ servers: nats.urls, user: nats.user.user, replicas: 1, partitions: 2 }, { ORIGINWATCH_NATS_PASSWORD: nats.user.password });
    const c = await startCentral({ listen: "127.0.0.1:0", data: join(dir, `c${i}`) }, pino({ level: "silent" }), { nats: nats0, replicaId: `t${i}`, publishRetryMs: 1500 });
    centrals.push(c);
    return c;
  };
  const welcomeMark = async (s: IngestStream) => {
    const got = await s.until((m) => m.some((x) => x.kind.case === "welcome"));
    const w = got.find((x) => x.kind.case === "welcome")!;
    return w.kind.case === "welcome" ? w.kind.value.highWaterSeq : -1n;
  };
  /** The origin's total as replica c's GetOrigin reads it (from OW_STATUS). */
  const total = async (c: Central) => {
    await c.cluster!.status.origin(ORIGIN);
    return c.query.totals.get(ORIGIN)?.requests ?? 0n;
  };

  test.before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ow-cl-ingest-"));
    nats = await startNatsCluster({ servers: 1 });
    await nats.ready();
  });

  test.after(async () => {
    for (const c of centrals) await c.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("acked after PubAck; NATS down: no ack, UNAVAILABLE; the Welcome carries the cluster-wide mark; a replay is counted once", async () => {
    const a = await start(0);
    const s1 = new IngestStream(a.address);
    await s1.send(hello("edge-1", [ORIGIN]));
    assert.is(await welcomeMark(s1), 0n);
    await s1.send(batch(1, { windows: [win(ORIGIN, { ok: 5n })] }), batch(2, { windows: [win(ORIGIN, { ok: 7n })] }));
    await s1.until(() => s1.acks().includes(2n));
    await eventually(async () => (await total(a)) === 12n, 10_000);

    await nats.kill(0);
    await s1.send(batch(3, { windows: [win(ORIGIN, { ok: 100n })] }));
    const end = await s1.ended;
    assert.is(end.code, grpcStatus.UNAVAILABLE, end.details);
    assert.not.ok(s1.acks().includes(3n), "never acked before a PubAck");
    s1.close();

    await nats.restart(0);
    await nats.ready();
    // Another replica: the Welcome says what the cluster stored for this node.
    const b = await eventually(() => start(1), 20_000, 500);
    const s2 = new IngestStream(b.address);
    await s2.send(hello("edge-1", [ORIGIN]));
    assert.is(await welcomeMark(s2), 2n, "the cluster-wide mark, from another replica");
    // A sidecar replaying 2 (already stored) and 3: 2 is acked and not counted again.
    await s2.send(batch(2, { windows: [win(ORIGIN, { ok: 7n })] }), batch(3, { windows: [win(ORIGIN, { ok: 100n })] }));
    await s2.until(() => s2.acks().includes(3n), 20_000);
    await eventually(async () => (await total(a)) === 112n && (await total(b)) === 112n, 20_000).catch(async () => {
      throw new Error(`totals ${await total(a)} / ${await total(b)}, want 112 on both`);
    });
    s2.close();
  });

  test("a replay burst shares messages: 60 batches acked, stored in a few messages, counted once", async () => {
    const c = centrals.at(-1)!;
    const nc = await nats.connect();
    try {
      const jsm = await jetstreamManager(nc);
      const p = partitionOf(ORIGIN, 2);
      const stored = async () => (await jsm.streams.info(windowStream(p))).state.messages;
      const before = await stored();
      const t0 = await total(c);
      const s = new IngestStream(c.address);
      await s.send(hello("edge-burst", [ORIGIN]));
      await welcomeMark(s);
      await s.send(...Array.from({ length: 60 }, (_, i) => batch(i + 1, { windows: [win(ORIGIN, { ok: 1n })] })));
      await s.until(() => s.acks().includes(60n), 20_000);
      const messages = (await stored()) - before;
      assert.ok(messages >= 1 && messages <= 10, `60 batches in ${messages} messages (one per batch without coalescing)`);
      await eventually(async () => (await total(c)) === t0 + 60n, 10_000).catch(async () => {
        throw new Error(`total ${await total(c)}, want ${t0 + 60n}`);
      });
      s.close();
    } finally {
      await nc.close();
    }
  });

  test.run();
}
