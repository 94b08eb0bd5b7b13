/**
 * Upgrade (WebSocket) requests to an origin that opted in (`upgrade: true`),
 * under the same rules as every other request: the caller has already routed
 * the request (421/400), refused it when the origin did not opt in, and
 * rewritten its headers (hop-by-hop fields and X-Forwarded-For by
 * headers.ts, Host per origin); this module only re-adds the two fields an
 * upgrade needs (`Connection: upgrade`, `Upgrade`), sends it through the
 * origin's pooled agent (same DNS, TLS identity and socket bound as the hop),
 * and then:
 *   - 101: the tunnel is spliced both ways and recorded once as `upgrade`;
 *     it is closed after `upgradeIdleTimeoutMs` without a byte either way;
 *   - any other response: passed to the cache (connection: close) and
 *     recorded by its status, like a normal request;
 *   - an error or a deadline (pool slot and connect: connectTimeoutMs, the
 *     101 or response head: firstByteTimeoutMs): recorded with the hop's
 *     outcome table and answered 502/503/504 with `x-originwatch-outcome`.
 * The cache going away before the answer is a client_abort.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import type { OriginConfig } from "../config.js";
import { downstreamResponseHeaders } from "./headers.js";
import {
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

export interface UpgradeRequest {
  origin: OriginConfig;
  agent: http.Agent;
  /** The cache's socket and the bytes it sent after the request head. */
  socket: Duplex;
  head: Buffer;
  /** Origin-form path (before the origin URL's base path is prepended). */
  path: string;
  /** Upstream headers, already rewritten by headers.ts (hop-by-hop gone, XFF set, Host chosen). */
  headers: IncomingHttpHeaders;
  /** The Upgrade value the cache asked for. */
  protocol: string;
  /** Called exactly once with the request's outcome. */
  complete(outcome: OutcomeClass, status: number, ttfbMs: number | undefined, upstreamAddr: string): void;
}

/** A running upgrade: destroy() ends it at once (shutdown). Idempotent. */
export interface UpgradeHandle {
  destroy(): void;
}

function joinPath(base: string, path: string): string {
  const b = base.replace(/\/+$/, "");
  return b ? `${b}${path}` : path;
}

function rawHead(status: number, message: string, raw: readonly string[], extra: Array<[string, string]>): string {
  let out = `HTTP/1.1 ${status} ${message}\r\n`;
  for (let i = 0; i < raw.length; i += 2) out += `${raw[i]}: ${raw[i + 1]}\r\n`;
  for (const [k, v] of extra) out += `${k}: ${v}\r\n`;
  return `${out}\r\n`;
}

/**
 * Send one upgrade to its origin and carry it to its end (see the module
 * contract). Never throws; `u.complete` is called exactly once, `onClose`
 * once when both sockets are gone.
 */
