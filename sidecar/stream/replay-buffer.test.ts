import { test } from "uvu";
import * as assert from "uvu/assert";
import { create, fromBinary } from "@bufbuild/protobuf";
import { BatchSchema, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { ReplayBuffer } from "./replay-buffer.js";

const batch = (seq: number, pad = 0) =>
  create(BatchSchema, { seq: BigInt(seq), windows: pad ? [{ origin: "x".repeat(pad), startUnixMs: 1n, lengthMs: 1000 }] : [] });
const seqs = (b: ReplayBuffer, after = 0n) => [...b.after(after)].map((x) => x.seq);

test("overflow by count drops the oldest and counts it", () => {
  const b = new ReplayBuffer(1 << 20, 3);
  for (let i = 1; i <= 5; i++) b.push(batch(i));
  assert.is(b.size, 3);
  assert.is(b.dropped, 2);
  assert.equal(seqs(b), [3n, 4n, 5n]);
});

test("the byte bound holds: the oldest go first and the held bytes never exceed it", () => {
  const b = new ReplayBuffer(1000);
  for (let i = 1; i <= 200; i++) {
    b.push(batch(i, 90));
    assert.ok(b.bytes <= 1000, `held ${b.bytes} bytes`);
  }
  assert.ok(b.size >= 5 && b.size <= 10, `size ${b.size}`);
  assert.is(b.dropped + b.size, 200);
  assert.is(seqs(b).at(-1), 200n);
  assert.is(b.first()!.seq, BigInt(200 - b.size + 1));
});

test("acks are cumulative", () => {
  const b = new ReplayBuffer(1 << 20);
  for (let i = 1; i <= 5; i++) b.push(batch(i));
  assert.is(b.ackThrough(3n), 3);
  assert.equal(seqs(b), [4n, 5n]);
  assert.is(b.ackThrough(2n), 0);
  assert.equal(seqs(b, 4n), [5n]);
  b.ackThrough(5n);
  assert.is(b.size, 0);
  assert.is(b.bytes, 0);
});

test("holds the encoded message, and shift renumbers it", () => {
  const b = new ReplayBuffer(1 << 20);
  b.push(batch(1));
  b.push(batch(2));
  b.shift(10n);
  assert.equal(seqs(b), [11n, 12n]);
  const msg = fromBinary(SidecarMessageSchema, b.first()!.bytes);
  assert.is(msg.kind.case, "batch");
  assert.is(msg.kind.case === "batch" && msg.kind.value.seq, 11n);
});

test("many drops stay cheap (no O(n) shift per drop)", () => {
  const b = new ReplayBuffer(1 << 20, 50_000);
  for (let i = 1; i <= 200_000; i++) b.push(batch(i));
  assert.is(b.size, 50_000);
  assert.is(b.dropped, 150_000);
  assert.is(b.first()!.seq, 150_001n);
});

test("remove drops one refused batch and keeps the ones around it in order", () => {
  const b = new ReplayBuffer(1 << 20);
  for (let i = 1; i <= 5; i++) b.push(batch(i, 10));
  const bytes = b.bytes;
  const gone = b.remove(3n);
  assert.is(gone?.seq, 3n);
  assert.is(b.bytes, bytes - gone!.bytes.length);
  assert.equal(seqs(b), [1n, 2n, 4n, 5n]);
  assert.equal(seqs(b, 2n), [4n, 5n]);
  assert.is(b.remove(3n), undefined, "not held twice");
  assert.is(b.remove(99n), undefined);
  assert.is(b.get(4n)?.seq, 4n);
  assert.is(b.get(3n), undefined);
  b.ackThrough(4n);
  assert.equal(seqs(b), [5n]);
});

test("rebuild rewrites what needs it and numbers everything again from the first seq", () => {
  const b = new ReplayBuffer(1 << 20);
  for (let i = 7; i <= 9; i++) b.push(batch(i, 10));
  const next = b.rebuild(
    (e) => e.seq === 8n,
    (x) => [x, create(BatchSchema, { ...x }), create(BatchSchema, { ...x })],
    0,
  );
  assert.is(next, 12n);
  assert.equal(seqs(b), [7n, 8n, 9n, 10n, 11n]);
  for (const e of b.after(0n)) {
    const msg = fromBinary(SidecarMessageSchema, e.bytes);
    assert.is(msg.kind.case === "batch" && msg.kind.value.seq, e.seq, "the encoded seq matches");
  }
  assert.is(b.rebuild(() => false, (x) => [x], 0), undefined, "nothing to do");
});

test("rebuild keeps the kept batches (written to a stream) as they are and numbers the rest after them", () => {
  const b = new ReplayBuffer(1 << 20);
  for (let i = 1; i <= 5; i++) b.push(batch(i, 10));
  const before = [...b.after(0n)].map((e) => e.bytes);
  // 1, 3 and 4 were written; 3 is over a limit and must be split; 2 and 5 were never written.
  const next = b.rebuild(
    (e) => e.seq === 3n || e.seq === 5n,
    (x) => (x.seq === 3n ? [x, create(BatchSchema, { ...x })] : [x]),
    0,
    (e) => e.seq === 1n || e.seq === 4n,
  );
  const held = [...b.after(0n)];
  assert.equal(held.map((e) => e.seq), [1n, 4n, 5n, 6n, 7n, 8n]);
  assert.is(held[0].bytes, before[0], "a kept batch is the same bytes");
  assert.is(held[1].bytes, before[3]);
  assert.is(next, 9n);
});
test.run();
