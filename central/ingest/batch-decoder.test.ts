/**
 * The hot decoder reads exactly what protobuf-es's generated decode reads:
 * random batches in every form a sender may use (packed or OutcomeCounts
 * counts, compact, dense, foreign-bounds or malformed histograms, unpacked
 * repeated fields) give the same columns either way, and bytes that do not
 * decode are refused with a "parse binary" reason.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { BatchSchema, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { COUNT_FIELDS } from "../../proto/outcomes.js";
import { decodeBatch } from "./batch-decoder.js";
import { ingestStreamMethod } from "./sidecar-message-view.js";
import { type WindowColumns, columnsOfBatch } from "./window-columns.js";

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const small = fc.integer({ min: 0, max: 1000 });
const counts = fc.oneof(
  fc.record({ packedCounts: fc.array(u32, { maxLength: 18 }) }),
  fc.record({ counts: fc.dictionary(fc.constantFrom(...COUNT_FIELDS), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })) }),
);
const ascending = fc.uniqueArray(fc.integer({ min: 0, max: 70 }), { maxLength: 12 }).map((a) => a.sort((x, y) => x - y));
const histogram = fc.oneof(
  // the compact form, sometimes malformed (index beyond the buckets, lengths differ, no schema)
  fc.record({
    boundsSchema: fc.constantFrom(0, 1, 1, 1, 2),
    sparseIndex: ascending,
    sparseCount: fc.array(small, { maxLength: 12 }),
    sumMs: fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.constant(Number.NaN), fc.constant(-1)),
    count: fc.bigInt({ min: 0n, max: 1n << 40n }),
  }),
  // dense, with explicit bounds
  fc.record({
    boundsMs: fc.array(fc.double({ min: 0, max: 1e5, noNaN: true }), { maxLength: 6 }).map((b) => b.sort((x, y) => x - y)),
    counts: fc.array(fc.bigInt({ min: 0n, max: 1000n }), { maxLength: 7 }),
    count: fc.bigInt({ min: 0n, max: 1000n }),
  }),
);
const window = fc.record({
  origin: fc.oneof(fc.constantFrom("a.example", "b.example"), fc.string({ maxLength: 20 })),
  startUnixMs: fc.bigInt({ min: -(1n << 40n), max: 1n << 45n }),
  lengthMs: u32,
  ttfb: fc.option(histogram, { nil: undefined }),
  bytesIn: fc.bigInt({ min: 0n, max: 1n << 50n }),
}).chain((w) => counts.map((c) => ({ ...w, ...c })));
const batch = fc.record({
  seq: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  windows: fc.array(window, { maxLength: 8 }),
  clockSkewMs: fc.bigInt({ min: -(1n << 40n), max: 1n << 40n }),
  droppedBatches: fc.bigInt({ min: 0n, max: 1n << 40n }),
  exemplars: fc.array(fc.record({ origin: fc.constantFrom("a.example"), path: fc.constantFrom("/x"), status: small }), { maxLength: 2 }),
});

/** Columns as plain data, for deep equality. */
const plain = (c: WindowColumns) => ({
  length: c.length,
  origin: c.origin,
  startMs: [...c.startMs],
  lengthMs: [...c.lengthMs],
  counts: [...c.counts],
  extraCounts: [...c.extraCounts],
  packedLength: [...c.packedLength],
  ttfb: Array.from({ length: c.length }, (_, i) => {
    const pairs: Array<[number, number]> = [];
    for (let p = c.ttfbStart[i]; p < c.ttfbStart[i + 1]; p++) pairs.push([c.ttfbIdx[p], c.ttfbN[p]]);
    return pairs;
  }),
  ttfbClaimed: [...c.ttfbClaimed],
  histograms: [...c.histograms.keys()],
});

test("random batches decode to the same columns as protobuf-es's generated decode", () => {
  fc.assert(
    fc.property(batch, (init) => {
      const bytes = toBinary(BatchSchema, create(BatchSchema, init as never));
      const fast = decodeBatch(bytes);
      const slow = fromBinary(BatchSchema, bytes);
      assert.equal(plain(fast.windows), plain(columnsOfBatch(slow)));
      assert.is(fast.seq, slow.seq);
      assert.is(fast.clockSkewMs, slow.clockSkewMs);
      assert.is(fast.droppedBatches, slow.droppedBatches);
      assert.equal(fast.exemplars, slow.exemplars);
    }),
    { numRuns: 500 },
  );
});

test("unpacked repeated fields (packed_counts, sparse buckets) are read like packed ones", () => {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).string("u.example");
  w.tag(2, WireType.Varint).int64(1_800_000_000_000n);
  w.tag(3, WireType.Varint).uint32(1000);
  for (const n of [4, 0, 2]) w.tag(8, WireType.Varint).uint32(n);
  w.tag(5, WireType.LengthDelimited).fork();
  w.tag(5, WireType.Varint).uint32(1);
  w.tag(6, WireType.Varint).uint32(3);
  w.tag(7, WireType.Varint).uint32(5);
  w.tag(6, WireType.Varint).uint32(9);
  w.tag(7, WireType.Varint).uint32(1);
  w.join();
  const body = w.finish();
  const bytes = new BinaryWriter().tag(1, WireType.Varint).uint64(7n).tag(2, WireType.LengthDelimited).bytes(body).finish();
  const fast = decodeBatch(bytes);
  assert.equal(plain(fast.windows), plain(columnsOfBatch(fromBinary(BatchSchema, bytes))));
  assert.equal([...fast.windows.counts.slice(0, 3)], [4, 0, 2]);
  assert.equal(plain(fast.windows).ttfb, [[[3, 5], [9, 1]]]);
});

test("bytes that do not decode are refused with a parse binary reason", () => {
  const good = toBinary(BatchSchema, create(BatchSchema, { seq: 1n, windows: [{ origin: "a.example", startUnixMs: 1n, lengthMs: 1000, packedCounts: [1] }] }));
  for (const bad of [good.subarray(0, good.length - 1), Uint8Array.of(0x12, 0x05, 0x0a), Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff)]) {
    assert.throws(() => decodeBatch(bad), /^parse binary/);
  }
});

test("the router's SidecarMessage view leaves the batch as its bytes and reads the other kinds as before", () => {
  const b = { seq: 3n, windows: [{ origin: "a.example", startUnixMs: 5n, lengthMs: 1000, packedCounts: [2] }] };
  const msg = toBinary(SidecarMessageSchema, create(SidecarMessageSchema, { kind: { case: "batch", value: b } }));
  const view = fromBinary(ingestStreamMethod.input, msg) as unknown as { kind: { case: string; value: Uint8Array } };
  assert.is(view.kind.case, "batch");
  assert.is(decodeBatch(view.kind.value).seq, 3n);
  const hello = toBinary(SidecarMessageSchema, create(SidecarMessageSchema, { kind: { case: "hello", value: { origins: ["a.example"] } } }));
  const h = fromBinary(ingestStreamMethod.input, hello) as unknown as { kind: { case: string; value: { origins: string[] } } };
  assert.equal([h.kind.case, h.kind.value.origins], ["hello", ["a.example"]]);
});

test.run();
