/**
 * `originwatch demo` as a user runs it: the real binary as a child process
 * plays the whole story (every expected verdict must be seen), then takes
 * faults from `originwatch demo fault …`/`heal` in "another terminal", and
 * Ctrl-C leaves nothing listening. Plus table tests of the story's verdict
 * checks and plain words.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { FaultSchema, FaultScope, OriginState, OriginStatusSchema } from "../../proto/gen/originwatch/v1/query_pb.js";
import { runCtl } from "../ctl/ctl.js";
import { BIN, ROOT, eventually } from "../test/proc.js";
import { allClear, meaning, storySteps } from "./story.js";

const run = promisify(execFile);

const origin = (name: string, state: OriginState, faults: { scope: FaultScope; key: string }[] = []) =>
  create(OriginStatusSchema, { name, state, faults: faults.map((f) => create(FaultSchema, { ...f, failureRatio: 1 })), p95TtfbMs: 1500 });

test("story steps recognise exactly the verdict they expect", () => {
  const [isp, down, node, slow] = storySteps({ origins: ["a", "b"], isp: "isp-b", node: "n1" });
  const ispFault = [origin("a", OriginState.HEALTHY, [{ scope: FaultScope.ISP, key: "isp-b" }]), origin("b", OriginState.HEALTHY, [{ scope: FaultScope.ISP, key: "isp-b" }])];
  assert.ok(isp!.matches(ispFault));
  assert.not.ok(isp!.matches([origin("a", OriginState.DOWN), origin("b", OriginState.DOWN)]), "an origin alarm is not an ISP fault");
  assert.ok(down!.matches([origin("a", OriginState.DOWN), origin("b", OriginState.HEALTHY)]));
  assert.not.ok(down!.matches([origin("a", OriginState.DOWN), origin("b", OriginState.DOWN)]), "the other origin must stay up");
  assert.ok(node!.matches([origin("a", OriginState.HEALTHY, [{ scope: FaultScope.NODE, key: "n1" }]), origin("b", OriginState.HEALTHY, [{ scope: FaultScope.NODE, key: "n1" }])]));
  assert.not.ok(node!.matches(ispFault));
  assert.ok(slow!.matches([origin("a", OriginState.DEGRADED), origin("b", OriginState.HEALTHY)]));
  assert.ok(allClear([origin("a", OriginState.HEALTHY), origin("b", OriginState.HEALTHY)]));
  assert.not.ok(allClear(ispFault));
  assert.not.ok(allClear([]));
});

test("plain words say who must act", () => {
  assert.match(meaning(origin("a", OriginState.DOWN)), /origin alarm/);
  assert.match(meaning(origin("a", OriginState.HEALTHY, [{ scope: FaultScope.ISP, key: "isp-b" }])), /only edges on ISP isp-b fail.*no origin alarm/);
  assert.match(meaning(origin("a", OriginState.HEALTHY, [{ scope: FaultScope.NODE, key: "n1" }])), /drain that node/);
  assert.match(meaning(origin("a", OriginState.DEGRADED)), /p95 1500 ms/);
});

let dir = "";
let child: ChildProcess | undefined;
let output = "";

test.after(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function status(central: string): Promise<{ origins: { name: string; state: string; faults?: { scope: string; key: string }[] }[] }> {
  let out = "";
  await runCtl(["--central", central, "--json", "status"], { out: new Writable({ write: (c, _e, cb) => ((out += c.toString()), cb()) }), err: new Writable({ write: (_c, _e, cb) => cb() }), env: {} });
  return JSON.parse(out);
}

const refused = (address: string) =>
  new Promise<boolean>((resolve) => {
    const i = address.lastIndexOf(":");
    const s = net.connect(Number(address.slice(i + 1)), address.slice(0, i));
    s.once("connect", () => (s.destroy(), resolve(false)));
    s.once("error", () => resolve(true));
  });

test("npm start: the story shows every expected verdict, faults come from another terminal, Ctrl-C leaves nothing behind", async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-demo-"));
  const started = Date.now();
  child = spawn(process.execPath, [BIN, "demo", "--data", join(dir, "demo"), "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--hold", "2", "--every", "3600"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)));
  child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  const central = (await eventually(() => /dashboard\s+http:\/\/([\d.:]+)\//.exec(output)?.[1], 60_000, 100))!;
  const control = (await eventually(() => /\(control ([\d.:]+)\)/.exec(output)?.[1], 5_000, 100))!;
  // The dashboard URL it prints serves the page.
  const page = await fetch(`http://${central}/`);
  assert.is(page.status, 200);
  assert.match(await page.text(), /<title>originwatch<\/title>/);

  await eventually(() => output.includes("story done") || output.includes("NOT SEEN") || output.includes("not all clear"), 300_000, 500);
  assert.not.match(output, /NOT SEEN|not all clear/, output);
  assert.is(output.match(/OK: the central concluded this/g)?.length, 4, output);
  assert.is(output.match(/all clear \d+ s after the fault was removed/g)?.length, 4, output);
  process.stderr.write(`demo story played in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);

  // Another terminal: faults through the control endpoint.
  const demo = (...args: string[]) => run(process.execPath, [BIN, "demo", ...args, "--control", control], { cwd: ROOT }).then((r) => ({ code: 0, ...r }), (e) => e as { code: number; stdout: string; stderr: string });
  const isp = await demo("fault", "isp-c", "blackhole");
  assert.is(isp.code, 0, isp.stderr);
  assert.match(isp.stdout, /ISP isp-c is blackholed/);
  await eventually(async () => (await status(central)).origins.every((o) => o.state === "ORIGIN_STATE_HEALTHY" && o.faults?.some((f) => f.scope === "FAULT_SCOPE_ISP" && f.key === "isp-c")), 60_000, 500);
  assert.is((await demo("heal")).code, 0);
  const down = await demo("fault", "origin", "down");
  assert.is(down.code, 0, down.stderr);
  await eventually(async () => {
    const s = await status(central);
    return s.origins.find((o) => o.name === "shop.example")?.state === "ORIGIN_STATE_DOWN" && s.origins.find((o) => o.name === "img.example")?.state === "ORIGIN_STATE_HEALTHY";
  }, 60_000, 500);
  const bad = await demo("fault", "isp-z", "blackhole");
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /unknown target "isp-z"/);
  assert.is((await demo("heal")).code, 0);
  await eventually(async () => (await status(central)).origins.every((o) => o.state === "ORIGIN_STATE_HEALTHY"), 60_000, 500);

  // Ctrl-C: everything stops, nothing is left listening.
  child.kill("SIGINT");
  assert.is(await exited, 0, output);
  assert.match(output, /stopped; nothing left running/);
  assert.ok(await refused(central), "the central still listens");
  assert.ok(await refused(control), "the control endpoint still listens");
});

test.run();
