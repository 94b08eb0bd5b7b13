/**
 * A controllable origin for tests, the demo and benchmarks: an HTTP server on
 * loopback (port 0 by default) that counts connections and requests and whose
 * behaviour is switched at runtime with setMode(). It never talks to anything
 * but its own clients.
 */
import { createHash } from "node:crypto";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";

export type OriginMode =
  /** 200 (or `status`) with `body` (default "ok\n") and extra headers. */
  | { kind: "ok"; status?: number; body?: string | Buffer; headers?: Record<string, string> }
  /** Reply with this status and a short body. */
  | { kind: "status"; status: number }
  /** Wait ms before sending the response head (then like ok). */
  | { kind: "delay"; ms: number; body?: string }
  /** Close the listener and every open connection: new connects get RST. */
  | { kind: "refuse" }
  /** Accept and read requests, never answer. */
  | { kind: "blackhole" }
  /** Answer every request with a TCP RST before any byte. */
  | { kind: "reset" }
  /** Send the head and `bytes` of a longer body, then destroy the connection. */
  | { kind: "die-mid-body"; bytes?: number }
  /** Stream `bytes` of generated body in 64 KiB chunks (chunked unless lengthKnown). */
  | { kind: "stream"; bytes: number; lengthKnown?: boolean }
  /** Full control. */
  | { kind: "handler"; handle: (req: IncomingMessage, res: ServerResponse) => void };

export interface RecordedRequest {
  method: string;
  url: string;
  /** Raw header pairs as received. */
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  body: Buffer;
  remotePort: number;
}

export interface Origin {
  host: string;
  port: number;
  /** http://127.0.0.1:PORT (or https://localhost:PORT with tls) */
  url: string;
  /** Connections accepted since start (or since resetCounts). */
  connections: number;
  /** Requests received (any mode), probes included. */
  requests: number;
  /** Of those, the sidecars' probes (`x-originwatch-probe: 1`): traffic totals do not count them. */
  probeRequests: number;
  /** Connections currently open. */
  openConnections(): number;
  /** The last 1,000 requests (body kept up to 1 MiB each). */
  log: RecordedRequest[];
  /** TLS only: the SNI name of each accepted connection ("" when none). */
  sniNames: string[];
  /** Upgrade requests received (with `upgrade: "echo"`), newest last. */
  upgrades: RecordedRequest[];
  setMode(mode: OriginMode): Promise<void>;
  mode(): OriginMode;
  resetCounts(): void;
  close(): Promise<void>;
  server: http.Server;
}

export interface StartOriginOptions {
  host?: string;
  port?: number;
  mode?: OriginMode;
  /** Serve HTTPS with this key/cert (PEM). */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /**
   * Upgrade requests: "echo" answers 101 (Upgrade echoed, a WebSocket-ish
   * Sec-WebSocket-Accept) and echoes every byte back prefixed "echo:";
   * "decline" answers 426 with a body. Unset: no upgrade listener (Node drops them).
   */
  upgrade?: "echo" | "decline";
}

const CHUNK = Buffer.alloc(64 * 1024, "x");

