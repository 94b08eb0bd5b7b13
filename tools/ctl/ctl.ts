/**
 * `originwatch ctl`: the operator's command line for a running central.
 * Every command is one or a few calls on the public API (QueryService,
 * ConfigService) through clients generated from the proto. Human tables by
 * default, `--json` for scripts; exit codes in client.ts (EXIT).
 *
 * runCtl() is the whole command without touching the process (streams, env
 * and Ctrl-C come in through CtlIo), so tests run it in-process.
 */
import { readFile } from "node:fs/promises";
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { create, fromJsonString, toJson, toJsonString, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { ConfigSchema } from "../../proto/gen/originwatch/v1/config_pb.js";
import {
  EventSchema,
  IncidentSchema,
  NodeSchema,
  NodeProbeResultSchema,
  OriginState,
  OriginStatusSchema,
  type Incident,
  type OriginStatus,
} from "../../proto/gen/originwatch/v1/query_pb.js";
import { ExemplarSchema, Outcome } from "../../proto/gen/originwatch/v1/common_pb.js";
import { type CentralClients, EXIT, UsageError, centralUrl, connectCentral, describeFailure, isUnimplemented } from "./client.js";
import { resolveToken, tokenWarning } from "./token.js";
import { ago, eventKindName, faultText, kindName, num, paintState, pct, stateName, table, when } from "./format.js";

export interface CtlIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C: ends `watch`. */
  signal?: AbortSignal;
  /** Colour states (a TTY without NO_COLOR). */
  colour?: boolean;
}

interface GlobalOpts {
  central?: string;
  token?: string;
  tokenFile?: string;
  ca?: string;
  json?: boolean;
  timeout: number;
}

interface Ctx {
  io: CtlIo;
  c: CentralClients;
  json: boolean;
  colour: boolean;
}

const EXIT_HELP = `
Exit codes:
  0  success (status: no origin DOWN or DEGRADED)
  1  the central answered with an error (not found, invalid, unimplemented, refused)
  2  bad command line or unreadable input file
  3  the central is unreachable, did not answer in time, or its TLS certificate cannot be verified
  4  status: at least one origin is DOWN
  5  status: no origin DOWN, at least one DEGRADED
`;

/** Run one `ctl` command line (argv without "ctl"); resolves to the exit code. */
export async function runCtl(argv: string[], io: CtlIo): Promise<number> {
  let code: number = EXIT.OK;
  const program = buildCtl(io, (c) => (code = c));
  program.configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) });
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    throw err;
  }
  return code;
}

/**
 * The `ctl` command tree; `setExit` receives each command's exit code.
 * Command-line errors go to `onUsage` (default: thrown as CommanderError).
 */
