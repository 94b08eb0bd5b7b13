/**
 * Cluster mode end to end (issue 16), real processes: three nats-servers
 * (tools/nats harness), three `originwatch central --nats ...` processes
 * (tools/test/central-replicas.ts) and six sidecars spread over them by node
 * id. Traffic for two origin names (two partitions of four). One origin is
 * made DOWN (503s): every replica reports it DOWN with the same incident.
 * `kill -9` of the central owning its partition while batches are in
 * flight: its sidecars reconnect elsewhere in < 5 s and replay what was not
 * acknowledged (same (node, seq) and bytes), its partitions are owned again
 * within 15 s, the origin stays DOWN under the same incident id (never opened
 * twice); the recovery is reported by every replica; and every replica —
 * including the killed one restarted — reports totals equal to exactly what
 * the origins served: counted once across replicas (msgID dedup + owners'
 * high-water marks + the node's cluster-wide mark in the Welcome). Every
 * central has `--webhook` to one receiver: the incident's open and close each
 * arrive once (no dedupe key, no event id twice), whoever owned it.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { EVENTS_STREAM } from "../../central/cluster/event-log.js";
import { notifyConsumerName } from "../../central/cluster/webhook-notifier.js";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { type Origin, startOrigin } from "../origin.js";
import { eventually } from "../test/proc.js";
import { type CentralReplicas, startCentralReplicas } from "../test/central-replicas.js";
import { type Traffic, startTraffic } from "../test/traffic.js";
import { type NatsCluster, startNatsCluster } from "../nats/nats-cluster.js";
import { requireNats } from "../nats/require-nats.js";
import { validateSidecarConfig } from "../../sidecar/config.js";
import { type Sidecar, startSidecar } from "../../sidecar/main.js";
import { rendezvousScore } from "../../sidecar/stream/endpoint-picker.js";
import { LEASE_BUCKET, leaseKey } from "../../central/cluster/partition-lease.js";
import { partitionOf } from "../../central/cluster/partition.js";
import { windowStream } from "../../central/cluster/window-log.js";
import { STATUS_BUCKET } from "../../central/cluster/origin-status.js";
import { CENTRAL_NATS_PERMISSIONS } from "../../central/cluster/nats-permissions.js";
import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EventKind, QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";

const P = 4;
const HOSTS = ["shop.example", "api.example"];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir = "";
let bad: Origin;
let good: Origin;
let nats: NatsCluster;
let nc: NatsConnection;
let replicas: CentralReplicas;
const sidecars: Sidecar[] = [];
let traffic: Traffic | undefined;
let hook: { url: string; got: Array<{ key: string; action: string; incident: string; event: string }>; close(): void };

/** The webhook receiver every central posts to: records each POST (204). */
async function startHookReceiver(): Promise<typeof hook> {
  const got: (typeof hook)["got"] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const p = JSON.parse(body) as { dedupe_key: string; action: string; incident_id: string; event_id?: string };
      got.push({ key: p.dedupe_key, action: p.action, incident: p.incident_id, event: p.event_id ?? "" });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, close: () => { server.closeAllConnections(); server.close(); } };
}

/** True when the webhook consumer has nothing waiting and nothing in flight (the last delivery was acked). */
async function notifyIdle(): Promise<boolean> {
  const info = await (await jetstreamManager(nc)).consumers.info(EVENTS_STREAM, notifyConsumerName(hook.url));
  return info.num_pending === 0 && info.num_ack_pending === 0;
}

function replicaOf(nodeId: string): number {
  const scores = replicas.urls.map((u, i) => rendezvousScore(nodeId, `${u}@${replicas.ips[i]}`));
  return scores.indexOf(Math.max(...scores));
}

function where(s: Sidecar): { state: string; replica: number; buffered: number } {
  const st = s.stream.status() as unknown as Record<string, unknown>;
  const central = String(st.central ?? "");
  return { state: String(st.state), replica: replicas.ips.findIndex((ip) => central.endsWith(`@${ip}`)), buffered: Number(st.bufferedBatches) };
}

