/**
 * Issue 15 item 2, as an operator runs it: Debian's Prometheus scrapes a
 * central (with --tokens: a read token as its bearer credentials) and two
 * sidecars on different ISPs, all real processes, with our alerting rules
 * loaded. Traffic flows through both sidecars to a controllable origin; after
 * the origin starts failing, Prometheus' HTTP API shows the origin DOWN and
 * the sidecars' request counters moving. `promtool check metrics` passes on
 * the central's and a sidecar's output, and every dashboard expression runs.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Origin, startOrigin } from "../origin.js";
import { type Proc, eventually, startOriginwatch } from "../test/proc.js";
import { type Traffic, startTraffic } from "../test/traffic.js";
import { dashboardExprs, grafanaExpand } from "./dashboard-exprs.js";
import { ALERTMANAGER_BIN, PROMETHEUS_BIN, PROMTOOL_BIN, type Daemon, checkMetrics, query, requireBinaries, startPrometheus } from "./prom-tools.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const TOKEN = "prometheus-read-token-0123";
const NAME = "demo.origin";

if (requireBinaries("prometheus e2e", [PROMETHEUS_BIN, PROMTOOL_BIN, ALERTMANAGER_BIN])) {
  let dir = "";
  let origin: Origin;
  let central: Proc;
  const sidecars: Proc[] = [];
  let prom: Daemon;
  let traffic: Traffic | undefined;

  test.before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ow-prom-e2e-"));
    await writeFile(join(dir, "tokens"), `${TOKEN} read prometheus\n`);
    origin = await startOrigin();
    central = await startOriginwatch(["central", "--listen", "127.0.0.1:0", "--data", join(dir, "central"), "--tokens", join(dir, "tokens")]);
    for (const [i, isp] of ["isp-a", "isp-b"].entries()) {
      sidecars.push(
        await startOriginwatch([
          "sidecar", "--central", `http://${central.address}`, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
          "--node-id", `prom-${i}`, "--isp", isp, "--region", "eu", "--origin", `${NAME}=${origin.url}`,
        ]),
      );
    }
    const config = [
      "global:",
      "  scrape_interval: 1s",
      "  evaluation_interval: 1s",
      "rule_files:",
      "  - originwatch-rules.yml",
      "scrape_configs:",
      "  - job_name: originwatch-central",
      "    authorization:",
      "      type: Bearer",
      "      credentials_file: token",
      "    static_configs:",
      `      - targets: ["${central.address}"]`,
      "  - job_name: originwatch-sidecar",
      "    static_configs:",
      `      - targets: [${sidecars.map((s) => `"${String(s.ready.admin)}"`).join(", ")}]`,
      "",
    ].join("\n");
    prom = await startPrometheus(config, { token: TOKEN, "originwatch-rules.yml": readFileSync(join(HERE, "originwatch-rules.yml"), "utf8") });
  });

  test.after(async () => {
    await traffic?.stop();
    await prom?.stop();
    for (const s of sidecars) await s.stop();
    await central?.stop();
    await origin?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("Prometheus scrapes the central (bearer read token) and both sidecars: every target up", async () => {
    const up = await eventually(async () => {
      const r = await query(prom, "up");
      return r.length === 3 && r.every((s) => s.value === 1) ? r : undefined;
    }, 20_000, 250);
    assert.equal(up!.map((s) => s.metric.job).sort(), ["originwatch-central", "originwatch-sidecar", "originwatch-sidecar"]);
  });

  test("after the origin fails, /api/v1/query shows it DOWN and the sidecars' request counters moving", async () => {
    traffic = startTraffic(sidecars.map((s) => ({ address: s.address, host: NAME })), 20);
    await eventually(async () => (await query(prom, `originwatch_origin_state{origin="${NAME}"} == 2`)).length === 1, 20_000, 250);
    const before = await query(prom, `originwatch_sidecar_requests_total{origin="${NAME}"}`);
    await origin.setMode({ kind: "status", status: 503 });
    const down = await eventually(async () => {
      const r = await query(prom, `originwatch_origin_state{origin="${NAME}"}`);
      return r.length === 1 && r[0].value === 4 ? r : undefined;
    }, 30_000, 250);
    assert.is(down![0].metric.job, "originwatch-central");
    // Both sidecars' counters moved (per instance, summed over outcomes).
    const moved = await eventually(async () => {
      const r = await query(prom, `sum by (instance) (increase(originwatch_sidecar_requests_total{origin="${NAME}"}[30s]))`);
      return r.length === 2 && r.every((s) => s.value > 0) ? r : undefined;
    }, 15_000, 250);
    assert.is(moved!.length, 2);
    const failures = await query(prom, `sum(originwatch_sidecar_requests_total{origin="${NAME}",outcome="server_error"})`);
    assert.ok(failures[0]?.value > 0, JSON.stringify(failures));
    const after = await query(prom, `sum(originwatch_sidecar_requests_total{origin="${NAME}"})`);
    assert.ok(after[0].value > before.reduce((n, s) => n + s.value, 0));
    // The central's own view agrees: an open ORIGIN_DOWN incident, failure ratio per ISP over the bar.
    const incidents = await eventually(async () => (await query(prom, 'originwatch_incidents_open{kind="ORIGIN_DOWN"} == 1')).length === 1, 10_000, 250);
    assert.ok(incidents);
    // The verdict is DOWN within about a second, while the 5 s lookback still holds windows from before the
    // fault: the per-ISP ratio over the lookback crosses the bar once those have left it (and Prometheus scraped).
    const perIsp = await eventually(async () => {
      const r = await query(prom, `originwatch_origin_isp_failure_ratio{origin="${NAME}"} > 0.5`);
      return r.length === 2 ? r : undefined;
    }, 15_000, 250);
    assert.equal(perIsp!.map((s) => s.metric.isp).sort(), ["isp-a", "isp-b"]);
  });

  test("promtool check metrics passes on the central's and a sidecar's /metrics", async () => {
    const c = await fetch(`http://${central.address}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.is(c.status, 200);
    assert.equal(checkMetrics(await c.text()), []);
    const s = await fetch(`http://${String(sidecars[0].ready.admin)}/metrics`);
    assert.equal(checkMetrics(await s.text()), []);
  });

  test("every dashboard expression runs on this Prometheus; the alerting rules load healthy", async () => {
    for (const { where, expr } of dashboardExprs()) {
      await query(prom, grafanaExpand(expr)).catch((err: Error) => assert.unreachable(`${where}: ${err.message}`));
    }
    const rules = await eventually(async () => {
      const body = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } };
      const all = body.data.groups.flatMap((g) => g.rules);
      return all.length === 9 && all.every((r) => r.health === "ok") ? all : undefined;
    }, 10_000, 250);
    assert.is(rules!.length, 9);
  });
}

test.run();