export function buildCtl(io: CtlIo, setExit: (code: number) => void, onUsage?: (err: CommanderError) => never): Command {
  const ctl = new Command("ctl")
    .exitOverride(onUsage)
    .description("ask a running central: status, origins, incidents, nodes, live events, config, probes")
    .option("--central <url>", "central URL (default: $ORIGINWATCH_CENTRAL, else http://127.0.0.1:7400)")
    .option("--token <token>", "operator bearer token (visible in ps: prefer --token-file or $ORIGINWATCH_TOKEN)")
    .option("--token-file <file>", "file holding the operator token (default: $ORIGINWATCH_TOKEN, else $ORIGINWATCH_TOKEN_FILE)")
    .option("--ca <file>", "CA certificate (PEM) of an https central (default: $ORIGINWATCH_CA)")
    .option("--json", "machine-readable output (protobuf JSON; `watch` prints one event per line)")
    .option("--timeout <ms>", "per-call deadline", (v) => positiveInt("--timeout", v), 10_000)
    .addHelpText("after", EXIT_HELP)
    .showHelpAfterError();
  const opts = (cmd: Command): GlobalOpts => {
    const g = cmd.optsWithGlobals() as GlobalOpts;
    return { ...g, central: g.central ?? io.env.ORIGINWATCH_CENTRAL, ca: g.ca ?? io.env.ORIGINWATCH_CA };
  };
  const action =
    <A extends unknown[]>(what: string, fn: (ctx: Ctx, ...args: A) => Promise<number | void>) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      let url = "";
      try {
        const g = opts(cmd);
        url = centralUrl(g.central);
        const token = resolveToken({ flag: g.token, file: g.tokenFile, env: io.env });
        const warning = tokenWarning(url, token);
        if (warning) io.err.write(`originwatch ctl: ${warning}\n`);
        const ctx: Ctx = { io, c: connectCentral(url, { timeoutMs: g.timeout, token, caFile: g.ca }), json: !!g.json, colour: !!io.colour && !g.json };
        setExit((await fn(ctx, ...(args.slice(0, -1) as A))) ?? EXIT.OK);
      } catch (err) {
        const f = describeFailure(err, url, what);
        io.err.write(`originwatch ctl: ${f.message}\n`);
        setExit(f.exit);
      }
    };

  ctl
    .command("status")
    .description("one screen: origins by state, open incidents, nodes connected (exit 4 while any origin is DOWN, 5 while any is DEGRADED)")
    .action(action("ListOrigins", status));
  ctl.command("origins").description("every origin with its state, rate, failure ratio and p95 TTFB").action(action("ListOrigins", origins));
  ctl
    .command("origin")
    .description("one origin: verdict, faults, and the breakdown by ISP, region and node over the lookback")
    .argument("<name>", "origin name (the Host the cache sends)")
    .action(action("GetOrigin", origin));
  ctl
    .command("incidents")
    .description("incidents, newest first")
    .option("--origin <name>", "only this origin")
    .option("--open", "only open incidents")
    .option("--limit <n>", "at most this many", (v) => positiveInt("--limit", v), 50)
    .action(action("ListIncidents", incidents));
  ctl.command("nodes").description("sidecars known to the central, connected or not").action(action("ListNodes", nodes));
  ctl
    .command("exemplars")
    .description("sampled requests of one origin (failures kept at a higher rate), newest first")
    .argument("<origin>", "origin name")
    .option("--limit <n>", "at most this many", (v) => positiveInt("--limit", v), 20)
    .action(action("ListExemplars", exemplars));
  ctl
    .command("watch")
    .description("print events as they happen (state changes, incidents, nodes) until Ctrl-C")
    .option("--origin <name>", "only this origin")
    .action(action("WatchEvents", watch));
  const config = ctl.command("config").description("the fleet config pushed to every sidecar");
  config.command("get").description("print the current config as JSON (edit it and pass it to `config set`)").action(action("GetConfig", configGet));
  config
    .command("set")
    .description("replace the config with FILE (JSON); refused if someone changed it since FILE's version")
    .argument("<file>", "config JSON, as printed by `config get`")
    .option("--force", "apply over whatever version is current")
    .action(action("SetConfig", configSet));
  config
    .command("history")
    .description("earlier config versions, newest first")
    .option("--limit <n>", "at most this many", (v) => positiveInt("--limit", v), 20)
    .action(action("ListConfigHistory", configHistory));
  const forget = ctl.command("forget").description("make the central forget an origin or a node (admin token): its totals, state and records; history keeps its retention");
  forget
    .command("origin")
    .description("forget an origin: totals, recent windows, verdict state; open incidents are closed (it comes back, from zero, if still reported)")
    .argument("<name>", "origin name")
    .action(action("ForgetOrigin", forgetOrigin));
  forget
    .command("node")
    .description("forget a node: its record and high-water mark (refused while its sidecar is connected)")
    .argument("<id>", "node_id")
    .action(action("ForgetNode", forgetNode));
  ctl
    .command("probe")
    .description("ask sidecars to probe an origin now and show what each saw")
    .argument("<origin>", "origin name")
    .option("--isp <isp>", "only sidecars on this ISP")
    .option("--count <n>", "requests per sidecar", (v) => positiveInt("--count", v), 3)
    .action(action("ProbeOrigin", probe));
  return ctl;
}

/** Registers `originwatch ctl` on the main program. */
export function registerCtl(program: Command): void {
  const ac = new AbortController();
  const io: CtlIo = {
    out: process.stdout,
    err: process.stderr,
    env: process.env,
    signal: ac.signal,
    colour: !!process.stdout.isTTY && !process.env.NO_COLOR,
  };
  const ctl = buildCtl(
    io,
    (code) => {
      process.exitCode = code;
    },
    (err) => process.exit(err.exitCode === 0 ? EXIT.OK : EXIT.USAGE),
  );
  // Only while a ctl command runs (the other subcommands handle their own signals):
  // Ctrl-C ends `watch` cleanly (exit 0) and anything else at once (130).
  ctl.hook("preAction", (_ctl, action) => {
    process.once("SIGINT", () => {
      ac.abort();
      if (action.name() !== "watch") process.exit(130);
    });
  });
  ctl.hook("postAction", () => {
    // Keep-alive sockets must not hold the process open after the answer.
    process.exit(process.exitCode ?? 0);
  });
  program.addCommand(ctl);
}

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${flag} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

