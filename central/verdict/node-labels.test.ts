import { test } from "uvu";
import * as assert from "uvu/assert";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { FakeSidecar } from "../../tools/scenarios/fake-sidecar.js";
import { eventually } from "../../tools/test/proc.js";
import { CentralError } from "../errors.js";
import { startCentral } from "../main.js";
import { loadNodeLabels } from "./node-labels.js";

async function file(text: string): Promise<{ path: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), "ow-labels-"));
  const path = join(dir, "labels");
  await writeFile(path, text);
  return { path, dir };
}

test("the allowlist file: one NODE_ID ISP REGION per line; errors name the line", async () => {
  const ok = await file("# pinned\nedge-1 isp-a eu\nedge-2  isp-b   us  # trailing comment\n\n");
  const a = loadNodeLabels(ok.path);
  assert.is(a.size, 2);
  for (const [text, why] of [
    ["edge-1 isp-a\n", /line 1: expected NODE_ID ISP REGION/],
    ["edge-1 isp-a eu\nedge-1 isp-b eu\n", /line 2: node edge-1 is listed twice/],
    ["edge-1 isp/a eu\n", /line 1: isp must match/],
  ] as const) {
    const f = await file(text);
    try {
      loadNodeLabels(f.path);
      assert.unreachable(`accepted ${JSON.stringify(text)}`);
    } catch (err) {
      assert.instance(err, CentralError);
      assert.match((err as Error).message, why);
    }
    await rm(f.dir, { recursive: true, force: true });
  }
  await rm(ok.dir, { recursive: true, force: true });
});

test("resolve: listed labels win, a disagreement is counted and described, unlisted nodes keep their claim", async () => {
  const f = await file("edge-1 isp-a eu\n");
  const a = loadNodeLabels(f.path);
  assert.equal(a.resolve("edge-1", { isp: "isp-a", region: "eu" }), { isp: "isp-a", region: "eu", mismatch: "", unlisted: false });
  const lie = a.resolve("edge-1", { isp: "isp-z", region: "eu" });
  assert.equal([lie.isp, lie.region], ["isp-a", "eu"]);
  assert.match(lie.mismatch, /claimed isp isp-z, region eu; allowlist says isp isp-a, region eu/);
  assert.equal(a.resolve("edge-9", { isp: "isp-q", region: "ap" }), { isp: "isp-q", region: "ap", mismatch: "", unlisted: true });
  assert.equal([a.mismatches, a.unlisted], [1, 1]);
  await rm(f.dir, { recursive: true, force: true });
});

test("--node-labels on a real central: a node claiming another ISP is pooled under its allowlisted ISP, the disagreement shown on ListNodes", async () => {
  const f = await file("edge-1 isp-a eu\n");
  const central = await startCentral({ listen: "127.0.0.1:0", data: join(f.dir, "data"), nodeLabelsFile: f.path, lookbackMs: 2000, evalIntervalMs: 200 }, pino({ level: "silent" }));
  const s = new FakeSidecar({ address: central.address, nodeId: "edge-1", isp: "isp-z", region: "eu", origins: ["shop.example"], periodMs: 200, traffic: () => ({ ok: 5 }) });
  const other = new FakeSidecar({ address: central.address, nodeId: "edge-2", isp: "isp-b", region: "us", origins: ["shop.example"], periodMs: 200, traffic: () => ({ ok: 5 }) });
  s.start();
  other.start();
  try {
    const q = createClient(QueryService, createGrpcTransport({ baseUrl: `http://${central.address}` }));
    const nodes = await eventually(async () => {
      const n = (await q.listNodes({})).nodes;
      return n.length === 2 ? n : undefined;
    });
    const e1 = nodes!.find((n) => n.nodeId === "edge-1")!;
    assert.equal([e1.isp, e1.region, e1.labelMismatches], ["isp-a", "eu", 1n]);
    assert.match(e1.labelMismatch, /claimed isp isp-z/);
    const e2 = nodes!.find((n) => n.nodeId === "edge-2")!;
    assert.equal([e2.isp, e2.labelMismatch], ["isp-b", ""], "an unlisted node keeps its claim");
    await eventually(async () => (await q.getOrigin({ origin: "shop.example" }).catch(() => undefined))?.origin?.isps.length === 2);
    assert.equal((await q.getOrigin({ origin: "shop.example" })).origin!.isps.map((i) => i.key), ["isp-a", "isp-b"], "no isp-z pool");
  } finally {
    s.close();
    other.close();
    await central.close();
    await rm(f.dir, { recursive: true, force: true });
  }
});

test.run();
