/**
 * Debian's Prometheus, Alertmanager and promtool as first-class test peers
 * (issue 15): each test starts its own server on a free loopback port with its
 * own data directory and kills only what it started (the packages' system
 * services, if any, are left alone). Tests run whenever the binaries exist;
 * with ORIGINWATCH_REQUIRE_PROMETHEUS=1 (CI) a missing binary is a failure.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { deadPort } from "../test/sidecar-harness.js";

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? "/usr/bin/prometheus";
export const PROMTOOL_BIN = process.env.PROMTOOL_BIN ?? "/usr/bin/promtool";
export const ALERTMANAGER_BIN = process.env.ALERTMANAGER_BIN ?? "/usr/bin/prometheus-alertmanager";
const REQUIRE = process.env.ORIGINWATCH_REQUIRE_PROMETHEUS === "1";

/**
 * True when every binary runs. Otherwise, under ORIGINWATCH_REQUIRE_PROMETHEUS=1
 * a failing test is registered; without it a note goes to stderr and the
 * caller registers nothing.
 */
export function requireBinaries(what: string, bins: string[]): boolean {
  const missing = bins.filter((b) => !existsSync(b) || spawnSync(b, ["--version"], { stdio: "ignore" }).status !== 0);
  if (missing.length === 0) return true;
  if (REQUIRE) {
    test(`${missing.join(", ")} installed (ORIGINWATCH_REQUIRE_PROMETHEUS=1)`, () => {
      assert.unreachable(`${missing.join(", ")} missing or not runnable, and ORIGINWATCH_REQUIRE_PROMETHEUS=1 (apt-get install prometheus prometheus-alertmanager)`);
    });
  } else {
    process.stderr.write(`${what}: ${missing.join(", ")} not found; these tests do not run here (set ORIGINWATCH_REQUIRE_PROMETHEUS=1 to make that a failure)\n`);
  }
  return false;
}

/** Runs promtool with args (and stdin); never throws. */
export function promtool(args: string[], stdin?: string): { code: number | null; out: string } {
  const r = spawnSync(PROMTOOL_BIN, args, { input: stdin, encoding: "utf8", timeout: 30_000 });
  return { code: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

export interface Daemon {
  url: string;
  dir: string;
  /** Output so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

async function startDaemon(bin: string, args: (port: number, dir: string) => string[], files: Record<string, string>, fixedPort?: number): Promise<Daemon> {
  const dir = await mkdtemp(join(tmpdir(), "ow-prom-"));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  const port = fixedPort ?? (await deadPort());
  const child: ChildProcess = spawn(bin, args(port, dir), { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (c) => (out = (out + c).slice(-20_000)));
  child.stderr!.on("data", (c) => (out = (out + c).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(t);
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`${bin} exited before ready:\n${out}`);
    }
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${bin} not ready within 30 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, dir, log: () => out, stop };
}

/** Prometheus with `config` (YAML text) in its own directory; `files` are written beside it (rule files, token files). */
export function startPrometheus(config: string, files: Record<string, string> = {}): Promise<Daemon> {
  return startDaemon(
    PROMETHEUS_BIN,
    (port, dir) => [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
    { ...files, "prometheus.yml": config },
  );
}

/** Alertmanager with a one-receiver config, clustering off (it would bind :9094); on `port` when given (a restart). */
export function startAlertmanager(port?: number): Promise<Daemon> {
  return startDaemon(
    ALERTMANAGER_BIN,
    (port, dir) => [`--config.file=${join(dir, "alertmanager.yml")}`, `--storage.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--cluster.listen-address=", "--log.level=warn"],
    { "alertmanager.yml": "route:\n  receiver: default\nreceivers:\n  - name: default\n" },
    port,
  );
}

/** An instant query against Prometheus' HTTP API: the vector's samples. */
export async function query(prom: Daemon, expr: string): Promise<Array<{ metric: Record<string, string>; value: number }>> {
  const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  if (body.status !== "success") throw new Error(`query ${expr}: ${body.error}`);
  return (body.data?.result ?? []).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

/**
 * prom-client's default Node metrics whose names promtool lints (gauges named
 * *_total): not ours to rename; the issue allows them. Nothing else may warn.
 */
const PROM_CLIENT_DEFAULT_WARNINGS = /^\S*nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;

/** `promtool check metrics` on an exposition: the problems it reports, prom-client's own default names aside. */
export function checkMetrics(text: string): string[] {
  const r = promtool(["check", "metrics"], text);
  const problems = r.out.split("\n").map((l) => l.trim()).filter((l) => l && !PROM_CLIENT_DEFAULT_WARNINGS.test(l));
  if (r.code !== 0 && problems.length === 0 && r.code !== 3) problems.push(`promtool exited ${r.code}`);
  return problems;
}
