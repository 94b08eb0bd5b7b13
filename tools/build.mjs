#!/usr/bin/env node
// `npm run build`: compiles what the `originwatch` bin runs into dist/ with
// esbuild, one ESM bundle split per subcommand (tools/cli.ts loads only the
// subcommand it runs), npm dependencies included, source maps on (with the
// sources inlined; off at run time unless NODE_OPTIONS=--enable-source-maps).
// Types are checked by `npm run lint` (tsc --noEmit), not here.
//
// Why a bundle with the dependencies in it, measured with `npm run
// bench:startup` on a 2-core machine (medians; exec → listening, idle RSS):
//   one .js per .ts (tsc or esbuild), deps from node_modules:
//                              central ~350 ms, 68 MB; sidecar ~400 ms, 68 MB
//   own code bundled, deps from node_modules: within noise of the above
//   own code and deps bundled:
//                              central ~220 ms, 61 MB; sidecar ~180 ms, 65 MB
//   the same, minified with names kept (V8 keeps every loaded source text):
//                              central ~190 ms, 60 MB; sidecar ~180 ms, 62 MB
//   the same, minified without keepNames (this): see `npm run bench:startup` and the README
// Loading a few large files beats resolving and reading hundreds of small
// ones. tsc also takes ~15 s here, esbuild under a second.
//
// External (loaded from node_modules at run time): `level` (a native addon
// that finds its binary from its own directory) and `esbuild` (only called when
// no pre-built dashboard exists, i.e. from sources; the package never does).
//
// The dashboard page is bundled once into dist/page/: the bundle's modules sit
// (entries and chunks alike) in dist/, so central/dashboard/bundle.ts (which looks for page/ next to its
// own module) finds the pre-built files there and needs no esbuild at run time.
import { build } from "esbuild";
import { rmSync } from "node:fs";
import { copyFile, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DIST = join(ROOT, "dist");
// Built beside dist/ and swapped in at the end, so a running `originwatch` (or a failed build) never
// sees a half-written dist/; `npm pack` in tools/package rebuilds while other processes may use it.
const OUT = join(ROOT, `.dist-build-${process.pid}`);

/**
 * Packages the bundled dependencies require but that no code path of ours ever
 * runs, replaced by a stub that throws a clear error if one ever is: every
 * module of a bundle is source text the process keeps (idle RSS, `npm run
 * bench:startup`), and some run code at load.
 *   - follow-redirects: http-proxy's `followRedirects` option (never set);
 *   - @grpc/proto-loader (and protobufjs under it): grpc-js's channelz and ORCA
 *     services (never enabled);
 *   - @opentelemetry/api: prom-client's exemplars (never enabled);
 *   - thread-stream: pino's worker-thread transports (never used; we log to stdout).
 */
const UNUSED = ["follow-redirects", "@grpc/proto-loader", "@opentelemetry/api", "thread-stream"];
const unusedStubs = {
  name: "unused-stubs",
  setup(b) {
    const filter = new RegExp(`^(${UNUSED.map((n) => n.replace(/[/.]/g, "\\$&")).join("|")})$`);
    b.onResolve({ filter }, (args) => ({ path: args.path, namespace: "unused-stub" }));
    b.onLoad({ filter: /.*/, namespace: "unused-stub" }, (args) => ({
      loader: "js",
      contents: `module.exports = new Proxy({}, { get(_, k) { if (typeof k === "symbol" || k === "__esModule" || k === "then") return undefined; throw new Error(${JSON.stringify(`${args.path} is not bundled (tools/build.mjs UNUSED): `)} + String(k)); } });`,
    }));
  },
};

const started = Date.now();
process.on("exit", () => rmSync(OUT, { recursive: true, force: true })); // a failed build leaves nothing behind

await build({
  absWorkingDir: ROOT,
  entryPoints: { cli: "tools/cli.ts", "dashboard-bundle": "central/dashboard/bundle.ts" },
  outdir: OUT,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: ["level", "esbuild"],
  // CommonJS dependencies call require() for Node built-ins; an ES module has none.
  banner: { js: 'import { createRequire as __owCreateRequire } from "node:module"; const require = __owCreateRequire(import.meta.url);' },
  sourcemap: true,
  sourcesContent: true,
  minify: true,
  // No keepNames: it wraps every named function in a `__name()` call that runs each time the function is
  // created, which in http-proxy's stream pass is twice per proxied request (measurable in `npm run
  // bench:hop`). Stack traces name the .ts lines with NODE_OPTIONS=--enable-source-maps; our error
  // classes set `name` themselves; nothing here selects by a function's name.
  keepNames: false,
  legalComments: "linked",
  plugins: [unusedStubs],
  logLevel: "warning",
});

// The dashboard page, pre-bundled with the options of central/dashboard/bundle.ts.
const { bundlePage, PREBUILT_PAGE } = await import(join(OUT, "dashboard-bundle.js"));
const page = join(OUT, "page");
await mkdir(page, { recursive: true });
const source = join(ROOT, "central", "dashboard", "page");
await copyFile(join(source, "index.html"), join(page, "index.html"));
const files = await bundlePage(source);
const names = files.map((f) => f.name).sort();
if (names.join() !== [...PREBUILT_PAGE].sort().join()) throw new Error(`dashboard bundle gave ${names.join(", ")}; central/dashboard/bundle.ts serves ${PREBUILT_PAGE.join(", ")}`);
for (const f of files) await writeFile(join(page, f.name), f.contents);

await rm(DIST, { recursive: true, force: true });
await rename(OUT, DIST);

// stderr: `npm pack --json` prints its JSON on stdout after the prepare script.
process.stderr.write(`built ${relative(process.cwd(), DIST) || "."}/ (the bin's bundle and the dashboard) in ${Date.now() - started} ms\n`);
