/**
 * Sidecars pointed at several centrals (issue 16), with real processes: three
 * `originwatch central` processes, each with its own data dir, on
 * 127.0.0.1/2/3 at one port, found through a DNS name with three A records
 * or a comma-separated URL list (tools/test/central-replicas.ts); six sidecars (four
 * in-process, two processes) spread over them by node id. `kill -9` of one
 * central: its sidecars reconnect to the others within 5 s and replay what
 * was not acknowledged; every request the origin served is counted by exactly
 * one central (the killed one's durable totals read back after a restart on
 * its data dir). These centrals do not share state, so a batch one of them
 * stored but had not yet acknowledged when it died would be counted again by
 * the next (deduping that is the cluster's job: JetStream msgID by (node,
 * seq)); the kills land mid-window when no batch is in flight, so the totals
 * must be exact. Replay of written-but-unacknowledged batches under the same
 * (node, seq) and bytes is sidecar/stream/client-failover.test.ts.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { type Origin, startOrigin } from "../origin.js";
import { type Proc, eventually, startOriginwatch } from "../test/proc.js";
import { type CentralReplicas, startCentralReplicas } from "../test/central-replicas.js";
import { type Traffic, startTraffic } from "../test/traffic.js";
import { validateSidecarConfig } from "../../sidecar/config.js";
import { type Sidecar, startSidecar } from "../../sidecar/main.js";
import { rendezvousScore } from "../../sidecar/stream/endpoint-picker.js";

const HOST = "shop.example";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir = "";
let origin: Origin;
let replicas: CentralReplicas;
const inProcess: Sidecar[] = [];
const processes: Proc[] = [];
let traffic: Traffic | undefined;

/** The replica (index) the rendezvous hash gives a node with this --central list. */
function replicaOf(nodeId: string, urls: string[]): number {
  const ips = replicas.ips;
  const keys = urls[0] === replicas.nameUrl ? ips.map((ip) => `${urls[0]}@${ip}`) : urls.map((u, i) => `${u}@${ips[i]}`);
  const scores = keys.map((k) => rendezvousScore(nodeId, k));
  return scores.indexOf(Math.max(...scores));
}

/** Where one sidecar's stream is (its /status): state, replica (index into IPS, or -1), buffered batches, moves. */
async function where(s: Sidecar | Proc): Promise<{ state: string; replica: number; buffered: number; moves: number }> {
  const st = "stream" in s && typeof s.stream === "object" && "status" in s.stream
    ? (s as Sidecar).stream.status()
    : ((await (await fetch(`http://${(s as Proc).ready.admin}/status`)).json()) as { stream: Record<string, unknown> }).stream;
  const central = String(st.central ?? "");
  return { state: String(st.state), replica: replicas.ips.findIndex((ip) => central.endsWith(`@${ip}`)), buffered: Number(st.bufferedBatches), moves: Number(st.moves) };
}

/**
 * Wait until mid-window (batches go out just after each second) with nothing
 * unacknowledged on these sidecars: a kill then has no batch in flight.
 */
async function quietMoment(sidecars: Array<Sidecar | Proc>): Promise<void> {
  for (;;) {
    const ms = Date.now() % 1000;
    if (ms >= 300 && ms <= 650 && (await Promise.all(sidecars.map(where))).every((w) => w.buffered === 0) && Date.now() % 1000 <= 700) return;
    await sleep(20);
  }
}

async function totalRequests(address: string): Promise<number> {
  const res = await fetch(`http://${address}/originwatch.v1.QueryService/GetOrigin`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ origin: HOST }) });
  if (res.status === 404) return 0;
  const body = (await res.json()) as { origin?: { totalRequests?: string }; code?: string };
  if (body.code === "not_found") return 0;
  return Number(body.origin?.totalRequests ?? 0);
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-multi-"));
  origin = await startOrigin();
  replicas = await startCentralReplicas({ dir });
});

