/**
 * Property tests (fast-check): random messages and random bytes thrown at the
 * ingest stream and the config API of a real central. Whatever arrives, the
 * caller gets a clear gRPC status (never INTERNAL from a crash, never UNKNOWN),
 * the central keeps serving, and its state stays consistent: a valid batch is
 * still counted exactly once, the totals in memory equal what a restart reads
 * back, and the config in force is always a valid one.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { configProblem } from "../../proto/config-validate.js";
import { Outcome } from "../../proto/gen/originwatch/v1/common_pb.js";
import { ConfigSchema, ConfigService } from "../../proto/gen/originwatch/v1/config_pb.js";
import { type CentralMessage, IngestService, type SidecarMessage, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { grpcService } from "../../proto/grpc-bridge.js";
import { type Central, startCentral } from "../main.js";

const silent = pino({ level: "silent" });

/** IngestService with a request serialiser that passes raw bytes through. */
function rawIngest(): grpc.ServiceDefinition {
  const def = grpcService(IngestService) as Record<string, grpc.MethodDefinition<unknown, unknown>>;
  def.stream = { ...def.stream, requestSerialize: (v: unknown) => Buffer.from(v as Uint8Array) };
  return def as grpc.ServiceDefinition;
}
const RawClient = grpc.makeGenericClientConstructor(rawIngest(), "IngestService");
const RawConfig = grpc.makeGenericClientConstructor(
  {
    setConfig: {
      path: "/originwatch.v1.ConfigService/SetConfig",
      requestStream: false,
      responseStream: false,
      requestSerialize: (v: Uint8Array) => Buffer.from(v),
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (v: Buffer) => v,
      responseDeserialize: (b: Buffer) => b,
    },
  },
  "ConfigService",
);

/** Statuses a client may see for bad input; anything else (INTERNAL, UNKNOWN, ...) fails the property. */
const CLEAR = new Set([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION, grpc.status.RESOURCE_EXHAUSTED, grpc.status.ABORTED]);

/** Send frames on one stream, half-close, and return the final status code. */
function converse(address: string, frames: Uint8Array[]): Promise<{ code: number; details: string; got: CentralMessage[] }> {
  const client = new RawClient(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    stream(): grpc.ClientDuplexStream<Uint8Array, CentralMessage>;
  };
  const call = client.stream();
  const got: CentralMessage[] = [];
  return new Promise((resolve) => {
    const timer = setTimeout(() => call.cancel(), 15_000);
    call.on("data", (m: CentralMessage) => got.push(m));
    call.on("error", () => {});
    call.on("status", (s: grpc.StatusObject) => {
      clearTimeout(timer);
      client.close();
      resolve({ code: s.code, details: s.details, got });
    });
    for (const f of frames) call.write(f);
    // Give the central time to answer before half-closing (it ends the stream on our end).
    setTimeout(() => call.end(), 50);
  });
}

