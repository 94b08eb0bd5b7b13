/**
 * N in-process centrals in cluster mode on one real nats-server cluster, for
 * tests of what crosses replicas (config, probes): replica i is `startCentral`
 * on 127.0.0.1:0 with its own temp data dir and its own NATS connection
 * (replica id `r<i>`), handed in as the ReplicaLink. `close()` closes every
 * central, connection and temp dir (idempotent); the nats cluster is the
 * caller's.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ConfigService } from "../../proto/gen/originwatch/v1/config_pb.js";
import { QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { type Central, startCentral } from "../../central/main.js";
import type { NatsCluster } from "./nats-cluster.js";

export interface InProcessReplicas {
  centrals: Central[];
  connections: NatsConnection[];
  /** gRPC clients of replica i. */
  api(i: number): { config: ReturnType<typeof createClient<typeof ConfigService>>; query: ReturnType<typeof createClient<typeof QueryService>> };
  close(): Promise<void>;
}

export async function startInProcessReplicas(cluster: NatsCluster, n = 3): Promise<InProcessReplicas> {
  const dir = await mkdtemp(join(tmpdir(), "ow-replicas-"));
  const centrals: Central[] = [];
  const connections: NatsConnection[] = [];
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      for (const c of centrals) await c.close().catch(() => {});
      for (const nc of connections) await nc.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    })());
  try {
    for (let i = 0; i < n; i++) {
      const nc = await cluster.connect();
      connections.push(nc);
      const link = { nc, js: jetstream(nc), replicaId: `r${i}`, options: { replicas: Math.min(3, cluster.servers.length) } };
      centrals.push(await startCentral({ listen: "127.0.0.1:0", data: join(dir, `central-${i}`) }, pino({ level: "silent" }), link));
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    centrals,
    connections,
    api(i) {
      const transport = createGrpcTransport({ baseUrl: `http://${centrals[i].address}` });
      return { config: createClient(ConfigService, transport), query: createClient(QueryService, transport) };
    },
    close,
  };
}
