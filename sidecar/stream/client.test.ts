import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type CentralMessage,
  CentralMessageSchema,
  type SidecarMessage,
  WindowSummarySchema,
} from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { type FakeCall, startFakeCentral } from "../../tools/test/fake-central.js";
import { eventually } from "../../tools/test/proc.js";
import { startFaultRelay } from "../../tools/fault-relay.js";
import { BACKOFF, backoffStep } from "./backoff.js";
import { StreamClient } from "./client.js";

/** A scripted stand-in for the central's ingest endpoint (the real one lives in central/). */
const fakeCentral = (script: (call: FakeCall, received: SidecarMessage[]) => void) => startFakeCentral({ script });

const welcome = (hw: bigint) => create(CentralMessageSchema, { kind: { case: "welcome", value: { sessionId: "s", highWaterSeq: hw } } });
const ack = (seq: bigint) => create(CentralMessageSchema, { kind: { case: "batchAck", value: { seq } } });
const win = (origin: string) => [create(WindowSummarySchema, { origin, startUnixMs: 1000n, lengthMs: 1000 })];
const seqs = (msgs: SidecarMessage[]) => msgs.flatMap((m) => (m.kind.case === "batch" ? [m.kind.value.seq] : []));

function client(port: number, extra: Partial<ConstructorParameters<typeof StreamClient>[0]> = {}) {
  return new StreamClient({
    central: `http://127.0.0.1:${port}`,
    node: { nodeId: "edge-1", isp: "isp-a", region: "eu" },
    origins: ["www.example.com"],
    maxBufferedBatches: 100,
    initialBackoffMs: 50,
    maxBackoffMs: 200,
    ...extra,
  });
}

test("sends Hello first, then numbered batches that the central acknowledges", async () => {
  const central = await fakeCentral((call, received) => {
    call.on("data", (m: SidecarMessage) => {
      if (m.kind.case === "hello") call.write(welcome(0n));
      if (m.kind.case === "batch") call.write(ack(m.kind.value.seq));
    });
    void received;
  });
  const c = client(central.port);
  try {
    c.start();
    c.send(win("www.example.com"));
    c.send(win("www.example.com"));
    c.send(win("www.example.com"));
    await eventually(() => c.ackedSeq === 3n);
    const got = central.calls[0].received;
    assert.is(got[0].kind.case, "hello");
    const hello = got[0].kind.value as { node: { nodeId: string; isp: string; region: string }; origins: string[] };
    assert.is(hello.node.nodeId, "edge-1");
    assert.is(hello.node.isp, "isp-a");
    assert.equal(hello.origins, ["www.example.com"]);
    assert.equal(seqs(got), [1n, 2n, 3n]);
    assert.is(c.bufferedBatches, 0);
    assert.is(c.state, "connected");
  } finally {
    await c.shutdown();
    central.close();
  }
});

test("replays unacknowledged batches after the stream breaks, skipping those under Welcome's high-water mark", async () => {
  let n = 0;
  const central = await fakeCentral((call) => {
    const me = ++n;
    call.on("data", (m: SidecarMessage) => {
      if (m.kind.case === "hello") call.write(welcome(me === 1 ? 0n : 2n));
    });
  });
  const c = client(central.port);
  try {
    c.start();
    for (let i = 0; i < 4; i++) c.send(win("o"));
    await eventually(() => seqs(central.calls[0]?.received ?? []).length === 4);
    // Break the stream without acks: the central "stored" 1..2 only.
    central.calls[0].call.emit("error", new Error("x")); central.calls[0].call.end();
    await eventually(() => central.calls.length >= 2 && seqs(central.calls[1].received).length === 2, 5000).catch((e) => { throw new Error(`${e.message} state=${c.state} calls=${central.calls.length} got=${central.calls.map((x) => seqs(x.received).join(","))}`); });
    assert.equal(seqs(central.calls[1].received), [3n, 4n]);
    assert.is(c.bufferedBatches, 2);
    assert.ok(c.connects >= 2);
  } finally {
    await c.shutdown();
    central.close();
  }
});

test("a restarted sidecar resumes numbering above the central's high-water mark", async () => {
  const central = await fakeCentral((call) => {
    call.on("data", (m: SidecarMessage) => {
      if (m.kind.case === "hello") call.write(welcome(41n));
    });
  });
  const c = client(central.port);
  try {
    c.send(win("o")); // buffered before the first connection
    c.start();
    await eventually(() => seqs(central.calls[0]?.received ?? []).length === 1);
    c.send(win("o"));
    await eventually(() => seqs(central.calls[0].received).length === 2);
    assert.equal(seqs(central.calls[0].received), [42n, 43n]);
  } finally {
    await c.shutdown();
    central.close();
  }
});

test("fail-open: with no central, send() returns at once and the buffer is bounded and counted", async () => {
  const central = await fakeCentral(() => {});
  const port = central.port;
  central.close(); // nothing listens there any more
  const c = client(port, { maxBufferedBatches: 5 });
  try {
    c.start();
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) c.send(win("o"));
    assert.ok(performance.now() - t0 < 100, "send must not wait for the central");
    assert.is(c.bufferedBatches, 5);
    assert.is(c.droppedBatches, 15);
    await eventually(() => c.state === "backoff" || c.state === "connecting");
  } finally {
    await c.shutdown();
    await c.shutdown(); // idempotent
    assert.is(c.state, "closed");
  }
});

