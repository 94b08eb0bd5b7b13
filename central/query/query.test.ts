/**
 * Paging, forgetting and age-out (issue 10 item 3) through real RPCs against a
 * real central on a real LevelDB: connect-node gRPC clients, fake sidecars on
 * the real ingest stream, and `ctl` in-process.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pino from "pino";
import { ConfigService } from "../../proto/gen/originwatch/v1/config_pb.js";
import { QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { FakeSidecar } from "../../tools/scenarios/fake-sidecar.js";
import { ROOT, eventually } from "../../tools/test/proc.js";
import { runCtl } from "../../tools/ctl/ctl.js";
import { type Central, startCentral } from "../main.js";
import type { CentralConfig } from "../config.js";
import { LevelStore, type NodeRecord, type OriginTotals } from "../store/level-store.js";
import { PAGE_DEFAULT, PAGE_MAX } from "./paging.js";

const ADMIN = "admin-token-0123456789";
const READ = "read-token-0123456789ab";
const DAY = 24 * 3600_000;
const quiet = pino({ level: "silent" });

let dir = "";
const centrals: Central[] = [];
const sidecars: FakeSidecar[] = [];

test.before.each(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-query-"));
});

test.after.each(async () => {
  for (const s of sidecars.splice(0)) s.close();
  for (const c of centrals.splice(0)) await c.close();
  await rm(dir, { recursive: true, force: true });
});

async function central(extra: Partial<CentralConfig> = {}): Promise<Central> {
  const c = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "data"), lookbackMs: 2000, evalIntervalMs: 200, ...extra }, quiet);
  centrals.push(c);
  return c;
}

async function stop(c: Central): Promise<void> {
  centrals.splice(centrals.indexOf(c), 1);
  await c.close();
}

function clients(c: Central, token?: string): { query: Client<typeof QueryService>; config: Client<typeof ConfigService> } {
  const transport = createGrpcTransport({
    baseUrl: `http://${c.address}`,
    interceptors: token
      ? [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${token}`);
            return next(req);
          },
        ]
      : [],
  });
  return { query: createClient(QueryService, transport), config: createClient(ConfigService, transport) };
}

async function tokensFile(): Promise<string> {
  const f = join(dir, "tokens");
  await writeFile(f, `${ADMIN} admin ops\n${READ} read viewer\n`);
  return f;
}

/** Records as a central that ran before would have left them. */
async function preload(origins: Array<[string, OriginTotals]>, nodes: NodeRecord[] = []): Promise<void> {
  const store = await LevelStore.open(join(dir, "data"));
  for (let i = 0; i < origins.length; i += 10_000) await store.writeCounted(new Map(), origins.slice(i, i + 10_000));
  const hw = new Map(nodes.map((n) => [n.nodeId, 7n]));
  await store.writeCounted(hw, [], nodes);
  await store.close();
}

const totals = (lastSeenMs: number): OriginTotals => ({ requests: 10n, failures: 1n, firstSeenMs: lastSeenMs - 1000, lastSeenMs });
const nodeRec = (nodeId: string, lastSeenMs: number): NodeRecord => ({
  nodeId,
  isp: "isp-a",
  region: "eu",
  version: "old",
  origins: [],
  lastSeenMs,
  connectedSinceMs: lastSeenMs - 1000,
  appliedConfigVersion: "0",
  lastNackReason: "",
  bufferedBatches: "0",
  droppedBatches: "0",
});

function sidecar(c: Central, nodeId: string, origins: string[], more: Partial<ConstructorParameters<typeof FakeSidecar>[0]> = {}): FakeSidecar {
  const s = new FakeSidecar({ address: c.address, nodeId, isp: "isp-a", region: "eu", origins, periodMs: 200, traffic: () => ({ ok: 5 }), ...more });
  s.start();
  sidecars.push(s);
  return s;
}

