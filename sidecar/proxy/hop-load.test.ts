/**
 * Resource behaviour under load: client aborts leave no upstream sockets, and
 * large bodies stream both ways with flat memory (measured on a child process).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import { readFileSync } from "node:fs";
import { startOrigin } from "../../tools/origin.js";
import { splitAddress } from "../../tools/test/http-request.js";
import { deadPort, startHarness } from "../../tools/test/sidecar-harness.js";
import { eventually, startOriginwatch } from "../../tools/test/proc.js";

const NAME = "www.example.com";

test("10,000 aborted requests leave no upstream sockets open after 5 s", async () => {
  // The origin never answers; each client aborts once its request has reached the origin,
  // so every one of the 10,000 exercises the upstream-abort path.
  const arrived = new Map<string, () => void>();
  const o = await startOrigin({
    mode: {
      kind: "handler",
      handle: (req) => {
        arrived.get(req.url ?? "")?.();
      },
    },
  });
  const h = await startHarness({ origins: [{ name: NAME, url: o.url, maxSockets: 512 }] });
  const [host, port] = splitAddress(h.address);
  try {
    const total = 10_000;
    let started = 0;
    let reached = 0;
    let peakUpstream = 0;
    const one = (i: number) =>
      new Promise<void>((resolve) => {
        const path = `/abort/${i}`;
        const req = http.request({ host, port, path, headers: { host: NAME }, agent: false });
        const abort = () => {
          arrived.delete(path);
          req.destroy();
        };
        const timer = setTimeout(abort, 10_000); // a safety net only: under machine load a request may take seconds to reach the origin
        arrived.set(path, () => {
          reached++;
          clearTimeout(timer);
          abort();
        });
        req.on("error", () => resolve());
        req.on("close", () => resolve());
        req.on("response", (res) => res.resume());
        req.end();
      });
    const worker = async () => {
      while (started < total) await one(started++);
    };
    const sampler = setInterval(() => {
      peakUpstream = Math.max(peakUpstream, o.openConnections());
    }, 50);
    await Promise.all(Array.from({ length: 200 }, worker));
    clearInterval(sampler);
    assert.ok(reached >= total * 0.99, `only ${reached} of ${total} requests reached the origin before the abort`);
    assert.ok(peakUpstream > 0);
    const t0 = Date.now();
    await eventually(() => o.openConnections() === 0 && Object.values(h.sc.hop.upstreamSockets()).every((n) => n === 0), 5000, 50);
    const after = Date.now() - t0;
    assert.ok(after <= 5000, `sockets lingered ${after} ms`);
    await eventually(() => h.sc.hop.inFlight() === 0, 2000);
    assert.is(h.count("ok"), 0);
    assert.ok(h.count("clientAbort") >= reached, `clientAbort ${h.count("clientAbort")} < reached ${reached}`);
  } finally {
    await h.close();
    await o.close();
  }
});

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

test("a 200 MB response and a 200 MB upload stream through with flat sidecar memory", async () => {
  const SIZE = 200 * 1024 * 1024;
  const o = await startOrigin({ mode: { kind: "stream", bytes: SIZE, lengthKnown: true } });
  const sc = await startOriginwatch(["sidecar", "--central", `http://127.0.0.1:${await deadPort()}`, "--listen", "127.0.0.1:0", "--node-id", "n", "--isp", "i", "--region", "r", "--origin", `${NAME}=${o.url}`]);
  const pid = sc.child.pid!;
  const [host, port] = splitAddress(sc.address);
  try {
    // warm up so the baseline includes the loaded code paths
    await new Promise<void>((r) => http.get({ host, port, path: "/warm", headers: { host: NAME, range: "bytes=0-0" } }, (res) => res.resume().on("end", () => r())));
    const base = rssMb(pid);
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 25);
    const got = await new Promise<number>((resolve, reject) => {
      http
        .get({ host, port, path: "/big", headers: { host: NAME } }, (res) => {
          let n = 0;
          res.on("data", (c: Buffer) => (n += c.length));
          res.on("end", () => resolve(n));
          res.on("error", reject);
        })
        .on("error", reject);
    });
    assert.is(got, SIZE);
    const downPeak = peak;

    await o.setMode({ kind: "ok" });
    const chunk = Buffer.alloc(256 * 1024, "u");
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host, port, method: "PUT", path: "/up", headers: { host: NAME, "content-length": SIZE } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      let left = SIZE;
      const pump = () => {
        while (left > 0) {
          left -= chunk.length;
          if (!req.write(chunk)) return void req.once("drain", pump);
        }
        req.end();
      };
      pump();
    });
    clearInterval(sampler);
    assert.is(status, 200);
    assert.is(o.log.at(-1)!.bodyBytes, SIZE);
    assert.ok(downPeak - base < 64, `download grew RSS by ${(downPeak - base).toFixed(1)} MB`);
    assert.ok(peak - base < 64, `upload grew RSS by ${(peak - base).toFixed(1)} MB`);
  } finally {
    await sc.stop();
    await o.close();
  }
});

test.run();
