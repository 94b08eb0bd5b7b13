import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { type CentralMessage, IngestService, type SidecarMessage, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { grpcService } from "../../proto/grpc-bridge.js";
import { type Central, startCentral } from "../main.js";

const Client = grpc.makeGenericClientConstructor(grpcService(IngestService), "IngestService");

function hello(nodeId: string): SidecarMessage {
  return create(SidecarMessageSchema, {
    kind: { case: "hello", value: { node: { nodeId, isp: "isp-a", region: "eu", version: "test" }, origins: ["img.example"] } },
  });
}

function batch(seq: bigint, ok: number, serverError = 0): SidecarMessage {
  return create(SidecarMessageSchema, {
    kind: {
      case: "batch",
      value: {
        seq,
        windows: [{ origin: "img.example", startUnixMs: BigInt(Date.now() - 1000), lengthMs: 1000, counts: { ok: BigInt(ok), serverError: BigInt(serverError) } }],
      },
    },
  });
}

/** Open a stream, send msgs, collect replies until `until` says stop or the stream ends. */
function converse(address: string, msgs: SidecarMessage[], until: (got: CentralMessage[]) => boolean) {
  const client = new Client(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    stream(): grpc.ClientDuplexStream<SidecarMessage, CentralMessage>;
  };
  const call = client.stream();
  const got: CentralMessage[] = [];
  return new Promise<{ got: CentralMessage[]; error?: grpc.ServiceError }>((resolve) => {
    const finish = (error?: grpc.ServiceError) => {
      call.cancel();
      client.close();
      resolve({ got, error });
    };
    call.on("data", (m: CentralMessage) => {
      got.push(m);
      if (until(got)) finish();
    });
    call.on("error", (e: grpc.ServiceError) => finish(e));
    call.on("end", () => finish());
    for (const m of msgs) call.write(m);
  });
}

let dir = "";
let central: Central;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-ingest-"));
  central = await startCentral({ listen: "127.0.0.1:0", data: dir }, pino({ level: "silent" }));
});

test.after(async () => {
  await central.close();
  await rm(dir, { recursive: true, force: true });
});

test("hello is welcomed, batches are acknowledged and counted once even when replayed", async () => {
  const acks = (got: CentralMessage[]) => got.filter((m) => m.kind.case === "batchAck").length;
  const first = await converse(central.address, [hello("n1"), batch(1n, 10, 2), batch(2n, 5)], (g) => acks(g) >= 2);
  assert.is(first.got[0].kind.case, "welcome");
  assert.is(acks(first.got), 2);
  // Replay of seq 2 plus a new seq 3: only seq 3 is counted.
  const second = await converse(central.address, [hello("n1"), batch(2n, 5), batch(3n, 1)], (g) => acks(g) >= 2);
  const welcome = second.got[0].kind;
  assert.is(welcome.case, "welcome");
  if (welcome.case === "welcome") assert.is(welcome.value.highWaterSeq, 2n);
  const totals = central.query.totals.get("img.example")!;
  assert.is(totals.requests, 18n);
  assert.is(totals.failures, 2n);
});

test("a batch before hello ends the stream with FAILED_PRECONDITION and a reason", async () => {
  const r = await converse(central.address, [batch(1n, 1)], () => false);
  assert.is(r.error?.code, grpc.status.FAILED_PRECONDITION);
  assert.match(r.error?.details ?? "", /hello/);
});

test("a config ack before hello is FAILED_PRECONDITION; an unknown message kind is INVALID_ARGUMENT", async () => {
  const ackFirst = create(SidecarMessageSchema, { kind: { case: "configAck", value: { version: 1n, accepted: true } } });
  const r = await converse(central.address, [ackFirst], () => false);
  assert.is(r.error?.code, grpc.status.FAILED_PRECONDITION);
  const empty = create(SidecarMessageSchema, {});
  const u = await converse(central.address, [hello("n4"), empty], () => false);
  assert.is(u.error?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(u.error?.details ?? "", /no known kind/);
});

test("a seq far above the high-water mark ends the stream with INVALID_ARGUMENT and counts nothing", async () => {
  const before = central.query.totals.get("img.example")!.requests;
  const jump = await converse(central.address, [hello("n5"), batch(1n << 40n, 3)], () => false);
  assert.is(jump.error?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(jump.error?.details ?? "", /batch\.seq/);
  assert.is(central.query.totals.get("img.example")!.requests, before);
});

test("a hello that declares no origins is refused with INVALID_ARGUMENT naming hello.origins", async () => {
  const r = await converse(central.address, [create(SidecarMessageSchema, { kind: { case: "hello", value: { node: { nodeId: "n6", isp: "a", region: "b" } } } })], () => false);
  assert.is(r.error?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(r.error?.details ?? "", /hello\.origins must name at least one origin/);
});

test("a hello declaring more origins than --max-origins-per-node is refused with RESOURCE_EXHAUSTED", async () => {
  const origins = Array.from({ length: 1001 }, (_, i) => `o${i}.example`);
  const r = await converse(central.address, [create(SidecarMessageSchema, { kind: { case: "hello", value: { node: { nodeId: "n7", isp: "a", region: "b" }, origins } } })], () => false);
  assert.is(r.error?.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.match(r.error?.details ?? "", /hello\.origins has 1001 entries.*CENTRAL_ORIGIN_LIMIT/);
});

test("a second session of the same node replaces the first", async () => {
  const client = new Client(central.address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    stream(): grpc.ClientDuplexStream<SidecarMessage, CentralMessage>;
  };
  const older = client.stream();
  const ended = new Promise<grpc.ServiceError>((resolve) => older.on("error", resolve));
  older.on("data", () => {});
  older.write(hello("n3"));
  await new Promise((r) => setTimeout(r, 200));
  await converse(central.address, [hello("n3")], (g) => g.length >= 1);
  const err = await ended;
  assert.is(err.code, grpc.status.ABORTED);
  client.close();
});

test.run();