async function codeOf(p: Promise<unknown>): Promise<{ code: Code | "ok"; message: string }> {
  try {
    await p;
    return { code: "ok", message: "" };
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
}

function sink(): Writable & { text: () => string } {
  let buf = "";
  const w = new Writable({
    write(chunk, _enc, cb) {
      buf += chunk.toString();
      cb();
    },
  }) as Writable & { text: () => string };
  w.text = () => buf;
  return w;
}

async function ctl(c: Central, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = sink();
  const err = sink();
  const code = await runCtl(["--central", `http://${c.address}`, "--timeout", "60000", ...args], { out, err, env: {} });
  return { code, out: out.text(), err: err.text() };
}

async function allOrigins(q: Client<typeof QueryService>, pageSize: number): Promise<{ names: string[]; pages: number; largest: number }> {
  const names: string[] = [];
  let token = "";
  let pages = 0;
  let largest = 0;
  do {
    const r = await q.listOrigins({ pageSize, pageToken: token });
    names.push(...r.origins.map((o) => o.name));
    largest = Math.max(largest, r.origins.length);
    token = r.nextPageToken;
    pages++;
  } while (token);
  return { names, pages, largest };
}

test("130,000 origins in the store: ListOrigins pages (over-max page_size capped, default page), every origin once, and `ctl status` still works", async () => {
  const now = Date.now();
  const N = 130_000;
  const names = Array.from({ length: N }, (_, i) => `o${String(i).padStart(6, "0")}.example`);
  await preload(names.map((n) => [n, totals(now)]));
  const c = await central();
  const { query } = clients(c);

  const capped = await query.listOrigins({ pageSize: 5000 });
  assert.is(capped.origins.length, PAGE_MAX, "page_size above the maximum is capped");
  assert.ok(capped.nextPageToken, "more pages follow");
  const dflt = await query.listOrigins({});
  assert.is(dflt.origins.length, PAGE_DEFAULT, "page_size 0 is the default page");

  const all = await allOrigins(query, 1000);
  assert.is(all.names.length, N);
  assert.is(new Set(all.names).size, N, "no origin twice");
  assert.equal(all.names.slice(0, 3), names.slice(0, 3));
  assert.is(all.pages, N / 1000);
  assert.ok(all.largest <= PAGE_MAX);

  const r = await ctl(c, ["status"]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`${N} origins: DOWN 0, DEGRADED 0, HEALTHY 0, NO_DATA ${N}`));
});

test("a page token that is not a token of this list is INVALID_ARGUMENT naming page_token", async () => {
  await preload([["a.example", totals(Date.now())]], [nodeRec("n1", Date.now()), nodeRec("n2", Date.now())]);
  const c = await central();
  const { query, config } = clients(c);
  const nodesPage = await query.listNodes({ pageSize: 1 });
  assert.ok(nodesPage.nextPageToken);
  for (const call of [query.listOrigins({ pageToken: nodesPage.nextPageToken }), query.listOrigins({ pageToken: "%%%" }), config.listConfigHistory({ pageToken: "bm9wZQ" })]) {
    const r = await codeOf(call);
    assert.is(r.code, Code.InvalidArgument, r.message);
    assert.match(r.message, /page_token/);
  }
});

test("ListNodes pages by node_id and shows rejected_batches, last_reject_reason and clock_skew_ms", async () => {
  const now = Date.now();
  await preload([], Array.from({ length: 30 }, (_, i) => nodeRec(`node-${String(i).padStart(2, "0")}`, now)));
  const c = await central();
  sidecar(c, "live-1", ["shop.example"], { report: () => ({ rejectedBatches: 3n, clockSkewMs: -250n }) });
  const { query } = clients(c);
  const live = await eventually(async () => {
    const n = (await query.listNodes({ pageSize: 1000 })).nodes.find((x) => x.nodeId === "live-1");
    return n && n.rejectedBatches === 3n ? n : undefined;
  });
  assert.is(live!.clockSkewMs, -250n);
  assert.is(live!.lastRejectReason, "");
  const ids: string[] = [];
  let token = "";
  let pages = 0;
  do {
    const r = await query.listNodes({ pageSize: 7, pageToken: token });
    assert.ok(r.nodes.length <= 7);
    ids.push(...r.nodes.map((n) => n.nodeId));
    token = r.nextPageToken;
    pages++;
  } while (token);
  assert.is(ids.length, 31);
  assert.equal(ids, [...ids].sort());
  assert.is(pages, 5);
  const table = await ctl(c, ["nodes"]);
  assert.is(table.code, 0, table.err);
  assert.match(table.out, /REJECTED\s+SKEW MS/);
  assert.match(table.out, /live-1 .* 3\s+-250 /);
});

