/**
 * Tiny HTTP/1.1 helpers for tests: one request on a fresh connection (no
 * agent), and raw bytes on a TCP socket for cases a client library would
 * refuse to send (smuggling, CONNECT, oversized heads).
 */
import http from "node:http";
import net from "node:net";

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

export function request(
  address: string,
  opts: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer; timeoutMs?: number; agent?: http.Agent } = {},
): Promise<Reply> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, method: opts.method ?? "GET", path: opts.path ?? "/", headers: opts.headers, agent: opts.agent ?? false, setHost: !(opts.headers && "host" in opts.headers) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 15_000, () => req.destroy(new Error("test request timed out")));
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** Send raw bytes, collect everything until the peer closes (or idleMs of silence). */
export function rawRequest(address: string, bytes: string | Buffer, idleMs = 500): Promise<string> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host);
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(chunks).toString("latin1"));
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(done, idleMs);
    };
    s.on("connect", () => {
      s.write(bytes);
      arm();
    });
    s.on("data", (c: Buffer) => {
      chunks.push(c);
      arm();
    });
    s.on("end", done);
    s.on("close", done);
    s.on("error", (e) => (chunks.length ? done() : reject(e)));
  });
}

export function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(":");
  let host = address.slice(0, i);
  if (host.startsWith("[")) host = host.slice(1, -1);
  return [host, Number(address.slice(i + 1))];
}
