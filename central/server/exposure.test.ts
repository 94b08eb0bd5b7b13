/**
 * Secure unless told otherwise (issue 10 items 1 and 2), against the real
 * `originwatch central` binary and a real in-process central:
 * a non-loopback listen without mTLS and tokens is refused at start,
 * --insecure starts with a warning, TLS without tokens is refused, and a
 * tokenless loopback central refuses a DNS-rebinding Host.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import pino from "pino";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { create } from "@bufbuild/protobuf";
import { ListOriginsRequestSchema, QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { IngestService, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { grpcService } from "../../proto/grpc-bridge.js";
import { initPki } from "../../tools/certs.js";
import { type Central, startCentral } from "../main.js";
import { checkExposure, hostOfAuthority, isLoopbackHost } from "./exposure.js";

const BIN = fileURLToPath(new URL("../../bin/originwatch.js", import.meta.url));
let dir = "";

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-exposure-"));
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** Runs `originwatch central ARGS`; resolves on exit, or once it logs "listening" (then stops it with SIGTERM). */
function runCentral(args: string[], timeoutMs = 60_000): Promise<Run & { listened: boolean }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [BIN, "central", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let listened = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`central did not exit or listen in ${timeoutMs} ms: ${out}${err}`));
    }, timeoutMs);
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      if (!listened && /"msg":"listening"/.test(out)) {
        listened = true;
        child.kill("SIGTERM");
      }
    });
    child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err, listened });
    });
  });
}

test("loopback and authority parsing (table)", () => {
  const rows: Array<[string, boolean]> = [
    ["127.0.0.1", true],
    ["127.8.9.10", true],
    ["localhost", true],
    ["LOCALHOST.", true],
    ["::1", true],
    ["[::1]", true],
    ["::ffff:127.0.0.1", true],
    ["0.0.0.0", false],
    ["::", false],
    ["", false],
    ["10.1.2.3", false],
    ["128.0.0.1", false],
    ["localhost.evil.example", false],
    ["127.0.0.1.nip.io", false],
  ];
  for (const [h, want] of rows) assert.is(isLoopbackHost(h), want, h);
  assert.is(hostOfAuthority("[::1]:7400"), "::1");
  assert.is(hostOfAuthority("localhost:7400"), "localhost");
  assert.is(hostOfAuthority("evil.example"), "evil.example");
  assert.is(hostOfAuthority("a:b:c"), "");
  assert.is(hostOfAuthority(undefined), "");
});

test("checkExposure: loopback needs nothing, non-loopback needs both or --insecure (table)", () => {
  assert.equal(checkExposure({ listenHost: "127.0.0.1", tls: false, tokens: false, insecure: false }), []);
  assert.equal(checkExposure({ listenHost: "0.0.0.0", tls: true, tokens: true, insecure: false }), []);
  for (const x of [
    { tls: false, tokens: false, missing: /mTLS.*tokens/ },
    { tls: true, tokens: false, missing: /tokens/ },
    { tls: false, tokens: true, missing: /mTLS/ },
  ]) {
    try {
      checkExposure({ listenHost: "0.0.0.0", tls: x.tls, tokens: x.tokens, insecure: false });
      assert.unreachable("should refuse");
    } catch (err) {
      assert.is((err as { code: string }).code, "CENTRAL_INSECURE");
      assert.match((err as Error).message, x.missing);
    }
    assert.ok(checkExposure({ listenHost: "0.0.0.0", tls: x.tls, tokens: x.tokens, insecure: true }).length > 0);
  }
});

test("the central binary refuses 0.0.0.0 without mTLS and tokens: exit 78, CENTRAL_INSECURE on stderr", async () => {
  const r = await runCentral(["--listen", "0.0.0.0:0", "--data", join(dir, "a")]);
  assert.is(r.listened, false);
  assert.is(r.code, 78);
  assert.match(r.err, /CENTRAL_INSECURE/);
  assert.match(r.err, /--insecure/);
});

