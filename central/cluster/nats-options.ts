/**
 * Cluster mode's options (issue 16): where NATS is, who we are to it, how we
 * trust it, and the shape of what we keep in JetStream. `validateNatsOptions`
 * owns every default (NATS_DEFAULTS) and throws a CentralError
 * (CENTRAL_BAD_CONFIG) naming the flag. `toConnectOptions` converts the result
 * once into the NATS client's options. No `--nats` means no cluster mode: the
 * embedded LevelDB central, as before.
 *
 * Secrets never go on the command line: the password comes from
 * `--nats-password-file` or the ORIGINWATCH_NATS_PASSWORD environment
 * variable, and a URL carrying credentials is refused.
 */
import { readFileSync, statSync } from "node:fs";
import type { Command } from "commander";
import type { NodeConnectionOptions } from "@nats-io/transport-node";
import { CentralError } from "../errors.js";

/** Environment variable that may carry the NATS password. */
export const NATS_PASSWORD_ENV = "ORIGINWATCH_NATS_PASSWORD";

export interface NatsOptions {
  /** NATS server URLs (`nats://`, `tls://` or `host:port`); [] = not in cluster mode. */
  servers: string[];
  /** NATS user; with `password` (never `no_auth_user` on the server). */
  user?: string;
  /** Read from passwordFile or the environment, never a flag. */
  password?: string;
  passwordFile?: string;
  /** CA (PEM) that signs the NATS servers' certificates: turns on TLS with verification. */
  tlsCa?: string;
  /** Client certificate and key (PEM) when the servers verify clients: both or neither. */
  tlsCert?: string;
  tlsKey?: string;
  /** Partitions P of the window log (p = hash(origin) mod P). Every replica must use the same P. */
  partitions: number;
  /** Replicas of every stream and bucket (3 in production; 1 only for a one-server development NATS). */
  replicas: number;
  /** How long the window log keeps a message (replay horizon of a new partition owner). */
  windowMaxAgeMs: number;
  /** JetStream duplicate window: a message re-sent within it (same msgID: a retry after a lost PubAck, an event) is stored once. */
  dedupWindowMs: number;
  /** Lease bucket TTL: a partition whose owner stopped renewing is free after this. */
  leaseTtlMs: number;
  /**
   * The ingest sends the batches it takes within this many ms as one window-log message per partition
   * (0: those of one event-loop turn). Fewer, larger messages cost the servers, the ingest and the partition
   * owners less CPU per summary; each batch reaches its owner up to this much later.
   */
  lingerMs: number;
}

export const NATS_DEFAULTS: NatsOptions = {
  servers: [],
  partitions: 64,
  replicas: 3,
  windowMaxAgeMs: 15 * 60_000,
  dedupWindowMs: 5 * 60_000,
  leaseTtlMs: 10_000,
  lingerMs: 50,
};

/** Upper bound of --nats-linger-ms: a verdict should not wait longer than this for its windows. */
export const MAX_LINGER_MS = 500;

/** Upper bound of --partitions: one stream each, so keep it a number the servers carry easily. */
export const MAX_PARTITIONS = 1024;

const bad = (msg: string) => new CentralError("CENTRAL_BAD_CONFIG", msg);

function readable(flag: string, file: string): void {
  try {
    if (!statSync(file).isFile()) throw new Error("not a file");
  } catch (err) {
    throw bad(`${flag} ${JSON.stringify(file)} is not a readable file (${(err as Error).message})`);
  }
}

function checkServer(url: string, i: number): string {
  const v = url.trim();
  if (!v) throw bad(`--nats entry ${i + 1} is empty`);
  const withScheme = /^[a-z]+:\/\//i.test(v) ? v : `nats://${v}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw bad(`--nats entry ${i + 1} must be nats://HOST:PORT, tls://HOST:PORT or HOST:PORT, got ${JSON.stringify(v)}`);
  }
  if (u.protocol !== "nats:" && u.protocol !== "tls:") throw bad(`--nats entry ${i + 1} must use nats:// or tls://, got ${JSON.stringify(u.protocol)}`);
  if (u.username || u.password) throw bad(`--nats entry ${i + 1} carries credentials: give --nats-user and --nats-password-file (or ${NATS_PASSWORD_ENV}) instead`);
  if (!u.hostname) throw bad(`--nats entry ${i + 1} has no host`);
  if (u.pathname !== "" && u.pathname !== "/") throw bad(`--nats entry ${i + 1} must not have a path, got ${JSON.stringify(u.pathname)}`);
  return v;
}

/**
 * Fills defaults and checks every field; reads the password file (or `env`).
 * Throws CENTRAL_BAD_CONFIG naming the flag.
 */
