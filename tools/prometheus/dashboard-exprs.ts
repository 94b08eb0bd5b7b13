/**
 * The PromQL of tools/prometheus/grafana-dashboard.json, for the tests that
 * check it (parse with promtool, names exported metrics, runs on Prometheus).
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const DASHBOARD = join(dirname(fileURLToPath(import.meta.url)), "grafana-dashboard.json");

interface Panel {
  title: string;
  targets?: Array<{ expr: string }>;
}

/** Every PromQL expression of the dashboard (panel targets and the variable query's metric). */
export function dashboardExprs(): Array<{ where: string; expr: string }> {
  const d = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: Panel[]; templating: { list: Array<{ name: string; definition: string }> } };
  const out: Array<{ where: string; expr: string }> = [];
  for (const p of d.panels) for (const t of p.targets ?? []) out.push({ where: p.title, expr: t.expr });
  for (const v of d.templating.list) {
    const m = /^label_values\((.+),\s*\w+\)$/.exec(v.definition);
    if (m) out.push({ where: `variable ${v.name}`, expr: m[1] });
  }
  return out;
}

/** Grafana's variables replaced by what they expand to, so promtool can parse the expression. */
export function grafanaExpand(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval/g, "1m").replace(/\$origin\b/g, ".*");
}
