/**
 * `originwatch sidecar`: the command line. Flags over the --config file over
 * defaults, validated once (config.ts), then startSidecar() (main.ts); a
 * start-up error is printed plainly and exits 2.
 */
import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import pino from "pino";
import { type SidecarConfig, type SidecarConfigInput, parseOriginFlag, validateSidecarConfig } from "./config.js";
import { SidecarError } from "./errors.js";
import { type Sidecar, startSidecar } from "./main.js";

interface SidecarFlags {
  config?: string;
  central?: string;
  listen?: string;
  admin?: string;
  nodeId?: string;
  isp?: string;
  region?: string;
  origin?: string[];
  stallMs?: string;
  connectTimeoutMs?: string;
  firstByteTimeoutMs?: string;
  bodyIdleTimeoutMs?: string;
  upgradeIdleTimeoutMs?: string;
  maxSockets?: string;
  windowMs?: string;
  ca?: string;
  trustedPeers?: string;
  upstreamHost?: boolean;
  maxBufferedBatches?: string;
  bufferBytes?: string;
  stateDir?: string;
  resolver?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  maxOrigins?: string;
}

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
  return validateSidecarConfig({
    ...file,
    central: flags.central ?? file.central,
    listen: flags.listen ?? file.listen,
    admin: flags.admin ?? file.admin,
    nodeId: flags.nodeId ?? file.nodeId,
    isp: flags.isp ?? file.isp,
    region: flags.region ?? file.region,
    origins: Array.isArray(fileOrigins) ? [...fileOrigins, ...flagOrigins] : fileOrigins,
    stallMs: flags.stallMs ?? file.stallMs,
    connectTimeoutMs: flags.connectTimeoutMs ?? file.connectTimeoutMs,
    firstByteTimeoutMs: flags.firstByteTimeoutMs ?? file.firstByteTimeoutMs,
    bodyIdleTimeoutMs: flags.bodyIdleTimeoutMs ?? file.bodyIdleTimeoutMs,
    upgradeIdleTimeoutMs: flags.upgradeIdleTimeoutMs ?? file.upgradeIdleTimeoutMs,
    maxSockets: flags.maxSockets ?? file.maxSockets,
    windowMs: flags.windowMs ?? file.windowMs,
    caFile: flags.ca ?? file.caFile,
    trustedPeers: flags.trustedPeers ?? file.trustedPeers,
    preserveHost: flags.upstreamHost ? false : file.preserveHost,
    maxBufferedBatches: flags.maxBufferedBatches ?? file.maxBufferedBatches,
    bufferBytes: flags.bufferBytes ?? file.bufferBytes,
    stateDir: flags.stateDir ?? file.stateDir,
    resolver: flags.resolver ?? file.resolver,
    tlsCert: flags.tlsCert ?? file.tlsCert,
    tlsKey: flags.tlsKey ?? file.tlsKey,
    tlsCa: flags.tlsCa ?? file.tlsCa,
    maxOrigins: flags.maxOrigins ?? file.maxOrigins,
  });
}

/** Registers `originwatch sidecar`. */
export function registerSidecar(program: Command): void {
  program
    .command("sidecar")
    .description("run a sidecar hop beside a cache: proxies misses to configured origins and streams outcomes to the central")
    .option("--config <file>", "JSON config file (same keys as the flags, in camelCase; may list many origins)")
    .option("--central <url>", "central URL (default http://127.0.0.1:7400)")
    .option("--listen <host:port>", "cache-facing listener (default 127.0.0.1:8081)")
    .option("--admin <host:port>", "admin listener: /metrics, /healthz, /readyz")
    .option("--node-id <id>", "this node's unique id")
    .option("--isp <isp>", "operator network label")
    .option("--region <region>", "region label")
    .option("--origin <name=url>", "an origin: Host name the cache sends = upstream URL (repeatable)", (v: string, acc: string[] = []) => [...acc, v])
    .option("--stall-ms <ms>", "a request without first byte after this long counts as a stall (default 2000)")
    .option("--connect-timeout-ms <ms>", "connect (and TLS) deadline per origin (default 3000)")
    .option("--first-byte-timeout-ms <ms>", "response head deadline per origin (default 30000)")
    .option("--body-idle-timeout-ms <ms>", "cut a response body after this long without a byte from the origin (default 30000)")
    .option("--upgrade-idle-timeout-ms <ms>", "close an upgraded (WebSocket) tunnel after this long without a byte (default 60000)")
    .option("--max-sockets <n>", "sockets per origin (default 256)")
    .option("--window-ms <ms>", "summary window (default 1000)")
    .option("--ca <file>", "extra CA (PEM) trusted for HTTPS origins; verification stays on")
    .option("--trusted-peers <list>", "peers whose X-Forwarded-For is appended to: loopback, IPs, CIDRs (default loopback)")
    .option("--upstream-host", "send the upstream URL's host instead of preserving the cache's Host")
    .option("--buffer-bytes <n>", "bytes of unacknowledged batches kept for replay; overflow drops the oldest, counted (default 67108864)")
    .option("--max-buffered-batches <n>", "optional extra bound on unacknowledged batches kept for replay")
    .option("--state-dir <dir>", "keeps the last good pushed config here and applies it at boot")
    .addOption(new Option("--capabilities <list>", "announce only these features (tests: an older sidecar)").hideHelp())
    .option("--resolver <host:port>", "DNS server for origin names (default: the system resolver)")
    .option("--tls-cert <file>", "client certificate (PEM) naming this node_id, for mTLS to an https central")
    .option("--tls-key <file>", "client private key (PEM)")
    .option("--tls-ca <file>", "CA (PEM) that signed the central's certificate")
    .option("--max-origins <n>", "most origins this sidecar may declare: the central's per-node limit (default 1000)")
    .action(async (flags: SidecarFlags) => {
      const log = pino({ base: { component: "sidecar" } });
      let sidecar: Sidecar;
      try {
        const capabilities = (flags as { capabilities?: string }).capabilities?.split(",").map((c) => c.trim()).filter(Boolean);
        sidecar = await startSidecar(configFromFlags(flags), { logger: log, capabilities });
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
