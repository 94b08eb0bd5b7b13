/**
 * A small keep-alive HTTP/1.1 load generator for loopback benchmarks: N raw
 * TCP connections, one request in flight per connection, bounded by time and
 * count, optionally rate-limited. Responses must be Content-Length framed
 * (or chunked). Latencies are kept per request for exact percentiles.
 */
import net from "node:net";

export interface LoadOptions {
  /** HOST:PORT */
  address: string;
  host: string;
  paths: string[];
  connections: number;
  durationMs: number;
  /** Stop after this many requests (default: unbounded within durationMs). */
  maxRequests?: number;
  /** Requests per second across all connections (default: as fast as possible). */
  rate?: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  elapsedMs: number;
  statuses: Record<number, number>;
  latenciesMs: Float64Array;
}

export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const i = opts.address.lastIndexOf(":");
  const host = opts.address.slice(0, i);
  const port = Number(opts.address.slice(i + 1));
  const reqs = opts.paths.map((p) => Buffer.from(`GET ${p} HTTP/1.1\r\nHost: ${opts.host}\r\nUser-Agent: originwatch-bench\r\n\r\n`));
  const cap = opts.maxRequests ?? Math.ceil((opts.rate ?? 200_000) * (opts.durationMs / 1000) * 1.2) + 1000;
  const lat = new Float64Array(Math.min(cap, 20_000_000));
  const statuses: Record<number, number> = {};
  let n = 0;
  let issued = 0;
  let errors = 0;
  const start = performance.now();
  const deadline = start + opts.durationMs;

  const conn = (id: number) =>
    new Promise<void>((resolve) => {
      let sock: net.Socket;
      let buf: Buffer = Buffer.alloc(0);
      let sentAt = 0;
      let pathIdx = id;
      let closed = false;
      const open = () => {
        sock = net.connect(port, host);
        sock.setNoDelay(true);
        sock.on("connect", next);
        sock.on("data", onData);
        sock.on("error", () => {});
        sock.on("close", () => {
          if (closed) return;
          // server closed (e.g. Connection: close): count an in-flight request as an error, reconnect
          if (sentAt) errors++;
          sentAt = 0;
          buf = Buffer.alloc(0);
          if (performance.now() < deadline && issued < cap) setTimeout(open, 5);
          else finish();
        });
      };
      const finish = () => {
        if (closed) return;
        closed = true;
        sock.destroy();
        resolve();
      };
      const next = () => {
        const now = performance.now();
        if (now >= deadline || issued >= cap || issued >= lat.length) return finish();
        if (opts.rate) {
          const due = start + (issued / opts.rate) * 1000;
          if (due > now + 1) {
            setTimeout(next, due - now);
            return;
          }
        }
        issued++;
        sentAt = performance.now();
        pathIdx = (pathIdx + 1) % reqs.length;
        sock.write(reqs[pathIdx]);
      };
      const onData = (chunk: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        for (;;) {
          const he = buf.indexOf("\r\n\r\n");
          if (he < 0) return;
          const head = buf.subarray(0, he).toString("latin1");
          const status = Number(head.slice(9, 12));
          if (status >= 100 && status < 200) {
            buf = buf.subarray(he + 4);
            continue;
          }
          const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          let total: number;
          if (cl) total = he + 4 + Number(cl[1]);
          else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
            const end = buf.indexOf("\r\n0\r\n\r\n", he);
            if (end < 0) return;
            total = end + 7;
          } else total = he + 4;
          if (buf.length < total) return;
          buf = buf.subarray(total);
          lat[n++] = performance.now() - sentAt;
          sentAt = 0;
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (/\r\nconnection:\s*close/i.test(head)) {
            sock.destroy();
            return;
          }
          next();
        }
      };
      open();
    });

  await Promise.all(Array.from({ length: opts.connections }, (_, k) => conn(k)));
  return { requests: n, errors, elapsedMs: performance.now() - start, statuses, latenciesMs: lat.slice(0, n).sort() };
}
