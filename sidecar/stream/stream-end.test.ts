import { test } from "uvu";
import * as assert from "uvu/assert";
import { status } from "@grpc/grpc-js";
import { STREAM_END_RULES, type StreamEnd, classifyEnd } from "./stream-end.js";

const base = { welcomed: true, sentSizes: [2_000_000], maxMessageBytes: 1 << 20 };

const rows: Array<[string, Parameters<typeof classifyEnd>[0], StreamEnd]> = [
  ["no Welcome / no acks / plain end (local)", { ...base, code: undefined }, "transient"],
  ["UNAVAILABLE", { ...base, code: status.UNAVAILABLE }, "transient"],
  ["INTERNAL", { ...base, code: status.INTERNAL }, "transient"],
  ["CANCELLED", { ...base, code: status.CANCELLED }, "transient"],
  ["DEADLINE_EXCEEDED", { ...base, code: status.DEADLINE_EXCEEDED }, "transient"],
  ["ABORTED (replaced session)", { ...base, code: status.ABORTED }, "transient"],
  ["INVALID_ARGUMENT before Welcome", { ...base, welcomed: false, code: status.INVALID_ARGUMENT, details: "hello.node.isp must match" }, "config_error"],
  ["UNAUTHENTICATED before Welcome", { ...base, welcomed: false, code: status.UNAUTHENTICATED }, "config_error"],
  ["PERMISSION_DENIED before Welcome", { ...base, welcomed: false, code: status.PERMISSION_DENIED }, "config_error"],
  ["RESOURCE_EXHAUSTED before Welcome (too many origins declared)", { ...base, welcomed: false, sentSizes: [], code: status.RESOURCE_EXHAUSTED, details: "hello.origins has 1001 entries, more than the 1000 one node may declare" }, "config_error"],
  ["UNAUTHENTICATED after Welcome", { ...base, code: status.UNAUTHENTICATED }, "transient"],
  ["INVALID_ARGUMENT after Welcome with batches in flight", { ...base, code: status.INVALID_ARGUMENT }, "batch_refused"],
  ["INVALID_ARGUMENT after Welcome, nothing in flight", { ...base, sentSizes: [], code: status.INVALID_ARGUMENT }, "transient"],
  ["RESOURCE_EXHAUSTED: one of ours was too large", { ...base, code: status.RESOURCE_EXHAUSTED, details: "message size 2000000 is larger than configured readMaxBytes 1048576" }, "too_large"],
  ["RESOURCE_EXHAUSTED: not about size (a quota)", { ...base, code: status.RESOURCE_EXHAUSTED, details: "quota exhausted" }, "transient"],
  ["RESOURCE_EXHAUSTED: what the central sent us was too large", { ...base, code: status.RESOURCE_EXHAUSTED, details: "Received message larger than max (5000000 vs 4194304)" }, "transient"],
];

for (const [name, input, kind] of rows) {
  test(`stream end: ${name} → ${kind}`, () => {
    assert.is(classifyEnd(input).kind, kind);
  });
}

test("a too-large ending carries the limit to learn; every rule's kind is reachable", () => {
  assert.is(classifyEnd(rows.find((r) => r[0].startsWith("RESOURCE_EXHAUSTED: one of ours"))![1]).learnedMaxBytes, 1048576);
  const seen = new Set(rows.map((r) => r[2]));
  for (const r of STREAM_END_RULES) assert.ok(seen.has(r.kind), r.kind);
});

test.run();
