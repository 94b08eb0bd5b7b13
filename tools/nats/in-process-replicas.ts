/**
 * N in-process centrals in cluster mode on one real nats-server cluster, for
 * tests of what crosses replicas (config, probes): replica i is `startCentral`
 * on 127.0.0.1:0 with its own temp data dir and its own NATS connection
 * (replica id `r<i>`, 4 partitions), exactly as `originwatch central --nats`
 * starts. `connections` are the centrals' own NATS connections (tests cut
 * them to play a replica cut off from NATS). `close()` closes every central
 * and temp dir (idempotent); the nats cluster is the caller's.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ConfigService } from "../../proto/gen/originwatch/v1/config_pb.js";
import { QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { type Central, startCentral } from "../../central/main.js";
import type { NatsCluster } from "./nats-cluster.js";
import { eventually } from "../test/proc.js";
import { type NatsOptions, validateNatsOptions } from "../../central/cluster/nats-options.js";
import type { ClusterStart } from "../../central/cluster/cluster-central.js";
import type { CentralConfig } from "../../central/config.js";

export interface InProcessReplicas {
  centrals: Central[];
  connections: NatsConnection[];
  /** gRPC clients of replica i. */
  api(i: number): { config: ReturnType<typeof createClient<typeof ConfigService>>; query: ReturnType<typeof createClient<typeof QueryService>> };
  /** Replicas a test cut off from NATS (`cut`): no longer asked who owns what. */
  readonly cutOff: ReadonlySet<number>;
  /** Closes replica i's NATS connection: to the cluster it looks like a crash (its leases expire). */
  cut(i: number): Promise<void>;
  /** Index of the replica (not cut off) that owns partition p and has caught up; undefined when none. */
  ownerOf(p: number): number | undefined;
  /** Waits until every partition is owned and the owners stayed the same for one check interval (1.5 s). */
  settled(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Per-test settings of every replica (the central's config, NATS options, cluster-start knobs). */
export interface InProcessReplicaOptions {
  central?: Partial<CentralConfig>;
  nats?: Partial<NatsOptions>;
  start?: Omit<ClusterStart, "nats" | "replicaId">;
}

export async function startInProcessReplicas(cluster: NatsCluster, n = 3, o: InProcessReplicaOptions = {}): Promise<InProcessReplicas> {
  const dir = await mkdtemp(join(tmpdir(), "ow-replicas-"));
  const centrals: Central[] = [];
  const connections: NatsConnection[] = [];
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      for (const c of centrals) await c.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    })());
  try {
    for (let i = 0; i < n; i++) {
      const nats = validateNatsOptions(
        { servers: cluster.urls, user: cluster.user.user, replicas: Math.min(3, cluster.servers.length), partitions: 4, ...o.nats },
        { ORIGINWATCH_NATS_PASSWORD: cluster.user.password },
      );
      const central = await startCentral({ listen: "127.0.0.1:0", data: join(dir, `central-${i}`), ...o.central }, pino({ level: "silent" }), { ...o.start, nats, replicaId: `r${i}` });
      centrals.push(central);
      if (central.cluster) connections.push(central.cluster.ctx.nc);
    }
  } catch (err) {
    await close();
    throw err;
  }
  const cutOff = new Set<number>();
  const partitions = centrals[0]?.cluster?.ctx.options.partitions ?? 0;
  const ownerOf = (p: number) => centrals.findIndex((c, i) => !cutOff.has(i) && c.cluster?.owner?.partitions().live.includes(p));
  return {
    centrals,
    connections,
    cutOff,
    async cut(i) {
      cutOff.add(i);
      await connections[i].close();
    },
    ownerOf: (p) => (ownerOf(p) >= 0 ? ownerOf(p) : undefined),
    async settled(timeoutMs = 30_000) {
      let last = "";
      await eventually(() => {
        const owners = Array.from({ length: partitions }, (_, p) => ownerOf(p));
        const now = owners.join(",");
        const ok = now === last && owners.every((o) => o >= 0);
        last = now;
        return ok;
      }, timeoutMs, 1_500);
    },
    api(i) {
      const transport = createGrpcTransport({ baseUrl: `http://${centrals[i].address}` });
      return { config: createClient(ConfigService, transport), query: createClient(QueryService, transport) };
    },
    close,
  };
}
