/**
 * End-to-end with the real caches: nginx and varnishd run the example configs
 * in this folder in front of a real sidecar process and a controllable origin.
 * Runs whenever the binaries exist; with ORIGINWATCH_REQUIRE_CACHES=1 (CI) a
 * missing binary is a failure, not a skip.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startOrigin } from "../origin.js";
import { request } from "../test/http-request.js";
import { eventually, startOriginwatch, type Proc } from "../test/proc.js";
import { deadPort } from "../test/sidecar-harness.js";
import { NGINX_BIN, VARNISHD_BIN, binaryWorks, startNginx, startVarnish } from "./render.js";

const NAME = "www.example.com";
const REQUIRE = process.env.ORIGINWATCH_REQUIRE_CACHES === "1";

async function startSidecarProc(originUrl: string, extra: string[] = []): Promise<Proc> {
  return startOriginwatch([
    "sidecar",
    ...extra,
    "--central", `http://127.0.0.1:${await deadPort()}`,
    "--listen", "127.0.0.1:0",
    "--admin", "127.0.0.1:0",
    "--node-id", "edge-cache-e2e",
    "--isp", "isp-a",
    "--region", "eu",
    "--origin", `${NAME}=${originUrl}`,
  ]);
}

/** requests_total for the origin and outcome, from the sidecar's /metrics. */
async function sidecarCount(sc: Proc, outcome = "ok"): Promise<number> {
  const text = (await request(String(sc.ready.admin), { path: "/metrics" })).body.toString();
  const m = new RegExp(`originwatch_sidecar_requests_total\\{origin="${NAME.replace(/\./g, "\\.")}",outcome="${outcome}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

/** Real uids of the processes whose parent is `pid` (Linux /proc; empty elsewhere). */
function childUids(pid: number): number[] {
  const out: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const d of entries) {
    try {
      const status = readFileSync(`/proc/${d}/status`, "utf8");
      if (Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]) !== pid) continue;
      out.push(Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]));
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * A WebSocket handshake through `address`; resolves with everything read once
 * the origin's echo of "ping" arrives (tools/origin.ts `upgrade: "echo"`).
 */
function websocketEcho(address: string): Promise<string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const c = net.connect(port, host, () =>
      c.write(`GET /ws HTTP/1.1\r\nHost: ${NAME}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`),
    );
    let buf = "";
    let pinged = false;
    const timer = setTimeout(() => (c.destroy(), reject(new Error(`no echo: ${JSON.stringify(buf)}`))), 5000);
    c.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      if (!pinged && buf.includes("\r\n\r\n")) {
        if (!buf.startsWith("HTTP/1.1 101")) return (clearTimeout(timer), c.destroy(), reject(new Error(`not upgraded: ${JSON.stringify(buf)}`)));
        pinged = true;
        c.write("ping");
      }
      if (buf.includes("echo:ping")) (clearTimeout(timer), c.destroy(), resolve(buf));
    });
    c.on("error", (e) => (clearTimeout(timer), reject(e)));
  });
}

/** A sidecar process whose origin allows upgrades (`upgrade: true` is a config-file key). */
async function startUpgradeSidecar(originUrl: string): Promise<{ sc: Proc; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "ow-ws-"));
  const cfg = join(dir, "sidecar.json");
  writeFileSync(cfg, JSON.stringify({ origins: [{ name: NAME, url: originUrl, upgrade: true }] }));
  const sc = await startOriginwatch([
    "sidecar", "--config", cfg,
    "--central", `http://127.0.0.1:${await deadPort()}`,
    "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
    "--node-id", "edge-cache-ws", "--isp", "isp-a", "--region", "eu",
  ]);
  return { sc, dir };
}

const FORGED = { "x-forwarded-for": "6.6.6.6" };

function requireBinary(bin: string, arg: string): boolean {
  if (binaryWorks(bin, arg)) return true;
  if (REQUIRE) {
    test(`${bin} is installed (ORIGINWATCH_REQUIRE_CACHES=1)`, () => {
      assert.unreachable(`${bin} is missing or not runnable, and ORIGINWATCH_REQUIRE_CACHES=1`);
    });
  } else {
    process.stderr.write(`caches e2e: ${bin} not found; its tests do not run here (set ORIGINWATCH_REQUIRE_CACHES=1 to make that a failure)\n`);
  }
  return false;
}

