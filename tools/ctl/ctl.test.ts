/**
 * `originwatch ctl` against a real central with real sidecars and traffic
 * (tools/fleet), each command in-process through runCtl, plus the real
 * binary for exit codes and the unreachable-central error.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { OriginState } from "../../proto/gen/originwatch/v1/query_pb.js";
import { type Fleet, startFleet } from "../fleet/fleet.js";
import { BIN, ROOT, eventually } from "../test/proc.js";
import { EXIT, centralUrl } from "./client.js";
import { type CtlIo, runCtl, statusExit } from "./ctl.js";

const run = promisify(execFile);

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

interface Ran {
  code: number;
  out: string;
  err: string;
}

let fleet: Fleet;
let dir = "";
let central = "";

async function ctl(args: string[], extra: Partial<CtlIo> = {}): Promise<Ran> {
  const out = sink();
  const err = sink();
  const code = await runCtl(["--central", central, ...args], { out, err, env: {}, ...extra });
  return { code, out: out.text(), err: err.text() };
}

/** Either the real answer, or (while the central lacks the RPC) a clear UNIMPLEMENTED. */
function answeredOrUnimplemented(r: Ran, rpc: string): boolean {
  if (r.code === EXIT.CENTRAL_ERROR && r.err.includes(`does not implement ${rpc}`) && r.err.includes("UNIMPLEMENTED")) return false;
  assert.is(r.code, EXIT.OK, r.err);
  return true;
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-ctl-"));
  fleet = await startFleet({ dataDir: join(dir, "central"), isps: ["isp-a", "isp-b"], regions: ["eu"], perCell: 1, origins: ["shop.example"], ratePerNode: 20 });
  central = `http://${fleet.central.address}`;
  fleet.startTraffic();
  await eventually(async () => (await ctl(["--json", "origins"])).out.includes("ORIGIN_STATE_HEALTHY"), 60_000, 250);
});

test.after(async () => {
  await fleet?.close();
  await rm(dir, { recursive: true, force: true });
});

test("status: one screen with origins by state, incidents and nodes; exit 0 while nothing is DOWN", async () => {
  const r = await ctl(["status"]);
  assert.is(r.code, EXIT.OK, r.err);
  assert.match(r.out, /1 origins: DOWN 0, DEGRADED 0, HEALTHY 1/);
  assert.match(r.out, /nodes connected 2\/2/);
  assert.match(r.out, /shop\.example\s+HEALTHY/);
  assert.match(r.out, /open incidents: (none|unknown)/);
});

test("status --json parses and carries the exit code", async () => {
  const r = await ctl(["--json", "status"]);
  const j = JSON.parse(r.out);
  assert.is(j.origins[0].name, "shop.example");
  assert.is(j.origins[0].state, "ORIGIN_STATE_HEALTHY");
  assert.is(j.nodes.connected, 2);
  assert.is(j.exitCode, r.code);
});

test("status exit code: DOWN beats DEGRADED beats healthy", () => {
  assert.is(statusExit([OriginState.HEALTHY, OriginState.DOWN, OriginState.DEGRADED]), EXIT.ORIGIN_DOWN);
  assert.is(statusExit([OriginState.HEALTHY, OriginState.DEGRADED]), EXIT.ORIGIN_DEGRADED);
  assert.is(statusExit([OriginState.HEALTHY, OriginState.NO_DATA]), EXIT.OK);
  assert.is(statusExit([]), EXIT.OK);
});

test("an HTTP server that is not a central: a clear UNIMPLEMENTED message, exit 1", async () => {
  const http = await import("node:http");
  const other = http.createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((r) => other.listen(0, "127.0.0.1", () => r()));
  const port = (other.address() as { port: number }).port;
  try {
    const out = sink();
    const err = sink();
    const code = await runCtl(["--central", `127.0.0.1:${port}`, "origins"], { out, err, env: {} });
    assert.is(code, EXIT.CENTRAL_ERROR);
    assert.match(err.text(), /does not implement ListOrigins \(UNIMPLEMENTED: .*\): an older central, or not an originwatch central at all/);
  } finally {
    other.close();
  }
});

test("origins: table and --json", async () => {
  const r = await ctl(["origins"]);
  assert.is(r.code, EXIT.OK, r.err);
  assert.match(r.out, /^ORIGIN\s+STATE\s+REQ\/S\s+FAIL\s+P95 MS/);
  assert.match(r.out, /shop\.example/);
  const j = JSON.parse((await ctl(["--json", "origins"])).out);
  assert.is(j.length, 1);
  assert.ok(BigInt(j[0].totalRequests) > 0n);
});

