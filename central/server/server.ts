/**
 * One port for every protocol: gRPC (h2c), gRPC-Web and Connect over
 * HTTP/1.1 or h2c. Node's h2c server has no HTTP/1.1 fallback, so a plain TCP
 * listener sniffs the first bytes: the HTTP/2 connection preface ("PRI * ...")
 * goes to the http2 server, anything else to the http1 server. With TLS, ALPN
 * decides instead.
 *
 * Every protocol path has a timeout (issue 10 item 6; limits in
 * ServerLimits, defaults in central/config.ts):
 *   sniffing   a connection that shows no protocol within sniffTimeoutMs is closed
 *              (silent sockets, a partial HTTP/2 preface);
 *   HTTP/1.1   Node's own headersTimeout / requestTimeout checks (they only run
 *              on a server that "listens": we start them, see startHttp1Checks)
 *              and keepAliveTimeout between requests;
 *   HTTP/2     a session without open streams is closed after idleTimeoutMs
 *              (also one that never sends SETTINGS); a stream that is not
 *              long-lived must finish within requestTimeoutMs; sessions with open
 *              streams are PINGed every keepaliveMs and closed when a PING is not
 *              answered within keepaliveTimeoutMs — that, not a timer, bounds the
 *              long-lived ingest and watch streams;
 *   all        at most maxConnections connections (more are closed at once and
 *              counted) and maxConcurrentStreams streams per HTTP/2 session.
 */
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { ConnectRouter, ContextValues, Interceptor } from "@connectrpc/connect";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { CentralConfig } from "../config.js";
import { CentralError } from "../errors.js";

type AnyRequest = IncomingMessage | http2.Http2ServerRequest;
type AnyResponse = ServerResponse | http2.Http2ServerResponse;

/** Connection and stream limits: the central's options of that name (documented and validated in config.ts). */
export type ServerLimits = Pick<
  CentralConfig,
  "sniffTimeoutMs" | "headersTimeoutMs" | "requestTimeoutMs" | "idleTimeoutMs" | "keepaliveMs" | "keepaliveTimeoutMs" | "maxConnections" | "maxConcurrentStreams"
>;

/** What the limits closed or refused since start (for logs, tests and operators). */
export interface ServerCounters {
  connectionsRefused: number;
  sniffTimeouts: number;
  http2IdleClosed: number;
  http2StreamTimeouts: number;
  http2KeepaliveClosed: number;
  hostRefused: number;
}

export interface ServerOptions {
  host: string;
  port: number;
  routes: (router: ConnectRouter) => void;
  maxMessageBytes: number;
  limits: ServerLimits;
  /** Paths ("/pkg.Service/Method") of streams that may stay open: exempt from requestTimeoutMs, bounded by keepalive. */
  longLivedPaths?: Iterable<string>;
  /** Tried first: returns true when it answered the request (the Host guard of a tokenless central). */
  guard?: (req: AnyRequest, res: AnyResponse) => boolean;
  /** Plain HTTP routes (dashboard, /metrics) tried before the RPC router. */
  httpFallback?: (req: AnyRequest, res: AnyResponse) => boolean;
  /** TLS (PEM): the port speaks TLS with ALPN h2 and http/1.1; client certificates are requested and verified against ca. */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer };
  interceptors?: Interceptor[];
  contextValues?: (req: AnyRequest) => ContextValues;
  /** Called (at most once a second per kind) when a limit closes or refuses something. */
  onLimit?: (kind: keyof ServerCounters, counters: ServerCounters) => void;
}

export interface RunningServer {
  address: string;
  port: number;
  counters(): ServerCounters;
  /** Open connections right now. */
  connections(): number;
  close(): Promise<void>;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const L = opts.limits;
  const counters: ServerCounters = { connectionsRefused: 0, sniffTimeouts: 0, http2IdleClosed: 0, http2StreamTimeouts: 0, http2KeepaliveClosed: 0, hostRefused: 0 };
  const lastReport = new Map<keyof ServerCounters, number>();
  const count = (kind: keyof ServerCounters) => {
    counters[kind]++;
    const now = Date.now();
    if (now - (lastReport.get(kind) ?? 0) >= 1000) {
      lastReport.set(kind, now);
      opts.onLimit?.(kind, { ...counters });
    }
  };
  const longLived = new Set(opts.longLivedPaths ?? []);

  const rpc = connectNodeAdapter({
    routes: opts.routes,
    readMaxBytes: opts.maxMessageBytes,
    interceptors: opts.interceptors,
    contextValues: opts.contextValues,
    writeMaxBytes: 16 * opts.maxMessageBytes,
  });
  const handler = (req: AnyRequest, res: AnyResponse) => {
    if (opts.guard?.(req, res)) return count("hostRefused");
    if (opts.httpFallback?.(req, res)) return;
    rpc(req as IncomingMessage, res as ServerResponse);
  };

  const h1 = http.createServer({ maxHeaderSize: 16 * 1024 }, handler);
  startHttp1Checks(h1, L);

  const h2options = { maxSessionMemory: 64, settings: { maxHeaderListSize: 16 * 1024, maxConcurrentStreams: L.maxConcurrentStreams } };
  const h2 = opts.tls
    ? http2.createSecureServer(
        {
          ...h2options,
          key: opts.tls.key,
          cert: opts.tls.cert,
          ca: opts.tls.ca,
          // Verified, but not required at the handshake: operators use tokens,
          // sidecars are held to their certificate by the ingest gate.
          requestCert: Boolean(opts.tls.ca),
          rejectUnauthorized: false,
          allowHTTP1: true,
          minVersion: "TLSv1.2",
          // A TLS handshake must finish within the sniff timeout.
          handshakeTimeout: L.sniffTimeoutMs,
        },
        handler,
      )
    : http2.createServer(h2options, handler);
  // With TLS, HTTP/1.1 (ALPN http/1.1) is served by the http2 server's own
  // HTTP/1 path: the same checks, started the same way.
  if (opts.tls) startHttp1Checks(h2 as unknown as http.Server, L);