export async function startOrigin(opts: StartOriginOptions = {}): Promise<Origin> {
  const host = opts.host ?? "127.0.0.1";
  let mode: OriginMode = opts.mode ?? { kind: "ok" };
  const sockets = new Set<Socket>();
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    origin.requests++;
    if (req.headers["x-originwatch-probe"] === "1") origin.probeRequests++;
    const rec: RecordedRequest = {
      method: req.method ?? "",
      url: req.url ?? "",
      rawHeaders: req.rawHeaders,
      headers: req.headers,
      bodyBytes: 0,
      body: Buffer.alloc(0),
      remotePort: req.socket.remotePort ?? 0,
    };
    origin.log.push(rec);
    if (origin.log.length > 1000) origin.log.shift();
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      rec.bodyBytes += c.length;
      if (rec.bodyBytes <= 1 << 20) chunks.push(c);
    });
    req.on("end", () => {
      rec.body = Buffer.concat(chunks);
    });
    req.on("error", () => {});
    res.on("error", () => {});
    const m = mode;
    // ok/status answer once the request body is in (an echo-like origin); the rest act at once
    if ((m.kind === "ok" || m.kind === "status") && !req.complete) req.once("end", () => serve(m, req, res));
    else serve(m, req, res);
  };
  const server = opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 30_000;
  const onConn = (s: Socket) => {
    origin.connections++;
    if (opts.tls) origin.sniNames.push(String((s as Socket & { servername?: string | false }).servername || ""));
    sockets.add(s);
    s.on("error", () => {});
    s.once("close", () => sockets.delete(s));
  };
  server.on(opts.tls ? "secureConnection" : "connection", onConn);
  if (opts.tls) server.on("tlsClientError", () => {});
  server.on("clientError", (_e, s) => s.destroy());
  if (opts.upgrade) {
    server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      socket.on("error", () => {});
      origin.upgrades.push({ method: req.method ?? "", url: req.url ?? "", rawHeaders: req.rawHeaders, headers: req.headers, bodyBytes: 0, body: Buffer.alloc(0), remotePort: req.socket.remotePort ?? 0 });
      if (opts.upgrade === "decline") {
        socket.end("HTTP/1.1 426 Upgrade Required\r\ncontent-type: text/plain\r\ncontent-length: 9\r\nconnection: close\r\n\r\ndeclined\n");
        return;
      }
      const key = String(req.headers["sec-websocket-key"] ?? "");
      const accept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      if (head.length) socket.write(Buffer.concat([Buffer.from("echo:"), head]));
      socket.on("data", (d: Buffer) => socket.write(Buffer.concat([Buffer.from("echo:"), d])));
      socket.on("end", () => socket.end());
    });
  }

  await listen(server, opts.port ?? 0, host);
  const port = (server.address() as AddressInfo).port;
  let listening = true;

  const origin: Origin = {
    host,
    port,
    url: `${opts.tls ? "https" : "http"}://${opts.tls ? "localhost" : host}:${port}`,
    connections: 0,
    requests: 0,
    probeRequests: 0,
    log: [],
    sniNames: [],
    upgrades: [],
    server,
    openConnections: () => sockets.size,
    mode: () => mode,
    resetCounts() {
      origin.connections = 0;
      origin.requests = 0;
      origin.probeRequests = 0;
      origin.log.length = 0;
      origin.sniNames.length = 0;
      origin.upgrades.length = 0;
    },
    async setMode(next) {
      mode = next;
      if (next.kind === "refuse") {
        if (listening) {
          listening = false;
          await new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
            for (const s of sockets) s.destroy();
          });
        }
      } else if (!listening) {
        await listen(server, port, host);
        listening = true;
      }
    },
    async close() {
      for (const s of sockets) s.destroy();
      if (!listening) return;
      listening = false;
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    },
  };
  return origin;
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (e: Error) => reject(e);
    server.once("error", onErr);
    server.listen(port, host, () => {
      server.off("error", onErr);
      resolve();
    });
  });
}

function serve(mode: OriginMode, req: IncomingMessage, res: ServerResponse): void {
  switch (mode.kind) {
    case "ok": {
      const body = mode.body ?? "ok\n";
      res.writeHead(mode.status ?? 200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body), ...mode.headers });
      res.end(body);
      return;
    }
    case "status": {
      const body = `${mode.status}\n`;
      res.writeHead(mode.status, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    case "delay": {
      const t = setTimeout(() => {
        if (res.destroyed) return;
        const body = mode.body ?? "ok\n";
        res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
        res.end(body);
      }, mode.ms);
      res.once("close", () => clearTimeout(t));
      return;
    }
    case "refuse":
    case "blackhole":
      return;
    case "reset":
      req.socket.resetAndDestroy();
      return;
    case "die-mid-body": {
      const n = mode.bytes ?? 1024;
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": n * 4 });
      res.write(Buffer.alloc(n, "y"), () => setTimeout(() => req.socket.destroy(), 20));
      return;
    }
    case "stream": {
      let left = mode.bytes;
      res.writeHead(200, { "content-type": "application/octet-stream", ...(mode.lengthKnown ? { "content-length": mode.bytes } : {}) });
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, CHUNK.length);
          left -= n;
          if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
            res.once("drain", pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    case "handler":
      mode.handle(req, res);
      return;
  }
}
