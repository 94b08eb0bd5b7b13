#!/usr/bin/env node
// `npm run build`: compiles what the `originwatch` bin runs into dist/, one
// .js (+ source map with the sources inlined) per .ts, in the same layout as
// the sources, so paths taken from import.meta.url hold in both. esbuild, not
// tsc: it emits the same modules in about a second where tsc takes ~15 s on a
// small machine; types are checked by `npm run lint` (tsc --noEmit), not here.
// Bundling everything into one file measured no better (start-up and idle RSS
// within noise, `npm run bench:startup`), and would move import.meta.url.
//
// Steps: (1) ask esbuild which sources tools/cli.ts reaches (tests, benches and
// the browser page are not shipped); (2) transpile exactly those; (3) bundle
// the dashboard page once into dist/central/dashboard/page/ with the options
// of central/dashboard/bundle.ts, so the package needs no esbuild at run time.
import { build } from "esbuild";
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "dist");
const ENTRY = "tools/cli.ts";

const started = Date.now();
await rm(OUT, { recursive: true, force: true });

// (1) The module graph of the bin, own sources only.
const graph = await build({
  absWorkingDir: ROOT,
  entryPoints: [ENTRY],
  bundle: true,
  packages: "external",
  platform: "node",
  format: "esm",
  write: false,
  metafile: true,
  logLevel: "silent",
});
const sources = Object.keys(graph.metafile.inputs).filter((f) => f.endsWith(".ts"));

// (2) One module per source.
await build({
  absWorkingDir: ROOT,
  entryPoints: sources,
  outbase: ".",
  outdir: OUT,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  sourcesContent: true,
  logLevel: "warning",
});

// (3) The dashboard page, pre-bundled.
const { bundlePage } = await import(join(OUT, "central", "dashboard", "bundle.js"));
const page = join(OUT, "central", "dashboard", "page");
await mkdir(page, { recursive: true });
await copyFile(join(ROOT, "central", "dashboard", "page", "index.html"), join(page, "index.html"));
for (const f of await bundlePage(join(ROOT, "central", "dashboard", "page"))) await writeFile(join(page, f.name), f.contents);

// stderr: `npm pack --json` prints its JSON on stdout after the prepare script.
process.stderr.write(`built ${sources.length} modules and the dashboard into ${relative(process.cwd(), OUT) || "."}/ in ${Date.now() - started} ms\n`);
