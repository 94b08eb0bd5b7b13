/**
 * Real nats-server clusters on loopback, for tests, `npm run cluster` and the
 * benchmarks (issue 16): N servers with JetStream, each on free ports with its
 * own store directory under one temp dir, routes between all of them, and
 * explicit users (user/password; never `no_auth_user`) on client and route
 * connections. Client users live in one account `OW` with JetStream (an
 * `accounts` block only, never mixed with a top-level `authorization` block:
 * see central/cluster/README.md, Security). `ready()` waits until JetStream
 * has a meta leader; `kill(i)` is a `kill -9`, `restart(i)` brings the same
 * server back with the same ports and store. `stop()` is idempotent; every
 * server is also killed when this process exits (exit handler, SIGINT/SIGTERM)
 * and, through `setpriv --pdeathsig`, when it dies without running handlers.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { deadPort } from "../test/sidecar-harness.js";

export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";

/** A user the cluster accepts on client connections. */
export interface NatsUser {
  user: string;
  password: string;
  /** Subjects the user may publish to and subscribe to (default: everything in its account). */
  permissions?: { publish: readonly string[]; subscribe: readonly string[]; allowResponses?: boolean };
}

export interface NatsClusterOptions {
  /** Servers in the cluster (default 3). */
  servers?: number;
  /** Client users (default one: `ow` with a random password). */
  users?: NatsUser[];
  /** TLS on client connections (PEM files; the server does not ask clients for certificates; `ca` is what clients trust). */
  tls?: { cert: string; key: string; ca: string };
  /** Memory and file store caps per server (defaults 64MB, 1GB). */
  maxMemoryStore?: string;
  maxFileStore?: string;
}

export interface NatsServerHandle {
  name: string;
  /** nats://127.0.0.1:PORT (tls:// with TLS). */
  url: string;
  clientPort: number;
  httpPort: number;
  routePort: number;
  storeDir: string;
  /** True while the process runs. */
  running(): boolean;
  /** Process id of the running server (undefined when not running). */
  pid(): number | undefined;
  /** Last output lines (for failure messages). */
  log(): string;
}

export interface NatsCluster {
  servers: NatsServerHandle[];
  /** Every server's client URL. */
  urls: string[];
  /** The first user (what tests connect as). */
  user: NatsUser;
  users: NatsUser[];
  /** Waits until every running server reports JetStream with a meta leader (30 s by default). */
  ready(timeoutMs?: number): Promise<void>;
  /** A client connection as `user` to the running servers. */
  connect(user?: NatsUser): Promise<NatsConnection>;
  /** Index of the running server leading stream `name`; waits for one (an election after a kill) up to timeoutMs (30 s). */
  streamLeader(name: string, timeoutMs?: number): Promise<number>;
  /** `kill -9` server i; resolves when it has exited. */
  kill(i: number): Promise<void>;
  /** Starts server i again (same ports, config and store dir); resolves when its monitoring port answers. */
  restart(i: number): Promise<void>;
  /** Kills every server and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** True when the nats-server binary runs here. */
export function natsServerAvailable(): boolean {
  return existsSync(NATS_SERVER_BIN) && spawnSync(NATS_SERVER_BIN, ["--version"], { stdio: "ignore" }).status === 0;
}

// --- cleanup on exit: one registry of live children for the whole process ---
const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once("exit", () => {
    for (const c of live) c.kill("SIGKILL");
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => process.exit(sig === "SIGINT" ? 130 : 143));
  }
}

const usePdeathsig = existsSync("/usr/bin/setpriv") && spawnSync("/usr/bin/setpriv", ["--pdeathsig", "KILL", "--", "true"], { stdio: "ignore" }).status === 0;

