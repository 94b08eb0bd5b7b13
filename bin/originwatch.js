#!/usr/bin/env node
// Entry point of `originwatch <command>`. It runs the compiled JavaScript in
// dist/ (`npm run build`; `npm ci` builds it through the `prepare` script, and
// the npm package ships it). With ORIGINWATCH_FROM_SOURCE=1 it runs the
// TypeScript sources through tsx instead: the test runner (tools/test/run.mjs)
// sets it, so every test that spawns this bin exercises the current sources,
// never a stale dist/. tsx is a development dependency: the package does not
// install it.
import { existsSync } from "node:fs";
import v8 from "node:v8";

const compiled = new URL("../dist/cli.js", import.meta.url);
const source = new URL("../tools/cli.ts", import.meta.url);

if (process.env.ORIGINWATCH_FROM_SOURCE === "1") {
  if (!existsSync(source)) {
    process.stderr.write("originwatch: ORIGINWATCH_FROM_SOURCE=1 needs a checkout (tools/cli.ts); this is an installed package\n");
    process.exit(2);
  }
  const { register } = await import("tsx/esm/api");
  register();
  await import(source.href);
} else if (existsSync(compiled)) {
  // dist/ has source maps with the sources inlined; they are not loaded by default (about 2 MB of idle
  // RSS, `npm run bench:startup`): NODE_OPTIONS=--enable-source-maps makes stack traces name the .ts lines.
  //
  // The sidecar starts without V8's optimizing compiler and turns it on once it listens (the import
  // below settles when the subcommand's start-up has finished): a few start-up loops (protobuf
  // descriptor decoding) are hot enough to be optimized, which alone maps ~4 MB more of the node
  // binary and compiler memory into an idle sidecar (`npm run bench:startup`). Requests are
  // optimized as before: the flag is read again when a function turns hot.
  const leanStart = process.argv[2] === "sidecar";
  if (leanStart) v8.setFlagsFromString("--no-turbofan");
  await import(compiled.href);
  if (leanStart) v8.setFlagsFromString("--turbofan");
} else {
  process.stderr.write("originwatch: dist/ is missing: run `npm run build` (or set ORIGINWATCH_FROM_SOURCE=1 to run the sources through tsx)\n");
  process.exit(2);
}
