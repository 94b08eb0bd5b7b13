/**
 * The central's /metrics (issue 15 item 1) on a real central (in-process, real
 * port, real LevelDB) fed by fake sidecars on the real ingest stream: auth with
 * --tokens, the Host guard, every listed family, the cardinality cap, and
 * `promtool check metrics` on the output when Debian's promtool is installed.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { FakeSidecar } from "../../tools/scenarios/fake-sidecar.js";
import { eventually } from "../../tools/test/proc.js";
import { IngestStream, batch, hello, win } from "../../tools/test/ingest-client.js";
import { PROMTOOL_BIN, checkMetrics, requireBinaries } from "../../tools/prometheus/prom-tools.js";
import { type Central, startCentral } from "../main.js";

const READ = "read-token-0123456789";
const ADMIN = "admin-token-0123456789";
const log = pino({ level: "silent" });
const cleanup: Array<() => Promise<void> | void> = [];

test.after(async () => {
  for (const f of cleanup.reverse()) await f();
});

async function central(opts: Parameters<typeof startCentral>[0] = {}): Promise<Central> {
  const dir = await mkdtemp(join(tmpdir(), "ow-metrics-"));
  const c = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "data"), evalIntervalMs: 200, ...opts }, log);
  cleanup.push(async () => {
    await c.close();
    await rm(dir, { recursive: true, force: true });
  });
  return c;
}

function sidecar(c: Central, nodeId: string, isp: string, origins: string[], traffic: (o: string) => Record<string, number>): FakeSidecar {
  const s = new FakeSidecar({ address: c.address, nodeId, isp, region: "eu", origins, periodMs: 200, traffic });
  s.start();
  cleanup.push(() => s.close());
  return s;
}

const scrape = async (c: Central, headers: Record<string, string> = {}) => {
  const res = await fetch(`http://${c.address}/metrics`, { headers });
  return { status: res.status, type: res.headers.get("content-type") ?? "", www: res.headers.get("www-authenticate"), text: await res.text() };
};

/** The value of one sample (exact label set as rendered), or undefined. */
function sample(text: string | undefined, series: string): number | undefined {
  const line = (text ?? "").split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("with --tokens, /metrics needs a bearer token: none or an unknown one gets 401, a read token gets the exposition", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-tokens-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "tokens"), `${READ} read prometheus\n${ADMIN} admin ops\n`);
  const c = await central({ tokensFile: join(dir, "tokens") });
  const none = await scrape(c);
  assert.is(none.status, 401);
  assert.match(none.www ?? "", /^Bearer/);
  assert.not.match(none.text, /originwatch_/);
  assert.is((await scrape(c, { authorization: "Bearer not-a-known-token-000" })).status, 401);
  const ok = await scrape(c, { authorization: `Bearer ${READ}` });
  assert.is(ok.status, 200);
  assert.match(ok.type, /^text\/plain; version=0\.0\.4/);
  assert.match(ok.text, /^# HELP originwatch_central_sidecar_sessions /m);
  assert.is((await scrape(c, { authorization: `Bearer ${ADMIN}` })).status, 200);
});

test("a tokenless central answers /metrics only to loopback Host names (the DNS-rebinding guard runs first)", async () => {
  const c = await central();
  const port = c.address.split(":").pop();
  const http = await import("node:http");
  const status = await new Promise<number>((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: "/metrics", headers: { host: `attacker.example:${port}` } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", reject);
  });
  assert.is(status, 403);
  assert.is((await scrape(c)).status, 200);
});

