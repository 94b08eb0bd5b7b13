/**
 * Sidecar options. `validateSidecarConfig(partial)` fills defaults and throws a
 * SidecarError (CONFIG_INVALID) whose message names the offending field, so a
 * bad flag or config file stops the process at start, never on the request path.
 */
import { isIP } from "node:net";
import { CONFIG_DEFAULTS } from "../proto/config-validate.js";
import { type HostPort, parseHostPort as parseAddress } from "../proto/host-port.js";
import { labelProblem, originProblem } from "../proto/names.js";
import { SidecarError, configError } from "./errors.js";
import { type CentralUrl, parseCentrals } from "./stream/central-endpoints.js";
import { DEFAULT_INGEST_LIMITS } from "./stream/limits.js";

export type { HostPort } from "../proto/host-port.js";

export interface OriginConfig {
  /** The Host the cache sends for this origin (lower case, no port). */
  readonly name: string;
  /** Where the origin really is: http(s)://host[:port][/base-path]. */
  readonly url: URL;
  /** Send the cache's Host upstream (true) or the upstream URL's host (false). */
  readonly preserveHost: boolean;
  /** TCP (and TLS) connect deadline. */
  readonly connectTimeoutMs: number;
  /** Deadline from request sent to the response head. */
  readonly firstByteTimeoutMs: number;
  /**
   * Requests still waiting for a first byte after this long count as a stall.
   * The one field changed while running: by an accepted push, only through
   * directives/stall-override.ts.
   */
  stallMs: number;
  /** Upper bound of sockets to this origin (keep-alive agent). */
  readonly maxSockets: number;
  /** Idle keep-alive sockets kept per origin. */
  readonly maxFreeSockets: number;
  /** Extra CA file (PEM) trusted for this HTTPS origin; verification is never disabled. */
  readonly caFile?: string;
  /**
   * TLS name (SNI and certificate check) of an HTTPS origin, the same for the
   * hop and the probe: this, else the origin URL's host; never the cache's Host.
   */
  readonly servername?: string;
  /** A response body with no byte from the origin for this long is cut (outcome body_timeout). */
  readonly bodyIdleTimeoutMs: number;
  /** Forward Upgrade (WebSocket) requests to this origin; refused with 501 otherwise. */
  readonly upgrade: boolean;
  /** An upgraded tunnel with no byte either way for this long is closed. */
  readonly upgradeIdleTimeoutMs: number;
}

export interface SidecarConfig {
  /**
   * The centrals, each http://host:port (plaintext h2c) or https://host:port,
   * one scheme for all: one URL, several (a cluster's replicas), or a name
   * that resolves to several addresses. The stream uses one at a time and
   * moves to another when it fails (stream/endpoint-picker.ts).
   */
  central: readonly string[];
  /**
   * With several centrals: how often a working stream checks whether another
   * central is now preferred (a replica came back) and moves there; 0 = never.
   */
  centralRebalanceMs: number;
  listen: HostPort;
  admin?: HostPort;
  nodeId: string;
  isp: string;
  region: string;
  origins: OriginConfig[];
  /** Summary window length. */
  windowMs: number;
  /** Bytes of unacknowledged batches kept for replay; overflow drops the oldest (counted). */
  bufferBytes: number;
  /** Optional extra bound on the replay buffer in batches. */
  maxBufferedBatches?: number;
  /** Directory for the last good pushed config (used at boot when the central is unreachable). */
  stateDir?: string;
  /** Peers whose X-Forwarded-For is kept and appended to; others get it replaced. "loopback", an IP or a CIDR. */
  trustedPeers: string[];
  /** Largest request head accepted (bytes); larger gets 431. */
  maxHeaderSize: number;
  /** Extra CA file (PEM) for every HTTPS origin without its own caFile. */
  caFile?: string;
  /** Idle keep-alive timeout for cache connections. */
  keepAliveTimeoutMs: number;
  /** DNS server (HOST:PORT) for origin and central names instead of the system resolver. */
  resolver?: HostPort;
  /** mTLS to an https central (PEM files): this node's certificate (naming its node_id), key, and the CA that signed the central's certificate. */
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  /** Most origins this sidecar may declare: the central's per-node limit (IngestLimits.max_origins_per_node). */
  maxOrigins: number;
}

/**
 * Origin fields as accepted from flags or the config file (durations in ms):
 * the OriginConfig keys, each still unchecked. Derived, so a new origin
 * option is declared once, in OriginConfig.
 */
