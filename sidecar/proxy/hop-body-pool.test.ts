/**
 * Issue 11 item 4: a response body that stops is cut at the body idle timeout
 * and frees its upstream socket (body_timeout, a failure); requests waiting
 * for a slot in the bounded pool are pool_exhausted, not connect_timeout.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import { startOrigin, type OriginMode } from "../../tools/origin.js";
import { request, splitAddress } from "../../tools/test/http-request.js";
import { startHarness } from "../../tools/test/sidecar-harness.js";
import { eventually } from "../../tools/test/proc.js";

const NAME = "www.example.com";

/** Head plus one byte of a longer body, then silence (the connection stays open). */
const headThenSilence: OriginMode = {
  kind: "handler",
  handle: (_req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": 1000 });
    res.write("x");
  },
};

/** GET through the sidecar; resolves with the bytes received and how the response ended. */
function getRaw(address: string): Promise<{ status: number; bytes: number; ended: "complete" | "cut"; ms: number }> {
  const [host, port] = splitAddress(address);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: "/", headers: { host: NAME }, agent: false }, (res) => {
      let bytes = 0;
      res.on("data", (c: Buffer) => (bytes += c.length));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes, ended: "complete", ms: performance.now() - t0 }));
      res.on("error", () => resolve({ status: res.statusCode ?? 0, bytes, ended: "cut", ms: performance.now() - t0 }));
      res.on("close", () => {
        if (!res.complete) resolve({ status: res.statusCode ?? 0, bytes, ended: "cut", ms: performance.now() - t0 });
      });
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error("test request timed out")));
  });
}

test("a body that stops after the head and one byte is cut at the body idle timeout; the socket is freed for the next request", async () => {
  const o = await startOrigin({ mode: headThenSilence });
  const h = await startHarness({ origins: [{ name: NAME, url: o.url, maxSockets: 1, bodyIdleTimeoutMs: 400 }] });
  try {
    const r = await getRaw(h.address);
    assert.is(r.status, 200);
    assert.is(r.bytes, 1);
    assert.is(r.ended, "cut", "the cache sees a cut body (it must not cache it)");
    assert.ok(r.ms >= 380 && r.ms < 4000, `cut after ${r.ms.toFixed(0)} ms (timeout 400 ms)`);
    const c = await h.nthCompleted(1);
    assert.is(c.outcome, "body_timeout");
    assert.is(h.count("bodyTimeout"), 1);
    assert.is(h.count("bodyError"), 0);
    // the upstream socket is gone: the origin sees it closed, and the one-socket pool serves the next request
    await eventually(() => o.openConnections() === 0, 3000, 20);
    await o.setMode({ kind: "ok", body: "next\n" });
    const next = await request(h.address, { headers: { host: NAME }, timeoutMs: 3000 });
    assert.is(next.status, 200);
    assert.is(next.body.toString(), "next\n");
    assert.is(h.count("poolExhausted"), 0);
  } finally {
    await h.close();
    await o.close();
  }
});

test("a slow but moving body is not cut: bytes every 150 ms with a 400 ms idle timeout", async () => {
  const o = await startOrigin({
    mode: {
      kind: "handler",
      handle: (_req, res) => {
        res.writeHead(200, { "content-length": 8 });
        let n = 0;
        const t = setInterval(() => {
          res.write("y");
          if (++n === 8) {
            clearInterval(t);
            res.end();
          }
        }, 150);
        res.on("close", () => clearInterval(t));
      },
    },
  });
  const h = await startHarness({ origins: [{ name: NAME, url: o.url, bodyIdleTimeoutMs: 400 }] });
  try {
    const r = await getRaw(h.address);
    assert.is(r.ended, "complete");
    assert.is(r.bytes, 8);
    assert.is((await h.nthCompleted(1)).outcome, "ok");
  } finally {
    await h.close();
    await o.close();
  }
});

test("a cache that stops reading is not the origin's silence: an 8 MB body paused by backpressure past the idle timeout completes", async () => {
  const o = await startOrigin({ mode: { kind: "stream", bytes: 8 << 20, lengthKnown: true } });
  const h = await startHarness({ origins: [{ name: NAME, url: o.url, bodyIdleTimeoutMs: 300 }] });
  try {
    const [host, port] = splitAddress(h.address);
    const got = await new Promise<{ bytes: number; complete: boolean }>((resolve, reject) => {
      http.get({ host, port, path: "/", headers: { host: NAME }, agent: false }, (res) => {
        let bytes = 0;
        res.once("data", (c: Buffer) => {
          bytes += c.length;
          res.pause();
          setTimeout(() => {
            res.on("data", (d: Buffer) => (bytes += d.length));
            res.resume();
          }, 1000);
        });
        res.on("end", () => resolve({ bytes, complete: res.complete }));
        res.on("close", () => {
          if (!res.complete) resolve({ bytes, complete: false });
        });
      }).on("error", reject);
    });
    assert.ok(got.complete, `cut after ${got.bytes} bytes`);
    assert.is(got.bytes, 8 << 20);
    assert.is((await h.nthCompleted(1)).outcome, "ok");
    assert.is(h.count("bodyTimeout"), 0);
  } finally {
    await h.close();
    await o.close();
  }
});

test("the global --body-idle-timeout-ms applies to origins without their own", async () => {
  const o = await startOrigin({ mode: headThenSilence });
  const h = await startHarness({ bodyIdleTimeoutMs: 300, origins: [{ name: NAME, url: o.url }] });
  try {
    assert.is(h.sc.config.origins[0].bodyIdleTimeoutMs, 300);
    const r = await getRaw(h.address);
    assert.is(r.ended, "cut");
    assert.is((await h.nthCompleted(1)).outcome, "body_timeout");
  } finally {
    await h.close();
    await o.close();
  }
});

test("requests queued behind a full pool are pool_exhausted (503), not connect_timeout; the origin saw none of them", async () => {
  const o = await startOrigin({ mode: { kind: "blackhole" } });
  const h = await startHarness({ origins: [{ name: NAME, url: o.url, maxSockets: 1, connectTimeoutMs: 300, firstByteTimeoutMs: 1500, stallMs: 100 }] });
  try {
    const first = request(h.address, { headers: { host: NAME }, timeoutMs: 10_000 });
    await eventually(() => o.requests === 1, 3000, 10);
    const queued = await request(h.address, { headers: { host: NAME }, timeoutMs: 5000 });
    assert.is(queued.status, 503);
    assert.is(queued.headers["x-originwatch-outcome"], "pool_exhausted");
    assert.is(o.requests, 1, "the queued request never reached the origin");
    assert.is(h.count("poolExhausted"), 1);
    assert.is(h.count("connectTimeout"), 0);
    // only the request that held the socket stalled; waiting for a pool slot is not a stall of the origin
    assert.is(h.count("stall"), 1);
    await o.setMode({ kind: "ok" });
    const r1 = await first;
    assert.is(r1.status, 504, "the first one still ends at its own first-byte deadline");
  } finally {
    await h.close();
    await o.close();
  }
});

test.run();
