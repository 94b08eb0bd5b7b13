/**
 * A fleet of REAL processes for the scenario suite: the central (or, with
 * `cluster`, the nats-servers and central replicas: real-centrals.ts) and every
 * sidecar run as `originwatch` child processes; the controllable origin, a
 * fault relay per ISP path and per node path, the traffic generator and the
 * webhook receiver run here. Every scenario has its own origin name, so each
 * starts from a clean verdict (no hysteresis or probe rate limit carried over).
 *
 *   traffic ─▶ sidecar process ─▶ node relay ─▶ ISP relay ─▶ origin
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FaultRelay, type RelayMode, startFaultRelay } from "../fault-relay.js";
import { type Origin, startOrigin } from "../origin.js";
import { type Proc, startOriginwatch } from "../test/proc.js";
import type { WebhookPayload } from "../../central/alerts/webhook.js";
import { type ClusterSpec, type QueryClient, type RealCentrals, startClusterCentrals, startEmbeddedCentral } from "./real-centrals.js";

export interface RealNode {
  nodeId: string;
  isp: string;
  region: string;
  proc: Proc;
  port: number;
  relay: FaultRelay;
  /** Requests per second per origin name (absent: 0). */
  rates: Map<string, number>;
  sent: number;
}

export interface RealFleet {
  /** The central, or the cluster's replicas and nats-servers. */
  centrals: RealCentrals;
  /** One query client per central (embedded: one): a scenario asks every one of them. */
  queries: QueryClient[];
  origin: Origin;
  ispRelays: Map<string, FaultRelay>;
  nodes: RealNode[];
  webhook: WebhookPayload[];
  setIsp(isp: string, mode: RelayMode): Promise<void>;
  setRegion(region: string, mode: RelayMode): Promise<void>;
  setNode(nodeId: string, mode: RelayMode): Promise<void>;
  heal(): Promise<void>;
  /** Traffic for one origin name: rate(node) requests per second. */
  traffic(origin: string, rate: (n: RealNode) => number): void;
  stopTraffic(): void;
  close(): Promise<void>;
}