test("every listed family is exported, with the origin DOWN, failure ratio per ISP, incidents, sessions and ingest counters", async () => {
  const c = await central();
  let failing = false;
  const traffic = (): Record<string, number> => (failing ? { serverError: 20 } : { ok: 20 });
  sidecar(c, "m-a", "isp-a", ["img.example"], traffic);
  sidecar(c, "m-b", "isp-b", ["img.example"], traffic);
  await eventually(async () => sample((await scrape(c)).text, 'originwatch_origin_state{origin="img.example"}') === 2, 10_000);
  failing = true;
  const text = await eventually(async () => {
    const t = (await scrape(c)).text;
    return sample(t, 'originwatch_incidents_open{kind="ORIGIN_DOWN",scope="origin"}') === 1 ? t : "";
  }, 15_000);
  assert.is(sample(text, 'originwatch_origin_state{origin="img.example"}'), 4);
  assert.is(sample(text, 'originwatch_origins{state="DOWN"}'), 1);
  assert.is(sample(text, "originwatch_central_sidecar_sessions"), 2);
  assert.ok(sample(text, 'originwatch_origin_requests_total{origin="img.example"}')! > 0);
  assert.ok(sample(text, 'originwatch_origin_failures_total{origin="img.example"}')! > 0);
  assert.ok(sample(text, 'originwatch_origin_isp_failure_ratio{origin="img.example",isp="isp-a"}')! > 0.5);
  assert.ok(sample(text, 'originwatch_origin_isp_failure_ratio{origin="img.example",isp="isp-b"}')! > 0.5);
  assert.ok(sample(text, 'originwatch_origin_failure_ratio{origin="img.example"}')! > 0.5);
  assert.ok(sample(text, 'originwatch_origin_request_rate{origin="img.example"}')! > 0);
  assert.ok(sample(text, "originwatch_central_ingest_batches_total")! > 0);
  assert.ok(sample(text, "originwatch_central_ingest_summaries_total")! >= sample(text, "originwatch_central_ingest_batches_total")!);
  assert.is.not(sample(text, "originwatch_central_ingest_duplicates_total"), undefined);
  assert.ok(sample(text, "originwatch_central_verdict_tick_seconds_count")! > 0);
  assert.ok(sample(text, "originwatch_central_store_write_seconds_count")! > 0);
  assert.ok(sample(text, 'originwatch_central_events_total{kind="INCIDENT_OPENED"}')! >= 1);
  assert.is.not(sample(text, 'originwatch_faults_open{scope="isp"}'), undefined);
  assert.is(sample(text, 'originwatch_central_metrics_over_cap{family="origin"}'), 0);
  if (requireBinaries("central /metrics", [PROMTOOL_BIN])) {
    assert.equal(checkMetrics(text), []);
  }
});

test("a replayed batch counts as a duplicate and a refused one under its BatchReject code; a refused hello is counted", async () => {
  const c = await central({ maxNodes: 1 });
  const s = new IngestStream(c.address);
  cleanup.push(() => s.close());
  await s.send(
    hello("dup-1", ["d.example"]),
    batch(1, { windows: [win("d.example", { ok: 10n })] }),
    batch(1, { windows: [win("d.example", { ok: 10n })] }),
    batch(2, { windows: [win("d.example", { ok: 1n << 40n })] }),
  );
  await s.until(() => s.acks().length >= 2 && s.rejects().length >= 1);
  const code = s.rejects()[0].code;
  const other = new IngestStream(c.address);
  cleanup.push(() => other.close());
  await other.send(hello("dup-2", ["d.example"]));
  await other.ended;
  const text = (await scrape(c)).text;
  assert.is(sample(text, "originwatch_central_ingest_batches_total"), 1);
  assert.is(sample(text, "originwatch_central_ingest_duplicates_total"), 1);
  assert.is(sample(text, `originwatch_central_ingest_rejected_batches_total{code="${code}"}`), 1);
  assert.is(sample(text, "originwatch_central_ingest_refused_hellos_total"), 1);
  assert.is(sample(text, "originwatch_central_ingest_failed_writes_total"), 0);
  assert.is(sample(text, 'originwatch_origin_requests_total{origin="d.example"}'), 10);
});

test("origins over --metrics-max-origins are counted in originwatch_central_metrics_over_cap, the first ones stay exported", async () => {
  const c = await central({ metricsMaxOrigins: 2, metricsMaxOriginIsps: 1 });
  const origins = ["o1.example", "o2.example", "o3.example"];
  sidecar(c, "cap-a", "isp-a", origins, () => ({ ok: 10 }));
  const text = await eventually(async () => {
    const t = (await scrape(c)).text;
    return sample(t, 'originwatch_central_metrics_over_cap{family="origin"}') === 1 ? t : "";
  }, 10_000);
  const exported = text.split("\n").filter((l) => l.startsWith("originwatch_origin_state{"));
  assert.is(exported.length, 2, exported.join("\n"));
  // Every origin is still counted by state, capped or not.
  const byState = text.split("\n").filter((l) => l.startsWith("originwatch_origins{")).reduce((n, l) => n + Number(l.split(" ")[1]), 0);
  assert.is(byState, 3);
  assert.is(text.split("\n").filter((l) => l.startsWith("originwatch_origin_isp_failure_ratio{")).length, 1);
  assert.is(sample(text, 'originwatch_central_metrics_over_cap{family="origin_isp"}'), 1);
  // Stable: a later scrape exports the same two origins.
  const again = (await scrape(c)).text.split("\n").filter((l) => l.startsWith("originwatch_origin_state{")).map((l) => l.split(" ")[0]);
  assert.equal(again, exported.map((l) => l.split(" ")[0]));
});

test.run();
