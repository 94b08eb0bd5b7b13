/**
 * Issue 5 acceptance, with real processes: sessions that lose nothing
 * (central SIGKILLed under steady traffic through 3 sidecars; central frozen
 * past the sidecar's buffer limit) and config pushed from the central
 * (invalid config refused, NACK visible in ListNodes, last good config kept
 * and used at boot).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigService } from "../../proto/gen/originwatch/v1/config_pb.js";
import { validateSidecarConfig } from "../../sidecar/config.js";
import { type Sidecar, startSidecar } from "../../sidecar/main.js";
import { QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { type Origin, startOrigin } from "../origin.js";
import { request } from "../test/http-request.js";
import { type Proc, eventually, startOriginwatch } from "../test/proc.js";
import { startTraffic } from "../test/traffic.js";

const HOST = "sessions.origin";

function api(address: string) {
  const transport = createGrpcTransport({ baseUrl: `http://${address}` });
  return { config: createClient(ConfigService, transport), query: createClient(QueryService, transport) };
}

async function totalOf(address: string): Promise<number> {
  const r = await api(address).query.getOrigin({ origin: HOST });
  return Number(r.origin!.totalRequests);
}

async function metric(admin: string, name: string): Promise<number> {
  const text = (await request(admin, { path: "/metrics" })).body.toString();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  if (!m) throw new Error(`no metric ${name}`);
  return Number(m[1]);
}

function sidecarArgs(central: string, nodeId: string, isp: string, origin: Origin, extra: string[] = []): string[] {
  return [
    "sidecar", "--central", `http://${central}`, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
    "--node-id", nodeId, "--isp", isp, "--region", "eu-west", "--origin", `${HOST}=${origin.url}`, ...extra,
  ];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An older sidecar, one without the `stall` feature: in process, announcing fewer capabilities. */
function startOlderSidecar(central: string, origin: Origin, stateDir: string): Promise<Sidecar> {
  return startSidecar(
    validateSidecarConfig({
      central: `http://${central}`, listen: "127.0.0.1:0", admin: "127.0.0.1:0", stateDir,
      nodeId: "cfg-old", isp: "isp-b", region: "eu-west", origins: [`${HOST}=${origin.url}`],
    }),
    { capabilities: ["config-v1", "sampling", "exemplars"] },
  );
}

