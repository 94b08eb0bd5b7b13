/**
 * Baseline for bench:hop: a bare http-proxy hop with the same agent settings
 * as the sidecar (keep-alive, maxSockets 256, maxFreeSockets 64, lifo) and an
 * error handler, nothing else. Run as a child: prints {"address": ...}.
 * argv: <originUrl>
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import httpProxy from "http-proxy";

const target = process.argv[2];
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: "lifo" });
const proxy = httpProxy.createProxyServer({ target, agent });
proxy.on("error", (_e, _req, res) => {
  const r = res as http.ServerResponse;
  if (!r.headersSent) r.writeHead(502);
  r.end();
});
const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => {
  const a = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ msg: "listening", component: "bench-bare", address: `127.0.0.1:${a.port}` })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
