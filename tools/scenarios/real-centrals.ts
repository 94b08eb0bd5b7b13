/**
 * The central side of the scenario fleet (real-fleet.ts), as real
 * `originwatch central` processes: one embedded central (the default), or a
 * cluster (issue 16) of 3 nats-servers (tools/nats, JetStream R3, a user with a
 * password file) and N `originwatch central --nats ...` replicas with their own
 * replica ids. Every central sends its webhooks to the same receiver, so an
 * alert sent twice by the cluster is counted twice.
 *
 * The sidecars get `--central` from here (one URL, or every replica's URL: they
 * spread over the replicas by rendezvous hashing of their node id), and the
 * run polls every replica's query API: a scenario passes only if every replica
 * reports the right state.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { LEASE_BUCKET, leaseKey } from "../../central/cluster/partition-lease.js";
import { startNatsCluster } from "../nats/nats-cluster.js";
import { type Proc, startOriginwatch } from "../test/proc.js";

export type QueryClient = Client<typeof QueryService>;

/** Cluster mode of the scenario fleet. */
export interface ClusterSpec {
  /** Central replicas (default 3). */
  replicas?: number;
  /** `--partitions` of every replica (default 8). */
  partitions?: number;
}

export interface RealCentrals {
  /** The central processes (one embedded central, or the replicas). */
  procs: Proc[];
  /** One query client per central, in the order of `procs`. */
  queries: QueryClient[];
  /** What the sidecars get as `--central`. */
  centralArg: string;
  /** One line saying what runs (the run's header). */
  describe: string;
  /**
   * Resolves once the centrals judge steadily. Cluster: every partition owned, by at least as many
   * replicas as a count share (ceil(P / N) each) needs, unchanged over three looks 2 s apart (a lease
   * tick is 2 s) — the first replica up takes every partition and hands some over as the others join,
   * and a hand-over replays muted. Not "at most ceil(P / N) each": placement by load may differ.
   */
  settled(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const queryClient = (address: string) => createClient(QueryService, createGrpcTransport({ baseUrl: `http://${address}` }));

async function stopAll(procs: Proc[]): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      const t = setTimeout(() => p.child.kill("SIGKILL"), 5_000);
      await p.stop();
      clearTimeout(t);
    }),
  );
}

/** One `originwatch central` with LevelDB in `dir`. */
export async function startEmbeddedCentral(dir: string, webhookUrl: string): Promise<RealCentrals> {
  const central = await startOriginwatch(["central", "--listen", "127.0.0.1:0", "--data", join(dir, "central"), "--webhook", webhookUrl]);
  return {
    procs: [central],
    queries: [queryClient(central.address)],
    centralArg: `http://${central.address}`,
    describe: "one central (embedded, LevelDB)",
    settled: async () => {},
    close: () => stopAll([central]),
  };
}

/** 3 nats-servers and `spec.replicas` centrals in cluster mode, data and password file in `dir`. */
export async function startClusterCentrals(dir: string, webhookUrl: string, spec: ClusterSpec = {}): Promise<RealCentrals> {
  const n = spec.replicas ?? 3;
  const partitions = spec.partitions ?? 8;
  const nats = await startNatsCluster({ servers: 3 });
  const procs: Proc[] = [];
  try {
    await nats.ready();
    const pw = join(dir, "nats-password");
    await writeFile(pw, nats.user.password, { mode: 0o600 });
    for (let i = 0; i < n; i++) {
      procs.push(
        await startOriginwatch(
          [
            "central",
            "--listen", "127.0.0.1:0",
            "--data", join(dir, `central-${i}`),
            "--webhook", webhookUrl,
            "--nats", nats.urls.join(","),
            "--nats-user", nats.user.user,
            "--nats-password-file", pw,
            "--partitions", String(partitions),
            "--replica-id", `central-${i}`,
          ],
          { timeoutMs: 60_000 },
        ),
      );
    }
  } catch (err) {
    await stopAll(procs);
    await nats.stop();
    throw err;
  }
  const nc = await nats.connect();
  const leases = await new Kvm(jetstream(nc)).open(LEASE_BUCKET);
  const owners = async () =>
    Promise.all(
      Array.from({ length: partitions }, async (_, p) => {
        const e = await leases.get(leaseKey(p)).catch(() => null);
        return e && e.operation === "PUT" ? e.string() : "";
      }),
    );
  const quota = Math.ceil(partitions / n);
  return {
    procs,
    queries: procs.map((p) => queryClient(p.address)),
    centralArg: procs.map((p) => `http://${p.address}`).join(","),
    describe: `cluster mode: 3 nats-servers (JetStream R3), ${n} central replicas (--nats), ${partitions} partitions`,
    async settled(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last = "";
      let same = 0;
      for (;;) {
        const now = await owners();
        const per = new Map<string, number>();
        for (const o of now) per.set(o, (per.get(o) ?? 0) + 1);
        const spread = !per.has("") && per.size >= Math.ceil(partitions / quota);
        const key = now.join(",");
        same = spread && key === last ? same + 1 : 0;
        if (same >= 2) return;
        if (Date.now() > deadline) throw new Error(`partition leases not settled within ${timeoutMs} ms (owners: ${key})`);
        last = key;
        await new Promise((r) => setTimeout(r, 2_000));
      }
    },
    async close() {
      await nc.close().catch(() => {});
      await stopAll(procs);
      await nats.stop();
    },
  };
}
