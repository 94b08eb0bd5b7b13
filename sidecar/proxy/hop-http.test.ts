/**
 * HTTP correctness of the hop: streaming, framing, conditional and partial
 * responses, Expect, encodings, connection reuse and header rules.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import zlib from "node:zlib";
import { startOrigin, type Origin, type OriginMode } from "../../tools/origin.js";
import { request, splitAddress } from "../../tools/test/http-request.js";
import { startHarness, type Harness } from "../../tools/test/sidecar-harness.js";

const NAME = "www.example.com";

async function withOrigin(mode: OriginMode, sidecarOpts: Record<string, unknown>, fn: (o: Origin, h: Harness) => Promise<void>, top: Record<string, unknown> = {}) {
  const o = await startOrigin({ mode });
  const h = await startHarness({ ...top, origins: [{ name: NAME, url: o.url, ...sidecarOpts }] });
  try {
    await fn(o, h);
  } finally {
    await h.close();
    await o.close();
  }
}

const handler = (handle: (req: http.IncomingMessage, res: http.ServerResponse) => void): OriginMode => ({ kind: "handler", handle });

test("a chunked response streams through without buffering: the first chunk arrives before the origin finishes", async () => {
  await withOrigin(
    handler((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("first|");
      setTimeout(() => res.end("second"), 400);
    }),
    {},
    async (_o, h) => {
      const [host, port] = splitAddress(h.address);
      const t0 = performance.now();
      const result = await new Promise<{ firstAt: number; endAt: number; body: string; te?: string }>((resolve, reject) => {
        const req = http.request({ host, port, path: "/", headers: { host: NAME }, agent: false }, (res) => {
          let body = "";
          let firstAt = 0;
          res.on("data", (c: Buffer) => {
            if (!firstAt) firstAt = performance.now() - t0;
            body += c.toString();
          });
          res.on("end", () => resolve({ firstAt, endAt: performance.now() - t0, body, te: res.headers["transfer-encoding"] }));
        });
        req.on("error", reject);
        req.end();
      });
      assert.is(result.body, "first|second");
      assert.is(result.te, "chunked");
      assert.ok(result.firstAt < result.endAt - 250, `first chunk at ${result.firstAt} ms, end at ${result.endAt} ms`);
    },
  );
});

test("a chunked request body reaches the origin intact and re-framed", async () => {
  await withOrigin({ kind: "ok" }, {}, async (o, h) => {
    const [host, port] = splitAddress(h.address);
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ host, port, method: "POST", path: "/up", headers: { host: NAME, "transfer-encoding": "chunked" }, agent: false }, (res) => {
        res.resume();
        res.on("end", () => resolve());
      });
      req.on("error", reject);
      req.write("part-1;");
      setTimeout(() => {
        req.write("part-2;");
        req.end("part-3");
      }, 50);
    });
    assert.is(o.log[0].body.toString(), "part-1;part-2;part-3");
    assert.is(o.log[0].headers["transfer-encoding"], "chunked");
    assert.is(o.log[0].headers["content-length"], undefined);
    assert.is((await h.nthCompleted(1)).outcome, "ok");
    assert.is(h.windows()[0].bytesOut, 20n);
  });
});

test("Range requests get the origin's 206 and Content-Range", async () => {
  const data = "0123456789";
  await withOrigin(
    handler((req, res) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ""));
      if (!m) {
        res.writeHead(200, { "content-length": data.length, "accept-ranges": "bytes" }).end(data);
        return;
      }
      const [a, b] = [Number(m[1]), Number(m[2])];
      res.writeHead(206, { "content-range": `bytes ${a}-${b}/${data.length}`, "content-length": b - a + 1 }).end(data.slice(a, b + 1));
    }),
    {},
    async (_o, h) => {
      const r = await request(h.address, { headers: { host: NAME, range: "bytes=2-5" } });
      assert.is(r.status, 206);
      assert.is(r.headers["content-range"], "bytes 2-5/10");
      assert.is(r.body.toString(), "2345");
      assert.is((await h.nthCompleted(1)).outcome, "ok");
    },
  );
});

test("HEAD keeps Content-Length and carries no body", async () => {
  await withOrigin({ kind: "ok", body: "hello world" }, {}, async (o, h) => {
    const r = await request(h.address, { method: "HEAD", headers: { host: NAME } });
    assert.is(r.status, 200);
    assert.is(r.headers["content-length"], "11");
    assert.is(r.body.length, 0);
    assert.is(o.log[0].method, "HEAD");
    // the connection stays usable after a bodiless response
    const again = await request(h.address, { headers: { host: NAME } });
    assert.is(again.body.toString(), "hello world");
  });
});

test("conditional requests: If-None-Match reaches the origin and its 304 comes back without a body", async () => {
  await withOrigin(
    handler((req, res) => {
      if (req.headers["if-none-match"] === '"v1"') res.writeHead(304, { etag: '"v1"' }).end();
      else res.writeHead(200, { etag: '"v1"', "content-length": 4 }).end("body");
    }),
    {},
    async (_o, h) => {
      const r = await request(h.address, { headers: { host: NAME, "if-none-match": '"v1"' } });
      assert.is(r.status, 304);
      assert.is(r.headers.etag, '"v1"');
      assert.is(r.body.length, 0);
      assert.is((await h.nthCompleted(1)).outcome, "ok");
    },
  );
});

test("Expect: 100-continue: the cache gets 100 Continue, then the body reaches the origin", async () => {
  await withOrigin({ kind: "ok" }, {}, async (o, h) => {
    const [host, port] = splitAddress(h.address);
    let continued = false;
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host, port, method: "PUT", path: "/obj", headers: { host: NAME, expect: "100-continue", "content-length": 5 }, agent: false }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("continue", () => {
        continued = true;
        req.end("12345");
      });
      req.on("error", reject);
      req.flushHeaders();
    });
    assert.ok(continued, "100 Continue received");
    assert.is(status, 200);
    assert.is(o.log[0].body.toString(), "12345");
  });
});

test("gzip passes through byte for byte (no decoding, no re-encoding)", async () => {
  const gz = zlib.gzipSync(Buffer.from("compressible ".repeat(500)));
  await withOrigin(
    handler((req, res) => {
      res.writeHead(200, { "content-encoding": "gzip", "content-length": gz.length, vary: "accept-encoding", "x-ae": String(req.headers["accept-encoding"]) }).end(gz);
    }),
    {},
    async (_o, h) => {
      const r = await request(h.address, { headers: { host: NAME, "accept-encoding": "gzip" } });
      assert.is(r.headers["content-encoding"], "gzip");
      assert.is(r.headers["x-ae"], "gzip");
      assert.ok(r.body.equals(gz));
    },
  );
});

test("keep-alive on both sides: one cache connection and one origin connection for 20 sequential requests", async () => {
  await withOrigin({ kind: "ok" }, {}, async (o, h) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ports = new Set<number>();
    const [host, port] = splitAddress(h.address);
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = http.request({ host, port, path: `/${i}`, headers: { host: NAME }, agent }, (res) => {
          ports.add(res.socket.localPort ?? 0);
          res.resume();
          res.on("end", () => resolve());
        });
        req.on("error", reject);
        req.end();
      });
    }
    agent.destroy();
    assert.is(ports.size, 1, "the cache side reused its connection");
    assert.is(o.connections, 1, "the origin side reused its connection");
    assert.is(o.requests, 20);
  });
});

test("the per-origin agent is bounded: 12 concurrent requests use at most maxSockets origin connections", async () => {
  await withOrigin({ kind: "delay", ms: 150 }, { maxSockets: 3 }, async (o, h) => {
    const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => request(h.address, { path: `/${i}`, headers: { host: NAME } })));
    assert.ok(rs.every((r) => r.status === 200));
    assert.ok(o.connections <= 3, `origin saw ${o.connections} connections`);
    assert.is(o.requests, 12);
  });
});

test("hop-by-hop headers are stripped in both directions", async () => {
  await withOrigin(
    handler((_req, res) => {
      res.setHeader("connection", "x-resp-hop");
      res.setHeader("x-resp-hop", "secret");
      res.setHeader("keep-alive", "timeout=99");
      res.setHeader("proxy-authenticate", "Basic");
      res.setHeader("upgrade", "h2c");
      res.setHeader("x-end-to-end", "kept");
      res.writeHead(200, { "content-length": 2 }).end("ok");
    }),
    {},
    async (o, h) => {
      const r = await request(h.address, {
        method: "POST",
        body: "abc",
        headers: {
          host: NAME,
          connection: "keep-alive, x-req-hop",
          "x-req-hop": "secret",
          "keep-alive": "timeout=5",
          "proxy-connection": "keep-alive",
          te: "trailers",
          upgrade: "websocket",
          "proxy-authorization": "Basic Zm9vOmJhcg==",
          "x-end-to-end": "kept",
          "transfer-encoding": "chunked",
        },
      });
      assert.is(r.status, 200);
      const up = o.log[0].headers;
      for (const f of ["x-req-hop", "keep-alive", "proxy-connection", "te", "upgrade", "proxy-authorization"]) assert.is(up[f], undefined, `${f} reached the origin`);
      assert.ok(up.connection === undefined || up.connection === "keep-alive", `origin saw connection: ${up.connection}`);
      assert.is(up["x-end-to-end"], "kept");
      assert.is(o.log[0].body.toString(), "abc");
      const down = r.headers;
      for (const f of ["x-resp-hop", "proxy-authenticate", "upgrade"]) assert.is(down[f], undefined, `${f} reached the cache`);
      assert.ok(!String(down["keep-alive"] ?? "").includes("99"), "the origin's Keep-Alive leaked");
      assert.ok(!String(down.connection ?? "").includes("x-resp-hop"));
      assert.is(down["x-end-to-end"], "kept");
    },
  );
});

test("X-Forwarded-For: appended for a trusted peer (loopback by default)", async () => {
  await withOrigin({ kind: "ok" }, {}, async (o, h) => {
    await request(h.address, { headers: { host: NAME, "x-forwarded-for": "203.0.113.9" } });
    assert.is(o.log[0].headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    await request(h.address, { headers: { host: NAME } });
    assert.is(o.log[1].headers["x-forwarded-for"], "127.0.0.1");
  });
});

test("X-Forwarded-For: replaced for an untrusted peer", async () => {
  await withOrigin(
    { kind: "ok" },
    {},
    async (o, h) => {
      await request(h.address, { headers: { host: NAME, "x-forwarded-for": "203.0.113.9" } });
      assert.is(o.log[0].headers["x-forwarded-for"], "127.0.0.1");
    },
    { trustedPeers: ["10.0.0.0/8"] },
  );
});

test("per origin: the cache's Host is preserved, or the upstream's host is sent", async () => {
  const o = await startOrigin();
  const h = await startHarness({
    origins: [
      { name: "keep.example.com", url: o.url },
      { name: "swap.example.com", url: o.url, preserveHost: false },
    ],
  });
  try {
    await request(h.address, { headers: { host: "keep.example.com" } });
    await request(h.address, { headers: { host: "swap.example.com:8081" } });
    assert.is(o.log[0].headers.host, "keep.example.com");
    assert.is(o.log[1].headers.host, `127.0.0.1:${o.port}`);
  } finally {
    await h.close();
    await o.close();
  }
});

test("an origin URL with a base path is prefixed to the request path", async () => {
  const o = await startOrigin();
  const h = await startHarness({ origins: [{ name: NAME, url: `${o.url}/base` }] });
  try {
    await request(h.address, { path: "/a/b?c=1", headers: { host: NAME } });
    assert.is(o.log[0].url, "/base/a/b?c=1");
  } finally {
    await h.close();
    await o.close();
  }
});

test.run();
