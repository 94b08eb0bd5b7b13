/**
 * Several centrals (issue 16): the stream moves to another replica when its
 * own fails and replays what was not acknowledged there, each batch under the
 * (node, seq) and bytes the first replica saw — what the cluster's dedupe
 * needs to count it once. Real grpc-js servers (tools/test/fake-central.ts).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { create, toBinary } from "@bufbuild/protobuf";
import { BatchSchema, type Batch, WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { eventually } from "../../tools/test/proc.js";
import { type FakeCentral, startFakeCentral } from "../../tools/test/fake-central.js";
import { startFaultRelay } from "../../tools/fault-relay.js";
import { startDnsStub } from "../../tools/test/dns-stub.js";
import { StreamClient } from "./client.js";

const ORIGIN = "www.example.com";
let t = 1_700_000_000_000;
const win = (ok: number) => [create(WindowSummarySchema, { origin: ORIGIN, startUnixMs: BigInt((t += 1000)), lengthMs: 1000, counts: { ok: BigInt(ok) } })];
const bytes = (b: Batch) => Buffer.from(toBinary(BatchSchema, b)).toString("base64");

function client(centrals: FakeCentral[], nodeId = "edge-1") {
  return new StreamClient({
    central: centrals.map((c) => c.url).join(","),
    node: { nodeId, isp: "isp-a", region: "eu" },
    origins: [ORIGIN],
    initialBackoffMs: 50,
    maxBackoffMs: 200,
  });
}

test("when its central dies the stream moves to another at once and replays the unacknowledged batches there with the same seq and bytes", async () => {
  let acking = false;
  // The replicas do not acknowledge until the first one is gone: every batch is in flight when it dies.
  const onBatch = () => (acking ? ("ack" as const) : ("ignore" as const));
  const a = await startFakeCentral({ onBatch });
  // The second replica's clock is a minute behind: batches not yet written are re-dated, written ones never.
  const b = await startFakeCentral({ onBatch, clock: () => Date.now() - 60_000 });
  const c = client([a, b]);
  try {
    c.start();
    await eventually(() => c.state === "connected");
    const first = a.calls.length > 0 ? a : b;
    const other = first === a ? b : a;
    for (const n of [1, 2, 3]) c.send(win(n));
    await eventually(() => first.batches.length === 3);
    acking = true;
    first.close();
    c.send(win(4)); // never written to the first: may be re-dated and renumbered
    await eventually(() => c.state === "connected" && c.central?.startsWith(other.url) && c.bufferedBatches === 0, 5000);
    assert.is(c.moves, 1);
    assert.equal(other.batches.slice(0, 3).map((x) => x.seq), [1n, 2n, 3n]);
    assert.equal(other.batches.slice(0, 3).map(bytes), first.batches.map(bytes), "replayed byte for byte");
    assert.is(other.counted.get(ORIGIN), 1 + 2 + 3 + 4);
    assert.equal(other.batches.map((x) => x.seq), [1n, 2n, 3n, 4n]);
  } finally {
    await c.shutdown();
    a.close();
    b.close();
  }
});

test("a fleet spreads over the replicas, and the nodes of a dead one spread over the others", async () => {
  const fakes = await Promise.all([0, 1, 2].map(() => startFakeCentral()));
  const clients = Array.from({ length: 12 }, (_, i) => client(fakes, `edge-${i}`));
  const on = (f: FakeCentral) => clients.filter((c) => c.state === "connected" && c.central?.startsWith(f.url)).length;
  try {
    for (const c of clients) c.start();
    await eventually(() => clients.every((c) => c.state === "connected"));
    const before = fakes.map(on);
    assert.ok(before.every((n) => n >= 1), `every replica has sidecars: ${before.join("/")}`);
    const dead = fakes[before.indexOf(Math.max(...before))];
    const stayed = clients.filter((c) => !c.central?.startsWith(dead.url)).map((c) => c.central);
    dead.close();
    await eventually(() => on(dead) === 0 && clients.every((c) => c.state === "connected"), 5000);
    assert.equal(clients.filter((c) => c.moves === 0).map((c) => c.central), stayed, "only the dead replica's nodes moved");
  } finally {
    await Promise.all(clients.map((c) => c.shutdown()));
    for (const f of fakes) f.close();
  }
});

test("a central that is down at start is skipped: the stream opens on another", async () => {
  const up = await startFakeCentral();
  const c = new StreamClient({ central: ["http://127.0.0.1:1", up.url], node: { nodeId: "edge-x", isp: "isp-a", region: "eu" }, origins: [ORIGIN], initialBackoffMs: 50, maxBackoffMs: 200 });
  try {
    c.start();
    await eventually(() => c.state === "connected", 5000);
    assert.ok(c.central?.startsWith(up.url));
    c.send(win(5));
    await eventually(() => up.counted.get(ORIGIN) === 5);
  } finally {
    await c.shutdown();
    up.close();
  }
});

test("a central that goes silent (blackholed path) is left when keepalive goes unanswered, and its unacknowledged batches are counted by the next", async () => {
  const a = await startFakeCentral();
  const b = await startFakeCentral();
  const relays = await Promise.all([a, b].map((f) => startFaultRelay({ target: { host: "127.0.0.1", port: f.port } })));
  // Short keepalive for the test; production uses 30 s + 10 s.
  const c = new StreamClient({
    central: relays.map((r) => `http://${r.address}`),
    node: { nodeId: "edge-bh", isp: "isp-a", region: "eu" },
    origins: [ORIGIN],
    initialBackoffMs: 50,
    maxBackoffMs: 200,
    keepaliveTimeMs: 500,
    keepaliveTimeoutMs: 1000,
  });
  try {
    c.start();
    await eventually(() => c.state === "connected");
    const i = relays.findIndex((r) => c.central?.startsWith(`http://${r.address}@`));
    await relays[i].setMode({ kind: "blackhole" });
    c.send(win(7));
    await eventually(() => c.state === "connected" && !c.central?.includes(relays[i].address) && c.bufferedBatches === 0, 15_000);
    assert.is([a, b][1 - i].counted.get(ORIGIN), 7);
    assert.is(c.moves, 1);
  } finally {
    await c.shutdown();
    for (const r of relays) await r.close();
    a.close();
    b.close();
  }
});

test("a central name is resolved again before every connect: when its records change, the stream follows them", async () => {
  const a = await startFakeCentral();
  const b = await startFakeCentral({ host: "127.0.0.2", port: a.port });
  const dns = await startDnsStub({ "replicas.test": "127.0.0.1" });
  const c = new StreamClient({
    central: `http://replicas.test:${a.port}`,
    resolver: { host: "127.0.0.1", port: dns.port },
    node: { nodeId: "edge-dns", isp: "isp-a", region: "eu" },
    origins: [ORIGIN],
    initialBackoffMs: 50,
    maxBackoffMs: 200,
  });
  try {
    c.start();
    await eventually(() => c.state === "connected");
    assert.is(c.central, `http://replicas.test:${a.port}@127.0.0.1`);
    dns.records.set("replicas.test", "127.0.0.2");
    a.close();
    await eventually(() => c.state === "connected" && c.central === `http://replicas.test:${a.port}@127.0.0.2`, 5000);
    c.send(win(4));
    await eventually(() => b.counted.get(ORIGIN) === 4);
    assert.ok(dns.queries >= 4, `asked again: ${dns.queries} queries (A and AAAA per connect)`);
  } finally {
    await c.shutdown();
    a.close();
    b.close();
    await dns.close();
  }
});

test("a replica whose high-water mark is above anything this sidecar sent is logged (replicas that do not share the node's mark)", async () => {
  const a = await startFakeCentral();
  const b = await startFakeCentral();
  // An earlier life of the same node sent 5 batches to b only.
  const earlier = new StreamClient({ central: b.url, node: { nodeId: "edge-hw", isp: "isp-a", region: "eu" }, origins: [ORIGIN] });
  earlier.start();
  for (let i = 0; i < 5; i++) earlier.send(win(1));
  await eventually(() => b.highWater("edge-hw") === 5n);
  await earlier.shutdown();
  // b refuses connections until the sidecar is on a.
  const relay = await startFaultRelay({ target: { host: "127.0.0.1", port: b.port } });
  await relay.setMode({ kind: "refuse" });
  const logs: string[] = [];
  const c = new StreamClient({
    central: [a.url, `http://${relay.address}`],
    node: { nodeId: "edge-hw", isp: "isp-a", region: "eu" },
    origins: [ORIGIN],
    initialBackoffMs: 50,
    maxBackoffMs: 200,
    log: (_l, msg) => logs.push(msg),
  });
  try {
    c.start();
    await eventually(() => c.state === "connected" && c.central?.startsWith(a.url));
    c.send(win(1));
    await eventually(() => a.highWater("edge-hw") === 1n);
    await relay.setMode({ kind: "pass" });
    a.close();
    await eventually(() => c.state === "connected" && c.central?.includes(relay.address), 5000);
    assert.ok(logs.some((m) => m.startsWith("the central's high-water mark is above")), logs.join("\n"));
  } finally {
    await c.shutdown();
    await relay.close();
    a.close();
    b.close();
  }
});

test("a central name that does not resolve yet is retried with backoff, and used once it does; send() never waits", async () => {
  const f = await startFakeCentral();
  const dns = await startDnsStub({});
  const c = new StreamClient({
    central: `http://later.test:${f.port}`,
    resolver: { host: "127.0.0.1", port: dns.port },
    node: { nodeId: "edge-nx", isp: "isp-a", region: "eu" },
    origins: [ORIGIN],
    initialBackoffMs: 50,
    maxBackoffMs: 200,
  });
  try {
    c.start();
    await eventually(() => c.connects >= 2);
    assert.is(c.state === "connected", false);
    assert.match(String(c.lastEnd?.details), /no address for http:\/\/later\.test/);
    c.send(win(3));
    dns.records.set("later.test", "127.0.0.1");
    await eventually(() => c.state === "connected" && f.counted.get(ORIGIN) === 3, 5000);
  } finally {
    await c.shutdown();
    f.close();
    await dns.close();
  }
});

test("with rebalancing on, a stream moves back to its preferred central once it has been back for a while, nothing counted twice", async () => {
  const a = await startFakeCentral();
  const b = await startFakeCentral();
  const c = new StreamClient({ central: [a.url, b.url], node: { nodeId: "edge-r", isp: "isp-a", region: "eu" }, origins: [ORIGIN], initialBackoffMs: 50, maxBackoffMs: 200, rebalanceMs: 100 });
  const fakes = [a, b];
  const all = [a, b];
  let sent = 0;
  const send = (n: number) => {
    sent += n;
    c.send(win(n));
  };
  const counted = () => all.reduce((n, f) => n + (f.counted.get(ORIGIN) ?? 0), 0);
  try {
    c.start();
    await eventually(() => c.state === "connected");
    const preferred = fakes.findIndex((f) => c.central?.startsWith(f.url));
    const gone = fakes[preferred];
    send(1);
    await eventually(() => counted() === 1);
    gone.close();
    await eventually(() => c.state === "connected" && !c.central?.startsWith(gone.url), 5000);
    send(2);
    // The replica comes back on its address; the stream stays away while it failed recently (maxBackoffMs here), then moves back.
    fakes[preferred] = await startFakeCentral({ port: gone.port });
    all.push(fakes[preferred]);
    for (let i = 0; i < 10; i++) {
      send(1);
      await new Promise((r) => setTimeout(r, 60));
    }
    await eventually(() => c.state === "connected" && c.central?.startsWith(gone.url) && c.bufferedBatches === 0, 5000);
    assert.is(c.moves, 2);
    send(3);
    await eventually(() => counted() === sent).catch(() => assert.is(counted(), sent));
    await new Promise((r) => setTimeout(r, 200));
    assert.is(counted(), sent, "each batch counted by one central only: the move waited for the acks");
    assert.ok((all[2].counted.get(ORIGIN) ?? 0) >= 3, "the replica that came back counts again");
  } finally {
    await c.shutdown();
    for (const f of fakes) f.close();
  }
});

test.run();
