/**
 * A local fleet for the demo, the scenario suite and benchmarks: one central,
 * a controllable origin, real sidecars (in this process) labelled with ISP
 * and region, a fault relay on each ISP's path and on each node's own path,
 * and steady traffic through every sidecar. Faults are injected only on
 * loopback: origin modes (tools/origin.ts) and relay modes (tools/fault-relay.ts).
 *
 *   traffic ─▶ sidecar(node) ─▶ node relay ─▶ ISP relay ─▶ origin
 */
import http from "node:http";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DevPki, initPki } from "../certs.js";
import pino from "pino";
import { type Central, startCentral } from "../../central/main.js";
import { type Sidecar, startSidecar } from "../../sidecar/main.js";
import { validateSidecarConfig } from "../../sidecar/config.js";
import { type FaultRelay, type RelayMode, startFaultRelay } from "../fault-relay.js";
import { type Origin, startOrigin } from "../origin.js";

export interface FleetNodeSpec {
  nodeId: string;
  isp: string;
  region: string;
}

export interface FleetOptions {
  isps?: string[];
  regions?: string[];
  /** Nodes per (ISP, region) cell. */
  perCell?: number;
  /** Or an explicit node list (overrides isps/regions/perCell). */
  nodes?: FleetNodeSpec[];
  /** Origin names the sidecars forward to (all to the same controllable origin). */
  origins?: string[];
  /** Requests per second per node per origin. */
  ratePerNode?: number;
  /** Central LevelDB directory. */
  dataDir: string;
  /** Central listen address (default 127.0.0.1:0). */
  listen?: string;
  /** Extra central options. */
  central?: Parameters<typeof startCentral>[0];
  /** Extra sidecar config fields (stallMs, windowMs...). */
  sidecar?: Record<string, unknown>;
  /** mTLS between sidecars and the central, with a throwaway dev PKI (tools/certs.ts). */
  tls?: boolean;
  log?: pino.Logger;
}

export interface TrafficStats {
  sent: number;
  ok: number;
  failed: number;
  inFlight: number;
}

export interface FleetNode extends FleetNodeSpec {
  sidecar: Sidecar;
  relay: FaultRelay;
  stats: TrafficStats;
  /** Requests per second for this node (0 pauses it). */
  rate: number;
}

export interface Fleet {
  central: Central;
  /** http://ADDRESS, or https://localhost:PORT with tls. */
  centralUrl: string;
  /** The CA that signed the central's certificate (tls only), and its file. */
  ca?: Buffer;
  caFile?: string;
  origin: Origin;
  /** One relay per ISP, between the node relays and the origin. */
  ispRelays: Map<string, FaultRelay>;
  nodes: FleetNode[];
  origins: string[];
  /** Fault on every path of one ISP. */
  setIsp(isp: string, mode: RelayMode): Promise<void>;
  /** Fault on every node path of one region. */
  setRegion(region: string, mode: RelayMode): Promise<void>;
  setNode(nodeId: string, mode: RelayMode): Promise<void>;
  /** Every relay back to pass, the origin back to ok. */
  heal(): Promise<void>;
  startTraffic(): void;
  stopTraffic(): void;
  totals(): TrafficStats;
  close(): Promise<void>;
}

export function gridNodes(isps: string[], regions: string[], perCell: number): FleetNodeSpec[] {
  const out: FleetNodeSpec[] = [];
  for (const isp of isps) for (const region of regions) for (let i = 1; i <= perCell; i++) out.push({ nodeId: `${isp}-${region}-${i}`, isp, region });
  return out;
}

