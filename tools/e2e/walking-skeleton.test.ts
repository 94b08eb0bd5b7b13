/**
 * The walking skeleton end to end, as an operator would check it: a real
 * origin, a central and a sidecar as separate processes, requests through the
 * sidecar, and the counts read back with a real gRPC client (`buf curl`, with
 * reflection) and as Connect JSON over HTTP/1.1.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import http from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type Origin, startOrigin } from "../origin.js";
import { type Proc, ROOT, eventually, startOriginwatch } from "../test/proc.js";

const run = promisify(execFile);
const BUF = join(ROOT, "node_modules", ".bin", "buf");

async function bufCurl(central: string, method: string, body: unknown): Promise<any> {
  const { stdout } = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d", JSON.stringify(body), `http://${central}/${method}`]);
  return JSON.parse(stdout);
}

function get(sidecar: string, host: string, path = "/"): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  const [h, p] = [sidecar.slice(0, sidecar.lastIndexOf(":")), Number(sidecar.slice(sidecar.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const req = http.request({ host: h, port: p, path, headers: { host }, agent: keepAlive }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });
let dir = "";
let origin: Origin;
let central: Proc;
let sidecar: Proc;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-e2e-"));
  origin = await startOrigin();
  central = await startOriginwatch(["central", "--listen", "127.0.0.1:0", "--data", join(dir, "central")]);
  sidecar = await startOriginwatch([
    "sidecar", "--central", `http://${central.address}`, "--listen", "127.0.0.1:0",
    "--node-id", "e2e-1", "--isp", "isp-a", "--region", "eu-west", "--origin", `demo.origin=${origin.url}`,
  ]);
});

test.after(async () => {
  keepAlive.destroy();
  await sidecar?.stop();
  await central?.stop();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

test("100 requests through the sidecar are counted by the central within seconds (buf curl over gRPC)", async () => {
  for (let i = 0; i < 100; i++) assert.is((await get(sidecar.address, "demo.origin", `/img/${i}.png`)).status, 200);
  assert.is(origin.requests, 100);
  const answer = await eventually(async () => {
    const r = await bufCurl(central.address, "originwatch.v1.QueryService/GetOrigin", { origin: "demo.origin" });
    return r.origin?.totalRequests === "100" ? r : undefined;
  }, 3_000);
  assert.is(answer.origin.name, "demo.origin");
  // The verdict engine evaluates once per tick: healthy once it has looked.
  const healthy = await eventually(async () => {
    const r = await bufCurl(central.address, "originwatch.v1.QueryService/GetOrigin", { origin: "demo.origin" });
    return r.origin.state === "ORIGIN_STATE_HEALTHY" ? r : undefined;
  }, 4_000);
  assert.is(healthy.origin.totalRequests, "100");
  assert.is(answer.origin.totalFailures ?? "0", "0");
});

test("Connect JSON over plain HTTP/1.1 gives the same answer", async () => {
  const res = await fetch(`http://${central.address}/originwatch.v1.QueryService/GetOrigin`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ origin: "demo.origin" }),
  });
  assert.is(res.status, 200);
  const body = (await res.json()) as { origin: { totalRequests: string } };
  assert.is(body.origin.totalRequests, "100");
});

test("reflection lists the originwatch services, health and reflection", async () => {
  const { stdout } = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", `http://${central.address}`]);
  for (const s of ["originwatch.v1.QueryService", "originwatch.v1.IngestService", "originwatch.v1.ConfigService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]) {
    assert.ok(stdout.split("\n").includes(s), `missing ${s} in:\n${stdout}`);
  }
  const health = await bufCurl(central.address, "grpc.health.v1.Health/Check", {});
  assert.is(health.status, "SERVING");
});

test("ListNodes shows the sidecar connected with its labels", async () => {
  const r = await bufCurl(central.address, "originwatch.v1.QueryService/ListNodes", {});
  const node = r.nodes.find((n: { nodeId: string }) => n.nodeId === "e2e-1");
  assert.ok(node, JSON.stringify(r));
  assert.is(node.isp, "isp-a");
  assert.is(node.region, "eu-west");
  assert.is(node.connected, true);
});

test("a request with an unknown Host gets 421 and the origin sees no connection", async () => {
  const before = origin.connections;
  const r = await get(sidecar.address, "evil.example");
  assert.is(r.status, 421);
  assert.is(origin.connections, before);
});

test("central killed with SIGKILL: requests keep succeeding, the sidecar reconnects, totals are not lower", async () => {
  const port = central.address.slice(central.address.lastIndexOf(":") + 1);
  await central.stop("SIGKILL");
  for (let i = 0; i < 20; i++) assert.is((await get(sidecar.address, "demo.origin", `/down/${i}`)).status, 200);
  central = await startOriginwatch(["central", "--listen", `127.0.0.1:${port}`, "--data", join(dir, "central")]);
  const r = await eventually(async () => {
    const a = await bufCurl(central.address, "originwatch.v1.QueryService/GetOrigin", { origin: "demo.origin" });
    return Number(a.origin.totalRequests) >= 120 ? a : undefined;
  }, 30_000, 250);
  // Exactly the requests the origin served: nothing lost while the central was down, nothing counted twice.
  assert.is(Number(r.origin.totalRequests), origin.requests);
  const nodes = await bufCurl(central.address, "originwatch.v1.QueryService/ListNodes", {});
  assert.is(nodes.nodes.find((n: { nodeId: string }) => n.nodeId === "e2e-1")?.connected, true);
});

test.run();
