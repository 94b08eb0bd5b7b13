/**
 * The back-to-source hop, the request lifecycle: http-proxy forwarding to
 * configured origins only, with per-request outcome, TTFB, stall and byte
 * accounting into the recorder. Its parts have their own files: the engine per
 * origin (origin-proxy.ts), its agent (upstream-agent.ts) and DNS lookup
 * (dns-lookup.ts), the deadline list and sweeper (deadlines.ts).
 *
 * Contract: every routed request is counted exactly once (outcome.ts) in the
 * window where it completes; nothing here awaits the central (fail-open); a
 * proxy error never throws out of this module; when the cache goes away the
 * upstream request is destroyed (the http-proxy client-abort leak, Node ≥ 15.5).
 */
import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import type httpProxy from "http-proxy";
import type { OriginConfig, SidecarConfig } from "../config.js";
import type { Recorder } from "../recorder/recorder.js";
import { createPeerMatcher, downstreamResponseHeaders, peerAddress, rawContentLength, upstreamRequestHeaders } from "./headers.js";
import {
  BODY_TIMEOUT_CODE,
  CONNECT_TIMEOUT_CODE,
  FIRST_BYTE_TIMEOUT_CODE,
  OUTCOME_HEADER,
  POOL_EXHAUSTED_CODE,
  classifyError,
  classifyStatus,
  failureStatus,
  type OutcomeClass,
  type Phase,
} from "./outcome.js";
import { DeadlineList } from "./deadlines.js";
import { resolverLookup } from "./dns-lookup.js";
import { createOriginProxy } from "./origin-proxy.js";
import { createRouter, duplicateHost, type Router } from "./routes.js";
import { forwardUpgrade, type UpgradeHandle } from "./upgrade.js";
import { createUpstreamAgent } from "./upstream-agent.js";

export interface CompletedRequest {
  origin: string;
  outcome: OutcomeClass;
  method: string;
  path: string;
  status: number;
  /** undefined when no response head arrived */
  ttfbMs: number | undefined;
  totalMs: number;
  upstreamAddr: string;
}

/** Optional hooks (metrics, exemplars). Called synchronously; must not throw or block. */
export interface HopObserver {
  completed?(r: CompletedRequest): void;
  stalled?(origin: string): void;
  rejected?(status: number, reason: string): void;
}

export interface HopOptions {
  config: Pick<SidecarConfig, "origins" | "trustedPeers" | "resolver">;
  recorder: Recorder;
  observer?: HopObserver;
}

export interface Hop {
  /** `request` listener for the cache-facing server. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** `upgrade` listener: upgrades reach configured origins only. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** `connect` listener: CONNECT is never tunnelled. */
  connect(req: IncomingMessage, socket: Duplex): void;
  /** Sockets open to origins (in use + idle), by origin name. */
  upstreamSockets(): Record<string, number>;
  /** Requests in flight. */
  inFlight(): number;
  /** Destroy every upstream socket. Idempotent. */
  close(): void;
}

interface OriginState {
  origin: OriginConfig;
  agent: http.Agent;
  proxy: httpProxy;
}

interface Ctx {
  st: OriginState;
  req: IncomingMessage;
  res: ServerResponse;
  start: number;
  phase: Phase;
  upstream?: ClientRequest;
  /** the origin's response, once its head arrived */
  upRes?: IncomingMessage;
  ttfbMs?: number;
  status: number;
  stalled: boolean;
  done: boolean;
  /** response body bytes counted as they flowed (used for bodies without Content-Length) */
  bytesIn: number;
  /** Content-Length of a response that has a body */
  declaredIn?: number;
  bytesOut: number;
  /** performance.now() deadlines, checked by the sweeper */
  stallAt: number;
  connectBy: number;
  firstByteBy: number;
  /** body phase: upstream bytesRead at the last sweep, and since when it has not moved */
  bodySeen: number;
  bodyIdleSince: number;
  upstreamAddr: string;
  /** links in the list of requests in flight (deadlines.ts: connect, first byte, body idle) */
  prev?: Ctx;
  next?: Ctx;
  linked: boolean;
}

/** The request's Ctx, on the cache's request and on the upstream ClientRequest. */
const CTX = Symbol("originwatch.hop");
const ADDR = Symbol("originwatch.upstreamAddr");
/** Peer address and X-Forwarded-For trust of a cache connection, computed once per connection. */
const PEER = Symbol("originwatch.peer");