async function call<T>(address: string, method: string, req: unknown): Promise<T> {
  const res = await fetch(`http://${address}/originwatch.v1.QueryService/${method}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(req) });
  return (await res.json()) as T;
}

async function getOrigin(address: string, host: string): Promise<number> {
  const body = await call<{ origin?: { totalRequests?: string } }>(address, "GetOrigin", { origin: host });
  return Number(body.origin?.totalRequests ?? 0);
}

/** What one replica says about HOSTS[0]: its state and its origin incidents (id, open). */
async function view(address: string): Promise<string> {
  const o = await call<{ origin?: { state?: string } }>(address, "GetOrigin", { origin: HOSTS[0] });
  const inc = await call<{ incidents?: Array<{ id: string; open?: boolean; kind?: string }> }>(address, "ListIncidents", { origin: HOSTS[0] });
  const ids = (inc.incidents ?? []).filter((i) => i.kind === "INCIDENT_KIND_ORIGIN_DOWN" || i.kind === "INCIDENT_KIND_ORIGIN_DEGRADED").map((i) => `${i.id}${i.open ? "(open)" : "(closed)"}`);
  return `${o.origin?.state ?? "?"} ${ids.join(",")}`;
}

const views = (addresses: string[]) => Promise.all(addresses.map(view));

/** Each replica's total over HOSTS. */
const totalsOf = (addresses: string[]) => Promise.all(addresses.map(async (a) => (await Promise.all(HOSTS.map((h) => getOrigin(a, h)))).reduce((x, y) => x + y, 0)));

async function records(): Promise<Array<{ origin: string; owner: string }>> {
  const kv = await new Kvm(jetstream(nc)).open(STATUS_BUCKET);
  const out: Array<{ origin: string; owner: string }> = [];
  for await (const k of await kv.keys()) {
    const e = await kv.get(k);
    if (e && e.operation === "PUT") out.push(e.json());
  }
  return out;
}

async function leaseOwners(): Promise<string[]> {
  const kv = await new Kvm(jetstream(nc)).open(LEASE_BUCKET);
  return Promise.all(Array.from({ length: P }, async (_, p) => {
    const e = await kv.get(leaseKey(p));
    return e && e.operation === "PUT" ? e.string() : "";
  }));
}

if (requireNats("cluster central e2e")) {
  test.before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ow-cluster-"));
    bad = await startOrigin();
    good = await startOrigin();
    hook = await startHookReceiver();
    // The centrals run with exactly the least permissions of nats-permissions.ts.
    nats = await startNatsCluster({ users: [{ user: "ow", password: randomBytes(12).toString("hex"), permissions: CENTRAL_NATS_PERMISSIONS }] });
    await nats.ready();
    nc = await nats.connect();
    const pw = join(dir, "nats-password");
    await writeFile(pw, nats.user.password, { mode: 0o600 });
    replicas = await startCentralReplicas({
      dir,
      args: (i) => ["--nats", nats.urls.join(","), "--nats-user", nats.user.user, "--nats-password-file", pw, "--partitions", String(P), "--replica-id", `r${i}`, "--webhook", hook.url],
    });
  });

  test.after(async () => {
    await traffic?.stop();
    await Promise.all(sidecars.map((s) => s.shutdown()));
    await replicas?.close();
    await nc?.close();
    await nats?.stop();
    await bad?.close();
    await good?.close();
    hook?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("3 centrals on NATS, 6 sidecars: an origin DOWN is reported the same by every replica; kill -9 of its owner mid-traffic: sidecars move in < 5 s, partitions owned again in ≤ 15 s, same incident id, recovery seen by every replica, totals exact", async () => {
    assert.not.equal(partitionOf(HOSTS[0], P), partitionOf(HOSTS[1], P), "two origins, two partitions");
    const perReplica = [0, 0, 0];
    for (let k = 0; sidecars.length < 6; k++) {
      const nodeId = `edge-${k}`;
      const r = replicaOf(nodeId);
      if (perReplica[r] >= 2) continue;
      perReplica[r]++;
      const config = validateSidecarConfig({
        central: replicas.urls.join(","), listen: "127.0.0.1:0", nodeId, isp: ["isp-a", "isp-b", "isp-c"][sidecars.length % 3], region: "eu",
        origins: [`${HOSTS[0]}=${bad.url}`, `${HOSTS[1]}=${good.url}`],
      });
      sidecars.push(await startSidecar(config, { logger: pino({ level: "silent" }) }));
    }
    await eventually(() => sidecars.every((s) => where(s).state === "connected"), 15_000);
    const before = sidecars.map(where);
    assert.equal([0, 1, 2].map((r) => before.filter((w) => w.replica === r).length), [2, 2, 2]);
    // Wait until every partition is owned and the owners stay put (the first replica takes all, then rebalances).
    let stable = "";
    await eventually(async () => {
      const owners = (await leaseOwners()).join(",");
      const ok = owners === stable && !owners.split(",").includes("");
      stable = owners;
      return ok;
    }, 30_000, 2_500);
    console.log(`lease owners: ${stable}`);

    // WatchEvents on every replica, for the origin that goes DOWN.
    const watch = new AbortController();
    const seen: string[][] = replicas.procs.map(() => []);
    const watching = replicas.procs.map(async (p, i) => {
      const client = createClient(QueryService, createGrpcTransport({ baseUrl: `http://${p.address}` }));
      try {
        for await (const r of client.watchEvents({ origin: HOSTS[0] }, { signal: watch.signal })) {
          if (r.event) seen[i].push(`${r.event.id} ${EventKind[r.event.kind]} ${r.event.incident?.id ?? ""}`.trim());
        }
      } catch {
        /* aborted, or the replica was killed */
      }
    });
    await sleep(500);

    traffic = startTraffic(sidecars.flatMap((s) => HOSTS.map((host) => ({ address: s.address, host }))), 30);
    await sleep(3000);
    const all = replicas.procs.map((p) => p.address);
    await bad.setMode({ kind: "status", status: 503 });
    const down: string = await eventually<string | undefined>(async () => {
      const v = await views(all);
      return v.every((x) => x === v[0]) && /^ORIGIN_STATE_DOWN \S+\(open\)$/.test(v[0]) ? v[0] : undefined;
    }, 20_000, 200).catch(async (e: Error): Promise<never> => { throw new Error(`${e.message}: ${(await views(all)).join(" | ")}`); }) as string;
    console.log(`every replica: ${down}`);

    // The open webhook arrived and was acked before the kill (a kill mid-delivery repeats it: the other test).
    const incidentOf = down.split(" ")[1].replace("(open)", "");
    await eventually(async () => hook.got.some((h) => h.incident === incidentOf && h.action === "opened") && (await notifyIdle()), 15_000, 200);
    // The victim owns the first origin's partition (so its state must move) and has sidecars (they must move).
    const victim = Number((await leaseOwners())[partitionOf(HOSTS[0], P)].slice(1));
    const moving = before.map((w, i) => (w.replica === victim ? i : -1)).filter((i) => i >= 0);
    const killedAt = Date.now();
    replicas.kill(victim);
    const reconnectMs = await Promise.all(moving.map(async (i) => {
      await eventually(() => { const w = where(sidecars[i]); return w.state === "connected" && w.replica !== victim && w.replica >= 0; }, 10_000, 10);
      return Date.now() - killedAt;
    }));
    console.log(`reconnect after kill -9 (ms): ${reconnectMs.join(", ")}`);
    for (const ms of reconnectMs) assert.ok(ms < 5000, `reconnected after ${ms} ms`);

    const takeoverMs: number = await eventually<number | undefined>(async () => ((await leaseOwners()).every((o) => o !== "" && o !== `r${victim}`) ? Date.now() - killedAt : undefined), 20_000, 100) as number;
    console.log(`partitions owned again after kill -9: ${takeoverMs} ms (owners ${(await leaseOwners()).join(", ")})`);
    assert.ok(takeoverMs <= 15_000, `partitions owned again after ${takeoverMs} ms`);

    const survivors = all.filter((_, i) => i !== victim);
    // The new owner has published (its records replace the victim's): still DOWN, the same incident, opened once.
    await eventually(async () => (await views(survivors)).every((x) => x === down) && [...(await records())].every((r) => r.owner !== `r${victim}`), 15_000, 200)
      .catch(async (e: Error) => { throw new Error(`${e.message}: ${(await views(survivors)).join(" | ")}`); });
    await sleep(2000);
    assert.equal(await views(survivors), [down, down], "still DOWN, same incident, on every replica");

    await bad.setMode({ kind: "ok" });
    // HEALTHY first, then the incident closes (hysteresis): the same incident, closed, on every replica.
    const recovered = down.replace(/^ORIGIN_STATE_DOWN/, "ORIGIN_STATE_HEALTHY").replace("(open)", "(closed)");
    await eventually(async () => (await views(survivors)).every((x) => x === recovered), 30_000, 200)
      .catch(async (e: Error) => { throw new Error(`${e.message}: ${(await views(survivors)).join(" | ")}`); });
    console.log(`after recovery, every replica: ${recovered}`);
    await sleep(1500);
    watch.abort();
    await Promise.race([Promise.all(watching), sleep(3000)]); // the killed replica's stream may never settle
    const incidentId = down.split(" ")[1].replace("(open)", "");
    console.log(`events seen by replica ${survivors.length ? all.findIndex((a) => a === survivors[0]) : -1}: ${seen[all.indexOf(survivors[0])].join(" | ")}`);
    for (const i of all.map((_, j) => j).filter((j) => j !== victim)) {
      assert.equal(seen[i], seen[all.indexOf(survivors[0])], "every replica shows the same events, same ids");
      assert.is(new Set(seen[i]).size, seen[i].length, "no event twice");
      assert.is(seen[i].filter((e) => e.endsWith(`INCIDENT_OPENED ${incidentId}`)).length, 1, "the incident opened once");
      assert.is(seen[i].filter((e) => e.endsWith(`INCIDENT_CLOSED ${incidentId}`)).length, 1, "and closed once");
    }

    // Webhooks: the incident's open (decided by the victim) and close (decided by its successor) each once.
    await eventually(async () => hook.got.some((h) => h.incident === incidentId && h.action === "closed") && (await notifyIdle()), 20_000, 200);
    const hooks = hook.got.filter((h) => h.incident === incidentId);
    console.log(`webhooks for ${incidentId}: ${hooks.map((h) => `${h.action} ${h.event}`).join(" | ")}`);
    assert.equal(hooks.map((h) => h.action), ["opened", "closed"], "open and close each arrived once, in order");
    assert.is(new Set(hook.got.map((h) => h.key)).size, hook.got.length, "no webhook twice (dedupe key)");
    assert.is(new Set(hook.got.map((h) => h.event)).size, hook.got.length, "no webhook twice (event id)");

    const t = traffic;
    await t.stop();
    traffic = undefined;
    assert.equal(t.failures.filter((f) => !f.endsWith("status 503")), [], "the request path never waited for a central");
    await sleep(1500);
    await eventually(() => sidecars.every((s) => { const w = where(s); return w.state === "connected" && w.buffered === 0; }), 15_000);

    await replicas.restart(victim);
    // What the origins served as traffic: confirmation probes (DOWN in doubt) reach them too, and are not traffic.
    const served = bad.requests - bad.probeRequests + good.requests - good.probeRequests;
    const addresses = replicas.procs.map((p) => p.address);
    const totals = await eventually(async () => {
      const got = await totalsOf(addresses);
      return got.every((x) => x === served) ? got : undefined;
    }, 20_000).catch(async (e: Error) => {
      throw new Error(`${e.message}; served ${served}, totals per replica ${(await totalsOf(addresses)).join("/")}`);
    });
    console.log(`served ${served} (and ${bad.probeRequests + good.probeRequests} probes), every replica reports ${totals!.join("/")}`);
    assert.ok(served > 0);
    // The restarted replica reads what the others read, the closed incident included. (Compared at the same
    // moment: once the lookback passes without traffic the origin legitimately moves on to NO_DATA.)
    const incidentPart = (view: string) => view.split(" ").slice(1).join(" ");
    const same = await eventually(async () => {
      const v = await views(addresses);
      return v.every((x) => x === v[victim]) ? v : undefined;
    }, 15_000).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${(await views(addresses)).join(" | ")}`);
    });
    assert.is(incidentPart(same![victim]), incidentPart(recovered), "the restarted replica reads the same incident");
  });

  test("kill -9 of the nats-server leading the DOWN origin's window stream, mid-traffic: every replica still reports exactly what the origins served, no event twice", async () => {
    const addresses = replicas.procs.map((p) => p.address);
    const seen: string[][] = addresses.map(() => []);
    const watch = new AbortController();
    const watching = addresses.map(async (address, i) => {
      const client = createClient(QueryService, createGrpcTransport({ baseUrl: `http://${address}` }));
      try {
        for await (const r of client.watchEvents({}, { signal: watch.signal })) if (r.event) seen[i].push(r.event.id);
      } catch {
        /* aborted */
      }
    });
    traffic = startTraffic(sidecars.flatMap((s) => HOSTS.map((host) => ({ address: s.address, host }))), 30);
    await sleep(2000);
    const leader = await nats.streamLeader(windowStream(partitionOf(HOSTS[0], P)));
    await nats.kill(leader);
    await bad.setMode({ kind: "status", status: 503 });
    await sleep(8000);
    await nats.restart(leader);
    await bad.setMode({ kind: "ok" });
    await sleep(3000);
    const t = traffic;
    await t.stop();
    traffic = undefined;
    assert.equal(t.failures.filter((f) => !f.endsWith("status 503")), [], "the request path never waited for a central");
    await sleep(1500);
    await eventually(() => sidecars.every((s) => { const w = where(s); return w.state === "connected" && w.buffered === 0; }), 30_000);
    // What the origins served as traffic: confirmation probes (DOWN in doubt) reach them too, and are not traffic.
    const served = bad.requests - bad.probeRequests + good.requests - good.probeRequests;
    const totals = await eventually(async () => {
      const got = await totalsOf(addresses);
      return got.every((x) => x === served) ? got : undefined;
    }, 30_000).catch(async (e: Error) => {
      throw new Error(`${e.message}; served ${served}, totals per replica ${(await totalsOf(addresses)).join("/")}`);
    });
    console.log(`nats-server n${leader + 1} (stream leader) killed: served ${served} (and ${bad.probeRequests + good.probeRequests} probes), every replica reports ${totals!.join("/")}`);
    // A reader that stalled across the kill resumes within its watchdog period (5 s): wait for it.
    await eventually(() => seen.every((ids) => ids.length === seen[0].length), 20_000).catch(() => undefined);
    await sleep(1000);
    watch.abort();
    await Promise.race([Promise.all(watching), sleep(3000)]);
    for (const ids of seen) assert.is(new Set(ids).size, ids.length, "no event twice");
    assert.equal(seen[1], seen[0], "every replica shows the same events");
    assert.equal(seen[2], seen[0], "every replica shows the same events");
  });

  test.run();
}
