/**
 * GET /metrics on the central's one port (issue 15 item 1), tried before the
 * dashboard and the RPC router. With --tokens it needs a bearer token of any
 * role (read is enough; Prometheus sends one with `authorization:
 * {type: Bearer, credentials_file: ...}`): none or an unknown one gets 401 with
 * WWW-Authenticate. Without tokens it is as open as the rest of the operator
 * API, behind the same Host guard (server.ts runs the guard first).
 * Only GET and HEAD of exactly /metrics are answered here.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type client from "prom-client";
import { type TokenEntry, findToken } from "../server/auth.js";

export const METRICS_PATH = "/metrics";

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/** `before` runs ahead of every collection (cluster mode: read the origins' status from OW_STATUS); its failure is a 500. */
export function metricsRoute(registry: client.Registry, tokens: TokenEntry[] | undefined, onError?: (err: unknown) => void, before?: () => Promise<void>): (req: Req, res: Res) => boolean {
  return (req, res) => {
    if ((req.url ?? "").split("?")[0] !== METRICS_PATH || (req.method !== "GET" && req.method !== "HEAD")) return false;
    const r = res as ServerResponse;
    if (tokens) {
      const m = /^Bearer\s+(\S+)$/i.exec(String(req.headers.authorization ?? ""));
      const entry = m ? findToken(tokens, m[1]) : undefined;
      if (!entry) {
        r.writeHead(401, { "content-type": "text/plain; charset=utf-8", "www-authenticate": 'Bearer realm="originwatch"' });
        r.end(m ? "unknown token\n" : "/metrics needs a bearer token (authorization: Bearer <token>, role read or admin)\n");
        return true;
      }
    }
    (before ? before().then(() => registry.metrics()) : registry.metrics()).then(
      (text) => {
        r.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store" });
        r.end(req.method === "HEAD" ? undefined : text);
      },
      (err: unknown) => {
        onError?.(err);
        r.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        r.end("metrics collection failed\n");
      },
    );
    return true;
  };
}
