/**
 * `npm run cluster`: the cluster twin of `npm start` (issue 16). Starts, on
 * loopback: 3 nats-servers (tools/nats, JetStream R3, a user with a random
 * password), 3 centrals in cluster mode (`--nats`), a controllable origin
 * (tools/origin.ts) and a small fleet of sidecars with `--central URL,URL,URL`
 * under steady traffic, then prints a live view per replica: its sessions,
 * the partitions it owns (leases in KV OW_LEASES) and the origin states it
 * reports. Ctrl-C (SIGINT) or SIGTERM stops every process it started and
 * removes its temp dir; nothing is left running.
 *
 * Lines for scripts and tests: `nats pids:` / `nats ports:` once NATS runs,
 * `cluster pids:` / `cluster ports:` (centrals, sidecars, origin) once
 * everything runs, `cluster ready` after them, `cluster stopped` at the end.
 * Without cluster mode in `originwatch central` (no --nats flag) it stops
 * NATS again and exits 2.
 * --nodes N (default 6), --partitions P (default 8), --view-ms (default 2000),
 * --no-view (no live view). On a terminal, `down` / `up` + Enter make the
 * origin answer 503 / 200, to watch every replica report it.
 */
import { execFile } from "node:child_process";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { OriginState, QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { numArg } from "../bench/args.js";
import { startNatsCluster } from "../nats/nats-cluster.js";
import { startOrigin } from "../origin.js";
import { BIN, type Proc, startOriginwatch } from "../test/proc.js";
import { startTraffic } from "../test/traffic.js";

const ISPS = ["isp-a", "isp-b", "isp-c"];
const REGIONS = ["eu", "us"];
const ORIGINS = ["shop.example", "img.example"];
const out = (line: string) => process.stdout.write(`${line}\n`);

/** True when `originwatch central` has cluster mode (the --nats flag) on this build. */
async function centralHasNats(): Promise<boolean> {
  const r = await promisify(execFile)(process.execPath, [BIN, "central", "--help"], { encoding: "utf8", env: process.env }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? "" }));
  return /--nats\b/.test(r.stdout);
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const nodes = numArg("nodes", 6);
  const partitions = numArg("partitions", 8);
  const viewMs = numArg("view-ms", 2000);
  const view = !argv.includes("--no-view");
  const dir = mkdtempSync(join(tmpdir(), "ow-cluster-"));
  const procs: Proc[] = [];
  const stops: Array<() => Promise<unknown>> = [];
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      for (const s of stops.reverse()) await s().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
      out("cluster stopped");
    })());
  let stopRequested = false;
  /** A Ctrl-C during start-up stops at the next step instead of starting the rest first. */
  class Interrupted extends Error {}
  const checkStop = async () => {
    await new Promise((r) => setImmediate(r));
    if (stopRequested) throw new Interrupted();
  };
  let wake: () => void = () => {};
  const onSignal = () => {
    stopRequested = true;
    wake();
  };
  // Safety net: whatever still runs when this process exits is killed.
  process.once("exit", () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  });

  try {
    const nats = await startNatsCluster({ servers: 3 });
    stops.push(() => nats.stop());
    // The harness exits at once on a signal (tests); here a signal stops everything in order first.
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      process.removeAllListeners(sig);
      process.on(sig, onSignal);
    }
    await nats.ready();
    out(`nats: ${nats.urls.join(" ")} (user ${nats.user.user})`);
    out(`nats pids: ${nats.servers.map((s) => s.pid()).join(" ")}`);
    out(`nats ports: ${nats.servers.flatMap((s) => [s.clientPort, s.routePort, s.httpPort]).join(" ")}`);
    const hasNats = await centralHasNats();
    await checkStop();
    if (!hasNats) {
      out("cluster: `originwatch central` has no --nats flag on this build (cluster-mode wiring not merged yet); stopping");
      await stopAll();
      return 2;
    }
    const pwFile = join(dir, "nats-password");
    writeFileSync(pwFile, nats.user.password, { mode: 0o600 });
    const centrals: Proc[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await startOriginwatch(
        ["central", "--listen", "127.0.0.1:0", "--data", join(dir, `central-${i}`), "--nats", nats.urls.join(","), "--nats-user", nats.user.user, "--nats-password-file", pwFile, "--partitions", String(partitions), "--replica-id", `central-${i}`],
        { timeoutMs: 60_000 },
      );
      procs.push(p);
      centrals.push(p);
      stops.push(() => stopProc(p));
      out(`central-${i}: http://${p.address}`);
      await checkStop();
    }
    const origin = await startOrigin();
    stops.push(() => origin.close());
    const urls = centrals.map((c) => `http://${c.address}`).join(",");
    const sidecars: Proc[] = [];
    for (let i = 0; i < nodes; i++) {
      const p = await startOriginwatch([
        "sidecar",
        "--listen", "127.0.0.1:0",
        "--node-id", `edge-${i + 1}`,
        "--isp", ISPS[i % ISPS.length],
        "--region", REGIONS[i % REGIONS.length],
        "--central", urls,
        "--state-dir", join(dir, `edge-${i + 1}`),
        ...ORIGINS.flatMap((o) => ["--origin", `${o}=${origin.url}`]),
      ]);
      procs.push(p);
      sidecars.push(p);
      stops.push(() => stopProc(p));
      await checkStop();
    }
    const traffic = startTraffic(sidecars.flatMap((s) => ORIGINS.map((host) => ({ address: s.address, host }))), 100);
    stops.push(() => traffic.stop());
    out(`cluster pids: ${procs.map((p) => p.child.pid).join(" ")}`);
    out(`cluster ports: ${procs.map((p) => Number(p.address.split(":").pop())).join(" ")} ${origin.port}`);
    out("cluster ready (Ctrl-C stops everything)");
    if (process.stdin.isTTY) {
      // Type `down` or `up` + Enter: the origin answers 503 or 200, and every replica should report it.
      const rl = createInterface({ input: process.stdin });
      rl.on("line", (line) => {
        const cmd = line.trim();
        if (cmd === "down" || cmd === "up") void origin.setMode(cmd === "down" ? { kind: "status", status: 503 } : { kind: "ok" }).then(() => out(`origin ${cmd}`));
        else if (cmd) out(`${JSON.stringify(cmd.slice(0, 20))}: type \`down\` or \`up\` (the origin answers 503 or 200), Ctrl-C to stop`);
      });
      stops.push(async () => rl.close());
      out("type `down` or `up` + Enter to fail or heal the origin");
    }

    const nc = await nats.connect();
    stops.push(() => nc.close());
    const leases = await new Kvm(jetstream(nc)).open("OW_LEASES");
    const apis = centrals.map((c) => createClient(QueryService, createGrpcTransport({ baseUrl: `http://${c.address}` })));
    while (!stopRequested) {
      if (view) out(await liveView(apis, leases, partitions));
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, viewMs).unref();
      });
    }
  } catch (err) {
    if (!(err instanceof Interrupted)) {
      out(`cluster: ${(err as Error).message}`);
      await stopAll();
      return 1;
    }
  }
  await stopAll();
  return 0;
}

