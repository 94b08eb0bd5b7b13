/**
 * `originwatch ctl` against a production-style central: TLS with a private
 * CA and operator bearer tokens (read and admin).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { type Central, startCentral } from "../../central/main.js";
import { type DevPki, initPki } from "../certs.js";
import { EXIT } from "./client.js";
import { runCtl } from "./ctl.js";

const READ = "ctl-read-token-0123456789";
const ADMIN = "ctl-admin-token-0123456789";
let dir = "";
let pki: DevPki;
let central: Central;
let url = "";

async function ctl(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const w = (f: (s: string) => void) => new Writable({ write: (c, _e, cb) => (f(c.toString()), cb()) });
  const code = await runCtl(["--central", url, ...args], { out: w((s) => (out += s)), err: w((s) => (err += s)), env });
  return { code, out, err };
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-ctl-tls-"));
  pki = initPki(join(dir, "pki"));
  await writeFile(join(dir, "tokens"), `${READ} read viewer\n${ADMIN} admin ops\n`);
  central = await startCentral(
    { listen: "127.0.0.1:0", data: join(dir, "data"), tlsCert: pki.centralCert, tlsKey: pki.centralKey, tlsCa: pki.ca, tokensFile: join(dir, "tokens") },
    pino({ level: "silent" }),
  );
  url = `https://localhost:${central.address.split(":").pop()}`;
});

test.after(async () => {
  await central?.close();
  await rm(dir, { recursive: true, force: true });
});

test("over TLS with --ca and a read token (from the environment): reads work", async () => {
  const r = await ctl(["--json", "nodes"], { ORIGINWATCH_TOKEN: READ, ORIGINWATCH_CA: pki.ca });
  assert.is(r.code, EXIT.OK, r.err);
  assert.equal(JSON.parse(r.out), []);
  const s = await ctl(["--ca", pki.ca, "--token", READ, "status"]);
  assert.is(s.code, EXIT.OK, s.err);
  assert.match(s.out, /0 origins/);
});

test("without a token: refused with a hint to pass one (exit 1)", async () => {
  const r = await ctl(["--ca", pki.ca, "origins"]);
  assert.is(r.code, EXIT.CENTRAL_ERROR);
  assert.match(r.err, /--token or ORIGINWATCH_TOKEN/);
});

test("a read token cannot change the config; an admin token can", async () => {
  const file = join(dir, "config.json");
  await writeFile(file, JSON.stringify({ stallMs: 1800 }));
  const denied = await ctl(["--ca", pki.ca, "--token", READ, "config", "set", "--force", file]);
  assert.is(denied.code, EXIT.CENTRAL_ERROR);
  assert.match(denied.err, /PermissionDenied/);
  const ok = await ctl(["--ca", pki.ca, "--token", ADMIN, "--json", "config", "set", "--force", file]);
  assert.is(ok.code, EXIT.OK, ok.err);
  assert.is(JSON.parse(ok.out).stallMs, 1800);
});

test("without the CA: the certificate cannot be verified, said plainly (exit 3)", async () => {
  const r = await ctl(["--token", READ, "nodes"]);
  assert.is(r.code, EXIT.UNREACHABLE);
  assert.match(r.err, /TLS certificate[\s\S]*--ca/);
});

test.run();
