/**
 * The origin for bench:hop, as a child process: tools/origin.ts serving
 * paths by prefix — /s small 200, /m 10 KiB, /l 100 KiB, /404, /503.
 * Prints {"msg":"listening","address":...}.
 */
import { startOrigin } from "../origin.js";

const small = "ok\n";
const m = Buffer.alloc(10 * 1024, "m");
const l = Buffer.alloc(100 * 1024, "l");
const origin = await startOrigin({
  mode: {
    kind: "handler",
    handle(req, res) {
      const p = req.url ?? "/";
      if (p.startsWith("/404")) res.writeHead(404, { "content-length": 4 }).end("nope");
      else if (p.startsWith("/503")) res.writeHead(503, { "content-length": 4 }).end("down");
      else if (p.startsWith("/m")) res.writeHead(200, { "content-type": "application/octet-stream", "content-length": m.length }).end(m);
      else if (p.startsWith("/l")) res.writeHead(200, { "content-type": "application/octet-stream", "content-length": l.length }).end(l);
      else res.writeHead(200, { "content-type": "text/plain", "content-length": small.length }).end(small);
    },
  },
});
origin.server.keepAliveTimeout = 65_000;
process.stdout.write(`${JSON.stringify({ msg: "listening", component: "bench-origin", address: `127.0.0.1:${origin.port}` })}\n`);
process.on("SIGTERM", () => process.exit(0));
