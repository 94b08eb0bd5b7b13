/**
 * Start-up validation with the central's own rules (proto/names.ts): a label or
 * origin the central would refuse is a clear start-up error naming the flag,
 * never a sidecar that starts cleanly and is then refused on every Hello.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { validateSidecarConfig } from "./config.js";
import { BIN, ROOT } from "../tools/test/proc.js";

const base = { nodeId: "edge-1", isp: "isp-a", region: "eu-west", origins: ["www.example.com=http://127.0.0.1:9"], listen: "127.0.0.1:0" };

function problem(input: Record<string, unknown>): string {
  try {
    validateSidecarConfig({ ...base, ...input });
  } catch (err) {
    return (err as Error).message;
  }
  return "";
}

test("labels and origin names the central refuses are start-up errors naming the flag", () => {
  const table: Array<[Record<string, unknown>, RegExp]> = [
    [{ isp: "isp a" }, /--isp.*"isp a"/],
    [{ nodeId: "-edge" }, /--node-id/],
    [{ region: "eu/west" }, /--region/],
    [{ nodeId: "n".repeat(129) }, /--node-id.*at most 128/],
    [{ origins: ["bad name=http://127.0.0.1:9"] }, /--origin/],
    [{ origins: ["::1=http://127.0.0.1:9"] }, /--origin/],
  ];
  for (const [input, re] of table) assert.match(problem(input), re, JSON.stringify(input));
  assert.is(problem({}), "", "the base config is valid");
  assert.is(problem({ isp: "isp_a.1:x" }), "", "every character the central allows is allowed");
});

test("more origins than the central accepts per node is a start-up error; --max-origins raises the assumption", () => {
  const many = Array.from({ length: 1001 }, (_, i) => `o${i}.example=http://127.0.0.1:9`);
  assert.match(problem({ origins: many }), /1001 origins.*\(1000\).*--max-origins/);
  assert.is(problem({ origins: many, maxOrigins: 2000 }), "");
  assert.match(problem({ origins: many.slice(0, 3), maxOrigins: 2 }), /3 origins/);
});

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  return new Promise((resolve) =>
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    }),
  );
}

test("`originwatch sidecar --isp \"isp a\"` exits non-zero at once with a message naming --isp", async () => {
  const r = await run(["sidecar", "--listen", "127.0.0.1:0", "--node-id", "edge-1", "--isp", "isp a", "--region", "eu", "--origin", "www.example.com=http://127.0.0.1:9"]);
  assert.is.not(r.code, 0);
  assert.is.not(r.code, null, "it exited by itself");
  assert.match(r.out, /originwatch sidecar: isp \(--isp\) must match/);
  assert.not.match(r.out, /"msg":"listening"/);
});

test.run();
