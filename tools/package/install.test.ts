/**
 * The package an operator installs: `npm pack` (which builds dist/ through the
 * `prepare` script), then `npm install --global` of the tarball into an empty
 * prefix with production dependencies only (from the npm registry), then the
 * installed `originwatch` bin runs a central and a sidecar on loopback against
 * each other, proxies a request, serves the pre-built dashboard, and answers
 * `ctl status`. Nothing of this checkout is on the installed processes' path:
 * they run in an empty directory, without ORIGINWATCH_FROM_SOURCE or NODE_PATH.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { type AddressInfo } from "node:net";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT, eventually, startOriginwatch, type Proc } from "../test/proc.js";
import { request } from "../test/http-request.js";

const run = promisify(execFile);
let dir = "";
let bin = "";
let installed = "";
const procs: Proc[] = [];
let origin: Server | undefined;

/**
 * The environment of the installed processes: this test runner's, with what
 * would point them at the checkout emptied (startOriginwatch merges it over
 * process.env, so the keys are blanked rather than deleted).
 */
function cleanEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ORIGINWATCH_FROM_SOURCE: "", NODE_PATH: "", NODE_OPTIONS: "" };
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-package-"));
});

test.after(async () => {
  for (const p of procs.reverse()) await p.stop();
  await new Promise<void>((resolve) => (origin ? origin.close(() => resolve()) : resolve()));
  await rm(dir, { recursive: true, force: true });
});

test("npm pack builds and packs only the bin and dist/; the tarball installs with production dependencies only", async () => {
  const packed = await run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: ROOT, env: cleanEnv(), maxBuffer: 64 << 20, timeout: 300_000 });
  const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const paths = info!.files.map((f) => f.path);
  assert.ok(paths.includes("bin/originwatch.js"), "the bin is packed");
  assert.ok(paths.includes("dist/cli.js"), "the compiled cli is packed");
  assert.ok(paths.includes("dist/cli.js.map"), "source maps are packed");
  assert.ok(paths.includes("dist/page/app.js") && paths.includes("dist/page/index.html"), "the dashboard is pre-built");
  assert.equal(paths.filter((p) => !p.startsWith("dist/") && !["bin/originwatch.js", "package.json", "README.md"].includes(p)), [], "only the bin, dist/ and the docs");
  assert.equal(paths.filter((p) => p.endsWith(".ts")), [], "no TypeScript sources");

  const prefix = join(dir, "prefix");
  await mkdir(prefix);
  await run("npm", ["install", "--global", "--prefix", prefix, "--omit=dev", "--no-audit", "--no-fund", "--prefer-offline", join(dir, info!.filename)], {
    cwd: dir,
    env: cleanEnv(),
    maxBuffer: 64 << 20,
    timeout: 600_000,
  });
  bin = join(prefix, "bin", "originwatch");
  installed = join(prefix, "lib", "node_modules", "originwatch");
  assert.ok(existsSync(bin), "npm linked the originwatch bin");
  const deps = readdirSync(join(installed, "node_modules"));
  for (const dev of ["tsx", "esbuild", "typescript", "uvu", "uplot", "playwright-core"]) assert.not.ok(deps.includes(dev), `${dev} is not installed`);
  assert.ok(deps.includes("level"), "production dependencies are installed");
});

test("the installed central, sidecar and ctl run against each other on loopback", async () => {
  assert.ok(bin, "the package was installed by the previous test");
  const cwd = join(dir, "run");
  await mkdir(cwd);
  const env = cleanEnv();

  origin = createServer((req, res) => res.end(`origin saw ${req.url}`));
  await new Promise<void>((resolve) => origin!.listen(0, "127.0.0.1", resolve));
  const originPort = (origin.address() as AddressInfo).port;

  const central = await startOriginwatch(["central", "--listen", "127.0.0.1:0", "--data", join(dir, "data")], { bin, cwd, env, timeoutMs: 60_000 });
  procs.push(central);
  const sidecar = await startOriginwatch(
    [
      "sidecar",
      "--central", `http://${central.address}`,
      "--listen", "127.0.0.1:0",
      "--admin", "127.0.0.1:0",
      "--node-id", "pkg-edge-1",
      "--isp", "pkg-isp",
      "--region", "pkg-region",
      "--origin", `www.example.com=http://127.0.0.1:${originPort}`,
    ],
    { bin, cwd, env, timeoutMs: 60_000 },
  );
  procs.push(sidecar);

  const proxied = await request(sidecar.address, { path: "/hello", headers: { host: "www.example.com" } });
  assert.is(proxied.status, 200);
  assert.is(proxied.body.toString(), "origin saw /hello");

  // The dashboard comes from dist/, pre-built: the package has no esbuild to bundle it.
  const page = await fetch(`http://${central.address}/`);
  assert.is(page.status, 200);
  const app = await fetch(`http://${central.address}/dashboard/app.js`);
  assert.is(app.status, 200);
  assert.ok((await app.text()).length > 1000, "the bundled page script is served");

  const ctl = (...args: string[]) => run(bin, ["ctl", "--central", `http://${central.address}`, ...args], { cwd, env }).catch((e: { code: number; stdout: string; stderr: string }) => e);
  const status = await eventually(async () => {
    const r = await ctl("--json", "status");
    const j = JSON.parse(r.stdout) as { origins: Array<{ name: string }>; nodes: { connected: number } };
    return j.nodes.connected === 1 && j.origins.some((o) => o.name === "www.example.com") ? j : undefined;
  }, 30_000, 250);
  assert.is(status!.nodes.connected, 1);
  const text = await ctl("status");
  assert.match(text.stdout, /www\.example\.com/);

  // The installed package has no sources: asking for them is a clear refusal, not a tsx stack trace.
  const fromSource = await run(bin, ["--help"], { cwd, env: { ...env, ORIGINWATCH_FROM_SOURCE: "1" } }).catch((e: { code: number; stderr: string }) => e);
  assert.is((fromSource as { code: number }).code, 2);
  assert.match((fromSource as { stderr: string }).stderr, /ORIGINWATCH_FROM_SOURCE=1 needs a checkout/);

  // Every line the installed processes printed so far is JSON (no tsx or loader noise, no stack trace).
  for (const p of [central, sidecar]) assert.equal(p.lines.filter((l) => l.trim() && !l.startsWith("{")), [], "only JSON log lines");
});

test.run();
