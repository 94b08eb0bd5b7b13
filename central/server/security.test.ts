/**
 * Attacks that must fail, against a real central with TLS and tokens on:
 * sidecars without a certificate, with one from another CA, or claiming
 * another node's id; operators without a token or with a read token calling
 * SetConfig; oversized messages; hostile labels; a flooding node.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { Health } from "../../proto/gen/grpc/health/v1/health_pb.js";
import { ConfigService } from "../../proto/gen/originwatch/v1/config_pb.js";
import { type CentralMessage, IngestService, type SidecarMessage, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { grpcService } from "../../proto/grpc-bridge.js";
import { initPki, type DevPki } from "../../tools/certs.js";
import { type Central, startCentral } from "../main.js";

const Client = grpc.makeGenericClientConstructor(grpcService(IngestService), "IngestService");
type IngestClient = grpc.Client & { stream(): grpc.ClientDuplexStream<SidecarMessage, CentralMessage> };

const READ_TOKEN = "read-token-0123456789abcdef";
const ADMIN_TOKEN = "admin-token-0123456789abcdef";

let dir = "";
let pki: DevPki;
let other: DevPki;
let central: Central;
let ca: Buffer;

const hello = (nodeId: string, isp = "isp-a", region = "eu") =>
  create(SidecarMessageSchema, { kind: { case: "hello", value: { node: { nodeId, isp, region, version: "t" }, origins: ["img.example"] } } });
const batch = (seq: number) =>
  create(SidecarMessageSchema, {
    kind: { case: "batch", value: { seq: BigInt(seq), windows: [{ origin: "img.example", startUnixMs: BigInt(Date.now() - 1000), lengthMs: 1000, counts: { ok: 1n } }] } },
  });

async function ingestClient(cert?: { cert: string; key: string }): Promise<IngestClient> {
  const creds = grpc.credentials.createSsl(ca, cert ? await readFile(cert.key) : null, cert ? await readFile(cert.cert) : null);
  return new Client(`localhost:${central.address.split(":")[1]}`, creds) as unknown as IngestClient;
}

/** Send msgs, resolve with the first reply or the error that ended the stream. */
function firstReply(client: IngestClient, msgs: SidecarMessage[]): Promise<{ reply?: CentralMessage; error?: grpc.ServiceError }> {
  const call = client.stream();
  return new Promise((resolve) => {
    call.on("data", (m: CentralMessage) => {
      call.cancel();
      resolve({ reply: m });
    });
    call.on("error", (e: grpc.ServiceError) => resolve({ error: e }));
    for (const m of msgs) call.write(m);
  });
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-sec-"));
  pki = initPki(join(dir, "pki"), { nodes: ["n1", "n2", "flood"] });
  other = initPki(join(dir, "other"), { nodes: ["n1"], caName: "someone else" });
  ca = await readFile(pki.ca);
  await writeFile(join(dir, "tokens"), `# operators\n${READ_TOKEN} read dashboards\n${ADMIN_TOKEN} admin oncall\n`);
  central = await startCentral(
    {
      listen: "127.0.0.1:0",
      data: join(dir, "data"),
      tlsCert: pki.centralCert,
      tlsKey: pki.centralKey,
      tlsCa: pki.ca,
      tokensFile: join(dir, "tokens"),
      ingestRatePerSec: 50,
      ingestBurst: 50,
    },
    pino({ level: "silent" }),
  );
});

test.after(async () => {
  await central.close();
  await rm(dir, { recursive: true, force: true });
});

test("a sidecar with a certificate for its own node_id is welcomed", async () => {
  const c = await ingestClient(pki.nodes.n1);
  const r = await firstReply(c, [hello("n1")]);
  c.close();
  assert.is(r.reply?.kind.case, "welcome", r.error?.details);
});

test("no client certificate: refused with UNAUTHENTICATED", async () => {
  const c = await ingestClient();
  const r = await firstReply(c, [hello("n1")]);
  c.close();
  assert.is(r.error?.code, grpc.status.UNAUTHENTICATED);
  assert.match(r.error!.details, /client certificate/);
});

test("a certificate from another CA: refused with UNAUTHENTICATED", async () => {
  const c = await ingestClient(other.nodes.n1);
  const r = await firstReply(c, [hello("n1")]);
  c.close();
  assert.is(r.error?.code, grpc.status.UNAUTHENTICATED);
});

test("a certificate for node n1 claiming node n2: PERMISSION_DENIED", async () => {
  const c = await ingestClient(pki.nodes.n1);
  const r = await firstReply(c, [hello("n2")]);
  c.close();
  assert.is(r.error?.code, grpc.status.PERMISSION_DENIED);
  assert.match(r.error!.details, /n2/);
});