export type OriginInput = { -readonly [K in keyof OriginConfig]?: unknown };

/** The per-origin options that may also be given once for every origin (the origin's own value wins). */
export type OriginDefaults = Pick<
  OriginConfig,
  "preserveHost" | "connectTimeoutMs" | "firstByteTimeoutMs" | "stallMs" | "maxSockets" | "bodyIdleTimeoutMs" | "upgradeIdleTimeoutMs"
>;

/**
 * Sidecar options as accepted from flags or the config file: the SidecarConfig
 * keys plus the per-origin defaults, each still unchecked. `origins` is an
 * array of OriginInput or "NAME=URL" strings, or an object NAME → URL | OriginInput.
 * Derived, so a new option is declared once, in SidecarConfig (or OriginConfig).
 */
export type SidecarConfigInput = { [K in keyof SidecarConfig | keyof OriginDefaults]?: unknown };

export const DEFAULTS = {
  central: "http://127.0.0.1:7400",
  centralRebalanceMs: 0,
  listen: "127.0.0.1:8081",
  windowMs: CONFIG_DEFAULTS.windowMs,
  stallMs: CONFIG_DEFAULTS.stallMs,
  connectTimeoutMs: 3000,
  firstByteTimeoutMs: 30_000,
  bodyIdleTimeoutMs: 30_000,
  upgradeIdleTimeoutMs: 60_000,
  maxSockets: 256,
  maxFreeSockets: 64,
  bufferBytes: 64 * 1024 * 1024,
  maxHeaderSize: 16 * 1024,
  keepAliveTimeoutMs: 65_000,
  trustedPeers: ["loopback"],
  maxOrigins: DEFAULT_INGEST_LIMITS.maxOriginsPerNode,
} as const;

const NAME_RE = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$/;

/** An address the sidecar listens on or connects to (a host is required); the error names the field. */
export function parseHostPort(field: string, v: unknown): HostPort {
  const r = parseAddress(v);
  if ("error" in r) throw configError(field, r.error);
  return r;
}

function str(field: string, v: unknown, def?: string): string {
  if (v === undefined || v === null) {
    if (def !== undefined) return def;
    throw configError(field, "is required");
  }
  if (typeof v !== "string" || v.trim() === "") throw configError(field, "must be a non-empty string");
  return v.trim();
}

/**
 * node_id, isp, region under the central's rule (proto/names.ts), checked at
 * start-up: a label the central refuses would otherwise start cleanly and then
 * be refused on every Hello. The error names the field and its flag.
 */
function label(field: string, flag: string, v: unknown): string {
  const name = `${field} (${flag})`;
  const s = str(name, v);
  const problem = labelProblem(name, s);
  if (problem) throw new SidecarError("CONFIG_INVALID", problem);
  return s;
}