test("ListExemplars pages newest first with no repeat while new ones arrive; ListConfigHistory pages newest first", async () => {
  const c = await central({ exemplarsPerOrigin: 500 });
  sidecar(c, "ex-1", ["shop.example"], { exemplarsPerBatch: 20 });
  const { query, config } = clients(c);
  await eventually(async () => (await query.listExemplars({ origin: "shop.example", pageSize: 1000 })).exemplars.length >= 200, 20_000);
  const seen: string[] = [];
  let token = "";
  do {
    const r = await query.listExemplars({ origin: "shop.example", pageSize: 60, pageToken: token });
    assert.ok(r.exemplars.length <= 60);
    seen.push(...r.exemplars.map((e) => e.path));
    token = r.nextPageToken;
    await new Promise((res) => setTimeout(res, 30)); // more arrive between pages
  } while (token);
  assert.ok(seen.length >= 200, `${seen.length} exemplars`);
  assert.is(new Set(seen).size, seen.length, "no exemplar twice across pages");
  const batchOf = (p: string) => Number(p.split("/")[1].slice(1));
  for (let i = 1; i < seen.length; i++) assert.ok(batchOf(seen[i]) <= batchOf(seen[i - 1]), "newest first");
  // the old `limit` still bounds an unpaged call
  assert.is((await query.listExemplars({ origin: "shop.example", limit: 5 })).exemplars.length, 5);

  let version = 0n;
  for (let i = 0; i < 5; i++) version = (await config.setConfig({ config: { windowMs: 1000 }, expectedVersion: version })).config!.version;
  const versions: bigint[] = [];
  token = "";
  do {
    const r = await config.listConfigHistory({ pageSize: 2, pageToken: token });
    versions.push(...r.configs.map((x) => x.version));
    token = r.nextPageToken;
  } while (token);
  assert.equal(versions, [5n, 4n, 3n, 2n, 1n]);
  const hist = await ctl(c, ["config", "history", "--limit", "3"]);
  assert.is(hist.code, 0, hist.err);
  assert.match(hist.out, /v5[\s\S]*v4[\s\S]*v3/);
  assert.not.match(hist.out, /v2/);
});

