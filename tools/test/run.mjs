#!/usr/bin/env node
// Runs every *.test.ts with uvu (through tsx) and prints one closing line of
// its own: "N passed, N failed". uvu's summary has no failed count, and a run
// that executed no test must fail, so we parse uvu's totals here.
// ORIGINWATCH_FROM_SOURCE=1 makes every `bin/originwatch.js` a test spawns run
// the current TypeScript sources through tsx, never a stale dist/ (the
// packaged-install test, tools/package, builds and runs the compiled code).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";


const uvuBin = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "node_modules", "uvu", "bin.js");
const pattern = process.argv[2] ?? "^(central|sidecar|proto|tools)/.*\\.test\\.ts$";

const child = spawn(
  process.execPath,
  ["--import", "tsx", uvuBin, ".", pattern, "-i", "node_modules", "-i", "data"],
  { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1", ORIGINWATCH_FROM_SOURCE: "1" } },
);
let out = "";
let summarised = false;
let killedAfterSummary = false;
child.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  out += chunk.toString();
  // uvu prints "Duration:" last; a test that leaves a handle open would keep
  // the process alive forever after it, so give it a grace period, then end it.
  if (!summarised && /^\s*Duration:/m.test(out)) {
    summarised = true;
    setTimeout(() => {
      killedAfterSummary = true;
      child.kill("SIGKILL");
    }, 10_000).unref();
  }
});
// A hung test run fails instead of hanging CI.
const limitS = Number(process.env.ORIGINWATCH_TEST_TIMEOUT_S ?? 1800);
const limit = setTimeout(() => {
  process.stderr.write(`test run exceeded ${limitS} s: killing it\n`);
  child.kill("SIGKILL");
}, limitS * 1000);
limit.unref();
child.on("close", (code, signal) => {
  if (killedAfterSummary) {
    process.stderr.write("uvu did not exit 10 s after its summary (a test left a handle open): ended it\n");
    code = /^\s*Passed:\s+(\d+)/m.exec(out)?.[1] === /^\s*Total:\s+(\d+)/m.exec(out)?.[1] ? 0 : 1;
    signal = null;
  }
  const num = (label) => {
    const m = out.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, "m"));
    return m ? Number(m[1]) : 0;
  };
  const total = num("Total");
  const passed = num("Passed");
  let failed = total - passed - num("Skipped");
  // uvu exits non-zero on a failure or a crash outside a test; count that too.
  if ((code !== 0 || signal) && failed === 0) failed = 1;
  process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
  if (total === 0) {
    process.stderr.write("no test ran: treating as failure\n");
    process.exit(1);
  }
  process.exit(failed > 0 ? 1 : 0);
});
