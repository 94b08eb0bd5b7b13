/**
 * Production setup end to end: `certs init` PKI, a central with TLS and
 * tokens, a sidecar with its client certificate over mTLS; requests through
 * the sidecar are counted, and an operator reads them with buf curl over TLS
 * with a bearer token.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import http from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { initPki } from "../certs.js";
import { type Origin, startOrigin } from "../origin.js";
import { type Proc, ROOT, eventually, startOriginwatch } from "../test/proc.js";

const run = promisify(execFile);
const BUF = join(ROOT, "node_modules", ".bin", "buf");
const TOKEN = "e2e-read-token-0123456789";

let dir = "";
let origin: Origin;
let central: Proc;
let sidecar: Proc;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-tls-"));
  const pki = initPki(join(dir, "pki"), { nodes: ["edge-1"] });
  await writeFile(join(dir, "tokens"), `${TOKEN} read e2e\n`);
  origin = await startOrigin();
  central = await startOriginwatch([
    "central", "--listen", "127.0.0.1:0", "--data", join(dir, "data"),
    "--tls-cert", pki.centralCert, "--tls-key", pki.centralKey, "--tls-ca", pki.ca, "--tokens", join(dir, "tokens"),
  ]);
  const port = central.address.split(":")[1];
  sidecar = await startOriginwatch([
    "sidecar", "--central", `https://localhost:${port}`, "--listen", "127.0.0.1:0",
    "--node-id", "edge-1", "--isp", "isp-a", "--region", "eu",
    "--tls-cert", pki.nodes["edge-1"].cert, "--tls-key", pki.nodes["edge-1"].key, "--tls-ca", pki.ca,
    "--origin", `tls.example=${origin.url}`,
  ]);
});

test.after(async () => {
  await sidecar?.stop();
  await central?.stop();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

test("requests through an mTLS sidecar are counted and read back over TLS with a token", async () => {
  const port = Number(sidecar.address.split(":")[1]);
  for (let i = 0; i < 10; i++) {
    const status = await new Promise<number>((resolve, reject) => {
      http.get({ host: "127.0.0.1", port, path: `/${i}`, headers: { host: "tls.example" } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      }).on("error", reject);
    });
    assert.is(status, 200);
  }
  const url = `https://localhost:${central.address.split(":")[1]}/originwatch.v1.QueryService/GetOrigin`;
  const args = ["curl", "--protocol", "grpc", "--cacert", join(dir, "pki", "ca.crt"), "-H", `Authorization: Bearer ${TOKEN}`, "-d", '{"origin":"tls.example"}', url];
  const r = await eventually(async () => {
    const { stdout } = await run(BUF, args);
    const body = JSON.parse(stdout);
    return body.origin?.totalRequests === "10" ? body : undefined;
  }, 15_000, 300);
  assert.is(r.origin.name, "tls.example");
  // Without the token the same call is refused.
  const denied = await run(BUF, args.filter((a, i) => a !== "-H" && args[i - 1] !== "-H")).then(
    () => "ok",
    (err: { stderr?: string }) => err.stderr ?? "",
  );
  assert.match(denied, /unauthenticated/i);
});

test.run();
