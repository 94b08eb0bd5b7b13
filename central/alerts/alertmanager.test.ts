/**
 * Incidents as Alertmanager alerts (issue 15 item 3): the alert format (pure),
 * then Debian's real prometheus-alertmanager on loopback reading what a real
 * central (in-process, real port, real LevelDB) sends when fake sidecars on the
 * real ingest stream see an origin go down and recover: firing after the
 * fault, one alert per incident, re-sent while open, resolved after recovery,
 * and nothing lost while the Alertmanager is down.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { IncidentKind, type IncidentRecord } from "../verdict/hysteresis.js";
import { FakeSidecar } from "../../tools/scenarios/fake-sidecar.js";
import { eventually } from "../../tools/test/proc.js";
import { deadPort } from "../../tools/test/sidecar-harness.js";
import { ALERTMANAGER_BIN, type Daemon, requireBinaries, startAlertmanager } from "../../tools/prometheus/prom-tools.js";
import { type Central, startCentral } from "../main.js";
import { AlertmanagerSender, type PostableAlert, alertOf, validateAlertmanagerOptions } from "./alertmanager.js";

const incident = (over: Partial<IncidentRecord> = {}): IncidentRecord => ({
  id: "inc1",
  kind: IncidentKind.ORIGIN_DOWN,
  origin: "img.example",
  scopeKey: "",
  openedMs: 1_700_000_000_000,
  closedMs: 0,
  open: true,
  flapping: false,
  reopenCount: 0,
  peakFailureRatio: 1,
  peakP95TtfbMs: 12,
  dedupeKey: "img.example/origin/inc1",
  summary: "every ISP with traffic fails",
  ...over,
});

test("an incident becomes one API v2 alert: labels, the verdict's reason, startsAt and a dashboard link", () => {
  const a = alertOf(incident(), "https://central.example:7400/");
  assert.equal(a.labels, { alertname: "OriginDown", origin: "img.example", kind: "ORIGIN_DOWN", scope: "origin", key: "img.example", severity: "critical" });
  assert.is(a.annotations.description, "every ISP with traffic fails");
  assert.is(a.annotations.incident_id, "inc1");
  assert.is(a.startsAt, "2023-11-14T22:13:20.000Z");
  assert.is(a.endsAt, undefined);
  assert.is(a.generatorURL, "https://central.example:7400/#origin=img.example");
  const isp = alertOf(incident({ kind: IncidentKind.ISP_FAULT, scopeKey: "isp-b" }), "http://c");
  assert.equal([isp.labels.alertname, isp.labels.scope, isp.labels.key, isp.labels.severity], ["IspFault", "isp", "isp-b", "warning"]);
});

test("bad Alertmanager options are refused naming the field", () => {
  const base = { externalUrl: "http://c", openIncidents: () => [] };
  assert.throws(() => validateAlertmanagerOptions({ ...base, urls: [] }), /at least one URL/);
  assert.throws(() => validateAlertmanagerOptions({ ...base, urls: ["ftp://x"] }), /urls\[0\] must be http or https/);
  assert.throws(() => validateAlertmanagerOptions({ ...base, urls: ["http://x"], resendMs: 0 }), /resendMs must be a positive number/);
  assert.is(validateAlertmanagerOptions({ ...base, urls: ["http://x:9093/"] }).urls[0], "http://x:9093");
});

test("a takeover sends the partition's state at once: open incidents fire, recently closed ones resolve at closedMs, old closed ones are left alone", async () => {
  const { createServer } = await import("node:http");
  const got: PostableAlert[][] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push(JSON.parse(body) as PostableAlert[]);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const s = new AlertmanagerSender({ urls: [url], externalUrl: "http://c", openIncidents: () => [], resendMs: 10_000 });
  try {
    const now = 1_700_000_100_000;
    await s.sendState(
      [
        incident({ id: "open", dedupeKey: "k/open", origin: "a.example" }),
        incident({ id: "closed-now", dedupeKey: "k/closed-now", origin: "b.example", open: false, closedMs: now - 5_000 }),
        incident({ id: "closed-long-ago", dedupeKey: "k/old", origin: "c.example", open: false, closedMs: now - 41_000 }),
      ],
      now,
    );
    assert.is(got.length, 1, "one POST");
    const [fire, resolve] = got[0];
    assert.equal(got[0].map((a) => a.annotations.incident_id), ["open", "closed-now"]);
    assert.ok(Date.parse(fire.endsAt!) > Date.now(), "the open one fires (endsAt ahead)");
    assert.is(resolve.endsAt, new Date(now - 5_000).toISOString(), "the closed one is resolved at its closedMs");
  } finally {
    await s.shutdown();
    server.close();
  }
});

test("lifecycle on the wire: fire, escalate (resolve DEGRADED, fire DOWN), close (resolved at closedMs); a 503 is retried", async () => {
  const { createServer } = await import("node:http");
  const got: PostableAlert[][] = [];
  let hits = 0;
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      hits++;
      if (hits === 1 || req.url !== "/am/api/v2/alerts") return void res.writeHead(503).end();
      got.push(JSON.parse(body) as PostableAlert[]);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/am`;
  const s = new AlertmanagerSender({ urls: [url], externalUrl: "http://c", openIncidents: () => [], resendMs: 10_000, initialBackoffMs: 10, maxBackoffMs: 20 });
  try {
    await s.start();
    const t0 = Date.now();
    s.notify("opened", incident({ kind: IncidentKind.ORIGIN_DEGRADED }));
    s.notify("escalated", incident());
    s.notify("closed", incident({ open: false, closedMs: 1_700_000_600_000 }));
    await eventually(() => got.length === 4, 5_000, 10);
    assert.is(hits, 5, "the first POST got 503 and was retried");
    const seen = got.map((b) => `${b[0].labels.alertname}:${Date.parse(b[0].endsAt!) > t0 + 30_000 ? "firing" : "resolved"}`);
    assert.equal(seen, ["OriginDegraded:firing", "OriginDegraded:resolved", "OriginDown:firing", "OriginDown:resolved"]);
    assert.is(got[3][0].endsAt, "2023-11-14T22:23:20.000Z");
    await eventually(() => s.pending()[0].pending === 0, 5_000, 10);
  } finally {
    await s.shutdown();
    server.close();
  }
});

if (requireBinaries("alertmanager e2e", [ALERTMANAGER_BIN])) {
  const log = pino({ level: "silent" });
  interface GettableAlert {
    labels: Record<string, string>;
    annotations: Record<string, string>;
    startsAt: string;
    endsAt: string;
    generatorURL: string;
  }
  const alerts = async (am: Daemon): Promise<GettableAlert[]> => (await (await fetch(`${am.url}/api/v2/alerts`)).json()) as GettableAlert[];
  /** alertmanager_alerts_received_total{status} summed over versions, from its own /metrics. */
  const received = async (am: Daemon, status: "firing" | "resolved") => {
    const text = await (await fetch(`${am.url}/metrics`)).text();
    return text
      .split("\n")
      .filter((l) => l.startsWith("alertmanager_alerts_received_total{") && l.includes(`status="${status}"`))
      .reduce((n, l) => n + Number(l.split(" ").pop()), 0);
  };

  async function fleet(amUrl: string) {
    const dir = await mkdtemp(join(tmpdir(), "ow-am-"));
    const central = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "data"), evalIntervalMs: 200, alertmanagers: [amUrl], alertmanagerResendMs: 30_000 }, log);
    let failing = false;
    const traffic = (): Record<string, number> => (failing ? { serverError: 20 } : { ok: 20 });
    const sidecars = ["isp-a", "isp-b"].map((isp, i) => new FakeSidecar({ address: central.address, nodeId: `am-${i}`, isp, region: "eu", origins: ["img.example"], periodMs: 200, traffic }));
    for (const s of sidecars) s.start();
    return {
      central,
      fail: (on: boolean) => (failing = on),
      async close() {
        for (const s of sidecars) s.close();
        await central.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }

  /** The open origin incident (DOWN or DEGRADED; node or ISP incidents during the transition are other incidents). */
  const originDownOpen = (c: Central) =>
    c.verdict.engine.openIncidents().find((i) => i.origin === "img.example" && (i.kind === IncidentKind.ORIGIN_DOWN || i.kind === IncidentKind.ORIGIN_DEGRADED));
  /** Listed alerts of the origin incident of img.example. */
  const originAlerts = async (am: Daemon) => (await alerts(am)).filter((a) => a.labels.origin === "img.example" && a.labels.scope === "origin");

  test("the real Alertmanager shows one firing alert per incident after the fault, re-sent while open, resolved after recovery", async () => {
    const am = await startAlertmanager();
    const f = await fleet(am.url);
    try {
      await eventually(() => f.central.verdict.engine.status("img.example")?.state === 2, 10_000);
      assert.equal(await alerts(am), []);
      f.fail(true);
      const inc = (await eventually(() => originDownOpen(f.central), 15_000))!;
      const firing = (await eventually(async () => {
        const list = await originAlerts(am);
        return list.length > 0 && list.every((a) => a.labels.kind === IncidentKind[originDownOpen(f.central)?.kind ?? inc.kind]) ? list : undefined;
      }, 15_000))!;
      assert.is(firing.length, 1, JSON.stringify(firing));
      const a = firing[0];
      const now = originDownOpen(f.central)!;
      assert.is(a.labels.alertname, now.kind === IncidentKind.ORIGIN_DOWN ? "OriginDown" : "OriginDegraded");
      assert.equal([a.labels.scope, a.labels.key], ["origin", "img.example"]);
      assert.is(a.annotations.incident_id, inc.id);
      assert.ok(a.annotations.description.length > 0);
      assert.is(Date.parse(a.startsAt), inc.openedMs);
      assert.ok(Date.parse(a.endsAt) > Date.now() + 60_000, `a firing alert expires only after 4 re-send intervals: ${a.endsAt}`);
      assert.is(a.generatorURL, `http://${f.central.address}/#origin=img.example`);
      // Re-sent while open: one more round is one more firing alert received, still one alert listed.
      const before = await received(am, "firing");
      await f.central.verdict.alertmanager!.resendOpen();
      assert.ok((await received(am, "firing")) > before);
      assert.is((await originAlerts(am)).length, 1);
      // Recovery: the incident closes and the alert is resolved long before its endsAt would expire it.
      f.fail(false);
      await eventually(() => !originDownOpen(f.central), 20_000);
      await eventually(async () => (await originAlerts(am)).length === 0, 10_000);
      assert.ok((await received(am, "resolved")) >= 1);
      assert.is(f.central.verdict.alertmanager!.pending()[0].pending, 0);
    } finally {
      await f.close();
      await am.stop();
    }
  });

  test("an alert raised while the Alertmanager is down waits in the outbox and arrives once it is up (retried with backoff)", async () => {
    const port = await deadPort();
    const f = await fleet(`http://127.0.0.1:${port}`);
    let am: Daemon | undefined;
    try {
      await eventually(() => f.central.verdict.engine.status("img.example")?.state === 2, 10_000);
      f.fail(true);
      await eventually(() => originDownOpen(f.central), 15_000);
      const sender = f.central.verdict.alertmanager!;
      await eventually(() => sender.pending()[0].pending > 0, 5_000);
      await new Promise((r) => setTimeout(r, 1500));
      assert.ok(sender.pending()[0].pending > 0, "still pending while nothing listens");
      am = await startAlertmanager(port);
      const up = am;
      // Well before the 30 s re-send round: the outbox retry delivers it.
      const list = (await eventually(async () => {
        const l = await originAlerts(up);
        return l.length > 0 ? l : undefined;
      }, 20_000, 200))!;
      assert.is(list.length, 1);
      await eventually(() => sender.pending()[0].pending === 0, 10_000);
      assert.is(sender.pending()[0].dropped, 0);
    } finally {
      await f.close();
      await am?.stop();
    }
  });
}

test.run();