test("the central binary refuses this machine's own non-loopback addresses too", async () => {
  const addrs = Object.values(networkInterfaces())
    .flat()
    .filter((i) => i && !i.internal && i.family === "IPv4")
    .map((i) => i!.address);
  for (const a of addrs.slice(0, 1)) {
    const r = await runCentral(["--listen", `${a}:0`, "--data", join(dir, "a2")]);
    assert.is(r.code, 78, `${a}: ${r.err}`);
    assert.match(r.err, /CENTRAL_INSECURE/);
  }
  const v6 = await runCentral(["--listen", "[::]:0", "--data", join(dir, "a3")]);
  assert.is(v6.code, 78);
  assert.match(v6.err, /CENTRAL_INSECURE/);
});

test("the central binary with TLS but no --tokens on 0.0.0.0 is refused too", async () => {
  const pki = initPki(join(dir, "pki"), { nodes: ["n1"] });
  const r = await runCentral(["--listen", "0.0.0.0:0", "--data", join(dir, "b"), "--tls-cert", pki.centralCert, "--tls-key", pki.centralKey, "--tls-ca", pki.ca]);
  assert.is(r.code, 78);
  assert.match(r.err, /CENTRAL_INSECURE/);
  assert.match(r.err, /operator tokens/);
  assert.not.match(r.err, /mTLS/);
});

test("the central binary with --insecure starts on 0.0.0.0 and logs a loud warning, at every start", async () => {
  for (let i = 0; i < 2; i++) {
    const r = await runCentral(["--listen", "0.0.0.0:0", "--data", join(dir, "c"), "--insecure"]);
    assert.ok(r.listened, r.out + r.err);
    const warnings = r.out.split("\n").filter((l) => l.includes('"code":"CENTRAL_INSECURE"'));
    assert.is(warnings.length, 2, r.out);
    assert.ok(warnings.every((l) => /"level":40/.test(l) && /INSECURE/.test(l)));
  }
});

test("a loopback central needs no flag and logs no warning", async () => {
  const r = await runCentral(["--listen", "127.0.0.1:0", "--data", join(dir, "d")]);
  assert.ok(r.listened, r.out + r.err);
  assert.not.match(r.out, /INSECURE/);
});

let central: Central;

test("DNS rebinding: a tokenless loopback central refuses a foreign Host (Connect 403, gRPC PERMISSION_DENIED, dashboard 403)", async () => {
  central = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "e") }, pino({ level: "silent" }));
  const port = Number(central.address.split(":")[1]);
  const post = (host: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port, method: "POST", path: "/originwatch.v1.QueryService/ListOrigins", headers: { host, "content-type": "application/json" } },
        (res) => {
          let body = "";
          res.on("data", (c) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on("error", reject);
      req.end("{}");
    });
  const evil = await post(`rebind.evil.example:${port}`);
  assert.is(evil.status, 403);
  assert.match(evil.body, /CENTRAL_HOST_NOT_ALLOWED/);
  assert.is((await post(`127.0.0.1:${port}`)).status, 200);
  assert.is((await post(`localhost:${port}`)).status, 200);
  assert.is((await post(`[::1]:${port}`)).status, 200);

  // The dashboard page too (a rebinding page would read it with its own Host).
  const page = await new Promise<number>((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: "/", headers: { host: "rebind.evil.example" } }, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on("error", reject);
  });
  assert.is(page, 403);

  // gRPC over h2c with a foreign :authority.
  const Client = grpc.makeGenericClientConstructor(grpcService(QueryService), "QueryService");
  const evilGrpc = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.default_authority": "rebind.evil.example" }) as unknown as {
    listOrigins(req: object, cb: (err: grpc.ServiceError | null) => void): void;
    close(): void;
  };
  const code = await new Promise<number>((resolve) => evilGrpc.listOrigins(create(ListOriginsRequestSchema, {}), (err) => resolve(err ? err.code : 0)));
  evilGrpc.close();
  assert.is(code, grpc.status.PERMISSION_DENIED);

  // The same over Connect with a real client and the loopback name works.
  const ok = await createClient(QueryService, createConnectTransport({ baseUrl: `http://localhost:${port}`, httpVersion: "2" })).listOrigins({});
  assert.ok(Array.isArray(ok.origins));
  // And through h2 with a foreign authority: PERMISSION_DENIED.
  const s = http2.connect(`http://127.0.0.1:${port}`);
  const status = await new Promise<string>((resolve, reject) => {
    const st = s.request({ ":method": "POST", ":path": "/originwatch.v1.QueryService/ListOrigins", ":authority": "rebind.evil.example", "content-type": "application/json" });
    st.on("response", (h) => resolve(String(h[":status"])));
    st.on("error", reject);
    st.end("{}");
  });
  s.close();
  assert.is(status, "403");
  assert.ok(central.verdict !== undefined);
  await central.close();
});

