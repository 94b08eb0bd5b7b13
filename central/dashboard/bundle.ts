/**
 * The dashboard's browser code, bundled with esbuild from page/app.ts when
 * the page is first asked for (about a second on a small machine, once per
 * process; nothing to commit or to keep in sync). The bundle holds only code:
 * the page reads everything it shows from the public API, with no secret.
 */
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
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

export async function buildDashboard(): Promise<DashboardAssets> {
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [join(PAGE, "app.ts")],
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
  const files = new Map<string, Asset>();
  files.set("/", asset(await readFile(join(PAGE, "index.html")), "text/html; charset=utf-8"));
  for (const f of result.outputFiles) {
    const name = f.path.slice(f.path.lastIndexOf("/") + 1);
    const type = name.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8";
    files.set(`/dashboard/${name}`, asset(Buffer.from(f.contents), type));
  }
  return { files };
}