export function validateNatsOptions(partial: Partial<NatsOptions>, env: NodeJS.ProcessEnv = process.env): NatsOptions {
  const o: NatsOptions = { ...NATS_DEFAULTS };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  if (!Array.isArray(o.servers)) throw bad("--nats must be a comma-separated list of URLs");
  o.servers = o.servers.map(checkServer);

  for (const [flag, f, min, max] of [
    ["--partitions", "partitions", 1, MAX_PARTITIONS],
    ["--nats-replicas", "replicas", 1, 5],
  ] as const) {
    const v = o[f];
    if (!Number.isInteger(v) || v < min || v > max) throw bad(`${flag} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
  for (const f of ["windowMaxAgeMs", "dedupWindowMs", "leaseTtlMs"] as const) {
    if (!Number.isInteger(o[f]) || o[f] < 1000) throw bad(`${f} must be an integer of at least 1000 ms, got ${String(o[f])}`);
  }
  if (!Number.isInteger(o.lingerMs) || o.lingerMs < 0 || o.lingerMs > MAX_LINGER_MS) throw bad(`--nats-linger-ms must be an integer from 0 to ${MAX_LINGER_MS}, got ${String(o.lingerMs)}`);
  if (o.dedupWindowMs > o.windowMaxAgeMs) throw bad(`dedupWindowMs (${o.dedupWindowMs}) must be at most windowMaxAgeMs (${o.windowMaxAgeMs})`);

  if (o.password !== undefined) throw bad(`the NATS password is never a flag: use --nats-password-file or ${NATS_PASSWORD_ENV}`);
  if (o.passwordFile !== undefined) {
    readable("--nats-password-file", o.passwordFile);
    o.password = readFileSync(o.passwordFile, "utf8").replace(/\r?\n$/, "");
    if (!o.password) throw bad(`--nats-password-file ${JSON.stringify(o.passwordFile)} is empty`);
  } else if (env[NATS_PASSWORD_ENV]) {
    o.password = env[NATS_PASSWORD_ENV];
  }
  if (o.user !== undefined && !/^[A-Za-z0-9._@-]{1,128}$/.test(o.user)) throw bad(`--nats-user must be 1-128 letters, digits or ._@-, got ${JSON.stringify(o.user)}`);
  if (o.user !== undefined && o.password === undefined) throw bad(`--nats-user needs a password: --nats-password-file or ${NATS_PASSWORD_ENV}`);
  if (o.user === undefined && o.password !== undefined) throw bad("a NATS password was given without --nats-user");

  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw bad("--nats-tls-cert and --nats-tls-key must be given together");
  for (const [flag, f] of [["--nats-tls-ca", "tlsCa"], ["--nats-tls-cert", "tlsCert"], ["--nats-tls-key", "tlsKey"]] as const) {
    if (o[f] !== undefined) readable(flag, o[f]!);
  }
  const inCluster = o.servers.length > 0;
  const clusterOnly = [o.user && "--nats-user", o.passwordFile && "--nats-password-file", o.tlsCa && "--nats-tls-ca", o.tlsCert && "--nats-tls-cert"].filter(Boolean);
  if (!inCluster && clusterOnly.length > 0) throw bad(`${clusterOnly.join(", ")} given without --nats`);
  if (inCluster && o.user === undefined) throw bad(`--nats needs credentials: --nats-user with --nats-password-file or ${NATS_PASSWORD_ENV} (the servers must not allow anonymous clients)`);
  return o;
}

/** True when the options put the central in cluster mode. */
export function clusterMode(o: NatsOptions): boolean {
  return o.servers.length > 0;
}

/** The NATS client's connect options, converted once. Reconnects forever: a replica outlives NATS restarts. */
export function toConnectOptions(o: NatsOptions, name: string): NodeConnectionOptions {
  const tls = o.tlsCa !== undefined || o.tlsCert !== undefined || o.servers.some((s) => s.startsWith("tls://"));
  return {
    servers: o.servers,
    name,
    user: o.user,
    pass: o.password,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // No stack captured per request (every JetStream publish and KV put is one): two Error objects per
    // request were ~7 % of an ingest replica's CPU (bench:cluster profiles); errors keep their messages.
    noAsyncTraces: true,
    ...(tls ? { tls: { ...(o.tlsCa ? { caFile: o.tlsCa } : {}), ...(o.tlsCert ? { certFile: o.tlsCert, keyFile: o.tlsKey } : {}) } } : {}),
  };
}

/** Registers the cluster-mode flags; defaults are shown, not set (validateNatsOptions fills them). */
export function registerNatsFlags(cmd: Command): Command {
  return cmd
    .option("--nats <urls>", "cluster mode: comma-separated NATS server URLs (nats://HOST:PORT or tls://HOST:PORT); without it the central runs embedded on LevelDB")
    .option("--nats-user <name>", "NATS user (required with --nats)")
    .option("--nats-password-file <file>", `file holding the NATS password (or set ${NATS_PASSWORD_ENV}; never a flag)`)
    .option("--nats-tls-ca <file>", "CA (PEM) that signs the NATS servers' certificates (TLS to NATS)")
    .option("--nats-tls-cert <file>", "client certificate (PEM) for NATS servers that verify clients")
    .option("--nats-tls-key <file>", "client private key (PEM)")
    .option("--nats-replicas <n>", `replicas of every stream and bucket (default ${NATS_DEFAULTS.replicas}; 1 only for a one-server NATS)`, (v) => Number(v))
    .option("--partitions <n>", `partitions of the window log, the same on every replica (default ${NATS_DEFAULTS.partitions})`, (v) => Number(v))
    .option("--nats-linger-ms <ms>", `send the batches taken within this many ms as one window-log message per partition (default ${NATS_DEFAULTS.lingerMs}; 0: no wait)`, (v) => Number(v));
}

/** The parsed flags as a partial (absent flags stay undefined: validateNatsOptions fills the defaults). */
export function natsFlagsToOptions(opts: Record<string, unknown>): Partial<NatsOptions> {
  const s = (k: string) => (typeof opts[k] === "string" ? (opts[k] as string) : undefined);
  return {
    servers: s("nats")?.split(","),
    user: s("natsUser"),
    passwordFile: s("natsPasswordFile"),
    tlsCa: s("natsTlsCa"),
    tlsCert: s("natsTlsCert"),
    tlsKey: s("natsTlsKey"),
    replicas: opts.natsReplicas as number | undefined,
    partitions: opts.partitions as number | undefined,
    lingerMs: opts.natsLingerMs as number | undefined,
  };
}
