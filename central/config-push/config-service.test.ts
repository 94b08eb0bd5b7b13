import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { ConfigService } from "../../proto/gen/originwatch/v1/config_pb.js";
import { type CentralMessage, IngestService, type SidecarMessage, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { type Node, QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { grpcService } from "../../proto/grpc-bridge.js";
import { eventually } from "../../tools/test/proc.js";
import { type Central, startCentral } from "../main.js";

const Ingest = grpc.makeGenericClientConstructor(grpcService(IngestService), "IngestService");
const silent = pino({ level: "silent" });

async function codeOf(p: Promise<unknown>): Promise<Code | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

/** A minimal sidecar: hello, then ACKs or NACKs every pushed config. */
function fakeSidecar(address: string, nodeId: string, applied: bigint, answer: (v: bigint) => { accepted: boolean; reason?: string }) {
  const client = new Ingest(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    stream(): grpc.ClientDuplexStream<SidecarMessage, CentralMessage>;
  };
  const call = client.stream();
  const pushes: bigint[] = [];
  call.on("error", () => {});
  call.on("data", (m: CentralMessage) => {
    if (m.kind.case !== "configPush") return;
    const v = m.kind.value.config!.version;
    pushes.push(v);
    call.write(create(SidecarMessageSchema, { kind: { case: "configAck", value: { version: v, ...answer(v) } } }));
  });
  call.write(create(SidecarMessageSchema, { kind: { case: "hello", value: { node: { nodeId, isp: "isp-a", region: "eu" }, origins: ["img.example"], appliedConfigVersion: applied } } }));
  return {
    pushes,
    close() {
      call.cancel();
      client.close();
    },
  };
}

let dir = "";
let central: Central;
const clients = () => {
  const transport = createGrpcTransport({ baseUrl: `http://${central.address}` });
  return { config: createClient(ConfigService, transport), query: createClient(QueryService, transport) };
};

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-config-"));
  central = await startCentral({ listen: "127.0.0.1:0", data: dir }, silent);
});

test.after(async () => {
  await central?.close();
  await rm(dir, { recursive: true, force: true });
});

test("SetConfig stores a valid config as the next version; a stale expected_version is FAILED_PRECONDITION", async () => {
  const { config } = clients();
  const v0 = (await config.getConfig({})).config!;
  assert.is(v0.version, 0n);
  const r1 = await config.setConfig({ config: { sampling: { successRate: 0.01, errorRate: 0.5 }, updatedBy: "ops" }, expectedVersion: 0n });
  assert.is(r1.config!.version, 1n);
  assert.ok(r1.config!.updatedUnixMs > 0n);
  assert.is((await config.getConfig({})).config!.sampling!.errorRate, 0.5);
  assert.is(await codeOf(config.setConfig({ config: { windowMs: 2000, lookbackMs: 10_000 }, expectedVersion: 0n })), Code.FailedPrecondition);
  assert.is(central.fleetConfig.current().version, 1n);
});

test("an invalid config is refused with INVALID_ARGUMENT naming the field and never stored", async () => {
  const { config } = clients();
  try {
    await config.setConfig({ config: { windowMs: 5000, lookbackMs: 1000 }, expectedVersion: 1n });
    assert.unreachable("should be refused");
  } catch (err) {
    const e = ConnectError.from(err);
    assert.is(e.code, Code.InvalidArgument);
    assert.match(e.rawMessage, /lookback_ms/);
  }
  assert.is(await codeOf(config.setConfig({ config: { thresholds: { failRatio: 7 } }, expectedVersion: 1n })), Code.InvalidArgument);
  assert.is(await codeOf(config.setConfig({ expectedVersion: 1n })), Code.InvalidArgument);
  assert.is((await config.getConfig({})).config!.version, 1n);
});

test("a new version is pushed to every connected session; ACK and NACK show in ListNodes", async () => {
  const { config, query } = clients();
  const good = fakeSidecar(central.address, "edge-good", 1n, () => ({ accepted: true }));
  const picky = fakeSidecar(central.address, "edge-picky", 1n, () => ({ accepted: false, reason: "missing capability brotli" }));
  try {
    await eventually(() => central.ingest.isConnected("edge-good") && central.ingest.isConnected("edge-picky"));
    assert.equal(good.pushes, [], "a session already at the current version gets no push");
    await config.setConfig({ config: { stallMs: 1500, requiredCapabilities: ["brotli"] }, expectedVersion: 1n });
    await eventually(() => good.pushes.includes(2n) && picky.pushes.includes(2n));
    const nodes = await eventually<{ g: Node; p: Node } | undefined>(async () => {
      const ns = (await query.listNodes({})).nodes;
      const g = ns.find((n) => n.nodeId === "edge-good");
      const p = ns.find((n) => n.nodeId === "edge-picky");
      return g?.appliedConfigVersion === 2n && p?.lastNackReason ? { g, p } : undefined;
    }).then((x) => x!);
    assert.is(nodes.p.appliedConfigVersion, 1n, "the NACKing node keeps its applied version");
    assert.match(nodes.p.lastNackReason, /missing capability brotli/);
    assert.is(nodes.g.lastNackReason, "");
    assert.ok(nodes.g.connected);
  } finally {
    good.close();
    picky.close();
  }
});

test("a session that connects later with another version gets the current config", async () => {
  const late = fakeSidecar(central.address, "edge-late", 0n, () => ({ accepted: true }));
  try {
    await eventually(() => late.pushes.includes(2n));
    assert.equal(late.pushes, [2n]);
  } finally {
    late.close();
  }
});

test("the config and its history survive a restart", async () => {
  await central.close();
  central = await startCentral({ listen: "127.0.0.1:0", data: dir }, silent);
  const { config } = clients();
  const cur = (await config.getConfig({})).config!;
  assert.is(cur.version, 2n);
  assert.is(cur.stallMs, 1500);
  const hist = (await config.listConfigHistory({ limit: 10 })).configs;
  assert.equal(hist.map((c) => c.version), [2n, 1n]);
  assert.is(hist[1].updatedBy, "ops");
  const r = await config.setConfig({ config: { ...cur, stallMs: 1000 }, expectedVersion: 2n });
  assert.is(r.config!.version, 3n);
});

test.run();
