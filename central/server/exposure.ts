/**
 * Secure unless told otherwise (DESIGN §6). Two rules:
 *
 * 1. At start: on a listen address that is not loopback, the central needs
 *    mTLS for ingest (--tls-cert/--tls-key/--tls-ca) and tokens for the
 *    operator API (--tokens). Without them it refuses to start
 *    (CENTRAL_INSECURE) unless --insecure is given; then checkExposure()
 *    returns the warnings the caller logs at every start.
 * 2. Per request, when no tokens are configured: the Host (HTTP/1.1) or
 *    :authority (HTTP/2) must name loopback (127.0.0.0/8, ::1, localhost, any
 *    port) or one of --allowed-hosts. A browser page that rebinds its own DNS
 *    name to the central's address sends its own name as Host, so it is
 *    refused: 403 (Connect, HTTP) or PERMISSION_DENIED (gRPC, gRPC-Web).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import net from "node:net";
import { CentralError } from "../errors.js";

/** True for 127.0.0.0/8, ::1 (and its IPv4-mapped forms) and "localhost". */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
  if (h === "localhost") return true;
  if (net.isIPv4(h)) return h.startsWith("127.");
  if (net.isIPv6(h)) {
    if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped ? mapped[1].startsWith("127.") : false;
  }
  return false;
}

/** The host part of a Host header or :authority ("[::1]:7400" → "::1"); "" when absent or malformed. */
export function hostOfAuthority(authority: string | undefined): string {
  if (!authority) return "";
  const a = authority.trim().toLowerCase();
  const v6 = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(a);
  if (v6) return v6[1];
  const m = /^([^:[\]]+)(?::\d{1,5})?$/.exec(a);
  return m ? m[1].replace(/\.$/, "") : "";
}

export interface ExposureInput {
  listenHost: string;
  tls: boolean;
  tokens: boolean;
  insecure: boolean;
}

/**
 * The start-up rule. Throws CENTRAL_INSECURE naming what is missing;
 * returns the warnings to log (non-empty only under --insecure).
 */
export function checkExposure(x: ExposureInput): string[] {
  if (isLoopbackHost(x.listenHost)) return [];
  const missing: string[] = [];
  if (!x.tls) missing.push("mTLS for ingest (--tls-cert, --tls-key, --tls-ca): any client can open an ingest stream as any node and forge its data");
  if (!x.tokens) {
    missing.push(
      "operator tokens (--tokens): anyone who reaches the port can read everything and change the fleet config " +
        "(requests are answered only for loopback Host names and --allowed-hosts)",
    );
  }
  if (missing.length === 0) return [];
  if (!x.insecure) {
    throw new CentralError(
      "CENTRAL_INSECURE",
      `refusing to listen on non-loopback address ${x.listenHost} without ${missing.map((m) => m.split(" (")[0]).join(" and ")}: ` +
        "give --tls-cert/--tls-key/--tls-ca and --tokens, listen on 127.0.0.1, or pass --insecure to run exposed anyway",
    );
  }
  return missing.map((m) => `INSECURE (--insecure): listening on ${x.listenHost} without ${m}`);
}

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

/**
 * The per-request rule as a server guard: returns true when it answered
 * (refused) the request. Allowed: loopback names and `allowedHosts`.
 */
export function hostGuard(allowedHosts: string[], onRefused?: (host: string) => void): (req: AnyRequest, res: AnyResponse) => boolean {
  const allowed = new Set(allowedHosts.map((h) => h.toLowerCase()));
  return (req, res) => {
    const authority = (req.headers[":authority"] as string | undefined) ?? req.headers.host;
    const host = hostOfAuthority(authority);
    if (host && (isLoopbackHost(host) || allowed.has(host))) return false;
    if (isSidecarStream(req)) return false;
    onRefused?.(host);
    const message =
      `Host ${JSON.stringify(authority ?? "")} is not allowed: this central has no --tokens, so it answers only loopback names ` +
      "(127.0.0.1, ::1, localhost) and --allowed-hosts [CENTRAL_HOST_NOT_ALLOWED]";
    refuse(req, res, message);
    return true;
  };
}

/**
 * The sidecars' ingest stream is exempt from the Host rule: it is native gRPC
 * over HTTP/2, which no web page can send (browsers speak neither h2c nor
 * `application/grpc` bidi streams, and over TLS the certificate would not match
 * a rebound name), and sidecars on an `--insecure` central may reach it by any
 * DNS name. mTLS, not the Host header, is what authenticates a sidecar.
 */
function isSidecarStream(req: AnyRequest): boolean {
  return (
    req.httpVersion === "2.0" &&
    req.url === "/originwatch.v1.IngestService/Stream" &&
    String(req.headers["content-type"] ?? "").startsWith("application/grpc") &&
    !String(req.headers["content-type"]).startsWith("application/grpc-web")
  );
}

/** PERMISSION_DENIED in the caller's protocol: grpc-status for gRPC and gRPC-Web, a Connect error body (403) otherwise. */
function refuse(req: AnyRequest, res: AnyResponse, message: string): void {
  const r = res as ServerResponse;
  const type = String(req.headers["content-type"] ?? "");
  if (type.startsWith("application/grpc-web")) {
    // gRPC-Web: a trailers-only response carries the status in the headers.
    r.writeHead(200, { "content-type": type.split(";")[0], "grpc-status": "7", "grpc-message": encodeURIComponent(message) });
    r.end();
    return;
  }
  if (type.startsWith("application/grpc")) {
    // gRPC: status in trailers (grpc-js does not read a status from the headers of a response that Node resets).
    r.writeHead(200, { "content-type": "application/grpc" });
    r.addTrailers({ "grpc-status": "7", "grpc-message": encodeURIComponent(message) });
    r.end();
    return;
  }
  r.writeHead(403, { "content-type": "application/json" });
  r.end(JSON.stringify({ code: "permission_denied", message }));
}
