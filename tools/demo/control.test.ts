/**
 * The demo's control endpoint refuses what a web page could send (issue 10
 * item 9): a cross-site text/plain POST, a foreign Origin, a rebinding Host;
 * `originwatch demo fault` (sendControl) still works.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import { type ControlServer, sendControl, startControl } from "./control.js";

let server: ControlServer;
const calls: string[] = [];

test.before(async () => {
  server = await startControl("127.0.0.1:0", {
    fault: async (f) => (calls.push(`fault ${f.target} ${f.mode}`), "ok"),
    heal: async () => (calls.push("heal"), "healed"),
  });
});
test.after(async () => {
  await server.close();
});

function post(path: string, headers: Record<string, string>, body: string): Promise<number> {
  const [host, port] = [server.address.slice(0, server.address.lastIndexOf(":")), Number(server.address.slice(server.address.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path, method: "POST", headers }, (res) => (res.resume(), resolve(res.statusCode ?? 0)));
    req.on("error", reject);
    req.end(body);
  });
}

test("a cross-site text/plain POST (what a page can send without a preflight) is refused with 415 and does nothing", async () => {
  const body = JSON.stringify({ target: "isp-b", mode: "blackhole" });
  assert.is(await post("/fault", { "content-type": "text/plain", origin: "http://evil.example" }, body), 403);
  assert.is(await post("/fault", { "content-type": "text/plain" }, body), 415);
  assert.is(await post("/heal", { "content-type": "application/x-www-form-urlencoded" }, "a=b"), 415);
  assert.equal(calls, []);
});

test("a foreign Origin or a rebinding Host is refused with 403 even with a JSON body", async () => {
  const body = JSON.stringify({ target: "isp-b", mode: "blackhole" });
  assert.is(await post("/fault", { "content-type": "application/json", origin: "https://evil.example" }, body), 403);
  assert.is(await post("/fault", { "content-type": "application/json", host: "rebind.evil.example:7401" }, body), 403);
  assert.equal(calls, []);
});

test("the demo's own client (JSON, loopback) still injects and heals", async () => {
  const r = await sendControl(server.address, "/fault", { target: "isp-b", mode: "blackhole" } as never);
  assert.ok(r.ok, r.message);
  assert.is(await post("/heal", { "content-type": "application/json", origin: "http://127.0.0.1:7400" }, "{}"), 200);
  assert.equal(calls, ["fault isp-b blackhole", "heal"]);
});

test.run();
