/**
 * The dashboard as the central serves it: GET/HEAD of its three paths only,
 * security headers, ETags; RPCs on the same port are untouched.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { type Central, startCentral } from "../main.js";

let dir = "";
let central: Central;
let base = "";
const TOKEN = "dash-read-token-0123456789abcdef";

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-dash-"));
  await writeFile(join(dir, "tokens"), `${TOKEN} read viewer\n`);
  central = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "data"), tokensFile: join(dir, "tokens") }, pino({ level: "silent" }));
  base = `http://${central.address}`;
});

test.after(async () => {
  await central?.close();
  await rm(dir, { recursive: true, force: true });
});

test("GET / is the page (public), with a strict content security policy and no secret", async () => {
  const res = await fetch(`${base}/`);
  assert.is(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
  const csp = res.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /connect-src 'self'/);
  assert.is(res.headers.get("x-content-type-options"), "nosniff");
  const html = await res.text();
  assert.match(html, /<script type="module" src="\/dashboard\/app\.js"><\/script>/);
  for (const path of ["/", "/dashboard/app.js", "/dashboard/app.css"]) {
    const text = await (await fetch(`${base}${path}`)).text();
    assert.not.ok(text.includes(TOKEN), `${path} carries an operator token`);
  }
});

test("the bundle and its stylesheet are served (esbuild, minified), with ETag revalidation", async () => {
  const js = await fetch(`${base}/dashboard/app.js`, { headers: { "accept-encoding": "identity" } });
  assert.is(js.status, 200);
  assert.match(js.headers.get("content-type") ?? "", /^text\/javascript/);
  const body = await js.text();
  assert.ok(body.length > 10_000 && body.length < 600_000, `bundle is ${body.length} bytes`);
  assert.match(body, /connect-protocol-version/i);
  const etag = js.headers.get("etag")!;
  assert.ok(etag);
  const again = await fetch(`${base}/dashboard/app.js`, { headers: { "if-none-match": etag } });
  assert.is(again.status, 304);
  const css = await fetch(`${base}/dashboard/app.css`);
  assert.is(css.status, 200);
  assert.match(await css.text(), /\.uplot/);
  // Compressed for browsers that accept it (fetch decompresses transparently).
  const gz = await fetch(`${base}/dashboard/app.js`, { headers: { "accept-encoding": "gzip" } });
  assert.is(gz.headers.get("content-encoding"), "gzip");
  assert.ok(Number(gz.headers.get("content-length")) < body.length / 2, `gzip ${gz.headers.get("content-length")} of ${body.length}`);
  assert.is(await gz.text(), body);
  const head = await fetch(`${base}/`, { method: "HEAD" });
  assert.is(head.status, 200);
  assert.is(await head.text(), "");
});

test("the page never shadows RPC paths: POST / and RPC URLs go to the RPC router (tokens still enforced)", async () => {
  const post = await fetch(`${base}/`, { method: "POST", body: "x" });
  assert.is.not(post.status, 200);
  const call = (headers: Record<string, string>) =>
    fetch(`${base}/originwatch.v1.QueryService/ListOrigins`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: "{}" });
  assert.is((await call({})).status, 401);
  const rpc = await call({ authorization: `Bearer ${TOKEN}` });
  assert.is(rpc.status, 200);
  assert.equal(await rpc.json(), {});
  const other = await fetch(`${base}/dashboard/secret.txt`);
  assert.is(other.status, 404);
});

test.run();
