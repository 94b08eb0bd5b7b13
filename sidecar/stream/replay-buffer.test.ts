import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { BatchSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { ReplayBuffer } from "./replay-buffer.js";

const batch = (seq: number) => create(BatchSchema, { seq: BigInt(seq) });

test("overflow drops the oldest and counts it", () => {
  const b = new ReplayBuffer(3);
  for (let i = 1; i <= 5; i++) b.push(batch(i));
  assert.is(b.size, 3);
  assert.is(b.dropped, 2);
  assert.equal(b.after(0n).map((x) => x.seq), [3n, 4n, 5n]);
});

test("acks are cumulative", () => {
  const b = new ReplayBuffer(10);
  for (let i = 1; i <= 5; i++) b.push(batch(i));
  assert.is(b.ackThrough(3n), 3);
  assert.equal(b.after(0n).map((x) => x.seq), [4n, 5n]);
  assert.is(b.ackThrough(2n), 0);
  assert.equal(b.after(4n).map((x) => x.seq), [5n]);
});

test("shift renumbers every buffered batch", () => {
  const b = new ReplayBuffer(10);
  b.push(batch(1));
  b.push(batch(2));
  b.shift(10n);
  assert.equal(b.after(0n).map((x) => x.seq), [11n, 12n]);
});

test.run();
