/**
 * Where ctl takes the operator token from (issue 10 item 9): --token-file and
 * the environment as well as argv, and a warning on stderr when a token would
 * go over plain http to a host that is not loopback.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { type Central, startCentral } from "../../central/main.js";
import { EXIT } from "./client.js";
import { runCtl } from "./ctl.js";
import { resolveToken, tokenWarning } from "./token.js";

const READ = "ctl-token-read-0123456789";
let dir = "";
let central: Central;
let url = "";

async function ctl(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const w = (f: (s: string) => void) => new Writable({ write: (c, _e, cb) => (f(c.toString()), cb()) });
  const code = await runCtl(args, { out: w((s) => (out += s)), err: w((s) => (err += s)), env });
  return { code, out, err };
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-ctl-token-"));
  await writeFile(join(dir, "tokens"), `${READ} read viewer\n`);
  await writeFile(join(dir, "my-token"), `# operator token\n${READ}\n`);
  await chmod(join(dir, "my-token"), 0o600);
  central = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "data"), tokensFile: join(dir, "tokens") }, pino({ level: "silent" }));
  url = `http://127.0.0.1:${central.address.split(":").pop()}`;
});
test.after(async () => {
  await central.close();
  await rm(dir, { recursive: true, force: true });
});

test("the token from --token-file or ORIGINWATCH_TOKEN_FILE is accepted by the central", async () => {
  const a = await ctl(["--central", url, "--token-file", join(dir, "my-token"), "--json", "nodes"]);
  assert.is(a.code, EXIT.OK, a.err);
  const b = await ctl(["--central", url, "--json", "nodes"], { ORIGINWATCH_TOKEN_FILE: join(dir, "my-token") });
  assert.is(b.code, EXIT.OK, b.err);
  const none = await ctl(["--central", url, "--json", "nodes"]);
  assert.is(none.code, EXIT.CENTRAL_ERROR);
});

test("an unreadable or empty token file is a usage error (exit 2), naming the flag", async () => {
  const missing = await ctl(["--central", url, "--token-file", join(dir, "nope"), "nodes"]);
  assert.is(missing.code, EXIT.USAGE);
  assert.match(missing.err, /--token-file: cannot read/);
  await writeFile(join(dir, "empty"), "# nothing\n");
  const empty = await ctl(["--central", url, "--token-file", join(dir, "empty"), "nodes"]);
  assert.is(empty.code, EXIT.USAGE);
  assert.match(empty.err, /--token-file/);
});

test("precedence: --token, then --token-file, then ORIGINWATCH_TOKEN, then ORIGINWATCH_TOKEN_FILE", () => {
  const file = join(dir, "my-token");
  assert.is(resolveToken({ flag: "a", file, env: { ORIGINWATCH_TOKEN: "c" } }), "a");
  assert.is(resolveToken({ file, env: { ORIGINWATCH_TOKEN: "c" } }), READ);
  assert.is(resolveToken({ env: { ORIGINWATCH_TOKEN: "c", ORIGINWATCH_TOKEN_FILE: file } }), "c");
  assert.is(resolveToken({ env: { ORIGINWATCH_TOKEN_FILE: file } }), READ);
  assert.is(resolveToken({ env: {} }), undefined);
});

test("a token over plain http to a non-loopback host is warned about on stderr; loopback and https are not", async () => {
  assert.match(tokenWarning("http://central.cdn.internal:7400", "t") ?? "", /plain http to central\.cdn\.internal:7400/);
  assert.match(tokenWarning("http://10.0.0.5:7400", "t") ?? "", /plain http/);
  assert.is(tokenWarning("http://central.cdn.internal:7400", undefined), undefined);
  assert.is(tokenWarning("https://central.cdn.internal:7400", "t"), undefined);
  assert.is(tokenWarning("http://127.0.0.1:7400", "t"), undefined);
  assert.is(tokenWarning("http://localhost:7400", "t"), undefined);
  assert.is(tokenWarning("http://[::1]:7400", "t"), undefined);
  // Through ctl: an unreachable non-loopback address (TEST-NET-1, short deadline) still shows the warning first.
  const r = await ctl(["--central", "http://192.0.2.1:7400", "--timeout", "300", "--token", READ, "nodes"]);
  assert.match(r.err, /warning: sending the operator token over plain http to 192\.0\.2\.1:7400/);
  const quiet = await ctl(["--central", url, "--token", READ, "--json", "nodes"]);
  assert.is(quiet.code, EXIT.OK, quiet.err);
  assert.not.match(quiet.err, /warning/);
});

test.run();
