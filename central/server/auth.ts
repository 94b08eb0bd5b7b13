/**
 * Who is calling. Sidecars prove their node identity with a client
 * certificate (mTLS): the names in it (CN and DNS/URI SANs) bound what
 * node_id they may claim. Operators present bearer tokens, each with a role:
 * `read` for queries, `admin` for SetConfig and probes. Health checks stay
 * open (load balancers), and so does reflection: it only describes the public
 * contract in proto/, and grpcurl-class tools do not all send headers with it.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { TLSSocket } from "node:tls";
import { Code, ConnectError, type ContextValues, type Interceptor, createContextKey, createContextValues } from "@connectrpc/connect";
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";

type NodeServerRequest = IncomingMessage | Http2ServerRequest;
import { CentralError } from "../errors.js";

export interface PeerIdentity {
  /** The TLS handshake verified a client certificate against our CA. */
  authorized: boolean;
  /** CN and SAN names of the verified certificate. */
  names: string[];
  /** Why the certificate was not accepted (no certificate, other CA, ...). */
  error?: string;
  /** The connection is TLS at all. */
  tls: boolean;
}

export const peerKey = createContextKey<PeerIdentity>({ authorized: false, names: [], tls: false }, { description: "TLS peer identity" });

/** Extracts the verified peer identity from the connection of a request. */
export function peerContext(req: NodeServerRequest): ContextValues {
  const values = createContextValues();
  const socket = req.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== "function") return values;
  const cert = socket.getPeerCertificate();
  const names: string[] = [];
  if (cert && Object.keys(cert).length > 0) {
    if (cert.subject?.CN) names.push(...([] as string[]).concat(cert.subject.CN));
    for (const part of (cert.subjectaltname ?? "").split(",")) {
      const m = /^\s*(DNS|URI):(.+)$/.exec(part);
      if (m) names.push(m[2].trim());
    }
  }
  const authError = socket.authorizationError;
  values.set(peerKey, {
    tls: true,
    authorized: socket.authorized === true,
    names,
    error: socket.authorized ? undefined : names.length === 0 ? "no client certificate" : `client certificate not accepted: ${String(authError)}`,
  });
  return values;
}

export type Role = "read" | "admin";

export interface TokenEntry {
  name: string;
  role: Role;
  digest: Buffer;
}

const sha256 = (s: string) => createHash("sha256").update(s).digest();

/**
 * Loads tokens from a file: one per line, `TOKEN ROLE [NAME]` (ROLE is read
 * or admin; # starts a comment). Errors name the line, never the token.
 */
export function loadTokens(file: string): TokenEntry[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CentralError("CENTRAL_BAD_CONFIG", `tokens file ${file}: ${(err as Error).message}`);
  }
  const out: TokenEntry[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) return;
    const [token, role, name] = line.split(/\s+/);
    if (role !== "read" && role !== "admin") {
      throw new CentralError("CENTRAL_BAD_CONFIG", `tokens file ${file} line ${i + 1}: role must be "read" or "admin"`);
    }
    if (!token || token.length < 16) {
      throw new CentralError("CENTRAL_BAD_CONFIG", `tokens file ${file} line ${i + 1}: token must be at least 16 characters`);
    }
    out.push({ name: name ?? `line-${i + 1}`, role, digest: sha256(token) });
  });
  if (out.length === 0) throw new CentralError("CENTRAL_BAD_CONFIG", `tokens file ${file} holds no token`);
  return out;
}

/** Constant-time lookup: every entry is compared, digests of equal length. */
export function findToken(tokens: TokenEntry[], presented: string): TokenEntry | undefined {
  const d = sha256(presented);
  let found: TokenEntry | undefined;
  for (const t of tokens) if (timingSafeEqual(t.digest, d) && !found) found = t;
  return found;
}

/** Methods that need the admin role. */
const ADMIN_METHODS = new Set([
  "originwatch.v1.ConfigService/SetConfig",
  "originwatch.v1.QueryService/ProbeOrigin",
  "originwatch.v1.QueryService/ForgetOrigin",
  "originwatch.v1.QueryService/ForgetNode",
]);
/** Services open to anyone: health, reflection, and ingest (authenticated by mTLS instead). */
const OPEN_SERVICES = new Set([
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
  "originwatch.v1.IngestService",
]);

export function requiredRole(service: string, method: string): Role | undefined {
  if (OPEN_SERVICES.has(service)) return undefined;
  return ADMIN_METHODS.has(`${service}/${method}`) ? "admin" : "read";
}

/** Bearer-token check for the operator API, the same on gRPC, gRPC-Web and Connect. */
export function tokenInterceptor(tokens: TokenEntry[]): Interceptor {
  return (next) => async (req) => {
    const need = requiredRole(req.service.typeName, req.method.name);
    if (!need) return next(req);
    const header = req.header.get("authorization") ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new ConnectError(`${req.method.name} needs a bearer token (authorization: Bearer <token>)`, Code.Unauthenticated);
    const entry = findToken(tokens, m[1]);
    if (!entry) throw new ConnectError("unknown token", Code.Unauthenticated);
    if (need === "admin" && entry.role !== "admin") {
      throw new ConnectError(`${req.method.name} needs an admin token; token "${entry.name}" has role ${entry.role}`, Code.PermissionDenied);
    }
    return next(req);
  };
}

/** mTLS gate for the ingest stream: a verified client certificate is required. */
export function ingestCertInterceptor(): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName !== "originwatch.v1.IngestService") return next(req);
    const peer = req.contextValues.get(peerKey);
    if (!peer.authorized) throw new ConnectError(`sidecars must present a client certificate signed by the central's CA (${peer.error ?? "not verified"})`, Code.Unauthenticated);
    return next(req);
  };
}

/** The node_id a sidecar claims must be one of the names in its certificate. */
export function checkNodeBinding(peer: PeerIdentity, nodeId: string): void {
  if (!peer.names.includes(nodeId)) {
    throw new ConnectError(`certificate names ${JSON.stringify(peer.names)} do not include node_id ${JSON.stringify(nodeId)}`, Code.PermissionDenied);
  }
}
