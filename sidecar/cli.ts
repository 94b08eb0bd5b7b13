/**
 * `originwatch sidecar`: the command line. Flags over the --config file over
 * defaults, validated once (config.ts), then startSidecar() (main.ts); a
 * start-up error is printed plainly and exits 2.
 */
import { readFileSync } from "node:fs";
import v8 from "node:v8";
import { type Command, Option } from "commander";
import pino from "pino";
import { DEFAULTS, type SidecarConfig, type SidecarConfigInput, parseOriginFlag, validateSidecarConfig } from "./config.js";
import { SidecarError } from "./errors.js";
import { type Sidecar, startSidecar } from "./main.js";

/**
 * The sidecar's flags, each once: the flag, its help, and the config key it
 * sets (the same key as in the --config file, SidecarConfigInput). Order is
 * the order of `--help`. A flag given wins over the file's value; defaults
 * live in config.ts only (DEFAULTS, appended to the help by `showDefault`).
 * Three flags are not a plain key → value: `--config`
 * (the file itself), `--origin` (repeatable, added to the file's origins) and
 * `--upstream-host` (sets preserveHost false).
 */
const FLAGS: ReadonlyArray<{ flag: string; help: string; key?: keyof SidecarConfigInput; showDefault?: true }> = [
  { flag: "--config <file>", help: "JSON config file (same keys as the flags, in camelCase; may list many origins)" },
  { flag: "--central <url,...>", help: "central URL, or several (replicas; comma-separated; a name may resolve to several addresses): one stream, moved to another when it fails", key: "central", showDefault: true },
  { flag: "--central-rebalance-ms <ms>", help: "with several centrals: move a working stream to a preferred central this often when one is (a replica came back); 0 = never", key: "centralRebalanceMs", showDefault: true },
  { flag: "--listen <host:port>", help: "cache-facing listener", key: "listen", showDefault: true },
  { flag: "--admin <host:port>", help: "admin listener: /metrics, /healthz, /readyz", key: "admin" },
  { flag: "--node-id <id>", help: "this node's unique id", key: "nodeId" },
  { flag: "--isp <isp>", help: "operator network label", key: "isp" },
  { flag: "--region <region>", help: "region label", key: "region" },
  { flag: "--origin <name=url>", help: "an origin: Host name the cache sends = upstream URL (repeatable)" },
  { flag: "--stall-ms <ms>", help: "a request without first byte after this long counts as a stall", key: "stallMs", showDefault: true },
  { flag: "--connect-timeout-ms <ms>", help: "connect (and TLS) deadline per origin", key: "connectTimeoutMs", showDefault: true },
  { flag: "--first-byte-timeout-ms <ms>", help: "response head deadline per origin", key: "firstByteTimeoutMs", showDefault: true },
  { flag: "--body-idle-timeout-ms <ms>", help: "cut a response body after this long without a byte from the origin", key: "bodyIdleTimeoutMs", showDefault: true },
  { flag: "--upgrade-idle-timeout-ms <ms>", help: "close an upgraded (WebSocket) tunnel after this long without a byte", key: "upgradeIdleTimeoutMs", showDefault: true },
  { flag: "--max-sockets <n>", help: "sockets per origin", key: "maxSockets", showDefault: true },
  { flag: "--window-ms <ms>", help: "summary window", key: "windowMs", showDefault: true },
  { flag: "--ca <file>", help: "extra CA (PEM) trusted for HTTPS origins; verification stays on", key: "caFile" },
  { flag: "--trusted-peers <list>", help: "peers whose X-Forwarded-For is appended to: loopback, IPs, CIDRs", key: "trustedPeers", showDefault: true },
  { flag: "--upstream-host", help: "send the upstream URL's host instead of preserving the cache's Host" },
  { flag: "--buffer-bytes <n>", help: "bytes of unacknowledged batches kept for replay; overflow drops the oldest, counted", key: "bufferBytes", showDefault: true },
  { flag: "--max-buffered-batches <n>", help: "optional extra bound on unacknowledged batches kept for replay", key: "maxBufferedBatches" },
  { flag: "--state-dir <dir>", help: "keeps the last good pushed config here and applies it at boot", key: "stateDir" },
  { flag: "--resolver <host:port>", help: "DNS server for origin and central names (default: the system resolver)", key: "resolver" },
  { flag: "--tls-cert <file>", help: "client certificate (PEM) naming this node_id, for mTLS to an https central", key: "tlsCert" },
  { flag: "--tls-key <file>", help: "client private key (PEM)", key: "tlsKey" },
  { flag: "--tls-ca <file>", help: "CA (PEM) that signed the central's certificate", key: "tlsCa" },
  { flag: "--max-origins <n>", help: "most origins this sidecar may declare: the central's per-node limit", key: "maxOrigins", showDefault: true },
];