export function forwardUpgrade(u: UpgradeRequest, onClose: () => void): UpgradeHandle {
  const { origin, socket } = u;
  const start = performance.now();
  let phase: Phase = "queue";
  let done = false;
  let closed = false;
  let upstreamAddr = "";
  /** a response head (not 101) has been written to the cache */
  let answered = false;
  let tunnel: Socket | undefined;
  let timer: NodeJS.Timeout | undefined;

  const headers: http.OutgoingHttpHeaders = { ...u.headers, connection: "upgrade", upgrade: u.protocol };
  const secure = origin.url.protocol === "https:";
  const creq = (secure ? https : http).request({
    protocol: origin.url.protocol,
    hostname: origin.url.hostname.replace(/^\[|\]$/g, ""),
    port: origin.url.port || (secure ? 443 : 80),
    method: "GET",
    path: joinPath(origin.url.pathname, u.path),
    headers,
    agent: u.agent,
    setHost: false,
  });

  const record = (outcome: OutcomeClass, status: number, ttfb: number | undefined) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    u.complete(outcome, status, ttfb, upstreamAddr);
  };
  const closeAll = () => {
    clearTimeout(timer);
    creq.destroy();
    tunnel?.destroy();
    socket.destroy();
    if (!closed) {
      closed = true;
      onClose();
    }
  };
  const arm = (ms: number, code: string, message: string) => {
    clearTimeout(timer);
    timer = setTimeout(() => fail(Object.assign(new Error(message), { code })), ms);
    timer.unref();
  };
  const fail = (err: Error) => {
    if (done) return;
    if (answered) {
      record(socket.destroyed ? "client_abort" : "body_error", 0, undefined);
      return closeAll();
    }
    const outcome = classifyError(err, phase, socket.destroyed);
    record(outcome, 0, undefined);
    creq.destroy();
    if (outcome === "client_abort" || !socket.writable) return closeAll();
    const status = failureStatus(outcome);
    const text = `${status} ${outcome}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\ncontent-type: text/plain\r\ncontent-length: ${text.length}\r\n` +
        `cache-control: no-store\r\n${OUTCOME_HEADER}: ${outcome}\r\nconnection: close\r\n\r\n${text}`,
    );
    socket.once("close", closeAll);
  };

  arm(origin.connectTimeoutMs, POOL_EXHAUSTED_CODE, "no free upstream socket within connect timeout");
  creq.on("socket", (s: Socket) => {
    if (done) return;
    const toWait = () => {
      upstreamAddr = `${s.remoteAddress}:${s.remotePort}`;
      phase = "wait";
      arm(origin.firstByteTimeoutMs, FIRST_BYTE_TIMEOUT_CODE, "no upgrade answer within first-byte timeout");
    };
    if (!s.connecting) return toWait();
    phase = "connect";
    arm(origin.connectTimeoutMs, CONNECT_TIMEOUT_CODE, "no connection within connect timeout");
    s.once("connect", () => {
      if (s instanceof TLSSocket) {
        phase = "tls";
        s.once("secureConnect", toWait);
      } else toWait();
    });
  });
  creq.on("error", fail);

  socket.on("close", () => {
    if (!done) fail(Object.assign(new Error("the cache closed the upgrade request"), { code: "ECONNRESET" }));
    closeAll();
  });

  // The origin declined the upgrade: its answer goes to the cache like any response, then the connection ends.
  creq.on("response", (res: IncomingMessage) => {
    const ttfb = performance.now() - start;
    clearTimeout(timer);
    const status = res.statusCode ?? 502;
    res.on("error", () => {});
    if (!socket.writable) {
      res.destroy();
      return fail(Object.assign(new Error("the cache went away"), { code: "ECONNRESET" }));
    }
    answered = true;
    phase = "body";
    socket.write(rawHead(status, res.statusMessage ?? "", downstreamResponseHeaders(res.rawHeaders), [["connection", "close"]]));
    res.on("end", () => {
      record(classifyStatus(status), status, ttfb);
      socket.end();
    });
    res.on("close", () => {
      if (!res.complete) {
        record("body_error", status, ttfb);
        closeAll();
      }
    });
    res.pipe(socket, { end: false });
  });

  creq.on("upgrade", (res: IncomingMessage, up: Socket, upHead: Buffer) => {
    const ttfb = performance.now() - start;
    tunnel = up;
    up.on("error", () => {});
    if (done || socket.destroyed) {
      up.destroy();
      return;
    }
    record("upgrade", 101, ttfb);
    socket.write(
      rawHead(101, res.statusMessage || "Switching Protocols", downstreamResponseHeaders(res.rawHeaders), [
        ["Connection", "Upgrade"],
        ["Upgrade", String(res.headers.upgrade ?? u.protocol)],
      ]),
    );
    if (upHead.length) socket.write(upHead);
    if (u.head.length) up.write(u.head);
    // Idle deadline on both sockets: any byte either way is activity on each.
    up.setTimeout(origin.upgradeIdleTimeoutMs, closeAll);
    (socket as Socket).setTimeout?.(origin.upgradeIdleTimeoutMs, closeAll);
    up.on("close", closeAll);
    up.pipe(socket);
    socket.pipe(up);
  });

  creq.end();
  return { destroy: closeAll };
}
