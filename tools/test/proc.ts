/**
 * Start an `originwatch` subcommand as a real child process and wait until it
 * logs that it is listening. Every component logs one JSON line
 * {"msg":"listening","component":..., "address":"HOST:PORT", ...} when ready;
 * tests pass port 0 and read the real address from that line.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BIN = join(ROOT, "bin", "originwatch.js");

export interface Proc {
  child: ChildProcess;
  /** Fields of the "listening" log line (address, admin, ...). */
  ready: Record<string, unknown>;
  address: string;
  /** Every line printed so far (stdout and stderr). */
  lines: string[];
  /** SIGTERM (or the given signal) and wait for exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `bin` runs another `originwatch` executable directly (an installed package's
 * bin, tools/package), in `cwd`; the default is this checkout's bin under node.
 */
export function startOriginwatch(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; bin?: string; cwd?: string } = {}): Promise<Proc> {
  const child = spawn(opts.bin ?? process.execPath, opts.bin ? args : [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...opts.env },
  });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise<Proc>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`originwatch ${args[0]} did not become ready:\n${lines.join("\n")}`));
    }, opts.timeoutMs ?? 20_000);
    const onLine = (line: string) => {
      lines.push(line);
      if (process.env.ORIGINWATCH_TEST_VERBOSE) process.stderr.write(`[${args[0]}] ${line}\n`);
      if (!line.startsWith("{")) return;
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec.msg === "listening" && typeof rec.address === "string") {
          clearTimeout(timer);
          resolve({
            child,
            ready: rec,
            address: rec.address,
            lines,
            stop: async (signal: NodeJS.Signals = "SIGTERM") => {
              if (child.exitCode === null && child.signalCode === null) child.kill(signal);
              return exited;
            },
          });
        }
      } catch {
        /* not JSON */
      }
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      let buf = "";
      stream.on("data", (chunk: Buffer) => {
        buf += chunk.toString();
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
    }
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`originwatch ${args[0]} exited with ${code} before ready:\n${lines.join("\n")}`));
    });
  });
}

/** Poll fn until it returns a truthy value or the deadline passes. */
export async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