test("ForgetOrigin needs the admin token, forgets totals and state for good (restart), NOT_FOUND when unknown; ctl forget origin", async () => {
  const now = Date.now();
  await preload([
    ["old.example", totals(now - 60_000)],
    ["junk.example", totals(now - 60_000)],
    ["curl.example", totals(now - 60_000)],
  ]);
  const tokens = await tokensFile();
  let c = await central({ tokensFile: tokens });
  sidecar(c, "live-1", ["shop.example"]);
  const admin = clients(c, ADMIN).query;
  await eventually(async () => (await admin.listOrigins({})).origins.some((o) => o.name === "shop.example"));

  const denied = await codeOf(clients(c, READ).query.forgetOrigin({ origin: "old.example" }));
  assert.is(denied.code, Code.PermissionDenied, denied.message);
  assert.is((await codeOf(clients(c).query.forgetOrigin({ origin: "old.example" }))).code, Code.Unauthenticated);

  assert.is((await codeOf(admin.forgetOrigin({ origin: "old.example" }))).code, "ok");
  const again = await codeOf(admin.forgetOrigin({ origin: "old.example" }));
  assert.is(again.code, Code.NotFound, again.message);
  assert.is((await codeOf(admin.getOrigin({ origin: "old.example" }))).code, Code.NotFound);
  assert.is((await codeOf(admin.forgetOrigin({ origin: "" }))).code, Code.InvalidArgument);

  const r = await ctl(c, ["--token", ADMIN, "forget", "origin", "junk.example"]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /forgot origin junk\.example/);
  // A grpcurl-class client through reflection: the new method is described like every other.
  const curl = await promisify(execFile)(join(ROOT, "node_modules", ".bin", "buf"), [
    "curl",
    "--protocol",
    "grpc",
    "--http2-prior-knowledge",
    "-H",
    `authorization: Bearer ${ADMIN}`,
    "-d",
    JSON.stringify({ origin: "curl.example" }),
    `http://${c.address}/originwatch.v1.QueryService/ForgetOrigin`,
  ]);
  assert.match(curl.stdout, /\{/);
  const missing = await ctl(c, ["--token", ADMIN, "forget", "origin", "never.example"]);
  assert.is(missing.code, 1);
  assert.match(missing.err, /not known/);

  const names = (await admin.listOrigins({})).origins.map((o) => o.name);
  assert.equal(names, ["shop.example"]);
  for (const s of sidecars.splice(0)) s.close();
  await stop(c);
  c = await central({ tokensFile: tokens });
  const after = (await clients(c, READ).query.listOrigins({})).origins.map((o) => o.name);
  assert.equal(after, ["shop.example"], "forgotten origins stay forgotten across a restart");
});

test("ForgetOrigin of an origin with an open incident closes the incident and resets its state", async () => {
  const c = await central();
  const s = sidecar(c, "n1", ["bad.example"], { traffic: () => ({ serverError: 5 }) });
  sidecar(c, "n2", ["bad.example"], { traffic: () => ({ serverError: 5 }), isp: "isp-b" });
  const { query } = clients(c);
  await eventually(async () => (await query.listIncidents({ openOnly: true })).incidents.some((i) => i.origin === "bad.example"), 20_000);
  for (const x of sidecars.splice(0)) x.close();
  void s;
  await eventually(async () => !(await query.listNodes({})).nodes.some((n) => n.connected));
  const r = await query.forgetOrigin({ origin: "bad.example" });
  assert.ok(r.closedIncidents >= 1, `closed ${r.closedIncidents}`);
  assert.is((await query.listIncidents({ openOnly: true })).incidents.filter((i) => i.origin === "bad.example").length, 0);
  assert.ok((await query.listIncidents({})).incidents.some((i) => i.origin === "bad.example" && /forgotten by an operator/.test(i.summary)), "the closed incident stays, saying why");
  assert.is((await codeOf(query.getOrigin({ origin: "bad.example" }))).code, Code.NotFound);
});

test("ForgetNode refuses a node with a live session (FAILED_PRECONDITION with the reason), forgets it once disconnected, for good", async () => {
  const tokens = await tokensFile();
  let c = await central({ tokensFile: tokens });
  const s = sidecar(c, "edge-1", ["shop.example"]);
  const admin = clients(c, ADMIN).query;
  await eventually(async () => (await admin.listNodes({})).nodes.some((n) => n.nodeId === "edge-1" && n.connected));

  const refused = await codeOf(admin.forgetNode({ nodeId: "edge-1" }));
  assert.is(refused.code, Code.FailedPrecondition, refused.message);
  assert.match(refused.message, /edge-1 has a live session/);
  const viaCtl = await ctl(c, ["--token", ADMIN, "forget", "node", "edge-1"]);
  assert.is(viaCtl.code, 1);
  assert.match(viaCtl.err, /live session/);
  assert.is((await codeOf(clients(c, READ).query.forgetNode({ nodeId: "edge-1" }))).code, Code.PermissionDenied);

  s.close();
  sidecars.splice(sidecars.indexOf(s), 1);
  await eventually(async () => !(await admin.listNodes({})).nodes.find((n) => n.nodeId === "edge-1")?.connected);
  const ok = await ctl(c, ["--token", ADMIN, "forget", "node", "edge-1"]);
  assert.is(ok.code, 0, ok.err);
  assert.equal((await admin.listNodes({})).nodes.map((n) => n.nodeId), []);
  assert.is((await codeOf(admin.forgetNode({ nodeId: "edge-1" }))).code, Code.NotFound);
  await stop(c);
  c = await central({ tokensFile: tokens });
  assert.equal((await clients(c, READ).query.listNodes({})).nodes.map((n) => n.nodeId), [], "forgotten across a restart");
});

test("age-out: idle origins and disconnected idle nodes are forgotten (at start and by the sweep), records too; live ones stay", async () => {
  const now = Date.now();
  await preload(
    [
      ...Array.from({ length: 50 }, (_, i): [string, OriginTotals] => [`idle${i}.example`, totals(now - 8 * DAY)]),
      ["recent.example", totals(now - DAY)],
    ],
    [nodeRec("idle-node", now - 8 * DAY), nodeRec("recent-node", now - DAY)],
  );
  let c = await central();
  sidecar(c, "live-1", ["shop.example"]);
  const { query } = clients(c);
  // The sweep at start forgets what was idle for more than the default 7 days.
  await eventually(async () => (await query.listOrigins({})).origins.length === 2 && (await query.listNodes({})).nodes.length === 2, 15_000);
  assert.equal((await query.listOrigins({})).origins.map((o) => o.name), ["recent.example", "shop.example"]);

  // Two days later "recent" is idle too; the live node and its origin (windows in memory) stay.
  const r = await c.ageOut(Date.now() + 7 * DAY - 1000);
  assert.equal(r.origins, ["recent.example"]);
  assert.equal(r.nodes, ["recent-node"]);
  assert.equal((await query.listOrigins({})).origins.map((o) => o.name), ["shop.example"]);
  assert.equal((await query.listNodes({})).nodes.map((n) => n.nodeId), ["live-1"]);

  for (const s of sidecars.splice(0)) s.close();
  await stop(c);
  c = await central({ originIdleMs: 0, nodeIdleMs: 0 });
  assert.equal((await clients(c).query.listOrigins({})).origins.map((o) => o.name), ["shop.example"], "aged-out records are gone from LevelDB");
  assert.equal((await c.ageOut(Date.now() + 365 * DAY)).origins, [], "0 turns age-out off");
});

test.run();