function writeJson<D extends DescMessage>(ctx: Ctx, schema: D, msg: MessageShape<D>): void {
  ctx.io.out.write(toJsonString(schema, msg, { prettySpaces: 2 }) + "\n");
}

function writeJsonValue(ctx: Ctx, v: unknown): void {
  ctx.io.out.write(JSON.stringify(v, null, 2) + "\n");
}

const STATE_ORDER = [OriginState.DOWN, OriginState.DEGRADED, OriginState.HEALTHY, OriginState.NO_DATA, OriginState.UNSPECIFIED];

/** Exit code of `status` from the origins' states. */
export function statusExit(states: OriginState[]): number {
  if (states.includes(OriginState.DOWN)) return EXIT.ORIGIN_DOWN;
  if (states.includes(OriginState.DEGRADED)) return EXIT.ORIGIN_DEGRADED;
  return EXIT.OK;
}

function originRows(list: OriginStatus[], colour: boolean): string[][] {
  return list.map((o) => [
    o.name,
    paintState(o.state, colour) + (o.confirming ? " (confirming)" : ""),
    num(o.requestRate),
    pct(o.failureRatio),
    num(o.p95TtfbMs, 0),
    o.faults.length ? o.faults.map(faultText).join("; ") : o.reason || "-",
  ]);
}

const ORIGIN_COLUMNS = [
  { title: "ORIGIN" },
  { title: "STATE" },
  { title: "REQ/S", right: true },
  { title: "FAIL", right: true },
  { title: "P95 MS", right: true },
  { title: "FAULTS / REASON" },
];

/**
 * Every page of a list RPC (each answer is bounded by the central's page
 * size; the list is not). `limit` stops early.
 */
export async function allPages<T>(fetch: (pageToken: string) => Promise<{ items: T[]; nextPageToken: string }>, limit = Infinity): Promise<T[]> {
  const out: T[] = [];
  let token = "";
  do {
    const page = await fetch(token);
    out.push(...page.items);
    token = page.nextPageToken;
  } while (token && out.length < limit);
  return out.length > limit ? out.slice(0, limit) : out;
}

const listOrigins = (ctx: Ctx) =>
  allPages((pageToken) => ctx.c.query.listOrigins({ pageToken, pageSize: 1000 }).then((r) => ({ items: r.origins, nextPageToken: r.nextPageToken })));
const listNodes = (ctx: Ctx) =>
  allPages((pageToken) => ctx.c.query.listNodes({ pageToken, pageSize: 1000 }).then((r) => ({ items: r.nodes, nextPageToken: r.nextPageToken })));

