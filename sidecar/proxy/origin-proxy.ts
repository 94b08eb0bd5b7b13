/**
 * The http-proxy engine for one origin, set up the way the hop needs it.
 *
 * Contract: only http-proxy's `stream` pass runs (deleteLength would turn a
 * chunked DELETE/OPTIONS into `content-length: 0` plus a body, a smuggling
 * vector; X-Forwarded-* and timeouts are the hop's own); the hop handles the
 * response itself (`selfHandleResponse`) through `onResponse`, one listener
 * per origin instead of one per request; TLS verification stays on; the
 * engine never throws an unhandled 'error'.
 *
 * The request body: http-proxy sends `options.buffer` when set, else the
 * cache's request, by calling its `pipe(proxyReq)` synchronously inside
 * proxy.web(), right after it created the upstream ClientRequest. `body` is
 * that source, one object per origin: the hop's `pipe` takes the
 * ClientRequest of the request being forwarded (before it has a socket, so
 * every deadline can be attached; http-proxy's `proxyReq` event comes only
 * with the socket, and never for `Expect` requests), then pipes the cache's
 * request into it, or ends it at once when the request has no body.
 */
import type http from "node:http";
import type { ClientRequest, IncomingMessage } from "node:http";
import type { Stream } from "node:stream";
import httpProxy from "http-proxy";
import webIncoming from "http-proxy/lib/http-proxy/passes/web-incoming.js";
import type { OriginConfig } from "../config.js";

export function createOriginProxy(
  origin: OriginConfig,
  agent: http.Agent,
  onResponse: (proxyRes: IncomingMessage, req: IncomingMessage) => void,
  body: { pipe(proxyReq: ClientRequest): void },
): httpProxy {
  const proxy = httpProxy.createProxyServer({
    target: origin.url.href,
    agent,
    buffer: body as unknown as Stream,
    changeOrigin: !origin.preserveHost,
    selfHandleResponse: true,
    xfwd: false,
    secure: true,
  });
  // Drop passes we replace: deleteLength would turn a chunked DELETE/OPTIONS into
  // `content-length: 0` plus a body (a smuggling vector); XHeaders/timeout are ours.
  // By identity: the bundle is minified, so a pass's function name is not kept.
  (proxy as unknown as { webPasses: unknown[] }).webPasses = [webIncoming.stream];
  // http-proxy emits 'error' when no callback is given; never let it throw.
  proxy.on("error", () => {});
  // One listener per origin instead of one 'response' listener per request.
  proxy.on("proxyRes", onResponse);
  return proxy;
}
