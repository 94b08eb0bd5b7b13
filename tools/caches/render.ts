/**
 * Run the example cache configs in this folder with the real binaries, under a
 * temp prefix, on free loopback ports. Used by the e2e tests and the demo.
 *
 * Each instance is our own: its own prefix/work dir (pid file, logs, cache,
 * temp paths inside it), its own port, stopped by its own pid — a system
 * nginx on :80 or varnish on :6081 is never touched. Started as root, the
 * caches drop to an unprivileged user (nginx `user`, varnishd `-j unix`),
 * so the prefix is made traversable for that user.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
export const NGINX_BIN = process.env.ORIGINWATCH_NGINX ?? "/usr/sbin/nginx";
export const VARNISHD_BIN = process.env.ORIGINWATCH_VARNISHD ?? "/usr/sbin/varnishd";
/** Unprivileged user the nginx workers run as when started by root. */
export const CACHE_USER = process.env.ORIGINWATCH_CACHE_USER ?? "nobody";

const isRoot = () => process.getuid?.() === 0;

/** `user NAME GROUP;` for nginx as root (the user's primary group: Debian's nobody has no "nobody" group), else "". */
function nginxUserDirective(): string {
  if (!isRoot()) return "";
  const group = execFileSync("id", ["-gn", CACHE_USER], { encoding: "utf8" }).trim();
  return `user ${CACHE_USER} ${group};`;
}

/**
 * varnishd's jail as root: the packaged dedicated users (`-j unix`: varnish
 * for management, vcache for the cache process) when they exist, else the
 * unprivileged CACHE_USER for both. Never `-j none` (that keeps root).
 */
function varnishJail(): string[] {
  if (!isRoot()) return [];
  const exists = (u: string) => spawnSync("id", ["-u", u], { stdio: "ignore" }).status === 0;
  if (exists("varnish") && exists("vcache")) return ["-j", "unix"];
  return ["-j", `unix,user=${CACHE_USER},workuser=${CACHE_USER}`];
}

export function render(template: string, vars: Record<string, string>): string {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (_m, k: string) => {
    if (!(k in vars)) throw new Error(`cache config placeholder {{${k}}} has no value`);
    return vars[k];
  });
}

/** A free loopback port (bind 0, read, close): for binaries that cannot listen on port 0 and report it. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface CacheProc {
  /** 127.0.0.1:PORT the cache listens on */
  address: string;
  dir: string;
  child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

async function waitForPort(port: number, child: ChildProcess, log: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`cache exited with ${child.exitCode}:\n${log()}`);
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        r(true);
      });
      s.once("error", () => r(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`cache did not listen on ${port}:\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stopper(child: ChildProcess, dir: string): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () =>
    (done ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once("exit", () => r()));
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    })());
}

/** nginx from tools/caches/nginx.conf: sidecar primary, origin backup. */
export async function startNginx(opts: { sidecar: string; origin: string; host: string }): Promise<CacheProc> {
  const dir = mkdtempSync(join(tmpdir(), "ow-nginx-"));
  // mkdtemp is 0700: the unprivileged workers must traverse it (nginx chowns its cache and temp dirs itself)
  chmodSync(dir, 0o755);
  for (const d of ["logs", "tmp", "cache"]) mkdirSync(join(dir, d), { mode: 0o755 });
  const port = await freePort();
  const conf = render(readFileSync(join(HERE, "nginx.conf"), "utf8"), {
    USER: nginxUserDirective(),
    PREFIX: dir,
    LISTEN: `127.0.0.1:${port}`,
    SIDECAR: opts.sidecar,
    ORIGIN: opts.origin,
    HOST: opts.host,
  });
  writeFileSync(join(dir, "nginx.conf"), conf);
  let out = "";
  const child = spawn(NGINX_BIN, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "logs", "error.log")], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (c: Buffer) => (out += c));
  child.stderr!.on("data", (c: Buffer) => (out += c));
  const log = () => out + (existsSync(join(dir, "logs", "error.log")) ? readFileSync(join(dir, "logs", "error.log"), "utf8") : "");
  const stop = stopper(child, dir);
  try {
    await waitForPort(port, child, log);
  } catch (err) {
    await stop();
    throw err;
  }
  return { address: `127.0.0.1:${port}`, dir, child, log, stop };
}

/** varnishd from tools/caches/varnish.vcl with the sidecar as its backend. */
export async function startVarnish(opts: { sidecar: string }): Promise<CacheProc> {
  const dir = mkdtempSync(join(tmpdir(), "ow-varnish-"));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const i = opts.sidecar.lastIndexOf(":");
  const vcl = render(readFileSync(join(HERE, "varnish.vcl"), "utf8"), { SIDECAR_HOST: opts.sidecar.slice(0, i), SIDECAR_PORT: opts.sidecar.slice(i + 1) });
  writeFileSync(join(dir, "default.vcl"), vcl, { mode: 0o644 });
  let out = "";
  const args = ["-F", "-n", join(dir, "work"), "-a", `127.0.0.1:${port}`, "-f", join(dir, "default.vcl"), "-s", "malloc,32m", "-T", "none", "-p", "vcc_allow_inline_c=off"];
  args.push(...varnishJail());
  const child = spawn(VARNISHD_BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (c: Buffer) => (out += c));
  child.stderr!.on("data", (c: Buffer) => (out += c));
  const stop = stopper(child, dir);
  try {
    await waitForPort(port, child, () => out, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { address: `127.0.0.1:${port}`, dir, child, log: () => out, stop };
}

/** Whether a binary is present and runnable. */
export function binaryWorks(bin: string, versionArg: string): boolean {
  if (!existsSync(bin)) return false;
  const r = spawnSync(bin, [versionArg], { stdio: "ignore" });
  return r.status === 0;
}