/** "ip:port" of an upstream socket, computed once per connection. */
function addrOf(socket: import("node:net").Socket & { [ADDR]?: string }): string {
  return (socket[ADDR] ??= `${socket.remoteAddress}:${socket.remotePort}`);
}
type WithCtx = { [CTX]?: Ctx };
type CacheSocket = Duplex & { remoteAddress?: string; [PEER]?: { peer: string; trust: boolean } };

export function createHop(opts: HopOptions): Hop {
  const { recorder, observer } = opts;
  const router: Router = createRouter(opts.config.origins);
  const trusted = createPeerMatcher(opts.config.trustedPeers);
  const states = new Map<string, OriginState>();
  let inFlight = 0;
  let closed = false;
  /** The request inside proxy.web(): http-proxy hands its ClientRequest to pipeRequestBody. */
  let pending: Ctx | undefined;

  /** Requests in flight with a deadline to watch (connect, first byte, stall, body idle). */
  const deadlines = new DeadlineList<Ctx>(checkDeadlines);
  const unlink = (ctx: Ctx) => deadlines.remove(ctx);

  function checkDeadlines(ctx: Ctx, now: number): void {
    if (ctx.done) {
      unlink(ctx);
      return;
    }
    if (ctx.phase === "body") {
      sweepBody(ctx, now);
      return;
    }
    if (!ctx.stalled && ctx.phase !== "queue" && now >= ctx.stallAt) {
      // DESIGN §5: counted once, in the window where the request crosses stall_ms
      ctx.stalled = true;
      recorder.stall(ctx.st.origin.name);
      observer?.stalled?.(ctx.st.origin.name);
    }
    if (ctx.phase === "queue" && now >= ctx.connectBy) {
      // No free socket in our own bounded pool: not the origin's fault, nothing was sent.
      // A queued request has no socket to destroy, so it errors only when one frees up: answer now.
      const err = Object.assign(new Error("no free upstream socket within connect timeout"), { code: POOL_EXHAUSTED_CODE });
      unlink(ctx);
      ctx.upstream?.destroy(err);
      onError(err, ctx.req);
    } else if ((ctx.phase === "connect" || ctx.phase === "tls") && now >= ctx.connectBy) {
      const err = Object.assign(new Error("no connection within connect timeout"), { code: CONNECT_TIMEOUT_CODE });
      unlink(ctx);
      if (ctx.upstream) ctx.upstream.destroy(err);
      else onError(err, ctx.req);
    } else if (ctx.phase === "wait" && now >= ctx.firstByteBy) {
      unlink(ctx);
      ctx.upstream?.destroy(Object.assign(new Error("no response head within first-byte timeout"), { code: FIRST_BYTE_TIMEOUT_CODE }));
    }
  }

  /**
   * Body idle deadline, from the upstream socket's byte counter (no per-chunk
   * work): a body that stops for bodyIdleTimeoutMs is cut both ways, freeing
   * the pool slot. Time the cache spends not reading (backpressure) is not the
   * origin's silence and does not count.
   */
  function sweepBody(ctx: Ctx, now: number): void {
    const up = ctx.upRes;
    // the origin's part is done once its body is complete; what remains is the cache reading it
    if (!up || up.complete) return;
    const sock = up.socket;
    const seen = sock ? sock.bytesRead : 0;
    if (seen !== ctx.bodySeen || ctx.res.writableNeedDrain) {
      ctx.bodySeen = seen;
      ctx.bodyIdleSince = now;
      return;
    }
    if (now - ctx.bodyIdleSince < ctx.st.origin.bodyIdleTimeoutMs) return;
    finish(ctx, "body_timeout");
    ctx.upstream?.destroy(Object.assign(new Error("response body idle past body idle timeout"), { code: BODY_TIMEOUT_CODE }));
    ctx.upRes?.destroy();
    ctx.res.destroy();
  }

  for (const origin of opts.config.origins) {
    const agent = createUpstreamAgent(origin, opts.config.resolver ? resolverLookup(opts.config.resolver) : undefined);
    const proxy = createOriginProxy(
      origin,
      agent,
      (proxyRes, req) => {
        const ctx = (req as IncomingMessage & WithCtx)[CTX];
        if (ctx) onResponse(ctx, proxyRes);
        else proxyRes.destroy();
      },
      { pipe: pipeRequestBody },
    );
    states.set(origin.name, { origin, agent, proxy });
  }

  function finish(ctx: Ctx, outcome: OutcomeClass): void {
    if (ctx.done) return;
    ctx.done = true;
    inFlight--;
    unlink(ctx);
    const totalMs = performance.now() - ctx.start;
    // A declared length counts only for a completed body; a cut one is not guessed.
    const bytesIn = ctx.declaredIn !== undefined ? (outcome === "ok" || outcome === "client_error" || outcome === "server_error" ? ctx.declaredIn : 0) : ctx.bytesIn;
    recorder.complete(ctx.st.origin.name, outcome, ctx.ttfbMs, bytesIn, ctx.bytesOut);
    observer?.completed?.({
      origin: ctx.st.origin.name,
      outcome,
      method: ctx.req.method ?? "",
      path: ctx.req.url ?? "",
      status: ctx.status,
      ttfbMs: ctx.ttfbMs,
      totalMs,
      upstreamAddr: ctx.upstreamAddr,
    });
  }

  function failureResponse(ctx: Ctx, outcome: OutcomeClass): void {
    const res = ctx.res;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const status = failureStatus(outcome);
    ctx.status = status;
    const body = `${status} ${outcome}\n`;
    try {
      res.writeHead(status, {
        "content-type": "text/plain; charset=utf-8",
        "content-length": Buffer.byteLength(body),
        "cache-control": "no-store",
        [OUTCOME_HEADER]: outcome,
      });
      res.end(body);
    } catch {
      res.destroy();
    }
  }

  function toWait(ctx: Ctx, now = performance.now()): void {
    if (ctx.phase !== "queue" && ctx.phase !== "connect" && ctx.phase !== "tls") return;
    ctx.phase = "wait";
    ctx.firstByteBy = now + ctx.st.origin.firstByteTimeoutMs;
  }

  /**
   * The body source of every origin's http-proxy (origin-proxy.ts): called in
   * proxy.web() with the ClientRequest just created for `pending`. The
   * listeners below are shared functions that find their Ctx on the emitter
   * (the cache's request, the ClientRequest, the origin's response): nothing
   * is allocated per request for them. A request without Content-Length or
   * Transfer-Encoding has no body (RFC 9112 §6.3): the upstream request is
   * ended at once instead of piping an empty stream into it.
   */
  function pipeRequestBody(creq: ClientRequest): void {
    const ctx = pending;
    pending = undefined;
    if (ctx === undefined) {
      creq.destroy(); // not a request of handle(): never sent
      return;
    }
    ctx.upstream = creq;
    (creq as ClientRequest & WithCtx)[CTX] = ctx;
    creq.on("socket", onUpstreamSocket);
    const headers = ctx.req.headers;
    if (headers["content-length"] !== undefined || headers["transfer-encoding"] !== undefined) ctx.req.pipe(creq);
    else creq.end();
  }

  function onUpstreamSocket(this: ClientRequest & WithCtx, socket: import("node:net").Socket): void {
    const ctx = this[CTX]!;
    if (ctx.done) return;
    // Connect and stall clocks run from here: time queued for a pool slot is pool_exhausted's, not the origin's.
    const now = performance.now();
    ctx.stallAt = now + ctx.st.origin.stallMs;
    if (socket.connecting) {
      ctx.phase = "connect";
      ctx.connectBy = now + ctx.st.origin.connectTimeoutMs;
      socket.once("connect", () => {
        ctx.upstreamAddr = addrOf(socket);
        if (socket instanceof TLSSocket) {
          ctx.phase = "tls";
          socket.once("secureConnect", () => toWait(ctx));
        } else toWait(ctx);
      });
    } else {
      ctx.upstreamAddr = addrOf(socket);
      toWait(ctx, now);
    }
  }

  /** The origin's response ended: cut short (not complete) is a body error, and the cache's response is cut too. */
  function onUpstreamResponseClose(this: IncomingMessage & WithCtx): void {
    const ctx = this[CTX]!;
    if (ctx.done || this.complete) return;
    finish(ctx, "body_error");
    ctx.res.destroy();
  }

  /** The cache's response closed: finished after the body, or the cache went away first. */
  function onCacheResponseClose(this: ServerResponse): void {
    const ctx = (this.req as IncomingMessage & WithCtx)[CTX]!;
    if (ctx.done) return;
    if (this.writableFinished && ctx.phase === "body") {
      finish(ctx, classifyStatus(ctx.status));
      return;
    }
    finish(ctx, "client_abort");
    ctx.upstream?.destroy();
  }

  function countRequestBody(this: IncomingMessage & WithCtx, chunk: Buffer): void {
    this[CTX]!.bytesOut += chunk.length;
  }

  function requestBodyDeclared(this: IncomingMessage & WithCtx): void {
    const ctx = this[CTX]!;
    ctx.bytesOut = Number(ctx.req.headers["content-length"]) || 0;
  }

  function onResponse(ctx: Ctx, proxyRes: IncomingMessage): void {
    // No 'error' listener needed: an IncomingMessage without one does not emit
    // its abort error; a cut body is seen through 'close' with complete = false.
    if (ctx.done) {
      proxyRes.destroy();
      return;
    }
    ctx.phase = "body";
    ctx.upRes = proxyRes;
    (proxyRes as IncomingMessage & WithCtx)[CTX] = ctx;
    ctx.ttfbMs = performance.now() - ctx.start;
    ctx.bodyIdleSince = ctx.start + ctx.ttfbMs;
    ctx.bodySeen = proxyRes.socket ? proxyRes.socket.bytesRead : 0;
    if (ctx.stalled) recorder.stallRecovered(ctx.st.origin.name);
    const status = proxyRes.statusCode ?? 502;
    ctx.status = status;
    const res = ctx.res;
    const raw = proxyRes.rawHeaders;
    try {
      res.writeHead(status, proxyRes.statusMessage, downstreamResponseHeaders(raw));
    } catch {
      // A response head Node accepted from the origin but cannot forward: broken response.
      proxyRes.destroy();
      finish(ctx, "reset");
      failureResponse(ctx, "reset");
      return;
    }
    // Bytes: the declared length when the body completes, else counted as it flows (chunked, or cut short).
    const declared = rawContentLength(raw);
    if (declared !== undefined && ctx.req.method !== "HEAD" && status !== 204 && status !== 304) ctx.declaredIn = Number(declared) || 0;
    proxyRes.on("data", forwardChunk);
    proxyRes.on("end", forwardEnd);
    proxyRes.on("close", onUpstreamResponseClose);
  }

  /*
   * The origin's body to the cache with backpressure: what pipe() does, with
   * three listeners instead of pipe's nine (and no clean-up of them). Nothing
   * can be written after end: end follows the origin's last byte, and every
   * other way out destroys the cache's response.
   */
  function forwardChunk(this: IncomingMessage & WithCtx, chunk: Buffer): void {
    const ctx = this[CTX]!;
    ctx.bytesIn += chunk.length;
    if (!ctx.res.write(chunk) && !this.isPaused()) {
      this.pause();
      ctx.res.once("drain", resumeUpstream);
    }
  }

  function resumeUpstream(this: ServerResponse): void {
    (this.req as IncomingMessage & WithCtx)[CTX]!.upRes?.resume();
  }

  function forwardEnd(this: IncomingMessage & WithCtx): void {
    this[CTX]!.res.end();
  }

  function onError(err: Error, req: IncomingMessage): void {
    const ctx = (req as IncomingMessage & WithCtx)[CTX];
    if (!ctx || ctx.done) return;
    // http-proxy reports errors of the cache's request (req) and of the upstream
    // request through the same callback; req.errored tells them apart.
    const clientGone = req.errored != null || ctx.res.destroyed || req.socket.destroyed;
    const outcome = classifyError(err, ctx.phase, clientGone);
    finish(ctx, outcome);
    ctx.upstream?.destroy();
    if (outcome === "client_abort" || ctx.phase === "body") ctx.res.destroy();
    else failureResponse(ctx, outcome);
  }

  function reject(res: ServerResponse, status: number, reason: string): void {
    observer?.rejected?.(status, reason);
    const body = `${status} ${reason}\n`;
    res.writeHead(status, {
      "content-type": "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
      // a malformed request ends the connection: nothing after it is trusted to be framed right
      ...(status === 400 ? { connection: "close" } : {}),
    });
    res.end(body);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    if (duplicateHost(req.rawHeaders)) return reject(res, 400, "more than one Host header");
    const route = router.route(req.url ?? "", req.headers.host);
    if (route.kind === "reject" || closed) {
      if (route.kind === "reject") reject(res, route.status, route.reason);
      else reject(res, 503, "shutting down");
      return;
    }
    const st = states.get(route.origin.name)!;
    const absolute = !(req.url ?? "").startsWith("/");
    const sock = req.socket as CacheSocket;
    const p = (sock[PEER] ??= { peer: peerAddress(sock.remoteAddress), trust: trusted(sock.remoteAddress) });
    const headers = upstreamRequestHeaders(req.headers, req.rawHeaders, p.peer, p.trust);
    if (absolute) {
      req.url = route.path;
      headers.host = route.origin.name;
    }
    const start = performance.now();
    const ctx: Ctx = {
      st,
      req,
      res,
      start,
      phase: "queue",
      status: 0,
      stalled: false,
      done: false,
      bytesIn: 0,
      bytesOut: 0,
      stallAt: start + st.origin.stallMs,
      connectBy: start + st.origin.connectTimeoutMs,
      firstByteBy: Number.POSITIVE_INFINITY,
      bodySeen: 0,
      bodyIdleSince: 0,
      upstreamAddr: "",
      linked: false,
    };
    (req as IncomingMessage & WithCtx)[CTX] = ctx;
    inFlight++;
    deadlines.add(ctx);
    res.on("close", onCacheResponseClose);
    pending = ctx;
    try {
      (st.proxy.web as (req: IncomingMessage, res: ServerResponse, cb: (err: Error, req: IncomingMessage) => void) => void)(req, res, onError);
    } catch (err) {
      onError(err as Error, req);
    } finally {
      pending = undefined;
    }
    // Request body bytes: the declared length once the body has been read, else counted as it flows
    // (chunked). A request with neither field has no body (RFC 9112 §6.3): nothing to count or listen to.
    if (headers["content-length"] !== undefined) req.once("end", requestBodyDeclared);
    else if (headers["transfer-encoding"] !== undefined && !req.complete) req.on("data", countRequestBody);
  }

  function rawReject(socket: Duplex, status: number, text: string, extra: Record<string, string> = {}): void {
    observer?.rejected?.(status, text);
    socket.on("error", () => {});
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    let fields = "";
    for (const [k, v] of Object.entries(extra)) fields += `${k}: ${v}\r\n`;
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(text) + 1}\r\n` +
        `cache-control: no-store\r\n${fields}connection: close\r\n\r\n${text}\n`,
    );
  }

  /** Tunnels in progress or open, ended by close(). */
  const upgrades = new Set<UpgradeHandle>();

  /**
   * Upgrades follow the request rules (routing, 400/421, hop-by-hop and XFF,
   * Host per origin) and are refused unless the origin opted in; see upgrade.ts.
   */
  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => {});
    if (duplicateHost(req.rawHeaders)) return rawReject(socket, 400, "more than one Host header");
    const route = router.route(req.url ?? "", req.headers.host);
    if (route.kind === "reject") return rawReject(socket, route.status, route.reason);
    if (closed) return rawReject(socket, 503, "shutting down");
    const origin = route.origin;
    if (!origin.upgrade) return rawReject(socket, 501, `upgrades are not enabled for origin ${origin.name} (per-origin option upgrade: true)`);
    const protocol = String(req.headers.upgrade ?? "").trim();
    if (protocol.toLowerCase() !== "websocket") return rawReject(socket, 501, "only websocket upgrades are forwarded");
    if (req.method !== "GET") return rawReject(socket, 405, "an upgrade must be a GET", { allow: "GET" });
    if (req.headers["transfer-encoding"] !== undefined || (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0")) {
      return rawReject(socket, 400, "an upgrade request has no body");
    }
    const st = states.get(origin.name)!;
    const absolute = !(req.url ?? "").startsWith("/");
    const headers = upstreamRequestHeaders(req.headers, req.rawHeaders, peerAddress(req.socket.remoteAddress), trusted(req.socket.remoteAddress));
    delete headers["content-length"];
    if (!origin.preserveHost) headers.host = origin.url.host;
    else if (absolute) headers.host = origin.name;
    const handle = forwardUpgrade(
      {
        origin,
        agent: st.agent,
        socket,
        head,
        path: route.path,
        headers,
        protocol,
        complete: (outcome, status, ttfbMs, upstreamAddr) => {
          recorder.complete(origin.name, outcome, ttfbMs, 0, 0);
          observer?.completed?.({ origin: origin.name, outcome, method: "GET", path: route.path, status, ttfbMs, totalMs: ttfbMs ?? 0, upstreamAddr });
        },
      },
      () => upgrades.delete(handle),
    );
    upgrades.add(handle);
  }

  function connect(_req: IncomingMessage, socket: Duplex): void {
    rawReject(socket, 405, "CONNECT is not supported: this is not an open proxy");
  }

  return {
    handle,
    upgrade,
    connect,
    inFlight: () => inFlight,
    upstreamSockets() {
      const out: Record<string, number> = {};
      for (const [name, st] of states) {
        let n = 0;
        for (const list of Object.values(st.agent.sockets)) n += list?.length ?? 0;
        for (const list of Object.values(st.agent.freeSockets)) n += list?.length ?? 0;
        out[name] = n;
      }
      return out;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const u of [...upgrades]) u.destroy();
      for (const st of states.values()) {
        st.agent.destroy();
        st.proxy.close();
      }
    },
  };
}
