/**
 * `originwatch demo --tls --interactive`: the demo fleet with mTLS between
 * sidecars and the central; an operator reaches it with ctl over HTTPS and
 * the demo CA, sees every sidecar connected, and Ctrl-C stops it cleanly.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { runCtl } from "../ctl/ctl.js";
import { BIN, ROOT, eventually } from "../test/proc.js";

let dir = "";
let child: ChildProcess | undefined;

test.after(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function ctl(args: string[]): Promise<{ code: number; out: string }> {
  let out = "";
  const sink = (f: (s: string) => void) => new Writable({ write: (c, _e, cb) => (f(c.toString()), cb()) });
  const code = await runCtl(args, { out: sink((s) => (out += s)), err: sink((s) => (out += s)), env: {} });
  return { code, out };
}

test("the demo keeps working with TLS switched on (--tls)", async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-demo-tls-"));
  let output = "";
  child = spawn(process.execPath, [BIN, "demo", "--tls", "--interactive", "--data", join(dir, "demo"), "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--every", "3600"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)));
  child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  const m = await eventually(() => /ctl\s+npx originwatch ctl --central (https:\/\/localhost:\d+) --ca (\S+) status/.exec(output), 60_000, 100);
  const [, url, ca] = m!;
  const nodes = await eventually(async () => {
    const r = await ctl(["--central", url, "--ca", ca, "--json", "nodes"]);
    if (r.code !== 0) return undefined;
    const list = JSON.parse(r.out) as { connected: boolean }[];
    return list.length === 6 && list.every((n) => n.connected) ? list : undefined;
  }, 60_000, 500);
  assert.is(nodes!.length, 6);
  // Traffic is counted over mTLS.
  await eventually(async () => {
    const r = await ctl(["--central", url, "--ca", ca, "--json", "origins"]);
    return r.code === 0 && (JSON.parse(r.out) as { totalRequests?: string }[]).some((o) => Number(o.totalRequests ?? 0) > 0);
  }, 30_000, 500);
  // Without the demo CA the central's certificate is not trusted: a clear failure, not a hang.
  const untrusted = await ctl(["--central", url, "status"]);
  assert.ok(untrusted.code !== 0, untrusted.out);
  child.kill("SIGINT");
  assert.is(await exited, 0, output);
});

test.run();