test("a stream that stops acknowledging is restarted and the batches replayed", async () => {
  const central = await fakeCentral((call) => {
    call.on("data", (m: SidecarMessage) => {
      if (m.kind.case === "hello") call.write(welcome(0n));
    });
  });
  const c = client(central.port, { ackTimeoutMs: 200 });
  try {
    c.start();
    await eventually(() => c.state === "connected");
    c.send(win("o"));
    await new Promise((r) => setTimeout(r, 300));
    c.send(win("o")); // notices the stuck stream
    await eventually(() => central.calls.length >= 2 && seqs(central.calls[1].received).length === 2);
    assert.equal(seqs(central.calls[1].received), [1n, 2n]);
  } finally {
    await c.shutdown();
    central.close();
  }
});

test("backoff follows the gRPC shape: 1 s initial, x1.6, 20 % jitter, capped", () => {
  assert.is(BACKOFF.initialMs, 1000);
  let base: number = BACKOFF.initialMs;
  const bases: number[] = [];
  for (let i = 0; i < 12; i++) {
    bases.push(Math.round(base));
    const lo = backoffStep(base, 30_000, 0);
    const hi = backoffStep(base, 30_000, 0.999999);
    assert.is(lo.waitMs, Math.round(base * 0.8));
    assert.is(hi.waitMs, Math.round(base * 1.2));
    base = lo.nextBaseMs;
  }
  assert.equal(bases.slice(0, 4), [1000, 1600, 2560, 4096]);
  assert.is(bases.at(-1), 30_000);
});

test("a pushed config reaches onConfigPush, and Hello carries capabilities and the applied version", async () => {
  const central = await fakeCentral((call) => {
    call.on("data", (m: SidecarMessage) => {
      if (m.kind.case !== "hello") return;
      call.write(welcome(0n));
      call.write(create(CentralMessageSchema, { kind: { case: "configPush", value: { config: { version: 9n } } } }));
    });
  });
  const pushed: bigint[] = [];
  const c = client(central.port, { capabilities: ["exemplars"], appliedConfigVersion: () => 4n, onConfigPush: (p) => pushed.push(p.config!.version) });
  try {
    c.start();
    await eventually(() => pushed.length === 1);
    assert.equal(pushed, [9n]);
    const hello = central.calls[0].received[0];
    assert.is(hello.kind.case, "hello");
    if (hello.kind.case === "hello") {
      assert.equal(hello.kind.value.capabilities, ["exemplars"]);
      assert.is(hello.kind.value.appliedConfigVersion, 4n);
    }
  } finally {
    await c.shutdown();
    central.close();
  }
});

test("keepalive notices a blackholed path and the client reconnects when it clears", async () => {
  const central = await fakeCentral((call) => {
    call.on("data", (m: SidecarMessage) => {
      if (m.kind.case === "hello") call.write(welcome(0n));
      if (m.kind.case === "batch") call.write(ack(m.kind.value.seq));
    });
  });
  const relay = await startFaultRelay({ target: { host: "127.0.0.1", port: central.port } });
  const states: string[] = [];
  // Short keepalive for the test; production uses 30 s + 10 s (noticed within about a minute).
  const c = new StreamClient({
    central: `http://${relay.address}`,
    node: { nodeId: "edge-ka", isp: "isp-a", region: "eu" },
    origins: ["o"],
    initialBackoffMs: 100,
    maxBackoffMs: 500,
    keepaliveTimeMs: 1000,
    keepaliveTimeoutMs: 2000,
    onState: (s) => states.push(s),
  });
  try {
    c.start();
    await eventually(() => c.state === "connected", 10_000);
    await relay.setMode({ kind: "blackhole" });
    c.send(win("o"));
    await eventually(() => c.state !== "connected", 30_000);
    await relay.setMode({ kind: "pass" });
    await eventually(() => c.state === "connected" && c.ackedSeq === 1n, 40_000).catch((e: Error) => {
      throw new Error(`${e.message}; state ${c.state}, acked ${c.ackedSeq}, connects ${c.connects}, states ${states.join(">")}`);
    });
    assert.ok(states.includes("backoff"));
    assert.ok(c.connects >= 2);
  } finally {
    await c.shutdown();
    await relay.close();
    central.close();
  }
});

test("a stream ended with any status (OK, UNIMPLEMENTED, ABORTED) is re-established", async () => {
  const endings = [grpc.status.OK, grpc.status.UNIMPLEMENTED, grpc.status.ABORTED];
  let n = 0;
  const central = await fakeCentral((call) => {
    const me = n++;
    call.on("data", (m: SidecarMessage) => {
      if (m.kind.case !== "hello") return;
      call.write(welcome(0n));
      if (me < endings.length) {
        if (endings[me] === grpc.status.OK) call.end();
        else call.emit("error", { code: endings[me], details: "test ending" });
      }
    });
  });
  const c = client(central.port);
  try {
    c.start();
    await eventually(() => central.calls.length === endings.length + 1 && c.state === "connected", 15_000);
    assert.is(c.connects, endings.length + 1);
  } finally {
    await c.shutdown();
    central.close();
  }
});

test("shutdown before start is safe", async () => {
  const c = client(1);
  await c.shutdown();
  assert.is(c.state, "closed");
});

test.run();
