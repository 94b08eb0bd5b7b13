/**
 * The command-line flags of the exposure rules and connection limits
 * (issue 10 items 1, 2, 6, 9), in one block: registered on `originwatch
 * central` and mapped to CentralConfig fields. Defaults are not set here:
 * validateCentralConfig fills them from CENTRAL_DEFAULTS (one source), the help
 * text only shows them.
 */
import type { Command } from "commander";
import { CENTRAL_DEFAULTS, type CentralConfig } from "../config.js";

type LimitField =
  | "sniffTimeoutMs"
  | "headersTimeoutMs"
  | "requestTimeoutMs"
  | "idleTimeoutMs"
  | "keepaliveMs"
  | "keepaliveTimeoutMs"
  | "maxConnections"
  | "maxConcurrentStreams"
  | "maxHealthWatches"
  | "maxReflectionStreams";

/** flag → config field, with its help text. */
const LIMIT_FLAGS: Array<{ flag: string; field: LimitField; help: string }> = [
  { flag: "--sniff-timeout <ms>", field: "sniffTimeoutMs", help: "a new connection must show its protocol (or finish its TLS handshake) within this" },
  { flag: "--headers-timeout <ms>", field: "headersTimeoutMs", help: "an HTTP/1.1 request head must be complete within this" },
  { flag: "--request-timeout <ms>", field: "requestTimeoutMs", help: "an HTTP/1.1 request must be received, an HTTP/2 stream (not ingest or watch streams) finish, within this" },
  { flag: "--idle-timeout <ms>", field: "idleTimeoutMs", help: "close HTTP/1.1 keep-alive connections and HTTP/2 sessions without streams idle this long" },
  { flag: "--keepalive <ms>", field: "keepaliveMs", help: "HTTP/2 PING interval on sessions with open streams (ingest, watches)" },
  { flag: "--keepalive-timeout <ms>", field: "keepaliveTimeoutMs", help: "close a session whose PING is not answered within this" },
  { flag: "--max-connections <n>", field: "maxConnections", help: "open connections; new ones over it are closed at once and counted" },
  { flag: "--max-concurrent-streams <n>", field: "maxConcurrentStreams", help: "HTTP/2 streams per connection" },
  { flag: "--max-health-watches <n>", field: "maxHealthWatches", help: "concurrent grpc.health.v1 Watch streams (RESOURCE_EXHAUSTED above)" },
  { flag: "--max-reflection-streams <n>", field: "maxReflectionStreams", help: "concurrent reflection streams (RESOURCE_EXHAUSTED above)" },
];

const camel = (flag: string) => flag.replace(/^--/, "").split(" ")[0].replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export function registerServerFlags(cmd: Command): Command {
  cmd
    .option("--insecure", "allow a non-loopback --listen without mTLS and --tokens (logs a warning at every start)")
    .option("--allowed-hosts <names>", "comma-separated Host names a tokenless central answers besides loopback (DNS-rebinding guard)");
  for (const f of LIMIT_FLAGS) cmd.option(f.flag, `${f.help} (default ${CENTRAL_DEFAULTS[f.field]})`, (v) => Number(v));
  return cmd;
}

/** The parsed flags as a partial config (absent flags stay undefined: validateCentralConfig fills the defaults). */
export function serverFlagsToConfig(opts: Record<string, unknown>): Partial<CentralConfig> {
  const out: Partial<CentralConfig> = {
    insecure: opts.insecure === true,
    allowedHosts: typeof opts.allowedHosts === "string" ? opts.allowedHosts.split(",").map((h) => h.trim()).filter(Boolean) : undefined,
  };
  for (const f of LIMIT_FLAGS) {
    const v = opts[camel(f.flag)];
    if (v !== undefined) out[f.field] = v as number;
  }
  return out;
}