const now = Date.now();
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const i64 = fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
const label = fc.oneof(fc.constantFrom("edge-1", "isp-a", "eu", "fuzz.origin", ""), fc.string({ maxLength: 40 }), fc.fullUnicodeString({ maxLength: 10 }));
const counts = fc.record({ ok: u64, serverError: u64, connectRefused: u64, stall: u64, clientAbort: u64 }, { requiredKeys: [] });
const window = fc.record(
  {
    origin: label,
    startUnixMs: fc.oneof(i64, fc.constant(BigInt(now - 2000)), fc.constant(BigInt(now + 3_600_000))),
    lengthMs: fc.oneof(fc.nat(), fc.constant(1000)),
    counts,
    ttfb: fc.record({ boundsMs: fc.array(fc.double(), { maxLength: 4 }), counts: fc.array(u64, { maxLength: 5 }), sumMs: fc.double(), count: u64 }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
);
const exemplar = fc.record(
  { origin: label, path: fc.string({ maxLength: 30 }), method: fc.string({ maxLength: 40 }), timeUnixMs: i64, ttfbMs: fc.double(), totalMs: fc.double(), outcome: fc.constantFrom(Outcome.OK, Outcome.RESET, 99 as Outcome), nodeId: label },
  { requiredKeys: [] },
);
const message: fc.Arbitrary<SidecarMessage> = fc
  .oneof(
    fc.record({ case: fc.constant("hello" as const), value: fc.record({ node: fc.record({ nodeId: label, isp: label, region: label, version: fc.string({ maxLength: 80 }) }, { requiredKeys: [] }), origins: fc.array(label, { maxLength: 3 }), appliedConfigVersion: u64, capabilities: fc.array(fc.string(), { maxLength: 3 }) }, { requiredKeys: [] }) }),
    fc.record({ case: fc.constant("batch" as const), value: fc.record({ seq: u64, windows: fc.array(window, { maxLength: 3 }), exemplars: fc.array(exemplar, { maxLength: 2 }), droppedBatches: u64, bufferedBatches: u64 }, { requiredKeys: [] }) }),
    fc.record({ case: fc.constant("configAck" as const), value: fc.record({ version: u64, accepted: fc.boolean(), reason: fc.string({ maxLength: 100 }) }, { requiredKeys: [] }) }),
    fc.record({ case: fc.constant("probeResult" as const), value: fc.record({ probeId: fc.string(), origin: label }, { requiredKeys: [] }) }),
    fc.constant({ case: undefined }),
  )
  .map((kind) => create(SidecarMessageSchema, { kind } as never));
const goodHello = create(SidecarMessageSchema, { kind: { case: "hello", value: { node: { nodeId: "fuzz-node", isp: "isp-a", region: "eu" }, origins: ["fuzz.origin"] } } });
const frame = fc.oneof(
  { weight: 3, arbitrary: message.map((m) => toBinary(SidecarMessageSchema, m)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  { weight: 1, arbitrary: message.map((m) => toBinary(SidecarMessageSchema, m)).map((b) => b.subarray(0, Math.max(0, b.length - 1))) },
);

let dir = "";
let central: Central;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-fuzz-"));
  central = await startCentral({ listen: "127.0.0.1:0", data: dir, maxMessageBytes: 64 * 1024 }, silent);
});

test.after(async () => {
  await central?.close();
  await rm(dir, { recursive: true, force: true });
});

test("ingest: random messages and random bytes get a clear status and never crash the central", async () => {
  await fc.assert(
    fc.asyncProperty(fc.boolean(), fc.array(frame, { minLength: 1, maxLength: 5 }), async (helloFirst, frames) => {
      const all = helloFirst ? [toBinary(SidecarMessageSchema, goodHello), ...frames] : frames;
      const r = await converse(central.address, all);
      if (!CLEAR.has(r.code)) throw new Error(`status ${grpc.status[r.code]}: ${r.details}`);
      if (r.code === grpc.status.INVALID_ARGUMENT || r.code === grpc.status.FAILED_PRECONDITION) assert.ok(r.details.length > 0, "a refusal says why");
    }),
    { numRuns: 150 },
  );
});

test("ingest: an oversized frame is RESOURCE_EXHAUSTED", async () => {
  const big = create(SidecarMessageSchema, { kind: { case: "hello", value: { node: { nodeId: "x", isp: "a", region: "b", version: "v".repeat(100_000) } } } });
  const r = await converse(central.address, [toBinary(SidecarMessageSchema, big)]);
  assert.is(r.code, grpc.status.RESOURCE_EXHAUSTED);
});

test("after the fuzzing, state is consistent: a valid batch counts exactly once and a restart reads back the same totals", async () => {
  const before = central.query.totals.get("fuzz.origin")?.requests ?? 0n;
  const welcome = await converse(central.address, [toBinary(SidecarMessageSchema, goodHello)]);
  const high = welcome.got.find((m) => m.kind.case === "welcome")?.kind.value as { highWaterSeq: bigint } | undefined;
  assert.ok(high, "welcomed");
  const seq = high!.highWaterSeq + 1n;
  const batch = create(SidecarMessageSchema, {
    kind: { case: "batch", value: { seq, windows: [{ origin: "fuzz.origin", startUnixMs: BigInt(Date.now() - 1000), lengthMs: 1000, counts: { ok: 7n, serverError: 2n } }] } },
  });
  const b = toBinary(SidecarMessageSchema, batch);
  const r = await converse(central.address, [toBinary(SidecarMessageSchema, goodHello), b, b]);
  assert.is(r.code, grpc.status.OK, r.details);
  assert.equal(r.got.filter((m) => m.kind.case === "batchAck").map((m) => (m.kind.value as { seq: bigint }).seq), [seq, seq]);
  assert.is(central.query.totals.get("fuzz.origin")!.requests, before + 9n);
  const inMemory = new Map([...central.query.totals].map(([k, v]) => [k, v.requests]));
  await central.close();
  central = await startCentral({ listen: "127.0.0.1:0", data: dir, maxMessageBytes: 64 * 1024 }, silent);
  const reread = new Map([...central.query.totals].map(([k, v]) => [k, v.requests]));
  assert.equal(reread, inMemory);
});

const rate = fc.oneof({ weight: 1, arbitrary: fc.double() }, { weight: 3, arbitrary: fc.constantFrom(0, 0.001, 0.5, 1) });
const ms = fc.oneof({ weight: 1, arbitrary: fc.nat() }, { weight: 3, arbitrary: fc.constantFrom(0, 1000, 5000, 2000) });
const wildConfig = fc.record(
  {
    sampling: fc.record({ successRate: rate, errorRate: rate }, { requiredKeys: [] }),
    windowMs: ms,
    lookbackMs: ms,
    stallMs: ms,
    thresholds: fc.record({ minRequests: fc.nat(), failRatio: rate, degradedFailRatio: rate, degradedP95TtfbMs: fc.nat() }, { requiredKeys: [] }),
    hysteresis: fc.record({ openAfter: fc.nat({ max: 2000 }), closeAfter: fc.nat({ max: 2000 }), flapWindowMs: fc.nat() }, { requiredKeys: [] }),
    probe: fc.record({ method: fc.constantFrom("", "GET", "HEAD", "POST", "x"), path: fc.string({ maxLength: 10 }), count: fc.nat({ max: 200 }) }, { requiredKeys: [] }),
    origins: fc.dictionary(label, fc.record({ stallMs: ms, sampling: fc.record({ errorRate: rate }, { requiredKeys: [] }) }, { requiredKeys: [] }), { maxKeys: 3 }),
    requiredCapabilities: fc.array(fc.oneof(fc.constant("stall"), fc.string({ maxLength: 10 })), { maxLength: 3 }),
    version: u64,
  },
  { requiredKeys: [] },
);
/** Mostly within range, so that valid configs are stored too. */
const tameConfig = fc.record(
  {
    sampling: fc.record({ successRate: fc.double({ min: 0, max: 0.01, noNaN: true }), errorRate: fc.double({ min: 0.1, max: 1, noNaN: true }) }, { requiredKeys: [] }),
    windowMs: fc.constantFrom(0, 500, 1000),
    lookbackMs: fc.constantFrom(0, 1000, 5000, 400),
    stallMs: fc.nat({ max: 5000 }),
    thresholds: fc.record({ minRequests: fc.nat({ max: 100 }), failRatio: fc.double({ min: 0.3, max: 1, noNaN: true }), degradedFailRatio: fc.double({ min: 0, max: 0.4, noNaN: true }) }, { requiredKeys: [] }),
    requiredCapabilities: fc.array(fc.constantFrom("stall", "exemplars", "Bad Cap"), { maxLength: 2 }),
  },
  { requiredKeys: [] },
);
const config = fc.oneof(wildConfig, tameConfig);

test("config API: random configs and versions are stored only when valid; the config in force is always valid", async () => {
  const client = createClient(ConfigService, createGrpcTransport({ baseUrl: `http://${central.address}` }));
  let stored = 0;
  await fc.assert(
    fc.asyncProperty(config, fc.oneof({ weight: 1, arbitrary: u64 }, { weight: 4, arbitrary: fc.constant(-1n) }), async (init, expected) => {
      const cur = central.fleetConfig.current().version;
      const expectedVersion = expected === -1n ? cur : expected;
      try {
        const r = await client.setConfig({ config: init as never, expectedVersion });
        stored++;
        assert.is(r.config!.version, cur + 1n);
        assert.is(configProblem(r.config!), undefined);
      } catch (err) {
        const e = ConnectError.from(err);
        if (e.code !== Code.InvalidArgument && e.code !== Code.FailedPrecondition) throw new Error(`status ${Code[e.code]}: ${e.rawMessage}`);
        if (e.code === Code.FailedPrecondition) assert.ok(expectedVersion !== cur);
        assert.is(central.fleetConfig.current().version, cur, "a refused config changes nothing");
      }
      assert.is(configProblem(central.fleetConfig.current()), undefined);
    }),
    { numRuns: 200 },
  );
  assert.ok(stored > 0, "some random configs were valid");
});

test("config API: random bytes as a SetConfig request get a clear status", async () => {
  const client = new RawConfig(central.address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    setConfig(req: Uint8Array, cb: (err: grpc.ServiceError | null) => void): void;
  };
  try {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 300 }), config.map((c) => toBinary(ConfigSchema, create(ConfigSchema, c as never)))), async (bytes) => {
        const err = await new Promise<grpc.ServiceError | null>((resolve) => client.setConfig(bytes, resolve));
        const code = err ? err.code : grpc.status.OK;
        // An undecodable request message is INTERNAL "parse binary: ..." (connect-es decodes
        // unary requests before any handler or interceptor runs; grpc-go and grpc-java do the same).
        const decodeError = code === grpc.status.INTERNAL && /parse binary/.test(err!.details);
        if (!decodeError && ![grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION].includes(code)) {
          throw new Error(`status ${grpc.status[code]}: ${err?.details}`);
        }
      }),
      { numRuns: 100 },
    );
  } finally {
    client.close();
  }
  const query = createClient(QueryService, createGrpcTransport({ baseUrl: `http://${central.address}` }));
  assert.ok(Array.isArray((await query.listNodes({})).nodes), "the central still answers");
});

test.run();