test("origin NAME: breakdown by ISP, region and node", async () => {
  const r = await ctl(["origin", "shop.example"]);
  assert.is(r.code, EXIT.OK, r.err);
  assert.match(r.out, /^shop\.example: HEALTHY/);
  assert.match(r.out, /by isp\n\s+ISP\s+REQUESTS/);
  assert.match(r.out, /isp-a/);
  assert.match(r.out, /isp-b/);
  assert.match(r.out, /by region[\s\S]*eu/);
  assert.match(r.out, /by node[\s\S]*isp-a-eu-1\s+isp-a\s+eu/);
  const j = JSON.parse((await ctl(["--json", "origin", "shop.example"])).out);
  assert.equal(j.isps.map((s: { key: string }) => s.key).sort(), ["isp-a", "isp-b"]);
  assert.is(j.nodes.length, 2);
});

test("origin NAME: an unknown origin is a central error (exit 1) naming it", async () => {
  const r = await ctl(["origin", "nope.example"]);
  assert.is(r.code, EXIT.CENTRAL_ERROR);
  assert.match(r.err, /nope\.example/);
  assert.match(r.err, /NotFound/);
});

test("nodes: every sidecar with its labels and connection", async () => {
  const r = await ctl(["nodes"]);
  assert.is(r.code, EXIT.OK, r.err);
  assert.match(r.out, /isp-a-eu-1\s+isp-a\s+eu\s+yes/);
  assert.match(r.out, /isp-b-eu-1\s+isp-b\s+eu\s+yes/);
  const j = JSON.parse((await ctl(["--json", "nodes"])).out);
  assert.equal(j.map((n: { nodeId: string }) => n.nodeId), ["isp-a-eu-1", "isp-b-eu-1"]);
  assert.ok(j.every((n: { connected?: boolean }) => n.connected === true));
});

test("incidents: table or --json list (UNIMPLEMENTED reported clearly on an older central)", async () => {
  const r = await ctl(["incidents"]);
  if (answeredOrUnimplemented(r, "ListIncidents")) {
    assert.match(r.out, /no incident|^ID\s+KIND/);
    const j = JSON.parse((await ctl(["--json", "incidents", "--open"])).out);
    assert.ok(Array.isArray(j));
  }
});

test("config get | set FILE | history: a round trip with optimistic concurrency", async () => {
  const got = await ctl(["config", "get"]);
  assert.is(got.code, EXIT.OK, got.err);
  const cfg = JSON.parse(got.out);
  const before = BigInt(cfg.version ?? "0");
  cfg.stallMs = 1500;
  const file = join(dir, "config.json");
  await writeFile(file, JSON.stringify(cfg));
  const set = await ctl(["config", "set", file]);
  assert.is(set.code, EXIT.OK, set.err);
  assert.match(set.out, new RegExp(`config v${before + 1n} applied`));
  const again = JSON.parse((await ctl(["config", "get"])).out);
  assert.is(again.stallMs, 1500);
  assert.is(again.version, String(before + 1n));
  // The same file again is stale now: refused, unless --force.
  const stale = await ctl(["config", "set", file]);
  assert.is(stale.code, EXIT.CENTRAL_ERROR);
  assert.match(stale.err, /FailedPrecondition/);
  const forced = await ctl(["--json", "config", "set", "--force", file]);
  assert.is(forced.code, EXIT.OK, forced.err);
  assert.is(JSON.parse(forced.out).version, String(before + 2n));
  const hist = await ctl(["config", "history"]);
  assert.is(hist.code, EXIT.OK, hist.err);
  assert.match(hist.out, new RegExp(`v${before + 2n}`));
  const hj = JSON.parse((await ctl(["--json", "config", "history"])).out);
  assert.ok(hj.length >= 2);
});

test("config set: an unreadable or malformed file is a usage error (exit 2)", async () => {
  assert.is((await ctl(["config", "set", join(dir, "missing.json")])).code, EXIT.USAGE);
  const bad = join(dir, "bad.json");
  await writeFile(bad, '{"stallMs": "soon"}');
  const r = await ctl(["config", "set", bad]);
  assert.is(r.code, EXIT.USAGE);
  assert.match(r.err, /not a config/);
});

test("probe ORIGIN --isp: what each sidecar on that ISP saw", async () => {
  const r = await ctl(["probe", "shop.example", "--isp", "isp-b", "--count", "2"]);
  if (answeredOrUnimplemented(r, "ProbeOrigin")) {
    assert.match(r.out, /isp-b-eu-1\s+isp-b\s+eu\s+ok 200 \d+ms, ok 200 \d+ms$/m, r.out);
    assert.not.match(r.out, /isp-a-eu-1/);
    const j = JSON.parse((await ctl(["--json", "probe", "shop.example"])).out);
    assert.is(j.length, 2);
  }
});