/** `cluster`: against a cluster (3 nats-servers, N central replicas) instead of one embedded central. */
export async function startRealFleet(opts: { isps: string[]; regions: string[]; perCell: number; origins: string[]; cluster?: ClusterSpec }): Promise<RealFleet> {
  const dir = await mkdtemp(join(tmpdir(), "ow-scenarios-"));
  const webhook: WebhookPayload[] = [];
  const hook = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      try {
        webhook.push(JSON.parse(body));
      } catch {
        /* ignore */
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/`;
  // What has started so far, stopped in reverse if the start fails half-way (nothing is left running).
  const undo: Array<() => unknown> = [() => rm(dir, { recursive: true, force: true }), () => hook.close()];
  const started = async <T>(p: Promise<T>, stop: (x: T) => unknown): Promise<T> => {
    const x = await p;
    undo.push(() => stop(x));
    return x;
  };
  let centrals: RealCentrals, origin: Origin, nodes: RealNode[];
  const ispRelays = new Map<string, FaultRelay>();
  try {
    centrals = await started(opts.cluster ? startClusterCentrals(dir, hookUrl, opts.cluster) : startEmbeddedCentral(dir, hookUrl), (c) => c.close());
    origin = await started(startOrigin(), (o) => o.close());
    for (const isp of opts.isps) ispRelays.set(isp, await started(startFaultRelay({ target: { host: origin.host, port: origin.port } }), (r) => r.close()));
    const specs: Array<{ nodeId: string; isp: string; region: string }> = [];
    for (const isp of opts.isps) for (const region of opts.regions) for (let i = 1; i <= opts.perCell; i++) specs.push({ nodeId: `${isp}-${region}-${i}`, isp, region });
    const results = await Promise.allSettled(
      specs.map(async (s) => {
        const ispRelay = ispRelays.get(s.isp)!;
        const relay = await started(startFaultRelay({ target: { host: ispRelay.host, port: ispRelay.port } }), (r) => r.close());
        const args = ["sidecar", "--central", centrals.centralArg, "--listen", "127.0.0.1:0", "--node-id", s.nodeId, "--isp", s.isp, "--region", s.region];
        for (const o of opts.origins) args.push("--origin", `${o}=http://${relay.address}`);
        const proc = await started(startOriginwatch(args, { timeoutMs: 60_000 }), (p) => p.stop());
        const port = Number(proc.address.slice(proc.address.lastIndexOf(":") + 1));
        return { ...s, proc, port, relay, rates: new Map<string, number>(), sent: 0 } satisfies RealNode;
      }),
    );
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    nodes = results.map((r) => (r as PromiseFulfilledResult<RealNode>).value);
    await centrals.settled();
  } catch (err) {
    for (const u of undo.reverse()) await Promise.resolve(u()).catch(() => {});
    throw err;
  }

  // Enough sockets that requests stuck in a blackhole never queue other nodes' traffic in this client.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4096 });
  const fire = (n: RealNode, host: string) => {
    n.sent++;
    const req = http.request({ host: "127.0.0.1", port: n.port, path: `/asset/${n.sent % 1000}`, headers: { host }, agent, timeout: 40_000 }, (res) => {
      res.resume();
      res.on("error", () => {});
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => {});
    req.end();
  };
  const debt = new Map<string, number>();
  const ticker = setInterval(() => {
    for (const n of nodes)
      for (const [o, rate] of n.rates) {
        const k = `${n.nodeId}\u0000${o}`;
        let d = (debt.get(k) ?? Math.random()) + rate / 10;
        while (d >= 1) {
          fire(n, o);
          d -= 1;
        }
        debt.set(k, d);
      }
  }, 100);

  const fleet: RealFleet = {
    centrals,
    queries: centrals.queries,
    origin,
    ispRelays,
    nodes,
    webhook,
    async setIsp(isp, mode) {
      await ispRelays.get(isp)!.setMode(mode);
    },
    async setRegion(region, mode) {
      await Promise.all(nodes.filter((n) => n.region === region).map((n) => n.relay.setMode(mode)));
    },
    async setNode(nodeId, mode) {
      await nodes.find((n) => n.nodeId === nodeId)!.relay.setMode(mode);
    },
    async heal() {
      await origin.setMode({ kind: "ok" });
      await Promise.all([...ispRelays.values(), ...nodes.map((n) => n.relay)].map((r) => (r.mode().kind === "pass" ? undefined : r.setMode({ kind: "pass" }))));
    },
    traffic(o, rate) {
      for (const n of nodes) {
        const r = rate(n);
        if (r > 0) n.rates.set(o, r);
        else n.rates.delete(o);
      }
    },
    stopTraffic() {
      for (const n of nodes) n.rates.clear();
    },
    async close() {
      clearInterval(ticker);
      agent.destroy();
      await Promise.all(nodes.map((n) => n.proc.stop()));
      await centrals.close();
      await Promise.all([...nodes.map((n) => n.relay.close()), ...[...ispRelays.values()].map((r) => r.close())]);
      await origin.close();
      hook.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fleet;
}

/** The run's header: what the central side is, and (several centrals) how many sidecar sessions each holds. */
export async function describeFleet(f: RealFleet): Promise<string> {
  if (f.queries.length < 2) return `${f.centrals.describe}; ${f.nodes.length} sidecars`;
  const sessions = await Promise.all(
    f.queries.map(async (q) => {
      const r = await q.listNodes({ pageSize: 1000 }).catch(() => undefined);
      return r ? String(r.nodes.filter((n) => n.connected).length) : "?";
    }),
  );
  return `${f.centrals.describe}; ${f.nodes.length} sidecars with --central URL,URL,URL, sessions per replica ${sessions.join("/")}`;
}
