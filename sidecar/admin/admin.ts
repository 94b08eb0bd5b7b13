/**
 * Admin listener: /metrics (Prometheus text), /healthz (process up), /readyz
 * (accepting traffic; 503 while shutting down), /status (JSON: the stream to
 * the central — state, limits, clock skew, rejected batches by code, why the
 * central refuses this sidecar if it does). Never on the cache-facing port.
 */
import http from "node:http";
import type { SidecarMetrics } from "./metrics.js";

export interface AdminOptions {
  metrics: SidecarMetrics;
  ready: () => boolean;
  /** Refresh pull-style gauges right before a scrape. */
  collect?: () => void;
  /** The body of /status (JSON-serialisable). */
  status?: () => unknown;
}

export interface Admin {
  server: http.Server;
}

export function createAdmin(opts: AdminOptions): Admin {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (path === "/readyz") {
      const ok = opts.ready();
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ready\n" : "not ready\n");
      return;
    }
    if (path === "/status" && opts.status) {
      let body: string;
      try {
        body = JSON.stringify(opts.status(), null, 2);
      } catch (err) {
        res.writeHead(500, { "content-type": "text/plain" }).end(`${(err as Error).message}\n`);
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(`${body}\n`);
      return;
    }
    if (path === "/metrics") {
      try {
        opts.collect?.();
      } catch {
        /* a failed refresh must not fail the scrape */
      }
      opts.metrics.text().then(
        (text) => res.writeHead(200, { "content-type": opts.metrics.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${err.message}\n`),
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  });
  server.on("clientError", (_e, s) => s.destroy());
  return { server };
}