async function stopProc(p: Proc): Promise<void> {
  const t = setTimeout(() => p.child.kill("SIGKILL"), 5_000);
  await p.stop("SIGTERM");
  clearTimeout(t);
}

type Api = ReturnType<typeof createClient<typeof QueryService>>;

/** One frame of the live view: per replica its sessions, owned partitions and origin states. */
async function liveView(apis: Api[], leases: { get(k: string): Promise<{ operation: string; string(): string } | null> }, partitions: number): Promise<string> {
  const owners = new Map<string, number[]>();
  for (let p = 0; p < partitions; p++) {
    const e = await leases.get(`p.${p}`).catch(() => null);
    const who = e && e.operation === "PUT" ? e.string() : "(free)";
    owners.set(who, [...(owners.get(who) ?? []), p]);
  }
  const lines = [`--- ${new Date().toISOString().slice(11, 19)}`];
  for (let i = 0; i < apis.length; i++) {
    try {
      const [nodes, origins] = await Promise.all([apis[i].listNodes({}), apis[i].listOrigins({})]);
      const sessions = nodes.nodes.filter((n) => n.connected).map((n) => n.nodeId);
      const owned = [...owners].filter(([who]) => who.includes(`central-${i}`)).flatMap(([, ps]) => ps);
      const states = origins.origins.map((o) => `${o.name} ${OriginState[o.state] ?? o.state}`).join(", ");
      lines.push(`central-${i}: ${sessions.length} sessions [${sessions.join(" ")}]  partitions [${owned.join(" ")}]  ${states || "no origins yet"}`);
    } catch (err) {
      lines.push(`central-${i}: not answering (${(err as Error).message})`);
    }
  }
  const free = owners.get("(free)");
  if (free) lines.push(`unowned partitions: [${free.join(" ")}]`);
  return lines.join("\n");
}

process.exitCode = await main();
process.exit();