const rawPost = (port: number, host: string, headers: Record<string, string> = {}) =>
  new Promise<number>((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: "POST", path: "/originwatch.v1.QueryService/ListOrigins", headers: { host, "content-type": "application/json", ...headers } },
      (res) => (res.resume(), resolve(res.statusCode ?? 0)),
    );
    req.on("error", reject);
    req.end("{}");
  });

test("--allowed-hosts extends the loopback names; a central with tokens does not check Host", async () => {
  const c = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "f"), allowedHosts: ["central.lab.internal"] }, pino({ level: "silent" }));
  try {
    const port = Number(c.address.split(":")[1]);
    assert.is(await rawPost(port, `central.lab.internal:${port}`), 200);
    assert.is(await rawPost(port, `other.lab.internal:${port}`), 403);
  } finally {
    await c.close();
  }
  const token = "admin-token-0123456789abcdef";
  await writeFile(join(dir, "tokens"), `${token} admin ops\n`);
  const t = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "g"), tokensFile: join(dir, "tokens") }, pino({ level: "silent" }));
  try {
    const port = Number(t.address.split(":")[1]);
    assert.is(await rawPost(port, "central.cdn.example"), 401);
    assert.is(await rawPost(port, "central.cdn.example", { authorization: `Bearer ${token}` }), 200);
  } finally {
    await t.close();
  }
});

test.run();

test("the sidecars' ingest stream (native gRPC over HTTP/2) is answered by any DNS name; the same path over HTTP/1.1 is not", async () => {
  central = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "g") }, pino({ level: "silent" }));
  const port = Number(central.address.split(":")[1]);
  const Client = grpc.makeGenericClientConstructor(grpcService(IngestService), "IngestService");
  const sidecar = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.default_authority": "central.dc1.internal" }) as unknown as {
    stream(): grpc.ClientDuplexStream<object, { kind: { case: string } }>;
    close(): void;
  };
  const call = sidecar.stream();
  const first = await new Promise<string>((resolve, reject) => {
    call.on("data", (m) => resolve(m.kind.case));
    call.on("error", reject);
    call.write(create(SidecarMessageSchema, { kind: { case: "hello", value: { node: { nodeId: "edge-1", isp: "isp-a", region: "eu" }, origins: ["a.example"] } } }));
  });
  assert.is(first, "welcome");
  call.cancel();
  sidecar.close();
  const h1 = await new Promise<number>((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: "POST", path: "/originwatch.v1.IngestService/Stream", headers: { host: "rebind.evil.example", "content-type": "application/grpc" } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(Number(res.trailers["grpc-status"] ?? res.headers["grpc-status"] ?? res.statusCode)));
      },
    );
    req.on("error", reject);
    req.end();
  });
  assert.is(h1, 7); // PERMISSION_DENIED
  await central.close();
});