test.after(async () => {
  await traffic?.stop();
  await Promise.all(inProcess.map((s) => s.shutdown()));
  await Promise.all(processes.map((p) => p.stop()));
  await replicas?.close();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

test("six sidecars spread over three centrals; kill -9 of one, then SIGTERM of another: their sidecars are on the others in < 5 s and every request is counted once", async () => {
  const { dns } = replicas;
  const byName = [replicas.nameUrl];
  const byList = replicas.urls;
  // Node ids that the rendezvous hash spreads two per replica (the spread over a large fleet is endpoint-picker.test.ts).
  const forms = [byName, byName, byName, byName, byList, byList];
  const perReplica = [0, 0, 0];
  const plan: Array<{ nodeId: string; urls: string[]; replica: number }> = [];
  let k = 0;
  for (const urls of forms) {
    for (;; k++) {
      const r = replicaOf(`edge-${k}`, urls);
      if (perReplica[r] < 2) {
        perReplica[r]++;
        plan.push({ nodeId: `edge-${k++}`, urls, replica: r });
        break;
      }
    }
  }
  const isps = ["isp-a", "isp-b", "isp-c"];
  for (const [i, p] of plan.entries()) {
    if (i < 4) {
      const config = validateSidecarConfig({
        central: p.urls.join(","), listen: "127.0.0.1:0", nodeId: p.nodeId, isp: isps[i % 3], region: "eu",
        origins: [`${HOST}=${origin.url}`], resolver: dns.address,
      });
      inProcess.push(await startSidecar(config, { logger: pino({ level: "silent" }) }));
    } else {
      processes.push(await startOriginwatch([
        "sidecar", "--central", p.urls.join(","), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
        "--node-id", p.nodeId, "--isp", isps[i % 3], "--region", "eu", "--origin", `${HOST}=${origin.url}`,
      ]));
    }
  }
  const sidecars: Array<Sidecar | Proc> = [...inProcess, ...processes];
  await eventually(async () => (await Promise.all(sidecars.map(where))).every((w) => w.state === "connected"), 15_000);
  const before = await Promise.all(sidecars.map(where));
  assert.equal(before.map((w) => w.replica), plan.map((p) => p.replica), "each sidecar is on the replica its node id hashes to");
  assert.equal([0, 1, 2].map((r) => before.filter((w) => w.replica === r).length), [2, 2, 2]);
  assert.ok(dns.queries > 0, "the name was resolved through the DNS server");

  traffic = startTraffic(sidecars.map((s) => ({ address: s.address, host: HOST })), 40);
  await sleep(3000);

  const victim = 1;
  const moving = before.map((w, i) => (w.replica === victim ? i : -1)).filter((i) => i >= 0);
  await quietMoment(moving.map((i) => sidecars[i]));
  const killedAt = Date.now();
  replicas.kill(victim);
  // Each moved sidecar: the time from the kill to a Welcome from another replica.
  const reconnectMs = await Promise.all(
    moving.map(async (i) => {
      await eventually(async () => {
        const w = await where(sidecars[i]);
        return w.state === "connected" && w.replica !== victim && w.replica >= 0;
      }, 10_000, 10);
      return Date.now() - killedAt;
    }),
  );
  console.log(`reconnect after kill -9 (ms): ${reconnectMs.join(", ")}`);
  for (const ms of reconnectMs) assert.ok(ms < 5000, `reconnected after ${ms} ms`);
  const after = await Promise.all(sidecars.map(where));
  for (const [i, w] of after.entries()) {
    if (!moving.includes(i)) assert.is(w.replica, before[i].replica, "the other replicas' sidecars stay");
    assert.is(w.moves, moving.includes(i) ? 1 : 0);
  }
  const metrics = await (await fetch(`http://${processes[0].ready.admin}/metrics`)).text();
  assert.match(metrics, new RegExp(`^originwatch_sidecar_stream_moves_total ${after[4].moves}$`, "m"));

  // SIGTERM of a second replica: it closes its sessions (UNAVAILABLE) and its HTTP/2 sessions (GOAWAY).
  await sleep(2000);
  const second = [0, 2].reduce((a, b) => (after.filter((w) => w.replica === b).length > after.filter((w) => w.replica === a).length ? b : a));
  const last = 2 - second;
  const leaving = after.map((w, i) => (w.replica === second ? i : -1)).filter((i) => i >= 0);
  await quietMoment(leaving.map((i) => sidecars[i]));
  const termAt = Date.now();
  const stopped = replicas.procs[second].stop("SIGTERM");
  const termMs = await Promise.all(
    leaving.map(async (i) => {
      await eventually(async () => {
        const w = await where(sidecars[i]);
        return w.state === "connected" && w.replica === last;
      }, 10_000, 10);
      return Date.now() - termAt;
    }),
  );
  console.log(`reconnect after SIGTERM (ms): ${termMs.join(", ")}`);
  for (const ms of termMs) assert.ok(ms < 5000, `reconnected after ${ms} ms`);
  assert.is(await stopped, 0, "the central stopped cleanly");

  await sleep(2000);
  const t = traffic;
  await t.stop();
  traffic = undefined;
  assert.equal(t.failures, [], "the request path never waited for a central");
  // The last windows close and are acknowledged.
  await eventually(async () => (await Promise.all(sidecars.map(where))).every((w) => w.state === "connected" && w.buffered === 0), 10_000);
  await sleep(1500);
  await eventually(async () => (await Promise.all(sidecars.map(where))).every((w) => w.buffered === 0), 10_000);

  await replicas.restart(victim);
  await replicas.restart(second);
  const centrals = replicas.procs;
  const served = origin.requests - origin.probeRequests; // traffic only: probes are not counted in totals
  const totals = await eventually(async () => {
    const t = await Promise.all(centrals.map((c) => totalRequests(c.address)));
    return t.reduce((a, b) => a + b, 0) === served ? t : undefined;
  }, 10_000).catch(async (e: Error) => {
    throw new Error(`${e.message}; served ${served}, totals ${(await Promise.all(centrals.map((c) => totalRequests(c.address)))).join("/")}`);
  });
  console.log(`served ${served}, counted per central ${totals!.join("/")}`);
  assert.ok(served > 0);
  assert.ok(totals![victim] > 0 && totals![second] > 0, "the stopped centrals had counted their share");
});

test.run();
