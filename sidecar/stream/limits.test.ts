import { test } from "uvu";
import * as assert from "uvu/assert";
import { create, toBinary } from "@bufbuild/protobuf";
import { ExemplarSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { IngestLimitsSchema, SidecarMessageSchema, WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { splitBatch } from "./batch-split.js";
import { DEFAULT_INGEST_LIMITS, MIN_MESSAGE_BYTES, learnMaxMessageBytes, limitsFromWelcome } from "./limits.js";
import { MAX_CODES, OTHER_CODE, Rejections } from "./rejections.js";

test("until a Welcome states limits the defaults hold; a Welcome's zero fields leave them; a learned cap stays below", () => {
  assert.equal(limitsFromWelcome(undefined), { ...DEFAULT_INGEST_LIMITS });
  assert.equal(DEFAULT_INGEST_LIMITS, { maxMessageBytes: 1 << 20, maxWindowsPerBatch: 2000, maxExemplarsPerBatch: 1000, maxOriginsPerNode: 1000 });
  const l = limitsFromWelcome(create(IngestLimitsSchema, { maxWindowsPerBatch: 50, maxMessageBytes: 1 << 22 }), 300_000);
  assert.equal(l, { maxMessageBytes: 300_000, maxWindowsPerBatch: 50, maxExemplarsPerBatch: 1000, maxOriginsPerNode: 1000 });
  assert.is(limitsFromWelcome(create(IngestLimitsSchema, { maxMessageBytes: 10 })).maxMessageBytes, MIN_MESSAGE_BYTES);
});

test("RESOURCE_EXHAUSTED details: the stated read limit is learned only when the refused size is one this sidecar sent", () => {
  const connect = "message size 1700000 is larger than configured readMaxBytes 1048576";
  assert.is(learnMaxMessageBytes(connect, [1700000, 400], 1 << 20), 1048576);
  assert.is(learnMaxMessageBytes("Received message larger than max (9000 vs. 8192)", [9000], 1 << 20), 8192);
  assert.is(learnMaxMessageBytes("Received message larger than max (5000000 vs 4194304)", [9000], 1 << 20), undefined, "what the central sent us, not ours");
  assert.is(learnMaxMessageBytes("message size is larger than configured readMaxBytes 65536", [70000], 1 << 20), 65536);
  assert.is(learnMaxMessageBytes("too large", [40000], 1 << 20), 20000, "no figure: half the largest suspect");
  assert.is(learnMaxMessageBytes("quota exceeded, slow down", [40000], 1 << 20), undefined, "not about size: transient");
  assert.is(learnMaxMessageBytes(connect, [], 1 << 20), undefined, "nothing sent: transient");
});

const w = (i: number, origin = "o.example") => create(WindowSummarySchema, { origin, startUnixMs: BigInt(i * 1000), lengthMs: 1000, counts: { ok: 1n } });
const ex = (path: string) => create(ExemplarSchema, { origin: "o.example", path, method: "GET", timeUnixMs: 1n });
const encoded = (windows: ReturnType<typeof w>[], exemplars: ReturnType<typeof ex>[]) =>
  toBinary(SidecarMessageSchema, create(SidecarMessageSchema, { kind: { case: "batch", value: { seq: 1n << 62n, windows, exemplars, droppedBatches: 1n << 62n, bufferedBatches: 1n << 62n, clockSkewMs: -(1n << 62n), rejectedBatches: 1n << 62n } } })).length;

test("split: every part within windows, exemplars and bytes (worst-case header fields), order kept, nothing lost", () => {
  const limits = { maxMessageBytes: 2000, maxWindowsPerBatch: 7, maxExemplarsPerBatch: 3, maxOriginsPerNode: 1000 };
  const windows = Array.from({ length: 50 }, (_, i) => w(i));
  const exemplars = Array.from({ length: 20 }, (_, i) => ex(`/${"x".repeat(i * 10)}`));
  const { parts, tooLarge } = splitBatch(windows, exemplars, limits);
  assert.is(tooLarge, 0);
  for (const p of parts) {
    assert.ok(p.windows.length <= 7 && p.exemplars.length <= 3);
    assert.ok(encoded(p.windows, p.exemplars) <= 2000, `part of ${encoded(p.windows, p.exemplars)} bytes`);
  }
  assert.equal(parts.flatMap((p) => p.windows), windows);
  assert.equal(parts.flatMap((p) => p.exemplars), exemplars);
  assert.equal(splitBatch([], [], limits).parts, [{ windows: [], exemplars: [] }], "an empty tick is still one (empty) batch");
  assert.is(splitBatch(windows, [], DEFAULT_INGEST_LIMITS).parts.length, 1, "under the limits: one batch");
});

test("split: an item alone over the byte limit is left out and counted", () => {
  const limits = { maxMessageBytes: 1024, maxWindowsPerBatch: 100, maxExemplarsPerBatch: 100, maxOriginsPerNode: 1000 };
  const r = splitBatch([w(1)], [ex("/ok"), ex(`/${"y".repeat(2000)}`)], limits);
  assert.is(r.tooLarge, 1);
  assert.is(r.parts.length, 1);
  assert.is(r.parts[0].exemplars.length, 1);
});

test("rejection codes are a bounded label set; the first of each label is flagged for the log", () => {
  const r = new Rejections();
  assert.equal(r.record("CENTRAL_WINDOW_SKEW"), { label: "CENTRAL_WINDOW_SKEW", first: true });
  assert.equal(r.record("CENTRAL_WINDOW_SKEW", 2), { label: "CENTRAL_WINDOW_SKEW", first: false });
  assert.is(r.record("not a code {}").label, OTHER_CODE);
  for (let i = 0; i < 100; i++) r.record(`CODE_${i}`);
  assert.ok(Object.keys(r.counts()).length <= MAX_CODES + 1);
  assert.is(r.total, 104);
  assert.is(Object.values(r.counts()).reduce((a, b) => a + b, 0), 104);
});

test.run();