async function status(ctx: Ctx): Promise<number> {
  const [originList, nodeList, inc] = await Promise.all([
    listOrigins(ctx),
    listNodes(ctx),
    ctx.c.query.listIncidents({ openOnly: true, pageSize: 100 }).catch((err: unknown) => {
      if (isUnimplemented(err)) return undefined;
      throw err;
    }),
  ]);
  const n = { nodes: nodeList };
  const sorted = [...originList].sort((a, b) => STATE_ORDER.indexOf(a.state) - STATE_ORDER.indexOf(b.state) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const code = statusExit(sorted.map((x) => x.state));
  const connected = n.nodes.filter((x) => x.connected);
  if (ctx.json) {
    writeJsonValue(ctx, {
      central: ctx.c.url,
      origins: sorted.map((x) => toJson(OriginStatusSchema, x)),
      openIncidents: inc ? inc.incidents.map((i) => toJson(IncidentSchema, i)) : null,
      nodes: { connected: connected.length, total: n.nodes.length, disconnected: n.nodes.filter((x) => !x.connected).map((x) => x.nodeId) },
      exitCode: code,
    });
    return code;
  }
  const counts = STATE_ORDER.slice(0, 4).map((s) => `${stateName(s)} ${sorted.filter((x) => x.state === s).length}`);
  const w = ctx.io.out;
  w.write(`central ${ctx.c.url}   ${sorted.length} origins: ${counts.join(", ")}   nodes connected ${connected.length}/${n.nodes.length}\n\n`);
  if (sorted.length) w.write(table(ORIGIN_COLUMNS, originRows(sorted, ctx.colour)));
  else w.write("no origin reported yet: are the sidecars pointed at this central?\n");
  w.write("\n");
  if (!inc) w.write("open incidents: unknown (this central does not implement ListIncidents yet)\n");
  else if (inc.incidents.length === 0) w.write("open incidents: none\n");
  else {
    w.write(`open incidents: ${inc.incidents.length}\n`);
    w.write(table(INCIDENT_COLUMNS, incidentRows(inc.incidents), "  "));
  }
  const down = n.nodes.filter((x) => !x.connected);
  if (down.length) w.write(`\nnodes not connected: ${down.map((x) => `${x.nodeId} (last seen ${ago(x.lastSeen)})`).join(", ")}\n`);
  return code;
}

async function origins(ctx: Ctx): Promise<void> {
  const origins = await listOrigins(ctx);
  if (ctx.json) return writeJsonValue(ctx, origins.map((x) => toJson(OriginStatusSchema, x)));
  if (!origins.length) ctx.io.out.write("no origin reported yet\n");
  else ctx.io.out.write(table(ORIGIN_COLUMNS, originRows(origins, ctx.colour)));
}

async function origin(ctx: Ctx, name: string): Promise<void> {
  const { origin: o } = await ctx.c.query.getOrigin({ origin: name });
  if (!o) throw new Error("the central answered without an origin");
  if (ctx.json) return writeJson(ctx, OriginStatusSchema, o);
  const w = ctx.io.out;
  w.write(`${o.name}: ${paintState(o.state, ctx.colour)}${o.stateSince ? ` since ${when(o.stateSince)} (${ago(o.stateSince)})` : ""}${o.confirming ? ", confirmation probes under way" : ""}\n`);
  if (o.reason) w.write(`  ${o.reason}\n`);
  for (const f of o.faults) w.write(`  fault: ${faultText(f)}${f.reason ? ` — ${f.reason}` : ""}\n`);
  w.write(
    `  now ${num(o.requestRate)} req/s, ${pct(o.failureRatio)} failing, p95 TTFB ${num(o.p95TtfbMs, 0)} ms; ` +
      `${o.totalRequests} requests (${o.totalFailures} failed) since first seen; last report ${ago(o.lastSeen)}\n`,
  );
  const scopeTable = (title: string, rows: typeof o.isps, labels: boolean) => {
    w.write(`\nby ${title}\n`);
    if (!rows.length) return void w.write("  (no traffic in the lookback)\n");
    const cols = [
      { title: title.toUpperCase() },
      ...(labels ? [{ title: "ISP" }, { title: "REGION" }] : []),
      { title: "REQUESTS", right: true },
      { title: "FAILURES", right: true },
      { title: "FAIL", right: true },
      { title: "P95 MS", right: true },
      { title: "" },
    ];
    w.write(
      table(
        cols,
        rows.map((s) => [
          s.key,
          ...(labels ? [s.isp, s.region] : []),
          String(s.requests),
          String(s.failures),
          pct(s.failureRatio),
          num(s.p95TtfbMs, 0),
          s.failing ? (ctx.colour ? "\x1b[31mFAILING\x1b[0m" : "FAILING") : "",
        ]),
        "  ",
      ),
    );
  };
  scopeTable("isp", o.isps, false);
  scopeTable("region", o.regions, false);
  scopeTable("node", o.nodes, true);
}

const INCIDENT_COLUMNS = [{ title: "ID" }, { title: "KIND" }, { title: "ORIGIN" }, { title: "SCOPE" }, { title: "OPENED" }, { title: "CLOSED" }, { title: "PEAK FAIL", right: true }, { title: "SUMMARY" }];

function incidentRows(list: Incident[]): string[][] {
  return list.map((i) => [
    i.id,
    kindName(i.kind) + (i.flapping ? " (flapping)" : ""),
    i.origin,
    i.scopeKey || "-",
    when(i.opened),
    i.open ? "open" : when(i.closed),
    pct(i.peakFailureRatio),
    i.summary,
  ]);
}

async function incidents(ctx: Ctx, o: { origin?: string; open?: boolean; limit: number }): Promise<void> {
  const out: Incident[] = [];
  let pageToken = "";
  do {
    const page = await ctx.c.query.listIncidents({ origin: o.origin ?? "", openOnly: !!o.open, pageSize: Math.min(o.limit - out.length, 100), pageToken });
    out.push(...page.incidents);
    pageToken = page.nextPageToken;
  } while (pageToken && out.length < o.limit);
  if (ctx.json) return writeJsonValue(ctx, out.map((i) => toJson(IncidentSchema, i)));
  if (!out.length) ctx.io.out.write(o.open ? "no open incident\n" : "no incident\n");
  else ctx.io.out.write(table(INCIDENT_COLUMNS, incidentRows(out)));
}

async function nodes(ctx: Ctx): Promise<void> {
  const res = { nodes: await listNodes(ctx) };
  if (ctx.json) return writeJsonValue(ctx, res.nodes.map((n) => toJson(NodeSchema, n)));
  if (!res.nodes.length) return void ctx.io.out.write("no sidecar has connected yet\n");
  // Cluster mode: which replica holds each node's session (a column only when some node has one).
  const clustered = res.nodes.some((n) => n.replica);
  ctx.io.out.write(
    table(
      [
        { title: "NODE" },
        { title: "ISP" },
        { title: "REGION" },
        { title: "CONNECTED" },
        ...(clustered ? [{ title: "REPLICA" }] : []),
        { title: "LAST SEEN" },
        { title: "CONFIG", right: true },
        { title: "BUFFERED", right: true },
        { title: "DROPPED", right: true },
        { title: "REJECTED", right: true },
        { title: "SKEW MS", right: true },
        { title: "VERSION" },
        { title: "NOTE" },
      ],
      res.nodes.map((n) => [
        n.nodeId,
        n.isp,
        n.region,
        n.connected ? `yes (${ago(n.connectedSince)})` : "NO",
        ...(clustered ? [n.replica || "-"] : []),
        ago(n.lastSeen),
        n.appliedConfigVersion ? `v${n.appliedConfigVersion}` : "-",
        String(n.bufferedBatches),
        String(n.droppedBatches),
        String(n.rejectedBatches),
        n.clockSkewMs ? String(n.clockSkewMs) : "-",
        n.version || "-",
        [
          n.lastNackReason ? `last config rejected: ${n.lastNackReason}` : "",
          n.lastRejectReason ? `last batch refused: ${n.lastRejectReason}` : "",
          n.labelMismatch ? `labels pinned by the allowlist (${n.labelMismatch})` : "",
        ].filter(Boolean).join("; "),
      ]),
    ),
  );
}

async function watch(ctx: Ctx, o: { origin?: string }): Promise<void> {
  const signal = ctx.io.signal;
  if (!ctx.json) ctx.io.err.write(`watching events from ${ctx.c.url}${o.origin ? ` for ${o.origin}` : ""} (Ctrl-C to stop)\n`);
  try {
    // No deadline: the stream lasts until Ctrl-C.
    for await (const res of ctx.c.streams.watchEvents({ origin: o.origin ?? "" }, { signal })) {
      const e = res.event;
      if (!e) continue;
      if (ctx.json) {
        ctx.io.out.write(toJsonString(EventSchema, e) + "\n");
        continue;
      }
      const what =
        e.message ||
        (e.incident ? `${kindName(e.incident.kind)} ${e.incident.scopeKey}`.trim() : "") ||
        (e.state ? `${stateName(e.previousState)} -> ${stateName(e.state)}` : "");
      const subject = e.origin || e.nodeId || "-";
      ctx.io.out.write(`${when(e.time)}  ${eventKindName(e.kind).padEnd(18)} ${subject.padEnd(20)} ${e.state ? paintState(e.state, ctx.colour) + "  " : ""}${what}\n`);
    }
  } catch (err) {
    if (signal?.aborted) return;
    throw err;
  }
  if (!signal?.aborted) throw new Error("the central ended the event stream");
}

async function configGet(ctx: Ctx): Promise<void> {
  const { config } = await ctx.c.config.getConfig({});
  writeJson(ctx, ConfigSchema, config ?? create(ConfigSchema));
}

async function configSet(ctx: Ctx, file: string, o: { force?: boolean }): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let config;
  try {
    config = fromJsonString(ConfigSchema, text);
  } catch (err) {
    throw new UsageError(`${file} is not a config (protobuf JSON of originwatch.v1.Config): ${(err as Error).message}`);
  }
  let expectedVersion = config.version;
  if (o.force) expectedVersion = (await ctx.c.config.getConfig({})).config?.version ?? 0n;
  config.updatedBy = config.updatedBy || `originwatch ctl (${ctx.io.env.USER ?? "unknown user"})`;
  const res = await ctx.c.config.setConfig({ config, expectedVersion });
  if (ctx.json) return writeJson(ctx, ConfigSchema, res.config ?? create(ConfigSchema));
  ctx.io.out.write(`config v${res.config?.version} applied (was v${expectedVersion}); sidecars receive it on their stream and ACK or NACK it (see \`ctl nodes\`)\n`);
}