function serverConf(o: {
  name: string;
  clientPort: number;
  httpPort: number;
  routePort: number;
  routePorts: number[];
  storeDir: string;
  users: NatsUser[];
  routeUser: NatsUser;
  tls?: { cert: string; key: string; ca: string };
  maxMemoryStore: string;
  maxFileStore: string;
}): string {
  const q = (s: string) => JSON.stringify(s);
  const perms = (u: NatsUser) =>
    u.permissions
      ? `, permissions: { publish: ${JSON.stringify(u.permissions.publish)}, subscribe: ${JSON.stringify(u.permissions.subscribe)}${u.permissions.allowResponses ? ", allow_responses: true" : ""} }`
      : "";
  const users = o.users.map((u) => `      { user: ${q(u.user)}, password: ${q(u.password)}${perms(u)} }`).join("\n");
  const routes = o.routePorts.map((p) => `    ${q(`nats-route://${o.routeUser.user}:${o.routeUser.password}@127.0.0.1:${p}`)}`).join("\n");
  return `server_name: ${q(o.name)}
listen: "127.0.0.1:${o.clientPort}"
http: "127.0.0.1:${o.httpPort}"
jetstream {
  store_dir: ${q(o.storeDir)}
  max_memory_store: ${o.maxMemoryStore}
  max_file_store: ${o.maxFileStore}
}
accounts {
  OW: {
    jetstream: enabled
    users: [
${users}
    ]
  }
}
${o.tls ? `tls {\n  cert_file: ${q(o.tls.cert)}\n  key_file: ${q(o.tls.key)}\n  timeout: 2\n}\n` : ""}${o.routePorts.length < 2 ? "" : `cluster {
  name: ow
  listen: "127.0.0.1:${o.routePort}"
  authorization { user: ${q(o.routeUser.user)}, password: ${q(o.routeUser.password)} }
  routes: [
${routes}
  ]
}
`}`;
}

const randomSecret = () => Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString("base64url");

/** Starts a cluster (not yet necessarily JetStream-ready: call `ready()`). */
export async function startNatsCluster(opts: NatsClusterOptions = {}): Promise<NatsCluster> {
  hookExit();
  const n = opts.servers ?? 3;
  if (!Number.isInteger(n) || n < 1) throw new Error(`servers must be a positive integer, got ${n}`);
  const users = opts.users ?? [{ user: "ow", password: randomSecret() }];
  if (users.length === 0) throw new Error("users must name at least one user (the cluster never allows anonymous clients)");
  const routeUser = { user: "route", password: randomSecret() };
  const dir = mkdtempSync(join(tmpdir(), "ow-nats-"));
  tempDirs.add(dir);
  const ports: Array<{ client: number; http: number; route: number }> = [];
  // The kernel may hand a just-closed port out again: two servers given the same route port refuse to start
  // ("Duplicate route entry detected"), so every port of the cluster is a distinct one.
  const taken = new Set<number>();
  const freePort = async (): Promise<number> => {
    for (;;) {
      const p = await deadPort();
      if (taken.has(p)) continue;
      taken.add(p);
      return p;
    }
  };
  for (let i = 0; i < n; i++) ports.push({ client: await freePort(), http: await freePort(), route: await freePort() });
  const scheme = opts.tls ? "tls" : "nats";

  const procs: Array<ChildProcess | undefined> = [];
  const logs: string[] = [];
  const confs: string[] = [];
  const servers: NatsServerHandle[] = ports.map((p, i) => {
    const name = `n${i + 1}`;
    const storeDir = join(dir, name);
    mkdirSync(storeDir, { recursive: true });
    const conf = join(dir, `${name}.conf`);
    writeFileSync(
      conf,
      serverConf({
        name,
        clientPort: p.client,
        httpPort: p.http,
        routePort: p.route,
        routePorts: ports.map((q) => q.route),
        storeDir,
        users,
        routeUser,
        tls: opts.tls,
        maxMemoryStore: opts.maxMemoryStore ?? "64MB",
        maxFileStore: opts.maxFileStore ?? "1GB",
      }),
    );
    confs.push(conf);
    logs.push("");
    return {
      name,
      url: `${scheme}://127.0.0.1:${p.client}`,
      clientPort: p.client,
      httpPort: p.http,
      routePort: p.route,
      storeDir,
      running: () => procs[i] !== undefined && procs[i]!.exitCode === null && procs[i]!.signalCode === null,
      log: () => logs[i],
      pid: () => (servers[i].running() ? procs[i]!.pid : undefined),
    };
  });

  const launch = (i: number): ChildProcess => {
    const args = ["-c", confs[i]];
    const child = usePdeathsig
      ? spawn("/usr/bin/setpriv", ["--pdeathsig", "KILL", "--", NATS_SERVER_BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] })
      : spawn(NATS_SERVER_BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
    live.add(child);
    child.once("exit", () => live.delete(child));
    const keep = (c: Buffer) => (logs[i] = (logs[i] + c.toString()).slice(-20_000));
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    procs[i] = child;
    return child;
  };

  const healthy = async (i: number, deadline: number): Promise<void> => {
    for (;;) {
      if (!servers[i].running()) throw new Error(`nats-server ${servers[i].name} exited before ready:\n${logs[i]}`);
      try {
        await fetch(`http://127.0.0.1:${servers[i].httpPort}/varz`);
        return;
      } catch {
        /* not yet listening */
      }
      if (Date.now() > deadline) throw new Error(`nats-server ${servers[i].name} not answering /healthz:\n${logs[i]}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(
      procs.map(async (c) => {
        if (!c || c.exitCode !== null || c.signalCode !== null) return;
        const exited = new Promise((r) => c.once("exit", r));
        c.kill("SIGKILL");
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  };

  try {
    for (let i = 0; i < n; i++) launch(i);
    const deadline = Date.now() + 20_000;
    for (let i = 0; i < n; i++) await healthy(i, deadline);
  } catch (err) {
    await stop();
    throw err;
  }

  const cluster: NatsCluster = {
    servers,
    urls: servers.map((s) => s.url),
    user: users[0],
    users,
    async ready(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last = "";
      for (;;) {
        const running = servers.filter((s) => s.running());
        const states = await Promise.all(
          running.map(async (s) => {
            try {
              const jsz = (await (await fetch(`http://127.0.0.1:${s.httpPort}/jsz`)).json()) as { meta_cluster?: { leader?: string }; config?: unknown };
              // A lone server has no meta cluster: JetStream is ready once it reports its config.
              return jsz.meta_cluster?.leader || (n === 1 && jsz.config ? s.name : "");
            } catch (err) {
              return `(${(err as Error).message})`;
            }
          }),
        );
        last = states.join(",");
        const leader = states[0];
        if (running.length > 0 && leader && states.every((l) => l === leader) && servers.some((s) => s.name === leader && s.running())) return;
        if (Date.now() > deadline) throw new Error(`JetStream has no meta leader agreed by every running server within ${timeoutMs} ms (leaders seen: ${last})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    connect(user = users[0]) {
      return connect({
        servers: servers.filter((s) => s.running()).map((s) => s.url),
        user: user.user,
        pass: user.password,
        ...(opts.tls ? { tls: { caFile: opts.tls.ca } } : {}),
      });
    },
    async streamLeader(name, timeoutMs = 30_000) {
      const nc = await cluster.connect();
      const deadline = Date.now() + timeoutMs;
      let last = "";
      try {
        // no account-info check: right after a kill -9 the meta leader may be gone and it would time out
        const jsm = await jetstreamManager(nc, { checkAPI: false });
        for (;;) {
          try {
            const info = await jsm.streams.info(name);
            const i = servers.findIndex((s) => s.name === info.cluster?.leader && s.running());
            if (i >= 0) return i;
            last = `cluster: ${JSON.stringify(info.cluster)}`;
          } catch (err) {
            last = (err as Error).message; // no leader yet (an election after a kill): ask again
          }
          if (Date.now() > deadline) throw new Error(`stream ${name} has no running leader within ${timeoutMs} ms (${last})`);
          await new Promise((r) => setTimeout(r, 250));
        }
      } finally {
        await nc.close();
      }
    },
    async kill(i) {
      const c = procs[i];
      if (!c || !servers[i].running()) return;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGKILL");
      await exited;
    },
    async restart(i) {
      if (stopped) throw new Error("cluster stopped");
      if (servers[i].running()) throw new Error(`${servers[i].name} is running`);
      launch(i);
      await healthy(i, Date.now() + 20_000);
    },
    stop,
  };
  return cluster;
}
