/**
 * FlushWindows across replicas (issue 16), with a real 3-server nats cluster
 * and 3 in-process centrals in cluster mode whose NATS user has exactly
 * CENTRAL_NATS_PERMISSIONS: a failing window of an origin makes its
 * partition's owner ask every sidecar of the origin for its open window —
 * the ones connected to the other replicas too, not only its own.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { type InProcessReplicas, startInProcessReplicas } from "../../tools/nats/in-process-replicas.js";
import { eventually } from "../../tools/test/proc.js";
import { IngestStream, batch, hello, win } from "../../tools/test/ingest-client.js";
import { CENTRAL_NATS_PERMISSIONS } from "./nats-permissions.js";

const ORIGIN = "flush.example";

if (requireNats("FlushWindows across replicas")) {
  let cluster: NatsCluster;
  let reps: InProcessReplicas;
  const streams: IngestStream[] = [];

  test.before(async () => {
    cluster = await startNatsCluster({ servers: 3, users: [{ user: "central", password: "pw-central-flush-0123", permissions: CENTRAL_NATS_PERMISSIONS }] });
    await cluster.ready();
    reps = await startInProcessReplicas(cluster, 3);
  });

  test.after(async () => {
    for (const s of streams) s.close();
    await reps?.close();
    await cluster?.stop();
  });

  test("a failing window of an origin: its sidecars on every replica are asked for their open window (FlushWindows), not only the owner's", async () => {
    for (let i = 0; i < 3; i++) {
      const s = new IngestStream(reps.centrals[i].address);
      streams.push(s);
      await s.send(hello(`edge-${i}`, [ORIGIN], ["isp-a", "isp-b", "isp-c"][i]));
      await s.until((m) => m.some((x) => x.kind.case === "welcome"), 15_000);
    }
    const flushed = (s: IngestStream) => s.received.some((m) => m.kind.case === "flushWindows" && m.kind.value.origin === ORIGIN);
    // Until the partition is owned (leases settle in seconds), a batch is only stored; send failing windows until
    // the owner sees one. One flush round per origin per 5 s at most, so the wait is bounded generously.
    let seq = 0;
    await eventually(async () => {
      await streams[0].send(batch(++seq, { windows: [win(ORIGIN, { connectRefused: 10n }, 1000)] }));
      return streams.every(flushed);
    }, 45_000, 500);
    // One replica owns the partition and flushes its own session; the other two only through the relay.
    assert.ok(streams.every(flushed), "every replica's sidecar got FlushWindows");
  });
}

test.run();
