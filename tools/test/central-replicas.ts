/**
 * Several `originwatch central` processes for end-to-end tests of sidecars
 * with several centrals (issue 16): replica i listens on 127.0.0.(i+1), all on
 * one port (the first one's port 0 pick), each with its own data dir under
 * `dir`, and a loopback DNS stub answers one name with every replica's address
 * — so the same set is reachable as a URL list or as one DNS name. `args(i)`
 * adds flags per replica (a cluster test adds its --nats flags). kill(i) is
 * `kill -9`; restart(i) starts replica i again on its address and data dir.
 */
import { join } from "node:path";
import { type DnsStub, startDnsStub } from "./dns-stub.js";
import { type Proc, startOriginwatch } from "./proc.js";

export interface CentralReplicas {
  /** The one port every replica listens on. */
  port: number;
  /** Replica i's address. */
  ips: string[];
  /** The DNS name with every replica's A record, served by `dns`. */
  name: string;
  dns: DnsStub;
  /** Replica i's process (replaced by restart). */
  procs: Proc[];
  /** http://IP:PORT of each replica. */
  urls: string[];
  /** http://NAME:PORT (sidecars need `--resolver dns.address`). */
  nameUrl: string;
  /** SIGKILL replica i (no clean shutdown, like a crashed host). */
  kill(i: number): void;
  /** Start replica i again on its address and data dir. */
  restart(i: number): Promise<Proc>;
  /** Stop every replica (SIGKILL) and the DNS stub. */
  close(): Promise<void>;
}

export async function startCentralReplicas(opts: { dir: string; n?: number; name?: string; args?: (i: number) => string[] }): Promise<CentralReplicas> {
  const n = opts.n ?? 3;
  const name = opts.name ?? "centrals.test";
  const ips = Array.from({ length: n }, (_, i) => `127.0.0.${i + 1}`);
  const start = (i: number, port: number) =>
    startOriginwatch(["central", "--listen", `${ips[i]}:${port}`, "--data", join(opts.dir, `central-${i}`), "--allowed-hosts", name, ...(opts.args?.(i) ?? [])]);
  const dns = await startDnsStub({ [name]: ips });
  const procs: Proc[] = [];
  try {
    procs.push(await start(0, 0));
    const port = Number(procs[0].address.slice(procs[0].address.lastIndexOf(":") + 1));
    for (let i = 1; i < n; i++) procs.push(await start(i, port));
    return {
      port,
      ips,
      name,
      dns,
      procs,
      urls: ips.map((ip) => `http://${ip}:${port}`),
      nameUrl: `http://${name}:${port}`,
      kill: (i) => void procs[i].child.kill("SIGKILL"),
      restart: async (i) => (procs[i] = await start(i, port)),
      close: async () => {
        await Promise.all(procs.map((p) => p.stop("SIGKILL")));
        await dns.close();
      },
    };
  } catch (err) {
    await Promise.all(procs.map((p) => p.stop("SIGKILL")));
    await dns.close();
    throw err;
  }
}
