/**
 * Serves the dashboard through the server's httpFallback hook: GET and HEAD
 * of "/", "/dashboard/app.js" and "/dashboard/app.css" only. Every other
 * request (every RPC path, any POST) is left to the RPC router, so the page
 * can never shadow an API route.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { type DashboardAssets, buildDashboard } from "./bundle.js";

export type HttpFallback = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => boolean;

export const DASHBOARD_PATHS = ["/", "/dashboard/app.js", "/dashboard/app.css"] as const;

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

export interface DashboardOptions {
  /** Called when the bundle cannot be built (the page then answers 500). */
  onError?: (err: unknown) => void;
}

export function dashboardFallback(opts: DashboardOptions = {}): HttpFallback {
  let assets: Promise<DashboardAssets> | undefined;
  const load = () => {
    assets ??= buildDashboard().catch((err: unknown) => {
      assets = undefined; // retry on the next request
      opts.onError?.(err);
      throw err;
    });
    return assets;
  };
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = (req.url ?? "").split("?")[0]!;
    if (!(DASHBOARD_PATHS as readonly string[]).includes(path)) return false;
    const r = res as ServerResponse;
    load().then(
      ({ files }) => {
        const a = files.get(path);
        if (!a) {
          r.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
          return;
        }
        const headers = { ...SECURITY_HEADERS, "content-type": a.type, etag: a.etag, "cache-control": "no-cache", vary: "accept-encoding" };
        if (req.headers["if-none-match"] === a.etag) {
          r.writeHead(304, headers).end();
          return;
        }
        const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
        const body = gzip ? a.gzip : a.body;
        r.writeHead(200, { ...headers, ...(gzip ? { "content-encoding": "gzip" } : {}), "content-length": String(body.length) });
        r.end(req.method === "HEAD" ? undefined : body);
      },
      () => {
        r.writeHead(500, { "content-type": "text/plain" }).end("the dashboard could not be built; see the central's log\n");
      },
    );
    return true;
  };
}
