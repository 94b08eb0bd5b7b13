import { test } from "uvu";
import * as assert from "uvu/assert";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { ROOT } from "../../tools/test/proc.js";
import { Outcome } from "../../proto/gen/originwatch/v1/common_pb.js";
import { EventKind, type Event, IncidentKind, OriginState, QueryService, FaultScope } from "../../proto/gen/originwatch/v1/query_pb.js";
import { type Central, startCentral } from "../main.js";
import { FakeSidecar } from "../../tools/scenarios/fake-sidecar.js";
import type { Counts } from "./counts.js";
import type { WebhookPayload } from "../alerts/webhook.js";

const until = async (what: string, cond: () => boolean | Promise<boolean>, ms = 15_000) => {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

const BUF = join(ROOT, "node_modules", ".bin", "buf");
const bufArgs = (address: string, method: string, body: object) => ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d", JSON.stringify(body), `http://${address}/originwatch.v1.QueryService/${method}`];

const OPTS = { listen: "127.0.0.1:0", lookbackMs: 2000, evalIntervalMs: 200 };

async function webhookReceiver() {
  const got: WebhookPayload[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push(JSON.parse(body));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, got, close: () => server.close() };
}

function fleet(address: string, traffic: (isp: string) => Partial<Counts>, opts: { probe?: () => Outcome } = {}): FakeSidecar[] {
  const out: FakeSidecar[] = [];
  for (const isp of ["isp-a", "isp-b", "isp-c"])
    for (const region of ["eu", "us"]) {
      const s = new FakeSidecar({ address, nodeId: `${isp}-${region}`, isp, region, origins: ["shop.example"], traffic: () => traffic(isp), probe: opts.probe });
      s.start();
      out.push(s);
    }
  return out;
}

test("origin down end to end: DOWN verdict, one incident, events streamed, webhook once per open/close, state survives a restart", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-verdict-e2e-"));
  const hook = await webhookReceiver();
  let central: Central = await startCentral({ ...OPTS, data: dir, webhook: hook.url }, pino({ level: "silent" }));
  const client = createClient(QueryService, createGrpcTransport({ baseUrl: `http://${central.address}` }));
  let down = false;
  // Probes see what the traffic sees: while the sidecars disconnect one by one before the restart, the few
  // still connected are one ISP in doubt, and a confirmation round must not hear "origin up" from a fake.
  const sidecars = fleet(central.address, () => (down ? { connectRefused: 4 } : { ok: 4 }), { probe: () => (down ? Outcome.CONNECT_REFUSED : Outcome.OK) });
  const events: Event[] = [];
  // A real gRPC client streaming WatchEvents through reflection: buf curl.
  const bufWatch = spawn(BUF, bufArgs(central.address, "WatchEvents", { origin: "shop.example" }), { stdio: ["ignore", "pipe", "pipe"] });
  let bufOut = "";
  bufWatch.stdout.on("data", (c) => (bufOut += c));
  const ctl = new AbortController();
  const watching = (async () => {
    try {
      for await (const r of client.watchEvents({ origin: "shop.example" }, { signal: ctl.signal })) if (r.event) events.push(r.event);
    } catch {
      /* aborted */
    }
  })();
  try {
    // HEALTHY may come from the first nodes' windows: wait until all six have reported.
    await until("HEALTHY on all six nodes", async () => {
      const o = (await client.getOrigin({ origin: "shop.example" }).catch(() => undefined))?.origin;
      return o?.state === OriginState.HEALTHY && o.nodes.length === 6;
    });
    const healthy = (await client.getOrigin({ origin: "shop.example" })).origin!;
    assert.is(healthy.isps.length, 3);
    assert.is(healthy.nodes.length, 6);
    // Both watchers (grpc-js and buf curl, a separate process that may start slowly) subscribed before the fault:
    // WatchEvents streams only what happens after it subscribed.
    await until("both WatchEvents subscribed", () => central.verdict.hub.size === 2, 30_000);
    down = true;
    const t0 = Date.now();
    await until("DOWN", async () => (await client.getOrigin({ origin: "shop.example" })).origin?.state === OriginState.DOWN);
    assert.ok(Date.now() - t0 < 5000, `DOWN after ${Date.now() - t0} ms`);
    await until("incident", async () => (await client.listIncidents({ openOnly: true })).incidents.length === 1);
    const [inc] = (await client.listIncidents({ origin: "shop.example" })).incidents;
    assert.equal([inc.kind, inc.open, inc.origin], [IncidentKind.ORIGIN_DOWN, true, "shop.example"]);
    await until("webhook open", () => hook.got.length === 1);
    assert.is(hook.got[0].action, "opened");
    assert.is(hook.got[0].incident_key, inc.dedupeKey);
    await until("events", () => events.some((e) => e.kind === EventKind.INCIDENT_OPENED));
    assert.ok(events.some((e) => e.kind === EventKind.STATE_CHANGED && e.state === OriginState.DOWN));
    await until("buf curl WatchEvents", () => bufOut.includes("EVENT_KIND_INCIDENT_OPENED"));
    assert.match(bufOut, /ORIGIN_STATE_DOWN/);
    bufWatch.kill();
    const listed = await promisify(execFile)(BUF, bufArgs(central.address, "ListIncidents", { openOnly: true }));
    assert.match(listed.stdout, /INCIDENT_KIND_ORIGIN_DOWN/);
    assert.match(listed.stdout, new RegExp(inc.dedupeKey.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));

    // Restart while down: the open incident and the DOWN state come back.
    for (const s of sidecars) s.close();
    ctl.abort();
    await watching;
    await central.close();
    central = await startCentral({ ...OPTS, data: dir, webhook: hook.url }, pino({ level: "silent" }));
    const client2 = createClient(QueryService, createGrpcTransport({ baseUrl: `http://${central.address}` }));
    const open = await client2.listIncidents({ openOnly: true });
    assert.equal(open.incidents.map((i) => i.id), [inc.id]);
    assert.is((await client2.listOrigins({})).origins.find((o) => o.name === "shop.example")?.state, OriginState.DOWN);

    // Recovery closes the same incident; the webhook sees the close once.
    down = false;
    const again = fleet(central.address, () => ({ ok: 4 }));
    await until("closed", async () => (await client2.listIncidents({ openOnly: true })).incidents.length === 0);
    const all = (await client2.listIncidents({})).incidents;
    assert.equal(all.map((i) => [i.id, i.open]), [[inc.id, false]]);
    await until("webhook close", () => hook.got.length >= 2);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(hook.got.map((p) => p.action), ["opened", "closed"]);
    assert.is(new Set(hook.got.map((p) => p.dedupe_key)).size, 2);
    const history = await client2.getOriginHistory({ origin: "shop.example" });
    assert.ok(history.points.length >= 1 && history.stepSeconds === 60);
    assert.ok(history.points.some((p) => p.failures > 0n), "failures recorded in the per-minute history");
    for (const s of again) s.close();
  } finally {
    bufWatch.kill();
    ctl.abort();
    for (const s of sidecars) s.close();
    await central.close();
    hook.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("one ISP only with traffic and failing: probes on other ISPs confirm the origin is up (ISP fault, no origin incident)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-verdict-probe-"));
  const central = await startCentral({ ...OPTS, data: dir }, pino({ level: "silent" }));
  const client = createClient(QueryService, createGrpcTransport({ baseUrl: `http://${central.address}` }));
  const sidecars = fleet(central.address, (isp) => (isp === "isp-a" ? { connectRefused: 4 } : {}), { probe: () => Outcome.OK });
  try {
    await until("ISP fault", async () => {
      const o = (await client.getOrigin({ origin: "shop.example" }).catch(() => undefined))?.origin;
      return !!o && o.faults.some((f) => f.scope === FaultScope.ISP && f.key === "isp-a") && !o.confirming;
    });
    const probed = sidecars.filter((s) => s.probes.length > 0);
    assert.ok(probed.length >= 1, "at least one sidecar was asked to probe");
    assert.ok(
      probed.every((s) => s.isp !== "isp-a" && s.probes[0].origin === "shop.example" && s.probes[0].method === "HEAD" && s.probes[0].path === "/"),
      "probes go to other ISPs, with the default method and path",
    );
    const o = (await client.getOrigin({ origin: "shop.example" })).origin!;
    assert.is(o.state, OriginState.HEALTHY);
    await new Promise((r) => setTimeout(r, 1000));
    const incidents = (await client.listIncidents({})).incidents;
    assert.ok(!incidents.some((i) => i.kind === IncidentKind.ORIGIN_DOWN || i.kind === IncidentKind.ORIGIN_DEGRADED), "no origin incident");
    const r = await client.probeOrigin({ origin: "shop.example", isp: "isp-b" });
    assert.ok(r.results.length >= 1 && r.results.every((x) => x.isp === "isp-b" && x.attempts.length > 0));
  } finally {
    for (const s of sidecars) s.close();
    await central.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("one ISP only with traffic and failing, probes fail too: DOWN", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-verdict-probe-down-"));
  const central = await startCentral({ ...OPTS, data: dir }, pino({ level: "silent" }));
  const client = createClient(QueryService, createGrpcTransport({ baseUrl: `http://${central.address}` }));
  const sidecars = fleet(central.address, (isp) => (isp === "isp-a" ? { connectRefused: 4 } : {}), { probe: () => Outcome.CONNECT_REFUSED });
  try {
    await until("DOWN", async () => (await client.getOrigin({ origin: "shop.example" }).catch(() => undefined))?.origin?.state === OriginState.DOWN);
  } finally {
    for (const s of sidecars) s.close();
    await central.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
