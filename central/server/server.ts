/**
 * One port for every protocol: gRPC (h2c), gRPC-Web and Connect over
 * HTTP/1.1 or h2c. Node's h2c server has no HTTP/1.1 fallback, so a plain TCP
 * listener sniffs the first bytes: the HTTP/2 connection preface ("PRI * ...")
 * goes to the http2 server, anything else to the http1 server.
 */
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { ConnectRouter, ContextValues, Interceptor } from "@connectrpc/connect";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import { CentralError } from "../errors.js";

export interface ServerOptions {
  host: string;
  port: number;
  routes: (router: ConnectRouter) => void;
  maxMessageBytes: number;
  /** Plain HTTP routes (dashboard, /metrics) tried before the RPC router. */
  httpFallback?: (req: IncomingMessage | http2.Http2ServerRequest, res: ServerResponse | http2.Http2ServerResponse) => boolean;
  /** TLS (PEM): the port speaks TLS with ALPN h2 and http/1.1; client certificates are requested and verified against ca. */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer };
  interceptors?: Interceptor[];
  contextValues?: (req: IncomingMessage | http2.Http2ServerRequest) => ContextValues;
}

export interface RunningServer {
  address: string;
  port: number;
  close(): Promise<void>;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const rpc = connectNodeAdapter({
    routes: opts.routes,
    readMaxBytes: opts.maxMessageBytes,
    interceptors: opts.interceptors,
    contextValues: opts.contextValues,
    writeMaxBytes: 16 * opts.maxMessageBytes,
  });
  const handler = (req: IncomingMessage | http2.Http2ServerRequest, res: ServerResponse | http2.Http2ServerResponse) => {
    if (opts.httpFallback?.(req, res)) return;
    rpc(req as IncomingMessage, res as ServerResponse);
  };
  const h1 = http.createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 60_000 }, handler);
  h1.keepAliveTimeout = 65_000;
  const h2 = opts.tls
    ? http2.createSecureServer(
        {
          key: opts.tls.key,
          cert: opts.tls.cert,
          ca: opts.tls.ca,
          // Verified, but not required at the handshake: operators use tokens,
          // sidecars are held to their certificate by the ingest gate.
          requestCert: Boolean(opts.tls.ca),
          rejectUnauthorized: false,
          allowHTTP1: true,
          minVersion: "TLSv1.2",
          maxSessionMemory: 64,
          settings: { maxHeaderListSize: 16 * 1024 },
        },
        handler,
      )
    : http2.createServer({ maxSessionMemory: 64, settings: { maxHeaderListSize: 16 * 1024 } }, handler);
  const sockets = new Set<net.Socket>();
  const h2sessions = new Set<http2.Http2Session>();
  h2.on("session", (s) => {
    h2sessions.add(s);
    s.once("close", () => h2sessions.delete(s));
  });

  const onPlainConnection = (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, PREFACE.length);
      const isH2 = head.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && head.length < PREFACE.length) return; // need more bytes to decide
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
  // With TLS, ALPN picks the protocol; without, sniff the HTTP/2 preface.
  const tcp = opts.tls
    ? net.createServer((socket) => {
        sockets.add(socket);
        socket.once("close", () => sockets.delete(socket));
        socket.on("error", () => socket.destroy());
        h2.emit("connection", socket);
      })
    : net.createServer(onPlainConnection);

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
    close() {
      closing ??= new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        for (const s of h2sessions) s.close();
        h1.closeIdleConnections();
        setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 1000).unref();
      });
      return closing;
    },
  };
}
