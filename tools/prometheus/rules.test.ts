/**
 * tools/prometheus (issue 15 item 4): the alerting rules pass `promtool check
 * rules` and their unit tests (`promtool test rules`), name only metrics the
 * central or a sidecar really exports; every PromQL expression of the Grafana
 * dashboard parses (promtool, as recording rules with Grafana's variables
 * substituted) and names a metric the central exports.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PROMTOOL_BIN, promtool, requireBinaries } from "./prom-tools.js";
import { centralNames, metricsIn, sidecarNames } from "./exported-names.js";
import { dashboardExprs, grafanaExpand } from "./dashboard-exprs.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const RULES = join(HERE, "originwatch-rules.yml");

const ruleExprs = () => [...readFileSync(RULES, "utf8").matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]);

test("a missing binary fails the tests under ORIGINWATCH_REQUIRE_PROMETHEUS=1 and only skips them without it", () => {
  const file = join(HERE, "..", "..", "central", "alerts", "alertmanager.test.ts");
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, ["--import", "tsx", file], { env: { ...process.env, ALERTMANAGER_BIN: "/nonexistent/alertmanager", ...env }, encoding: "utf8", timeout: 60_000 });
  const required = run({ ORIGINWATCH_REQUIRE_PROMETHEUS: "1" });
  assert.is.not(required.status, 0, required.stdout);
  assert.match(required.stdout, /\/nonexistent\/alertmanager installed \(ORIGINWATCH_REQUIRE_PROMETHEUS=1\)/);
  const optional = run({ ORIGINWATCH_REQUIRE_PROMETHEUS: "" });
  assert.is(optional.status, 0, optional.stdout + optional.stderr);
  assert.match(optional.stderr, /not found; these tests do not run here/);
});

test("the dashboard is importable JSON with panels and every panel has a PromQL target", () => {
  const exprs = dashboardExprs();
  assert.ok(exprs.length >= 15, `${exprs.length} expressions`);
  for (const e of exprs) assert.ok(e.expr.trim().length > 0, e.where);
});

test("every dashboard expression names a metric the central exports; every rule one the central or a sidecar exports", async () => {
  const central = await centralNames();
  const sidecar = await sidecarNames();
  for (const { where, expr } of dashboardExprs()) {
    const names = metricsIn(expr);
    assert.ok(names.length > 0, `${where}: ${expr} names no originwatch metric`);
    for (const n of names) assert.ok(central.has(n), `${where}: ${n} is not exported by the central`);
  }
  for (const expr of ruleExprs()) {
    for (const n of metricsIn(expr)) assert.ok(central.has(n) || sidecar.has(n), `rule ${expr}: ${n} is exported by neither the central nor a sidecar`);
  }
});

if (requireBinaries("prometheus rules", [PROMTOOL_BIN])) {
  test("promtool check rules passes on the alerting rules", () => {
    const r = promtool(["check", "rules", RULES]);
    assert.is(r.code, 0, r.out);
    assert.match(r.out, /SUCCESS: 9 rules found/);
  });

  test("promtool test rules: DOWN fires after a minute and clears, a dropping replay buffer and a disconnected sidecar fire", () => {
    const r = promtool(["test", "rules", join(HERE, "rules-test.yml")]);
    assert.is(r.code, 0, r.out);
  });

  test("every dashboard expression parses with promtool (as recording rules, Grafana variables expanded)", async () => {
    const exprs = dashboardExprs();
    const groups = { groups: [{ name: "dashboard", rules: exprs.map((e, i) => ({ record: `dashboard:expr_${i}`, expr: grafanaExpand(e.expr) })) }] };
    const dir = await mkdtemp(join(tmpdir(), "ow-dash-"));
    try {
      const file = join(dir, "dashboard-rules.json");
      // JSON is YAML: promtool reads it as a rule file.
      await writeFile(file, JSON.stringify(groups));
      const r = promtool(["check", "rules", file]);
      assert.is(r.code, 0, r.out);
      assert.match(r.out, new RegExp(`SUCCESS: ${exprs.length} rules found`));
      // And a broken expression is refused: the check can fail.
      await writeFile(file, JSON.stringify({ groups: [{ name: "x", rules: [{ record: "x:y", expr: "sum by (origin (originwatch_origins)" }] }] }));
      assert.is.not(promtool(["check", "rules", file]).code, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test.run();