async function configHistory(ctx: Ctx, o: { limit: number }): Promise<void> {
  const configs = await allPages(
    (pageToken) => ctx.c.config.listConfigHistory({ pageSize: Math.min(o.limit, 1000), pageToken }).then((r) => ({ items: r.configs, nextPageToken: r.nextPageToken })),
    o.limit,
  );
  if (ctx.json) return writeJsonValue(ctx, configs.map((c) => toJson(ConfigSchema, c)));
  if (!configs.length) return void ctx.io.out.write("no config has been set: the sidecars run on defaults\n");
  ctx.io.out.write(
    table(
      [{ title: "VERSION", right: true }, { title: "SET AT" }, { title: "BY" }],
      configs.map((c) => [`v${c.version}`, c.updatedUnixMs ? new Date(Number(c.updatedUnixMs)).toISOString().replace("T", " ").slice(0, 19) + "Z" : "-", c.updatedBy || "-"]),
    ),
  );
}

async function probe(ctx: Ctx, originName: string, o: { isp?: string; count: number }): Promise<number> {
  const { results } = await ctx.c.query.probeOrigin({ origin: originName, isp: o.isp ?? "", count: o.count }, { timeoutMs: 60_000 });
  if (ctx.json) {
    writeJsonValue(ctx, results.map((r) => toJson(NodeProbeResultSchema, r)));
  } else if (!results.length) {
    ctx.io.out.write(`no connected sidecar${o.isp ? ` on ${o.isp}` : ""} forwards to ${originName}\n`);
  } else {
    ctx.io.out.write(
      table(
        [{ title: "NODE" }, { title: "ISP" }, { title: "REGION" }, { title: "ATTEMPTS" }],
        results.map((r) => [
          r.nodeId,
          r.isp,
          r.region,
          r.error ? `error: ${r.error}` : r.attempts.map((a) => `${(Outcome[a.outcome] ?? String(a.outcome)).toLowerCase()}${a.status ? ` ${a.status}` : ""} ${num(a.ttfbMs, 0)}ms`).join(", "),
        ]),
      ),
    );
  }
  return results.length ? EXIT.OK : EXIT.CENTRAL_ERROR;
}

