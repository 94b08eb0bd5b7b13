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

/** V8 flags while the sidecar starts, and the value (V8's default) once it listens: see below. */
const LEAN_START = [
  ["--no-turbofan", "--turbofan"],
  ["--semi-space-growth-factor=1", "--semi-space-growth-factor=2"],
];

/** `--no-turbofan`, `--turbofan=…` → `turbofan` (V8 also accepts `_` for `-`). */
const flagName = (arg) => arg.replace(/^--(no-)?/, "").replace(/=.*$/, "").replaceAll("_", "-");

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
  // Stack traces name the .ts file and line through dist/'s source maps, loaded as each module is (they
  // cannot be turned on later for modules already loaded). Every command loads them but the sidecar:
  // ~2.3 MB of its idle RSS, ~4% of it (`npm run bench:startup`); NODE_OPTIONS=--enable-source-maps turns
  // them on for a sidecar too (no cost per request: they are read only when a stack is formatted).
  if (process.argv[2] !== "sidecar") process.setSourceMapsEnabled(true);
  //
  // The sidecar starts lean and sizes itself for load once it listens (the import below settles when
  // the subcommand's start-up has finished), `npm run bench:startup`:
  //   - without V8's optimizing compiler: a few start-up loops (protobuf descriptor decoding) are hot
  //     enough to be optimized, which alone maps ~4 MB of compiler into an idle sidecar;
  //   - with a young generation that does not grow: start-up allocations would double it (~2 MB).
  // Afterwards both are V8's defaults again, so requests are optimized and the young generation grows
  // under load as before (`npm run bench:hop`, `bench:hop:rss`). A flag given on node's command line wins.
  const given = new Set(process.execArgv.map(flagName));
  const lean = process.argv[2] === "sidecar" ? LEAN_START.filter(([during]) => !given.has(flagName(during))) : [];
  for (const [during] of lean) v8.setFlagsFromString(during);
  await import(compiled.href);
  for (const [, after] of lean) v8.setFlagsFromString(after);
} else {
  process.stderr.write("originwatch: dist/ is missing: run `npm run build` (or set ORIGINWATCH_FROM_SOURCE=1 to run the sources through tsx)\n");
  process.exit(2);
}