test("labels with control characters or 10 kB length: INVALID_ARGUMENT naming the field", async () => {
  const c = await ingestClient(pki.nodes.n1);
  const ctl = await firstReply(c, [hello("n1", "isp\u0007\u001b[31m")]);
  assert.is(ctl.error?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(ctl.error!.details, /hello\.node\.isp/);
  const long = await firstReply(c, [hello("n1", "isp-a", "r".repeat(10_000))]);
  assert.is(long.error?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(long.error!.details, /hello\.node\.region/);
  c.close();
});

test("an oversized message (over 1 MiB) gets RESOURCE_EXHAUSTED", async () => {
  const c = await ingestClient(pki.nodes.n1);
  const huge = create(SidecarMessageSchema, {
    kind: { case: "hello", value: { node: { nodeId: "n1", isp: "a", region: "b" }, origins: Array.from({ length: 120_000 }, (_, i) => `origin-${i}.example`) } },
  });
  const r = await firstReply(c, [huge]);
  c.close();
  assert.is(r.error?.code, grpc.status.RESOURCE_EXHAUSTED);
});

const query = (token?: string, protocol: "connect" | "grpc" = "connect") => {
  const opts = {
    baseUrl: `https://localhost:${central.address.split(":")[1]}`,
    nodeOptions: { ca },
    interceptors: token ? [(next: any) => (req: any) => (req.header.set("authorization", `Bearer ${token}`), next(req))] : [],
  };
  return protocol === "connect" ? createConnectTransport({ ...opts, httpVersion: "1.1" }) : createGrpcTransport(opts);
};

async function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

test("operator API: no token is UNAUTHENTICATED, a read token may query (Connect and gRPC)", async () => {
  assert.is(await codeOf(createClient(QueryService, query()).listOrigins({})), Code.Unauthenticated);
  assert.is(await codeOf(createClient(QueryService, query("wrong-token-0123456789")).listOrigins({})), Code.Unauthenticated);
  assert.is(await codeOf(createClient(QueryService, query(READ_TOKEN)).listOrigins({})), "ok");
  assert.is(await codeOf(createClient(QueryService, query(READ_TOKEN, "grpc")).listNodes({})), "ok");
  assert.is(await codeOf(createClient(QueryService, query(undefined, "grpc")).listNodes({})), Code.Unauthenticated);
});

test("a read token calling SetConfig or ProbeOrigin is PERMISSION_DENIED; an admin token gets past auth", async () => {
  assert.is(await codeOf(createClient(ConfigService, query(READ_TOKEN)).setConfig({ config: {} })), Code.PermissionDenied);
  assert.is(await codeOf(createClient(QueryService, query(READ_TOKEN, "grpc")).probeOrigin({ origin: "img.example" })), Code.PermissionDenied);
  const admin = await codeOf(createClient(ConfigService, query(ADMIN_TOKEN)).setConfig({ config: {} }));
  assert.ok(admin !== Code.PermissionDenied && admin !== Code.Unauthenticated, `admin got ${admin}`);
});

test("health checks need no token (load balancers)", async () => {
  const r = await createClient(Health, query()).check({});
  assert.is(r.status, 1);
});

test("GET /metrics over TLS goes through token auth: none or an unknown token is 401, a read token gets the exposition", async () => {
  const https = await import("node:https");
  const [host, port] = [central.address.slice(0, central.address.lastIndexOf(":")), central.address.slice(central.address.lastIndexOf(":") + 1)];
  const get = (token?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.get({ host, port, path: "/metrics", ca, servername: "localhost", headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
    });
  assert.is((await get()).status, 401);
  assert.is((await get("unknown-token-0123456789")).status, 401);
  const ok = await get(READ_TOKEN);
  assert.is(ok.status, 200);
  assert.match(ok.body, /^originwatch_central_sidecar_sessions \d+$/m);
});

test("a flood of batches from one node is throttled while another node keeps its latency", async () => {
  const flooder = await ingestClient(pki.nodes.flood);
  const fcall = flooder.stream();
  let floodAcks = 0;
  fcall.on("data", (m: CentralMessage) => {
    if (m.kind.case === "batchAck") floodAcks++;
  });
  fcall.on("error", () => {});
  fcall.write(hello("flood"));
  for (let i = 1; i <= 2000; i++) fcall.write(batch(i));

  const quiet = await ingestClient(pki.nodes.n2);
  const qcall = quiet.stream();
  const latencies: number[] = [];
  let sentAt = 0;
  let seq = 0;
  const done = new Promise<void>((resolve) => {
    qcall.on("data", (m: CentralMessage) => {
      if (m.kind.case === "batchAck") latencies.push(performance.now() - sentAt);
      if (latencies.length >= 10) return resolve();
      setTimeout(() => {
        sentAt = performance.now();
        qcall.write(batch(++seq));
      }, 100);
    });
  });
  qcall.on("error", () => {});
  qcall.write(hello("n2"));
  const t0 = performance.now();
  await done;
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  // The flooder got roughly its burst plus its rate, not its 2000 batches.
  assert.ok(floodAcks <= 50 + 50 * (elapsed + 1) + 10, `flooder acked ${floodAcks} in ${elapsed.toFixed(1)} s`);
  assert.ok(floodAcks > 0);
  // The quiet node's acks stay fast (generous bound for a shared machine).
  assert.ok(latencies[Math.floor(latencies.length / 2)] < 500, `median ack latency ${latencies.join(",")}`);
  fcall.cancel();
  qcall.cancel();
  flooder.close();
  quiet.close();
});

test("an HTTP/1.1 request with 20 kB of headers gets 431, and the central keeps serving", async () => {
  const https = await import("node:https");
  const port = Number(central.address.split(":")[1]);
  const status = await new Promise<number>((resolve, reject) => {
    const req = https.request(
      { host: "localhost", port, path: "/originwatch.v1.QueryService/ListOrigins", method: "POST", ca, headers: { "content-type": "application/json", "x-junk": "j".repeat(20_000) } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    req.end("{}");
  });
  assert.is(status, 431);
  const r = await createClient(Health, query()).check({});
  assert.is(r.status, 1);
});

test.run();