async function exemplars(ctx: Ctx, originName: string, o: { limit: number }): Promise<void> {
  const list = await allPages(
    (pageToken) => ctx.c.query.listExemplars({ origin: originName, pageSize: Math.min(o.limit, 1000), pageToken }).then((r) => ({ items: r.exemplars, nextPageToken: r.nextPageToken })),
    o.limit,
  );
  if (ctx.json) return writeJsonValue(ctx, list.map((e) => toJson(ExemplarSchema, e)));
  if (!list.length) return void ctx.io.out.write(`no sampled request for ${originName} yet\n`);
  ctx.io.out.write(
    table(
      [{ title: "TIME" }, { title: "NODE" }, { title: "METHOD" }, { title: "PATH" }, { title: "STATUS", right: true }, { title: "OUTCOME" }, { title: "TTFB MS", right: true }, { title: "TOTAL MS", right: true }, { title: "UPSTREAM" }],
      list.map((e) => [
        new Date(Number(e.timeUnixMs)).toISOString().replace("T", " ").slice(0, 23) + "Z",
        e.nodeId,
        e.method,
        e.path,
        e.status ? String(e.status) : "-",
        (Outcome[e.outcome] ?? String(e.outcome)).toLowerCase(),
        num(e.ttfbMs, 0),
        num(e.totalMs, 0),
        e.upstreamAddr || "-",
      ]),
    ),
  );
}

async function forgetOrigin(ctx: Ctx, name: string): Promise<void> {
  const r = await ctx.c.query.forgetOrigin({ origin: name });
  if (ctx.json) return writeJsonValue(ctx, { origin: name, forgotten: true, closedIncidents: r.closedIncidents });
  ctx.io.out.write(`forgot origin ${name}${r.closedIncidents ? ` (closed ${r.closedIncidents} open incident${r.closedIncidents === 1 ? "" : "s"})` : ""}; its history stays until its retention\n`);
}

async function forgetNode(ctx: Ctx, id: string): Promise<void> {
  await ctx.c.query.forgetNode({ nodeId: id });
  if (ctx.json) return writeJsonValue(ctx, { nodeId: id, forgotten: true });
  ctx.io.out.write(`forgot node ${id}\n`);
}
