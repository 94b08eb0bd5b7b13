/**
 * The dashboard's browser code, bundled with esbuild from page/app.ts. From a
 * checkout (sources run by tsx) it is bundled when the page is first asked for
 * (about a second on a small machine, once per process; nothing to commit or
 * to keep in sync). `npm run build` bundles it once into dist/page/, the
 * page/ directory next to this module once compiled (tools/build.mjs), so the
 * installed package serves the pre-built files and needs neither esbuild nor
 * the browser libraries at run time. The bundle holds only code: the page
 * reads everything it shows from the public API, with no secret.
 */
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Asset {
  body: Buffer;
  /** The same bytes gzipped once at build time (the bundle shrinks about 3x). */
  gzip: Buffer;
  type: string;
  etag: string;
}

export interface DashboardAssets {
  /** Keyed by URL path: "/", "/dashboard/app.js", "/dashboard/app.css". */
  files: Map<string, Asset>;
}

const PAGE = join(dirname(fileURLToPath(import.meta.url)), "page");

function asset(body: Buffer | string, type: string): Asset {
  const buf = typeof body === "string" ? Buffer.from(body) : body;
  return { body: buf, gzip: gzipSync(buf, { level: 9 }), type, etag: `"${createHash("sha256").update(buf).digest("base64url").slice(0, 16)}"` };
}

/**
 * The files esbuild makes of page/app.ts ("app.js", "app.css"): run at build
 * time by tools/build.mjs (which passes the source page directory), or at run
 * time from a checkout.
 */
export async function bundlePage(pageDir = PAGE): Promise<Array<{ name: string; contents: Uint8Array }>> {
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [join(pageDir, "app.ts")],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: ["es2020"],
    outdir: "dashboard",
    write: false,
    legalComments: "none",
    logLevel: "silent",
  });
  return result.outputFiles.map((f) => ({ name: f.path.slice(f.path.lastIndexOf("/") + 1), contents: f.contents }));
}

/** Names of the pre-built page files that `npm run build` writes next to index.html. */
export const PREBUILT_PAGE = ["app.js", "app.css"];

/** The page's assets: the pre-built files when `npm run build` wrote them (dist/, the package), else bundled now (sources). */
export async function buildDashboard(): Promise<DashboardAssets> {
  const prebuilt = existsSync(join(PAGE, PREBUILT_PAGE[0]!));
  const outputs = prebuilt
    ? await Promise.all(PREBUILT_PAGE.map(async (name) => ({ name, contents: await readFile(join(PAGE, name)) })))
    : await bundlePage();
  const files = new Map<string, Asset>();
  files.set("/", asset(await readFile(join(PAGE, "index.html")), "text/html; charset=utf-8"));
  for (const { name, contents } of outputs) {
    const type = name.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8";
    files.set(`/dashboard/${name}`, asset(Buffer.from(contents), type));
  }
  return { files };
}