/**
 * V8 heap flags the sidecar process sets on itself (NODE_OPTIONS does not
 * accept them; V8 reads this one at every full GC, so setting it at run time
 * works): after each full GC the old generation may grow to 1.5× what is live
 * (V8's own factor goes up to 4×), so under steady load RSS stays near what is
 * live (~11 MB of heap) instead of climbing for minutes (`npm run
 * bench:hop:rss`). The young generation's cap can only be given at start:
 * the deploy guide sets `NODE_OPTIONS=--max-semi-space-size=4`.
 */
export const SIDECAR_V8_FLAGS: readonly string[] = ["--heap-growing-percent=50"];

/** Parsed flags, by commander's attribute name (`--node-id` → nodeId). */
type SidecarFlags = Record<string, unknown> & { config?: string; origin?: string[]; upstreamHost?: boolean };

/** Flags over the --config file over defaults; origins from both are combined. */
export function configFromFlags(flags: SidecarFlags): SidecarConfig {
  let file: SidecarConfigInput = {};
  if (flags.config) {
    try {
      file = JSON.parse(readFileSync(flags.config, "utf8")) as SidecarConfigInput;
    } catch (err) {
      throw new SidecarError("CONFIG_UNREADABLE", `config ${flags.config}: ${(err as Error).message}`, { cause: err });
    }
    if (file === null || typeof file !== "object" || Array.isArray(file)) throw new SidecarError("CONFIG_INVALID", `config ${flags.config} must hold a JSON object`);
  }
  const fileOrigins = file.origins === undefined ? [] : Array.isArray(file.origins) ? file.origins : typeof file.origins === "object" && file.origins !== null ? Object.entries(file.origins as Record<string, unknown>).map(([name, v]) => (typeof v === "string" ? { name, url: v } : { ...(v as object), name })) : file.origins;
  const flagOrigins = (flags.origin ?? []).map(parseOriginFlag);
  const merged: SidecarConfigInput = {
    ...file,
    origins: Array.isArray(fileOrigins) ? [...fileOrigins, ...flagOrigins] : fileOrigins,
    preserveHost: flags.upstreamHost ? false : file.preserveHost,
  };
  for (const f of FLAGS) if (f.key) merged[f.key] = flags[new Option(f.flag).attributeName()] ?? file[f.key];
  return validateSidecarConfig(merged);
}

/** Registers `originwatch sidecar`. */
export function registerSidecar(program: Command): void {
  const cmd = program
    .command("sidecar")
    .description("run a sidecar hop beside a cache: proxies misses to configured origins and streams outcomes to the central");
  for (const f of FLAGS) {
    const help = f.showDefault && f.key ? `${f.help} (default ${String(DEFAULTS[f.key as keyof typeof DEFAULTS])})` : f.help;
    if (f.flag.startsWith("--origin ")) cmd.option(f.flag, help, (v: string, acc: string[] = []) => [...acc, v]);
    else cmd.option(f.flag, help);
  }
  cmd.action(async (flags: SidecarFlags) => {
    for (const f of SIDECAR_V8_FLAGS) v8.setFlagsFromString(f);
    const log = pino({ base: { component: "sidecar" } });
    let sidecar: Sidecar;
    try {
      sidecar = await startSidecar(configFromFlags(flags), { logger: log });
    } catch (err) {
      const e = err as SidecarError;
      log.error({ code: e.code, err: e.message }, "sidecar failed to start");
      // Also plainly, for the person who typed the flags.
      process.stderr.write(`originwatch sidecar: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    log.info(
      {
        address: sidecar.address,
        ...(sidecar.adminAddress ? { admin: sidecar.adminAddress } : {}),
        nodeId: sidecar.config.nodeId,
        origins: sidecar.config.origins.map((o) => o.name),
        central: sidecar.config.central,
      },
      "listening",
    );
    const stop = (signal: string) => {
      log.info({ signal }, "shutting down");
      void sidecar.shutdown().then(() => process.exit(0));
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}
