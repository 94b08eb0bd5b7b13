/**
 * The metric names a central and a sidecar export, taken from their real
 * registries (not a list kept by hand), and the names a PromQL expression
 * uses: what the rules and dashboard tests check against each other.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { startCentral } from "../../central/main.js";
import { createSidecarMetrics } from "../../sidecar/admin/metrics.js";

/** Sample names an exposition can carry: every family, plus _bucket/_sum/_count of histograms. */
export function namesOf(exposition: string): Set<string> {
  const out = new Set<string>();
  for (const line of exposition.split("\n")) {
    const m = /^# TYPE (\S+) (\S+)/.exec(line);
    if (!m) continue;
    out.add(m[1]);
    if (m[2] === "histogram") for (const s of ["_bucket", "_sum", "_count"]) out.add(m[1] + s);
  }
  return out;
}

/** What a fresh central (in-process, real port, own data dir) lists on /metrics. */
export async function centralNames(): Promise<Set<string>> {
  const dir = await mkdtemp(join(tmpdir(), "ow-names-"));
  const c = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "data"), alertmanagers: ["http://127.0.0.1:9"], webhook: "http://127.0.0.1:9/hook" }, pino({ level: "silent" }));
  try {
    return namesOf(await (await fetch(`http://${c.address}/metrics`)).text());
  } finally {
    await c.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function sidecarNames(): Promise<Set<string>> {
  return namesOf(await createSidecarMetrics().text());
}

/** originwatch_* metric names in a PromQL expression. */
export function metricsIn(expr: string): string[] {
  return [...new Set(expr.match(/\boriginwatch_[a-z0-9_]+/g) ?? [])];
}