export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const log = opts.log ?? pino({ level: "silent" });
  const specs = opts.nodes ?? gridNodes(opts.isps ?? ["isp-a", "isp-b", "isp-c"], opts.regions ?? ["eu", "us"], opts.perCell ?? 1);
  const origins = opts.origins ?? ["shop.example"];
  const ratePerNode = opts.ratePerNode ?? 10;
  const origin = await startOrigin();
  let pkiDir: string | undefined;
  let pki: DevPki | undefined;
  if (opts.tls) {
    pkiDir = await mkdtemp(join(tmpdir(), "originwatch-pki-"));
    pki = initPki(pkiDir, { nodes: specs.map((s) => s.nodeId) });
  }
  const central = await startCentral(
    {
      listen: opts.listen ?? "127.0.0.1:0",
      data: opts.dataDir,
      ...(pki ? { tlsCert: pki.centralCert, tlsKey: pki.centralKey, tlsCa: pki.ca } : {}),
      ...opts.central,
    },
    log.child({ component: "central" }),
  );
  const centralUrl = pki ? `https://localhost:${central.address.slice(central.address.lastIndexOf(":") + 1)}` : `http://${central.address}`;
  const ispRelays = new Map<string, FaultRelay>();
  for (const isp of new Set(specs.map((s) => s.isp))) {
    ispRelays.set(isp, await startFaultRelay({ target: { host: origin.host, port: origin.port } }));
  }
  const nodes: FleetNode[] = [];
  for (const spec of specs) {
    const ispRelay = ispRelays.get(spec.isp)!;
    const relay = await startFaultRelay({ target: { host: ispRelay.host, port: ispRelay.port } });
    const config = validateSidecarConfig({
      ...opts.sidecar,
      central: centralUrl,
      listen: "127.0.0.1:0",
      ...(pki ? { tlsCert: pki.nodes[spec.nodeId].cert, tlsKey: pki.nodes[spec.nodeId].key, tlsCa: pki.ca } : {}),
      nodeId: spec.nodeId,
      isp: spec.isp,
      region: spec.region,
      origins: origins.map((name) => ({ name, url: `http://${relay.address}` })),
    });
    const sidecar = await startSidecar(config, { logger: log.child({ component: "sidecar", node: spec.nodeId }) });
    nodes.push({ ...spec, sidecar, relay, stats: { sent: 0, ok: 0, failed: 0, inFlight: 0 }, rate: ratePerNode });
  }

  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 * nodes.length });
  let timers: NodeJS.Timeout[] = [];
  const MAX_IN_FLIGHT = 400;
  const fire = (n: FleetNode, host: string) => {
    if (n.stats.inFlight >= MAX_IN_FLIGHT) return;
    n.stats.sent++;
    n.stats.inFlight++;
    const req = http.request(
      { host: "127.0.0.1", port: n.sidecar.port, path: `/asset/${n.stats.sent % 1000}`, headers: { host }, agent, timeout: 40_000 },
      (res) => {
        res.resume();
        res.on("end", () => {
          n.stats.inFlight--;
          if ((res.statusCode ?? 0) < 500) n.stats.ok++;
          else n.stats.failed++;
        });
        res.on("error", () => {});
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => {
      n.stats.inFlight--;
      n.stats.failed++;
    });
    req.end();
  };

  const fleet: Fleet = {
    central,
    centralUrl,
    ca: pki ? readFileSync(pki.ca) : undefined,
    caFile: pki?.ca,
    origin,
    ispRelays,
    nodes,
    origins,
    async setIsp(isp, mode) {
      const r = ispRelays.get(isp);
      if (!r) throw new Error(`no ISP ${isp} in the fleet (have ${[...ispRelays.keys()].join(", ")})`);
      await r.setMode(mode);
    },
    async setRegion(region, mode) {
      const hit = nodes.filter((n) => n.region === region);
      if (hit.length === 0) throw new Error(`no region ${region} in the fleet`);
      await Promise.all(hit.map((n) => n.relay.setMode(mode)));
    },
    async setNode(nodeId, mode) {
      const n = nodes.find((x) => x.nodeId === nodeId);
      if (!n) throw new Error(`no node ${nodeId} in the fleet`);
      await n.relay.setMode(mode);
    },
    async heal() {
      await origin.setMode({ kind: "ok" });
      await Promise.all([...ispRelays.values(), ...nodes.map((n) => n.relay)].map((r) => (r.mode().kind === "pass" ? undefined : r.setMode({ kind: "pass" }))));
    },
    startTraffic() {
      fleet.stopTraffic();
      // One 100 ms tick per node: fire a fractional quota so low rates (0.2/s) work too.
      for (const n of nodes) {
        const debt = new Map<string, number>(origins.map((o) => [o, Math.random()]));
        const t = setInterval(() => {
          for (const o of origins) {
            let d = (debt.get(o) ?? 0) + n.rate / 10;
            while (d >= 1) {
              fire(n, o);
              d -= 1;
            }
            debt.set(o, d);
          }
        }, 100);
        t.unref();
        timers.push(t);
      }
    },
    stopTraffic() {
      for (const t of timers) clearInterval(t);
      timers = [];
    },
    totals() {
      const t: TrafficStats = { sent: 0, ok: 0, failed: 0, inFlight: 0 };
      for (const n of nodes) {
        t.sent += n.stats.sent;
        t.ok += n.stats.ok;
        t.failed += n.stats.failed;
        t.inFlight += n.stats.inFlight;
      }
      return t;
    },
    async close() {
      fleet.stopTraffic();
      agent.destroy();
      await Promise.all(nodes.map((n) => n.sidecar.shutdown()));
      await Promise.all([...nodes.map((n) => n.relay.close()), ...[...ispRelays.values()].map((r) => r.close())]);
      await central.close();
      await origin.close();
      if (pkiDir) await rm(pkiDir, { recursive: true, force: true });
    },
  };
  return fleet;
}