test("central SIGKILLed for 10 s under steady traffic through 3 sidecars: no failed request, totals equal what the origin served", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-sess-"));
  const origin = await startOrigin();
  const procs: Proc[] = [];
  let central: Proc | undefined;
  try {
    central = await startOriginwatch(["central", "--listen", "127.0.0.1:0", "--data", join(dir, "central")]);
    const port = central.address.slice(central.address.lastIndexOf(":") + 1);
    for (const [i, isp] of ["isp-a", "isp-b", "isp-c"].entries()) procs.push(await startOriginwatch(sidecarArgs(central.address, `sess-${i}`, isp, origin)));
    await eventually(async () => (await api(central!.address).query.listNodes({})).nodes.filter((n) => n.connected).length === 3, 20_000);
    const traffic = startTraffic(procs.map((p) => ({ address: p.address, host: HOST })), 50);
    await sleep(3000);
    await central.stop("SIGKILL");
    await sleep(10_000);
    central = await startOriginwatch(["central", "--listen", `127.0.0.1:${port}`, "--data", join(dir, "central")]);
    await sleep(3000);
    await traffic.stop();
    assert.equal(traffic.failures, [], "no proxied request failed");
    assert.ok(traffic.ok > 300, `steady traffic flowed (${traffic.ok} requests)`);
    assert.is(origin.requests, traffic.ok);
    const addr = central.address;
    await eventually(async () => (await totalOf(addr)) === origin.requests, 60_000, 250).catch(async (e) => {
      throw new Error(`${(e as Error).message}: central ${await totalOf(addr)} vs origin ${origin.requests}`);
    });
    await sleep(2500); // a late duplicate would show up here
    assert.is(await totalOf(addr), origin.requests, "nothing counted twice");
    const nodes = (await api(addr).query.listNodes({})).nodes;
    assert.is(nodes.filter((n) => n.connected).length, 3);
    assert.ok(nodes.every((n) => n.droppedBatches === 0n));
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await central?.stop();
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("central frozen (SIGSTOP) past the buffer limit: sidecar buffer stays bounded, oldest dropped, drop count reported after SIGCONT", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-sess-"));
  const origin = await startOrigin();
  let central: Proc | undefined;
  let sidecar: Proc | undefined;
  const LIMIT = 4096;
  try {
    central = await startOriginwatch(["central", "--listen", "127.0.0.1:0", "--data", join(dir, "central")]);
    sidecar = await startOriginwatch(sidecarArgs(central.address, "frozen-1", "isp-a", origin, ["--window-ms", "100", "--buffer-bytes", String(LIMIT)]));
    const admin = String(sidecar.ready.admin);
    await eventually(async () => (await api(central!.address).query.listNodes({})).nodes.some((n) => n.connected), 20_000);
    const traffic = startTraffic([{ address: sidecar.address, host: HOST }], 20);
    await sleep(1000);
    central.child.kill("SIGSTOP");
    let maxBytes = 0;
    let dropped = 0;
    const rss0 = await metric(admin, "process_resident_memory_bytes");
    for (let i = 0; i < 16; i++) {
      await sleep(500);
      maxBytes = Math.max(maxBytes, await metric(admin, "originwatch_sidecar_stream_buffered_bytes"));
      dropped = await metric(admin, "originwatch_sidecar_stream_dropped_batches");
    }
    const rss1 = await metric(admin, "process_resident_memory_bytes");
    assert.ok(maxBytes > 0 && maxBytes <= LIMIT, `buffered bytes ${maxBytes} within ${LIMIT}`);
    assert.ok(dropped > 0, "the oldest batches were dropped");
    assert.ok(rss1 - rss0 < 64 * 1024 * 1024, `memory stays bounded (grew ${rss1 - rss0} bytes)`);
    central.child.kill("SIGCONT");
    const node = await eventually(async () => {
      const n = (await api(central!.address).query.listNodes({})).nodes.find((x) => x.nodeId === "frozen-1");
      return n && n.droppedBatches >= BigInt(dropped) ? n : undefined;
    }, 60_000, 250);
    assert.ok(node!.droppedBatches >= 1n);
    await traffic.stop();
    assert.equal(traffic.failures, [], "the proxy kept serving");
  } finally {
    if (central) central.child.kill("SIGCONT");
    await sidecar?.stop();
    await central?.stop();
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("config push: invalid config refused; a sidecar lacking a feature NACKs (reason in ListNodes) and keeps, and boots with, its last good config; exemplars", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-sess-"));
  const origin = await startOrigin();
  let central: Proc | undefined;
  let full: Proc | undefined;
  let old: Sidecar | undefined;
  try {
    central = await startOriginwatch(["central", "--listen", "127.0.0.1:0", "--data", join(dir, "central")]);
    const { config, query } = api(central.address);
    full = await startOriginwatch(sidecarArgs(central.address, "cfg-full", "isp-a", origin, ["--state-dir", join(dir, "full")]));
    old = await startOlderSidecar(central.address, origin, join(dir, "old"));
    await eventually(async () => (await query.listNodes({})).nodes.filter((n) => n.connected).length === 2, 20_000);

    const v1 = await config.setConfig({ config: { sampling: { successRate: 1, errorRate: 1 }, requiredCapabilities: ["exemplars"] }, expectedVersion: 0n });
    assert.is(v1.config!.version, 1n);
    await eventually(async () => (await query.listNodes({})).nodes.every((n) => n.appliedConfigVersion === 1n), 20_000);

    try {
      await config.setConfig({ config: { thresholds: { failRatio: 0.1, degradedFailRatio: 0.4 } }, expectedVersion: 1n });
      assert.unreachable("an invalid config must be refused");
    } catch (err) {
      const e = ConnectError.from(err);
      assert.is(e.code, Code.InvalidArgument);
      assert.match(e.rawMessage, /thresholds\.degraded_fail_ratio/);
    }

    await config.setConfig({ config: { sampling: { successRate: 1, errorRate: 1 }, stallMs: 1500, requiredCapabilities: ["stall"] }, expectedVersion: 1n });
    const nodes = await eventually(async () => {
      const ns = (await query.listNodes({})).nodes;
      const f = ns.find((n) => n.nodeId === "cfg-full");
      const o = ns.find((n) => n.nodeId === "cfg-old");
      return f?.appliedConfigVersion === 2n && o?.lastNackReason ? { f, o } : undefined;
    }, 20_000);
    assert.is(nodes!.o.appliedConfigVersion, 1n);
    assert.match(nodes!.o.lastNackReason, /version 2: required_capabilities: this sidecar lacks stall/);
    assert.is(await metric(old.adminAddress!, "originwatch_sidecar_config_version"), 1);
    assert.is(await metric(String(full.ready.admin), "originwatch_sidecar_config_version"), 2);

    // Exemplars at the pushed rate (1.0): paths without their query strings.
    for (let i = 0; i < 5; i++) assert.is((await request(full.address, { path: `/ex/${i}?secret=${i}`, headers: { host: HOST } })).status, 200);
    const ex = await eventually(async () => {
      const r = await query.listExemplars({ origin: HOST, limit: 50 });
      return r.exemplars.filter((e) => e.path.startsWith("/ex/")).length === 5 ? r.exemplars : undefined;
    }, 20_000);
    assert.ok(ex!.every((e) => !e.path.includes("?")));
    assert.is(ex!.find((e) => e.path === "/ex/4")?.nodeId, "cfg-full");

    // With the central gone, a restarted sidecar boots with its last good config.
    await central.stop("SIGKILL");
    central = undefined;
    await old.shutdown();
    const saved = JSON.parse(await readFile(join(dir, "old", "config.json"), "utf8"));
    assert.is(saved.version, "1");
    old = await startOlderSidecar("127.0.0.1:1", origin, join(dir, "old"));
    assert.is(await metric(old.adminAddress!, "originwatch_sidecar_config_version"), 1);
    assert.is((await request(old.address, { path: "/still", headers: { host: HOST } })).status, 200);
  } finally {
    await full?.stop();
    await old?.shutdown();
    await central?.stop();
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