  const sockets = new Set<net.Socket>();
  const h2sessions = new Set<http2.Http2Session>();
  h2.on("session", (session) => {
    h2sessions.add(session);
    superviseSession(session, L, longLived, count);
    session.once("close", () => h2sessions.delete(session));
  });

  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };

  const onPlainConnection = (socket: net.Socket) => {
    track(socket);
    const sniffTimer = setTimeout(() => {
      count("sniffTimeouts");
      socket.destroy();
    }, L.sniffTimeoutMs);
    sniffTimer.unref();
    socket.once("close", () => clearTimeout(sniffTimer));
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, PREFACE.length);
      const isH2 = head.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && head.length < PREFACE.length) return; // need more bytes to decide
      clearTimeout(sniffTimer);
      socket.off("data", onData);
      socket.pause();
      socket.unshift(head);
      // http2 reads bytes already buffered on the socket on the next tick, so
      // the socket stays paused for it; http1 reads them once resumed.
      (isH2 ? h2 : h1).emit("connection", socket);
      if (!isH2) socket.resume();
    };
    socket.on("data", onData);
  };
  const onTlsConnection = (socket: net.Socket) => {
    track(socket);
    h2.emit("connection", socket);
  };
  const tcp = net.createServer(opts.tls ? onTlsConnection : onPlainConnection);
  tcp.maxConnections = L.maxConnections;
  tcp.on("drop", () => count("connectionsRefused"));

  await new Promise<void>((resolve, reject) => {
    tcp.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") {
        reject(new CentralError("CENTRAL_PORT_IN_USE", `cannot listen on ${opts.host}:${opts.port}: the port is already in use`, { cause: err }));
      } else {
        reject(new CentralError("CENTRAL_BAD_CONFIG", `cannot listen on ${opts.host}:${opts.port}: ${err.message}`, { cause: err }));
      }
    });
    tcp.listen(opts.port, opts.host, () => resolve());
  });
  const addr = tcp.address() as net.AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | undefined;
  return {
    address: `${host}:${addr.port}`,
    port: addr.port,
    counters: () => ({ ...counters }),
    connections: () => sockets.size,
    close() {
      closing ??= new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        for (const s of h2sessions) s.close();
        h1.closeIdleConnections();
        // Neither listens: close() only stops their HTTP/1.1 timeout checks.
        h1.close();
        if (opts.tls) h2.close();
        setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 1000).unref();
      });
      return closing;
    },
  };
}

/**
 * Node runs the HTTP/1.1 headersTimeout / requestTimeout checks only for a
 * server that emitted "listening" (it then tracks every parser and expires
 * them on connectionsCheckingInterval). Our http1 server is fed sockets by the
 * sniffer and never listens, so we emit the event to start the same checks.
 * server.test.ts proves they run: a partial head and a partial body are closed.
 */
function startHttp1Checks(server: http.Server, L: ServerLimits): void {
  server.headersTimeout = L.headersTimeoutMs;
  server.requestTimeout = L.requestTimeoutMs;
  server.keepAliveTimeout = L.idleTimeoutMs;
  // Read when the checks start: often enough for short test timeouts, at most once a second.
  (server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.max(50, Math.min(1000, Math.floor(L.headersTimeoutMs / 4)));
  server.emit("listening");
}

/** Idle, stream and keepalive timers of one HTTP/2 session. */
function superviseSession(
  session: http2.Http2Session,
  L: ServerLimits,
  longLived: Set<string>,
  count: (kind: keyof ServerCounters) => void,
): void {
  let open = 0;
  let idle: NodeJS.Timeout | undefined;
  let ping: NodeJS.Timeout | undefined;
  const end = (kind: keyof ServerCounters) => {
    if (session.destroyed) return;
    count(kind);
    session.close();
    setTimeout(() => session.destroy(), 1000).unref();
  };
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => end("http2IdleClosed"), L.idleTimeoutMs);
    idle.unref();
  };
  armIdle();
  ping = setInterval(() => {
    if (open === 0 || session.destroyed || session.closed) return;
    const deadline = setTimeout(() => {
      if (session.destroyed) return;
      count("http2KeepaliveClosed");
      session.destroy();
    }, L.keepaliveTimeoutMs);
    deadline.unref();
    try {
      const sent = session.ping((err) => {
        if (!err) clearTimeout(deadline);
      });
      if (!sent) clearTimeout(deadline);
    } catch {
      clearTimeout(deadline);
    }
  }, L.keepaliveMs);
  ping.unref();
  session.on("stream", (stream, headers) => {
    open++;
    clearTimeout(idle);
    idle = undefined;
    let timer: NodeJS.Timeout | undefined;
    if (!longLived.has(String(headers[":path"] ?? "").split("?")[0])) {
      timer = setTimeout(() => {
        if (stream.destroyed || stream.closed) return;
        count("http2StreamTimeouts");
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }, L.requestTimeoutMs);
      timer.unref();
    }
    stream.once("close", () => {
      clearTimeout(timer);
      open--;
      if (open === 0 && !session.destroyed) armIdle();
    });
  });
  session.once("close", () => {
    clearTimeout(idle);
    clearInterval(ping);
  });
}
