/**
 * How `originwatch ctl` reaches the central: clients generated from the proto
 * (protobuf-es service descriptors) over the Connect protocol, and the one
 * table that turns a failed call into a message and an exit code.
 */
import { readFileSync } from "node:fs";
import { type Client, Code, ConnectError, type Interceptor, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ConfigService } from "../../proto/gen/originwatch/v1/config_pb.js";
import { QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";

/** Exit codes of `originwatch ctl` (documented in the README and in `ctl --help`). */
export const EXIT = {
  OK: 0,
  /** The central answered with an error (not found, invalid argument, unimplemented, ...). */
  CENTRAL_ERROR: 1,
  /** Bad command line or unreadable input file. */
  USAGE: 2,
  /** The central could not be reached or did not answer in time. */
  UNREACHABLE: 3,
  /** `status`: at least one origin is DOWN. */
  ORIGIN_DOWN: 4,
  /** `status`: no origin is DOWN but at least one is DEGRADED. */
  ORIGIN_DEGRADED: 5,
} as const;

export const DEFAULT_CENTRAL = "http://127.0.0.1:7400";

export class UsageError extends Error {}

/** Accepts `http(s)://host:port` or a bare `host:port`. */
export function centralUrl(raw: string | undefined): string {
  const v = (raw ?? "").trim() || DEFAULT_CENTRAL;
  const withScheme = /^[a-z]+:\/\//i.test(v) ? v : `http://${v}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new UsageError(`--central: ${JSON.stringify(v)} is not a URL (expected e.g. ${DEFAULT_CENTRAL})`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new UsageError(`--central: scheme must be http or https, got ${u.protocol}`);
  return u.origin;
}

export interface CentralClients {
  url: string;
  query: Client<typeof QueryService>;
  config: Client<typeof ConfigService>;
  /** QueryService without a deadline, for streams that last until Ctrl-C. */
  streams: Client<typeof QueryService>;
}

export interface ConnectOptions {
  timeoutMs: number;
  /** Operator bearer token (the central's --tokens file). */
  token?: string;
  /** PEM file of the CA that signed the central's certificate (https). */
  caFile?: string;
}

export function connectCentral(url: string, o: ConnectOptions): CentralClients {
  const interceptors: Interceptor[] = [];
  if (o.token) {
    const header = `Bearer ${o.token}`;
    interceptors.push((next) => (req) => {
      req.header.set("authorization", header);
      return next(req);
    });
  }
  let ca: Buffer | undefined;
  if (o.caFile) {
    try {
      ca = readFileSync(o.caFile);
    } catch (err) {
      throw new UsageError(`--ca: cannot read ${o.caFile}: ${(err as Error).message}`);
    }
  }
  const options = { baseUrl: url, httpVersion: "1.1", useBinaryFormat: true, interceptors, ...(ca ? { nodeOptions: { ca } } : {}) } as const;
  const timeoutMs = o.timeoutMs;
  const transport = createConnectTransport({ ...options, defaultTimeoutMs: timeoutMs });
  return {
    url,
    query: createClient(QueryService, transport),
    config: createClient(ConfigService, transport),
    streams: createClient(QueryService, createConnectTransport(options)),
  };
}

export interface Failure {
  exit: number;
  message: string;
}

/** One place that maps a failed call to what the operator reads and the exit code. */
export function describeFailure(err: unknown, url: string, what: string): Failure {
  if (err instanceof UsageError) return { exit: EXIT.USAGE, message: err.message };
  const cause = (err as { cause?: { code?: string } } | undefined)?.cause?.code ?? "";
  if (/^(ERR_TLS_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_VERIFY|CERT_)/.test(cause)) {
    return { exit: EXIT.UNREACHABLE, message: `cannot verify the central's TLS certificate at ${url} (${cause}): pass its CA with --ca or ORIGINWATCH_CA` };
  }
  const ce = ConnectError.from(err);
  switch (ce.code) {
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return {
        exit: EXIT.UNREACHABLE,
        message: `cannot reach the central at ${url} (${ce.rawMessage}). Is it running? Set --central or ORIGINWATCH_CENTRAL.`,
      };
    case Code.Unimplemented:
      // Connect also maps a bare HTTP 404 here: say that it may not be a central at all.
      return {
        exit: EXIT.CENTRAL_ERROR,
        message: `the central at ${url} does not implement ${what} (UNIMPLEMENTED: ${ce.rawMessage}): an older central, or not an originwatch central at all`,
      };
    case Code.Unauthenticated:
      return { exit: EXIT.CENTRAL_ERROR, message: `the central refused ${what}: ${ce.rawMessage}. Pass an operator token with --token or ORIGINWATCH_TOKEN.` };
    case Code.PermissionDenied:
      return { exit: EXIT.CENTRAL_ERROR, message: `the central refused ${what}: ${ce.rawMessage} (PermissionDenied)` };
    default:
      return { exit: EXIT.CENTRAL_ERROR, message: `${what} failed: ${ce.rawMessage} (${Code[ce.code]})` };
  }
}

/** True when the call failed only because the central lacks the RPC. */
export function isUnimplemented(err: unknown): boolean {
  return err instanceof ConnectError && err.code === Code.Unimplemented;
}