test("watch shows the origin going DOWN and back as it happens; status exits 4 while it is DOWN", async () => {
  const ac = new AbortController();
  const out = sink();
  const err = sink();
  const running = runCtl(["--central", central, "--json", "watch", "--origin", "shop.example"], { out, err, env: {}, signal: ac.signal });
  const early = await Promise.race([running, new Promise<undefined>((r) => setTimeout(() => r(undefined), 1_000))]);
  assert.is(early, undefined, `watch ended at once: ${err.text()}`);
  await fleet.origin.setMode({ kind: "status", status: 503 });
  try {
    const down = await eventually(async () => {
      const r = await ctl(["status"]);
      return r.code === EXIT.ORIGIN_DOWN && /open incidents: [1-9]/.test(r.out) ? r : undefined;
    }, 90_000, 500);
    assert.match(down!.out, /shop\.example\s+DOWN/);
    assert.match(down!.out, /open incidents: [1-9]/);
    const j = JSON.parse((await ctl(["--json", "status"])).out);
    assert.is(j.exitCode, EXIT.ORIGIN_DOWN);
  } finally {
    await fleet.heal();
  }
  await eventually(async () => (await ctl(["status"])).code === EXIT.OK, 90_000, 500);
  const events = () =>
    out
      .text()
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  // Down, then (possibly through DEGRADED) back to HEALTHY, in that order.
  const changes = () => events().filter((e) => e.kind === "EVENT_KIND_STATE_CHANGED").map((e) => e.state as string);
  await eventually(() => {
    const c = changes();
    const down = c.indexOf("ORIGIN_STATE_DOWN");
    return down >= 0 && c.indexOf("ORIGIN_STATE_HEALTHY", down) > down;
  }, 30_000, 200).catch((err) => {
    throw new Error(`${(err as Error).message}: state changes seen ${JSON.stringify(changes())}`);
  });
  assert.ok(events().every((e) => e.origin === "shop.example"));
  ac.abort();
  assert.is(await running, EXIT.OK);
  // The human form: one line per event.
  const human = await ctl(["incidents", "--origin", "shop.example"]);
  assert.is(human.code, EXIT.OK, human.err);
  assert.match(human.out, /origin down\s+shop\.example/);
});

test("exemplars ORIGIN: sampled requests, the failures of the outage among them", async () => {
  const r = await ctl(["exemplars", "shop.example", "--limit", "200"]);
  assert.is(r.code, EXIT.OK, r.err);
  assert.match(r.out, /^TIME\s+NODE\s+METHOD\s+PATH\s+STATUS\s+OUTCOME/);
  assert.match(r.out, /GET\s+\/asset\/\d+\s+503\s+server_error/);
  const j = JSON.parse((await ctl(["--json", "exemplars", "shop.example", "--limit", "5"])).out);
  assert.ok(j.length >= 1 && j.length <= 5);
  assert.is(j[0].origin, "shop.example");
});

test("watch (for people): one line per event with time, kind and subject", async () => {
  const ac = new AbortController();
  const out = sink();
  const err = sink();
  const running = runCtl(["--central", central, "watch"], { out, err, env: {}, signal: ac.signal });
  await new Promise((r) => setTimeout(r, 1_000));
  await fleet.setIsp("isp-a", { kind: "refuse" });
  try {
    await eventually(() => /incident opened.*isp-a/.test(out.text()), 90_000, 200);
  } finally {
    await fleet.heal();
  }
  ac.abort();
  assert.is(await running, EXIT.OK, err.text());
  assert.match(err.text(), /watching events from http:\/\/127\.0\.0\.1:\d+ \(Ctrl-C to stop\)/);
  const line = out.text().split("\n").find((l) => /incident opened.*isp-a/.test(l))!;
  assert.match(line, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  incident opened\s+shop\.example\s+\S/);
  await eventually(async () => (await ctl(["status"])).code === EXIT.OK, 90_000, 500);
});

test("the central from ORIGINWATCH_CENTRAL when --central is absent; bare host:port accepted", async () => {
  const out = sink();
  const code = await runCtl(["--json", "nodes"], { out, err: sink(), env: { ORIGINWATCH_CENTRAL: fleet.central.address } });
  assert.is(code, EXIT.OK);
  assert.is(JSON.parse(out.text()).length, 2);
  assert.is(centralUrl("10.0.0.1:7400"), "http://10.0.0.1:7400");
  assert.is(centralUrl(undefined), "http://127.0.0.1:7400");
  assert.throws(() => centralUrl("ftp://x"), /scheme/);
});

test("the binary: an unreachable central is exit 3 with a clear message; a bad flag is exit 2", async () => {
  const bad = await run(process.execPath, [BIN, "ctl", "--central", "http://127.0.0.1:1", "status"], { cwd: ROOT }).catch((e) => e);
  assert.is(bad.code, EXIT.UNREACHABLE);
  assert.match(bad.stderr, /cannot reach the central at http:\/\/127\.0\.0\.1:1/);
  const usage = await run(process.execPath, [BIN, "ctl", "--central", central, "incidents", "--limit", "zero"], { cwd: ROOT }).catch((e) => e);
  assert.is(usage.code, EXIT.USAGE);
  const ok = await run(process.execPath, [BIN, "ctl", "--central", central, "--json", "status"], { cwd: ROOT }).catch((e) => e);
  const j = JSON.parse(ok.stdout);
  assert.is(j.origins[0].name, "shop.example");
  assert.is(ok.code ?? 0, j.exitCode, ok.stderr);
});

test.run();