function int(field: string, v: unknown, def: number, min: number, max: number): number {
  if (v === undefined || v === null) return def;
  const n = typeof v === "string" && /^\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw configError(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

function bool(field: string, v: unknown, def: boolean): boolean {
  if (v === undefined || v === null) return def;
  if (typeof v === "boolean") return v;
  if (v === "true") return true;
  if (v === "false") return false;
  throw configError(field, `must be true or false, got ${JSON.stringify(v)}`);
}

/** "NAME=URL" → {name, url}. */
export function parseOriginFlag(v: string): OriginInput {
  const i = v.indexOf("=");
  if (i <= 0) return { name: v, url: undefined };
  return { name: v.slice(0, i), url: v.slice(i + 1) };
}

function originList(v: unknown): OriginInput[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) {
    return v.map((x) => (typeof x === "string" ? parseOriginFlag(x) : (x as OriginInput)));
  }
  if (typeof v === "object") {
    return Object.entries(v as Record<string, unknown>).map(([name, x]) =>
      typeof x === "string" ? { name, url: x } : { ...(x as OriginInput), name },
    );
  }
  throw configError("origins", "must be a list of NAME=URL or an object");
}

export function validateSidecarConfig(input: SidecarConfigInput): SidecarConfig {
  const centrals = centralList(input.central);
  const listen = parseHostPort("listen", input.listen ?? DEFAULTS.listen);
  const admin = input.admin === undefined || input.admin === null || input.admin === "" ? undefined : parseHostPort("admin", input.admin);
  const nodeId = label("nodeId", "--node-id", input.nodeId);
  const isp = label("isp", "--isp", input.isp);
  const region = label("region", "--region", input.region);
  const windowMs = int("windowMs", input.windowMs, DEFAULTS.windowMs, 100, 60_000);
  const stallMs = int("stallMs", input.stallMs, DEFAULTS.stallMs, 1, 3_600_000);
  const connectTimeoutMs = int("connectTimeoutMs", input.connectTimeoutMs, DEFAULTS.connectTimeoutMs, 1, 600_000);
  const firstByteTimeoutMs = int("firstByteTimeoutMs", input.firstByteTimeoutMs, DEFAULTS.firstByteTimeoutMs, 1, 3_600_000);
  const maxSockets = int("maxSockets", input.maxSockets, DEFAULTS.maxSockets, 1, 100_000);
  const bodyIdleTimeoutMs = int("bodyIdleTimeoutMs", input.bodyIdleTimeoutMs, DEFAULTS.bodyIdleTimeoutMs, 1, 3_600_000);
  const upgradeIdleTimeoutMs = int("upgradeIdleTimeoutMs", input.upgradeIdleTimeoutMs, DEFAULTS.upgradeIdleTimeoutMs, 1, 86_400_000);
  const preserveHost = bool("preserveHost", input.preserveHost, true);
  const caFile = input.caFile === undefined || input.caFile === null ? undefined : str("caFile", input.caFile);

  const raw = originList(input.origins);
  if (raw.length === 0) throw configError("origins", "must name at least one origin (NAME=URL)");
  const seen = new Set<string>();
  const origins = raw.map((o, i): OriginConfig => {
    const f = `origins[${i}]`;
    if (o === null || typeof o !== "object") throw configError(f, "must be NAME=URL or an object");
    const name = str(`${f}.name`, o.name).toLowerCase().replace(/\.$/, "");
    if (!NAME_RE.test(name) && isIP(name) === 0) throw configError(`${f}.name (--origin)`, `must be a host name, got ${JSON.stringify(o.name)}`);
    const nameProblem = originProblem(`${f}.name (--origin)`, name);
    if (nameProblem) throw new SidecarError("CONFIG_INVALID", nameProblem);
    if (seen.has(name)) throw configError(`${f}.name`, `duplicates origin ${name}`);
    seen.add(name);
    const us = str(`${f}.url`, o.url);
    let url: URL;
    try {
      url = new URL(us);
    } catch {
      throw configError(`${f}.url`, `must be an http(s) URL, got ${JSON.stringify(us)}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw configError(`${f}.url`, "must use http or https");
    if (url.username || url.password) throw configError(`${f}.url`, "must not carry credentials");
    if (url.search || url.hash) throw configError(`${f}.url`, "must not have a query or fragment");
    let servername: string | undefined;
    if (o.servername !== undefined && o.servername !== null) {
      servername = str(`${f}.servername`, o.servername).toLowerCase();
      if (url.protocol !== "https:") throw configError(`${f}.servername`, "applies to https origins only");
      if (!NAME_RE.test(servername) || isIP(servername) !== 0) throw configError(`${f}.servername`, `must be a DNS name, got ${JSON.stringify(o.servername)}`);
    }
    return {
      name,
      url,
      preserveHost: bool(`${f}.preserveHost`, o.preserveHost, preserveHost),
      connectTimeoutMs: int(`${f}.connectTimeoutMs`, o.connectTimeoutMs, connectTimeoutMs, 1, 600_000),
      firstByteTimeoutMs: int(`${f}.firstByteTimeoutMs`, o.firstByteTimeoutMs, firstByteTimeoutMs, 1, 3_600_000),
      stallMs: int(`${f}.stallMs`, o.stallMs, stallMs, 1, 3_600_000),
      maxSockets: int(`${f}.maxSockets`, o.maxSockets, maxSockets, 1, 100_000),
      maxFreeSockets: int(`${f}.maxFreeSockets`, o.maxFreeSockets, Math.min(DEFAULTS.maxFreeSockets, maxSockets), 0, 100_000),
      caFile: o.caFile === undefined || o.caFile === null ? caFile : str(`${f}.caFile`, o.caFile),
      servername,
      bodyIdleTimeoutMs: int(`${f}.bodyIdleTimeoutMs`, o.bodyIdleTimeoutMs, bodyIdleTimeoutMs, 1, 3_600_000),
      upgrade: bool(`${f}.upgrade`, o.upgrade, false),
      upgradeIdleTimeoutMs: int(`${f}.upgradeIdleTimeoutMs`, o.upgradeIdleTimeoutMs, upgradeIdleTimeoutMs, 1, 86_400_000),
    };
  });

  const maxOrigins = int("maxOrigins", input.maxOrigins, DEFAULTS.maxOrigins, 1, 1_000_000);
  if (origins.length > maxOrigins) {
    throw configError("origins (--origin)", `lists ${origins.length} origins, more than the central accepts per node (${maxOrigins}); raise --max-origins only if the central's limit is higher`);
  }

  let trustedPeers: string[] = [...DEFAULTS.trustedPeers];
  if (input.trustedPeers !== undefined && input.trustedPeers !== null) {
    const tp = typeof input.trustedPeers === "string" ? input.trustedPeers.split(",").map((s) => s.trim()).filter(Boolean) : input.trustedPeers;
    if (!Array.isArray(tp)) throw configError("trustedPeers", "must be a list");
    trustedPeers = tp.map((p, i) => {
      if (typeof p !== "string") throw configError(`trustedPeers[${i}]`, "must be a string");
      const [addr, bits] = p.split("/");
      if (p !== "loopback" && (isIP(addr) === 0 || (bits !== undefined && !/^\d{1,3}$/.test(bits)))) {
        throw configError(`trustedPeers[${i}]`, `must be "loopback", an IP or a CIDR, got ${JSON.stringify(p)}`);
      }
      return p;
    });
  }

  return {
    central: centrals.map((c) => c.url),
    centralRebalanceMs: int("centralRebalanceMs", input.centralRebalanceMs, DEFAULTS.centralRebalanceMs, 0, 86_400_000),
    listen,
    admin,
    nodeId,
    isp,
    region,
    origins,
    windowMs,
    bufferBytes: int("bufferBytes", input.bufferBytes, DEFAULTS.bufferBytes, 1024, 16 * 1024 * 1024 * 1024),
    maxBufferedBatches: input.maxBufferedBatches === undefined || input.maxBufferedBatches === null ? undefined : int("maxBufferedBatches", input.maxBufferedBatches, 0, 1, 100_000_000),
    stateDir: input.stateDir === undefined || input.stateDir === null || input.stateDir === "" ? undefined : str("stateDir", input.stateDir),
    trustedPeers,
    maxHeaderSize: int("maxHeaderSize", input.maxHeaderSize, DEFAULTS.maxHeaderSize, 1024, 1024 * 1024),
    caFile,
    keepAliveTimeoutMs: int("keepAliveTimeoutMs", input.keepAliveTimeoutMs, DEFAULTS.keepAliveTimeoutMs, 1000, 3_600_000),
    maxOrigins,
    resolver: input.resolver === undefined || input.resolver === null || input.resolver === "" ? undefined : parseHostPort("resolver", input.resolver),
    ...tlsOf(input, centrals[0].tls),
  };
}

/** `--central URL,URL,...` or a list in the config file; the error names the field and the entry. */
function centralList(v: unknown): CentralUrl[] {
  if (v === undefined || v === null) return parseCentrals(DEFAULTS.central);
  if (typeof v !== "string" && !(Array.isArray(v) && v.every((x) => typeof x === "string"))) {
    throw configError("central (--central)", "must be a URL, a comma-separated list of URLs, or a list of URL strings");
  }
  return parseCentrals(v);
}

function tlsOf(input: SidecarConfigInput, https: boolean): Pick<SidecarConfig, "tlsCert" | "tlsKey" | "tlsCa"> {
  const opt = (f: "tlsCert" | "tlsKey" | "tlsCa") => (input[f] === undefined || input[f] === null || input[f] === "" ? undefined : str(f, input[f]));
  const tlsCert = opt("tlsCert");
  const tlsKey = opt("tlsKey");
  const tlsCa = opt("tlsCa");
  if (Boolean(tlsCert) !== Boolean(tlsKey)) throw configError(tlsCert ? "tlsKey" : "tlsCert", "must be given with the other (--tls-cert and --tls-key)");
  if ((tlsCert || tlsCa) && !https) throw configError("central", "must be https:// URLs when TLS files are given");
  return { tlsCert, tlsKey, tlsCa };
}
