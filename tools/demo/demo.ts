/**
 * `originwatch demo` (what `npm start` runs): a central with LevelDB under
 * ./data/demo, a controllable origin, real sidecars on three ISPs and two
 * regions with steady traffic, and a live terminal view of what the central
 * concludes, read through its public API (QueryService, WatchEvents). It plays
 * a story of faults (story.ts), or with --interactive lets the operator inject
 * them from another terminal: `originwatch demo fault isp-b blackhole`,
 * `… fault origin down`, `… heal` (through a loopback control endpoint).
 * Ctrl-C stops everything; every part runs in this one process.
 */
import type { Command } from "commander";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { type Event, OriginState, type OriginStatus, QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { faultText, paintState, pct, stateName } from "../ctl/format.js";
import { type Fleet, startFleet } from "../fleet/fleet.js";
import { type ControlServer, DEFAULT_CONTROL, sendControl, startControl } from "./control.js";
import { type FaultRequest, OriginFaults, applyFault, healAll } from "./faults.js";
import { allClear, meaning, storySteps } from "./story.js";

export interface DemoOptions {
  data: string;
  listen: string;
  control: string;
  rate: number;
  every: number;
  interactive?: boolean;
  /** Seconds a fault is held after the verdict is seen. */
  hold: number;
  /** mTLS between the sidecars and the central (throwaway dev PKI); the central serves HTTPS. */
  tls?: boolean;
}

export interface StepResult {
  title: string;
  /** Seconds from injection to the expected verdict (undefined: not seen). */
  detectedS?: number;
  /** Seconds from healing to all clear. */
  clearedS?: number;
}

export interface Demo {
  centralAddress: string;
  controlAddress: string;
  /** Resolves when the story ends (at once with --interactive). */
  story: Promise<StepResult[]>;
  stop(): Promise<void>;
}

const ISPS = ["isp-a", "isp-b", "isp-c"];
const REGIONS = ["eu", "us"];
const ORIGINS = ["shop.example", "img.example"];
const hhmmss = (ms = Date.now()) => new Date(ms).toISOString().slice(11, 19);

export async function runDemo(opts: DemoOptions, out: NodeJS.WriteStream | NodeJS.WritableStream = process.stdout): Promise<Demo> {
  const tty = !!(out as NodeJS.WriteStream).isTTY;
  const colour = tty && !process.env.NO_COLOR;
  const fleet: Fleet = await startFleet({
    dataDir: opts.data,
    listen: opts.listen,
    isps: ISPS,
    regions: REGIONS,
    perCell: 1,
    origins: ORIGINS,
    ratePerNode: opts.rate,
    // Like a real edge: give up on a silent origin after 5 s (504), so a blackholed
    // path keeps carrying fresh requests instead of filling up with hung ones.
    sidecar: { firstByteTimeoutMs: 5000 },
    tls: opts.tls,
  });
  const originFaults = new OriginFaults(fleet);
  const lines: string[] = []; // story and fault messages (TTY view keeps the last few)
  const events: string[] = [];
  const say = (line: string) => {
    if (tty) {
      lines.push(line);
      while (lines.length > 14) lines.shift();
    } else out.write(line + "\n");
  };
  let control: ControlServer;
  try {
    control = await startControl(opts.control, {
      fault: async (f: FaultRequest) => {
        const msg = await applyFault(fleet, originFaults, f);
        say(`${hhmmss()}  fault injected: ${msg}`);
        return msg;
      },
      heal: async () => {
        const msg = await healAll(fleet, originFaults);
        say(`${hhmmss()}  healed: ${msg}`);
        return msg;
      },
    });
  } catch (err) {
    await fleet.close();
    throw err;
  }
  fleet.startTraffic();
  const central = fleet.central.address;
  const client = createClient(
    QueryService,
    createConnectTransport({ baseUrl: fleet.centralUrl, httpVersion: "1.1", nodeOptions: fleet.ca ? { ca: fleet.ca } : undefined }),
  );
  const stopper = new AbortController();
  const stopped = stopper.signal;

  // What the central says, refreshed every second.
  let origins: OriginStatus[] = [];
  let detail = new Map<string, OriginStatus>();
  let nodesUp = 0;
  let openIncidents = 0;
  let lastError = "";
  const refresh = async () => {
    try {
      // The demo's few origins and nodes fit one page each (500 by default); a page token would mean more.
      const [o, n, inc] = await Promise.all([client.listOrigins({ pageSize: 1000 }), client.listNodes({ pageSize: 1000 }), client.listIncidents({ openOnly: true, pageSize: 100 })]);
      origins = o.origins;
      openIncidents = inc.incidents.length;
      nodesUp = n.nodes.filter((x) => x.connected).length;
      const d = await Promise.all(origins.map((x) => client.getOrigin({ origin: x.name }).then((r) => r.origin!)));
      detail = new Map(d.map((x) => [x.name, x]));
      lastError = "";
    } catch (err) {
      lastError = (err as Error).message;
    }
  };

  // Events as they happen.
  const watch = async () => {
    while (!stopped.aborted) {
      try {
        for await (const r of client.watchEvents({}, { signal: stopped })) if (r.event) onEvent(r.event);
      } catch {
        /* reconnect below */
      }
      await sleep(1000, stopped);
    }
  };
  const onEvent = (e: Event) => {
    const who = e.origin || e.nodeId;
    const text = e.message || (e.state ? `${stateName(e.previousState)} -> ${stateName(e.state)}` : "");
    const line = `${hhmmss(e.time ? Number(e.time.seconds) * 1000 : Date.now())}  ${who && !text.includes(who) ? `${who}: ` : ""}${text}`;
    if (tty) {
      events.push(line);
      while (events.length > 8) events.shift();
    } else out.write(`  event  ${line}\n`);
  };

  const header = [
    `originwatch demo: central ${central} (LevelDB in ${opts.data}), ${fleet.nodes.length} sidecars on ${ISPS.length} ISPs x ${REGIONS.length} regions, traffic ${opts.rate} req/s per node and origin`,
    `  dashboard  ${fleet.centralUrl}/${fleet.caFile ? ` (TLS: your browser will not know the demo CA ${fleet.caFile})` : ""}`,
    `  ctl        npx originwatch ctl --central ${fleet.centralUrl}${fleet.caFile ? ` --ca ${fleet.caFile}` : ""} status`,
    `  faults     npx originwatch demo fault isp-b blackhole | fault origin down | fault isp-a-eu-1 reset | heal   (control ${control.address})`,
    "  Ctrl-C stops everything.",
  ];

  const table = (): string[] => {
    const rows = [`  ${"ORIGIN".padEnd(14)} ${"STATE".padEnd(9)} ${"REQ/S".padStart(6)} ${"FAIL".padStart(5)} ${"P95".padStart(6)}   ${ISPS.map((i) => i.padEnd(9)).join(" ")}`];
    for (const o of origins) {
      const d = detail.get(o.name) ?? o;
      const isp = ISPS.map((i) => {
        const s = d.isps.find((x) => x.key === i);
        const cell = s ? `${pct(s.failureRatio)}${s.failing ? " FAIL" : ""}` : "-";
        return colour && s?.failing ? `\x1b[31m${cell.padEnd(9)}\x1b[0m` : cell.padEnd(9);
      }).join(" ");
      const st = paintState(o.state, colour) + " ".repeat(Math.max(0, 9 - stateName(o.state).length));
      rows.push(`  ${o.name.padEnd(14)} ${st} ${o.requestRate.toFixed(1).padStart(6)} ${pct(o.failureRatio).padStart(5)} ${`${o.p95TtfbMs.toFixed(0)}ms`.padStart(6)}   ${isp}`);
    }
    rows.push("");
    for (const o of origins) rows.push(`  ${o.name}: ${o.faults.length ? o.faults.map(faultText).join("; ") + " — " : ""}${meaning(o)}`);
    return rows;
  };

  const render = () => {
    if (!tty) return;
    const t = fleet.totals();
    const screen = [
      ...header,
      "",
      `${hhmmss()}  nodes connected ${nodesUp}/${fleet.nodes.length}   open incidents ${openIncidents}   traffic sent ${t.sent} (failed ${t.failed}, in flight ${t.inFlight})${lastError ? `   central not answering: ${lastError}` : ""}`,
      "",
      ...table(),
      "",
      "STORY / FAULTS",
      ...lines.map((l) => "  " + l),
      "",
      "EVENTS (from WatchEvents)",
      ...(events.length ? events.map((l) => "  " + l) : ["  (none yet)"]),
    ];
    out.write("\x1b[H\x1b[2J" + screen.join("\n") + "\n");
  };

  for (const l of header) out.write(l + "\n");
  out.write("\n");
  if (tty) out.write("\x1b[?25l"); // hide the cursor while the view redraws
  let ticks = 0;
  const loop = (async () => {
    while (!stopped.aborted) {
      await refresh();
      render();
      if (!tty && ++ticks % Math.max(1, Math.round(opts.every)) === 0) out.write([`${hhmmss()}  nodes connected ${nodesUp}/${fleet.nodes.length}`, ...table()].join("\n") + "\n");
      await sleep(1000, stopped);
    }
  })();
  void watch();

  const waitFor = async (cond: (o: OriginStatus[]) => boolean, timeoutMs: number): Promise<number | undefined> => {
    const t0 = Date.now();
    while (!stopped.aborted && Date.now() - t0 < timeoutMs) {
      if (origins.length && cond(origins)) return (Date.now() - t0) / 1000;
      await sleep(250, stopped);
    }
    return undefined;
  };

  const playStory = async (): Promise<StepResult[]> => {
    const results: StepResult[] = [];
    say(`${hhmmss()}  waiting for the first verdicts (every origin HEALTHY)...`);
    const warm = await waitFor(allClear, 90_000);
    if (warm === undefined) return results;
    say(`${hhmmss()}  all clear after ${warm.toFixed(0)} s. The story: four faults, each followed by recovery.`);
    const steps = storySteps({ origins: ORIGINS, isp: "isp-b", node: "isp-a-eu-1" });
    for (const [i, step] of steps.entries()) {
      if (stopped.aborted) break;
      const r: StepResult = { title: step.title };
      results.push(r);
      say("");
      say(`${hhmmss()}  step ${i + 1}/${steps.length}: ${step.title}`);
      say(`          ${await applyFault(fleet, originFaults, step.fault)}`);
      say(`          expect: ${step.expect}`);
      r.detectedS = await waitFor(step.matches, 90_000);
      if (stopped.aborted) break;
      say(r.detectedS !== undefined ? `${hhmmss()}  OK: the central concluded this ${r.detectedS.toFixed(0)} s after the fault` : `${hhmmss()}  NOT SEEN within 90 s: the verdict differs from the expectation`);
      await sleep(opts.hold * 1000, stopped);
      await healAll(fleet, originFaults);
      say(`${hhmmss()}  recovery: fault removed, waiting for all clear...`);
      r.clearedS = await waitFor(allClear, 120_000);
      if (stopped.aborted) break;
      say(r.clearedS !== undefined ? `${hhmmss()}  all clear ${r.clearedS.toFixed(0)} s after the fault was removed` : `${hhmmss()}  not all clear within 120 s`);
      // Incidents close after a few good evaluations (hysteresis): let them, so each step starts clean.
      const closed = await waitFor(() => openIncidents === 0, 60_000);
      if (closed !== undefined && closed > 0.5) say(`${hhmmss()}  incidents closed ${((r.clearedS ?? 0) + closed).toFixed(0)} s after the fault was removed`);
      await sleep(2000, stopped);
    }
    if (!stopped.aborted) {
      say("");
      say(`${hhmmss()}  story done; the fleet keeps running. Inject faults from another terminal (npx originwatch demo fault …), or Ctrl-C.`);
    }
    return results;
  };

  let story: Promise<StepResult[]>;
  if (opts.interactive) {
    say(`${hhmmss()}  interactive: no story. Inject faults from another terminal, e.g. npx originwatch demo fault isp-b blackhole`);
    story = Promise.resolve([]);
  } else story = playStory();

  let stopping: Promise<void> | undefined;
  return {
    centralAddress: central,
    controlAddress: control.address,
    story,
    stop() {
      stopping ??= (async () => {
        stopper.abort();
        await loop.catch(() => {});
        await story.catch(() => {});
        if (tty) out.write("\x1b[?25h");
        await control.close();
        await fleet.close();
      })();
      return stopping;
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Registers `originwatch demo`, `demo fault TARGET MODE` and `demo heal`. */
export function registerDemo(program: Command): void {
  const demo = program
    .command("demo")
    .description("run a local fleet (central, origin, sidecars on 3 ISPs x 2 regions, traffic) and play a story of faults with a live view")
    .option("--data <dir>", "central LevelDB directory", "./data/demo")
    .option("--listen <host:port>", "central address (the dashboard is at http://ADDRESS/)", "127.0.0.1:7400")
    .option("--control <host:port>", "loopback address for `demo fault` and `demo heal`", DEFAULT_CONTROL)
    .option("--rate <n>", "requests per second per node and origin", (v) => Number(v), 10)
    .option("--every <s>", "seconds between views when the output is not a terminal", (v) => Number(v), 5)
    .option("--hold <s>", "seconds each story fault is held after the verdict", (v) => Number(v), 8)
    .option("--interactive", "no story: inject faults yourself with `originwatch demo fault …`")
    .option("--tls", "mTLS between sidecars and the central with a throwaway dev CA (the central serves HTTPS)")
    .action(async (opts: DemoOptions) => {
      let d: Demo;
      try {
        d = await runDemo(opts);
      } catch (err) {
        process.stderr.write(`originwatch demo: ${(err as Error).message}\n`);
        process.exit(1);
      }
      const onSignal = () => {
        process.stdout.write("\nstopping the demo: sidecars, relays, origin, central...\n");
        d.stop().then(
          () => {
            process.stdout.write("stopped; nothing left running.\n");
            process.exit(0);
          },
          () => process.exit(1),
        );
      };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
    });

  demo
    .command("fault")
    .description("inject a fault into a running demo: TARGET is origin, an ISP, a region or a node id")
    .argument("<target>", "origin | isp-a | isp-b | isp-c | eu | us | NODE (e.g. isp-a-eu-1)")
    .argument("<mode>", "origin: down | slow | error | ok;  ISP/region/node path: blackhole | refuse | reset | delay | pass")
    .option("--origin <name>", "which origin for origin faults", ORIGINS[0])
    .option("--ms <n>", "delay for slow/delay", (v) => Number(v))
    .action(async (target: string, mode: string, o: { origin: string; ms?: number }) => {
      // --control belongs to `demo` and is accepted anywhere on the line.
      const r = await sendControl((demo.opts() as { control: string }).control, "/fault", { target, mode, origin: o.origin, ms: o.ms });
      (r.ok ? process.stdout : process.stderr).write(`${r.ok ? "" : "originwatch demo fault: "}${r.message}\n`);
      process.exit(r.ok ? 0 : 1);
    });

  demo
    .command("heal")
    .description("remove every fault from a running demo")
    .action(async () => {
      const r = await sendControl((demo.opts() as { control: string }).control, "/heal");
      (r.ok ? process.stdout : process.stderr).write(`${r.ok ? "" : "originwatch demo heal: "}${r.message}\n`);
      process.exit(r.ok ? 0 : 1);
    });
}