if (requireBinary(NGINX_BIN, "-v")) {
  test("nginx: hits never reach the sidecar, each miss is counted once, and with the sidecar killed nginx serves through the origin backup", async () => {
    const o = await startOrigin({ mode: { kind: "ok", body: "from-origin\n", headers: { "cache-control": "max-age=600" } } });
    const sc = await startSidecarProc(o.url);
    const ngx = await startNginx({ sidecar: sc.address, origin: `127.0.0.1:${o.port}`, host: NAME });
    const get = (path: string) => request(ngx.address, { path, headers: { host: NAME } });
    try {
      const a1 = await get("/a");
      assert.is(a1.status, 200, ngx.log());
      assert.is(a1.body.toString(), "from-origin\n");
      assert.is(a1.headers["x-cache-status"], "MISS");
      const a2 = await get("/a");
      assert.is(a2.headers["x-cache-status"], "HIT");
      const b1 = await get("/b");
      assert.is(b1.headers["x-cache-status"], "MISS");
      for (let i = 0; i < 5; i++) assert.is((await get("/b")).headers["x-cache-status"], "HIT");
      assert.is(await eventually(() => sidecarCount(sc).then((n) => (n === 2 ? n : 0))), 2, "misses counted exactly once each");
      assert.is(o.requests, 2, "hits never reached the origin");
      assert.is(o.log[0].headers.host, NAME);
      assert.match(String(o.log[0].headers["x-forwarded-for"]), /127\.0\.0\.1/);

      await sc.stop("SIGKILL");
      const c1 = await get("/c");
      assert.is(c1.status, 200, `backup path failed: ${ngx.log()}`);
      assert.is(c1.body.toString(), "from-origin\n");
      assert.is(o.requests, 3, "served by the origin directly");
      const c2 = await get("/d");
      assert.is(c2.status, 200);
    } finally {
      await ngx.stop();
      await sc.stop();
      await o.close();
    }
  });

  test("nginx: a client's forged X-Forwarded-For never reaches the origin, through the sidecar or the backup; workers are unprivileged", async () => {
    const o = await startOrigin({ mode: { kind: "ok", body: "x\n" } });
    const sc = await startSidecarProc(o.url);
    const ngx = await startNginx({ sidecar: sc.address, origin: `127.0.0.1:${o.port}`, host: NAME });
    try {
      const r = await request(ngx.address, { path: "/xff", headers: { host: NAME, ...FORGED } });
      assert.is(r.status, 200, ngx.log());
      // nginx sets the client address; the sidecar, trusting its loopback peer (nginx), appends nginx's address
      assert.is(o.log[0].headers["x-forwarded-for"], "127.0.0.1, 127.0.0.1");
      await sc.stop("SIGKILL");
      const b = await request(ngx.address, { path: "/xff-backup", headers: { host: NAME, ...FORGED } });
      assert.is(b.status, 200);
      assert.is(o.log[1].headers["x-forwarded-for"], "127.0.0.1", "the backup path sets it too");
      assert.not.ok(o.log.some((q) => String(q.headers["x-forwarded-for"]).includes("6.6.6.6")));
      if (process.getuid?.() === 0) {
        const uids = childUids(ngx.child.pid!);
        assert.ok(uids.length > 0, "nginx has worker processes");
        assert.ok(uids.every((u) => u !== 0), `nginx workers run as uids ${uids.join(",")}`);
      }
    } finally {
      await ngx.stop();
      await sc.stop();
      await o.close();
    }
  });

  test("nginx: a WebSocket upgrade passes through nginx and the sidecar (origin with upgrade: true) and is counted once as upgrade; plain misses still reuse keep-alive", async () => {
    const o = await startOrigin({ upgrade: "echo", mode: { kind: "ok", body: "x\n" } });
    const { sc, dir } = await startUpgradeSidecar(o.url);
    const ngx = await startNginx({ sidecar: sc.address, origin: `127.0.0.1:${o.port}`, host: NAME });
    try {
      const text = await websocketEcho(ngx.address);
      assert.match(text, /^HTTP\/1\.1 101/, ngx.log());
      assert.is(o.upgrades.length, 1, "the upgrade reached the origin once");
      assert.is(String(o.upgrades[0].headers.upgrade).toLowerCase(), "websocket");
      assert.is(await eventually(() => sidecarCount(sc, "upgrade").then((n) => (n === 1 ? n : 0))), 1, "counted once as upgrade");
      const r = await request(ngx.address, { path: "/plain", headers: { host: NAME } });
      assert.is(r.status, 200);
      assert.not.ok(/upgrade/i.test(String(o.log.at(-1)?.headers.connection ?? "")), "a plain request does not ask for an upgrade");
    } finally {
      await ngx.stop();
      await sc.stop();
      await o.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("nginx: a 5xx from the origin (through the sidecar) is not retried on the backup", async () => {
    const o = await startOrigin({ mode: { kind: "status", status: 503 } });
    const sc = await startSidecarProc(o.url);
    const ngx = await startNginx({ sidecar: sc.address, origin: `127.0.0.1:${o.port}`, host: NAME });
    try {
      const r = await request(ngx.address, { path: "/x", headers: { host: NAME } });
      assert.is(r.status, 503);
      assert.is(o.requests, 1, "one attempt only");
      assert.is(await eventually(() => sidecarCount(sc, "server_error").then((n) => (n === 1 ? n : 0))), 1);
    } finally {
      await ngx.stop();
      await sc.stop();
      await o.close();
    }
  });
}

if (requireBinary(VARNISHD_BIN, "-V")) {
  test("varnish: hits never reach the sidecar and each miss is counted once", async () => {
    const o = await startOrigin({ mode: { kind: "ok", body: "from-origin\n", headers: { "cache-control": "max-age=600" } } });
    const sc = await startSidecarProc(o.url);
    const v = await startVarnish({ sidecar: sc.address });
    const get = (path: string) => request(v.address, { path, headers: { host: NAME } });
    try {
      const a1 = await get("/a");
      assert.is(a1.status, 200, v.log());
      assert.is(a1.headers["x-cache"], "MISS");
      for (let i = 0; i < 5; i++) assert.is((await get("/a")).headers["x-cache"], "HIT");
      assert.is((await get("/b")).headers["x-cache"], "MISS");
      assert.is((await get("/b")).headers["x-cache"], "HIT");
      assert.is(await eventually(() => sidecarCount(sc).then((n) => (n === 2 ? n : 0))), 2);
      assert.is(o.requests, 2);
      assert.is(o.log[0].headers.host, NAME);
    } finally {
      await v.stop();
      await sc.stop();
      await o.close();
    }
  });

  test("varnish: a WebSocket upgrade is piped through the sidecar to the origin and counted once as upgrade", async () => {
    const o = await startOrigin({ upgrade: "echo", mode: { kind: "ok", body: "x\n" } });
    const { sc, dir } = await startUpgradeSidecar(o.url);
    const v = await startVarnish({ sidecar: sc.address });
    try {
      const text = await websocketEcho(v.address);
      assert.match(text, /^HTTP\/1\.1 101/, v.log());
      assert.is(o.upgrades.length, 1);
      assert.is(await eventually(() => sidecarCount(sc, "upgrade").then((n) => (n === 1 ? n : 0))), 1, "counted once as upgrade");
    } finally {
      await v.stop();
      await sc.stop();
      await o.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("varnish: a client's forged X-Forwarded-For never reaches the origin (the VCL replaces Varnish's default append); the cache process is unprivileged", async () => {
    const o = await startOrigin({ mode: { kind: "ok", body: "x\n" } });
    const sc = await startSidecarProc(o.url);
    const v = await startVarnish({ sidecar: sc.address });
    try {
      const r = await request(v.address, { path: "/xff", headers: { host: NAME, ...FORGED } });
      assert.is(r.status, 200, v.log());
      assert.is(o.log[0].headers["x-forwarded-for"], "127.0.0.1, 127.0.0.1");
      if (process.getuid?.() === 0) {
        const uids = childUids(v.child.pid!);
        assert.ok(uids.length > 0, "varnishd has a cache process");
        assert.ok(uids.every((u) => u !== 0), `varnish cache process runs as uids ${uids.join(",")}`);
      }
    } finally {
      await v.stop();
      await sc.stop();
      await o.close();
    }
  });
}

test.run();
