import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { BatchSchema, HelloSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { validateBatch, validateHello } from "./validate.js";

const now = 1_800_000_000_000;
const win = (origin: string, extra: Record<string, unknown> = {}) => ({ origin, startUnixMs: BigInt(now - 1000), lengthMs: 1000, counts: { ok: 1n }, ...extra });
const messageOf = (fn: () => void) => {
  try {
    fn();
    return "";
  } catch (err) {
    return (err as Error).message;
  }
};

const table: Array<[string, () => void, RegExp | ""]> = [
  ["a good hello passes", () => validateHello(create(HelloSchema, { node: { nodeId: "edge-1", isp: "isp-a", region: "eu" } })), ""],
  ["hello without node", () => validateHello(create(HelloSchema, {})), /hello\.node is required/],
  ["node_id with a space", () => validateHello(create(HelloSchema, { node: { nodeId: "edge 1", isp: "a", region: "b" } })), /node_id/],
  ["isp with an escape sequence", () => validateHello(create(HelloSchema, { node: { nodeId: "e", isp: "\u001b[2J", region: "b" } })), /isp/],
  ["region of 10 kB", () => validateHello(create(HelloSchema, { node: { nodeId: "e", isp: "a", region: "r".repeat(10_240) } })), /region/],
  ["origin with a slash in hello", () => validateHello(create(HelloSchema, { node: { nodeId: "e", isp: "a", region: "b" }, origins: ["a/b"] })), /origins\[0\]/],
  ["a good batch passes", () => validateBatch(create(BatchSchema, { seq: 1n, windows: [win("img.example")] }), now, new Set(["img.example"])), ""],
  ["seq 0", () => validateBatch(create(BatchSchema, { seq: 0n }), now), /seq/],
  ["window of undeclared origin", () => validateBatch(create(BatchSchema, { seq: 1n, windows: [win("other.example")] }), now, new Set(["img.example"])), /not declared/],
  ["window an hour in the future", () => validateBatch(create(BatchSchema, { seq: 1n, windows: [win("a", { startUnixMs: BigInt(now + 3_600_000) })] }), now), /future/],
  ["window of length 0", () => validateBatch(create(BatchSchema, { seq: 1n, windows: [win("a", { lengthMs: 0 })] }), now), /length_ms/],
  ["absurd count", () => validateBatch(create(BatchSchema, { seq: 1n, windows: [win("a", { counts: { ok: 1n << 50n } })] }), now), /absurd/],
  [
    "more than 1000 distinct origins",
    () => validateBatch(create(BatchSchema, { seq: 1n, windows: Array.from({ length: 1001 }, (_, i) => win(`o${i}.example`)) }), now),
    /distinct origins/,
  ],
  ["compact histogram passes", () => validateBatch(create(BatchSchema, { seq: 1n, windows: [win("a", { ttfb: { boundsSchema: 1, sparseIndex: [3, 9], sparseCount: [1, 2] } })] }), now), ""],
  ["compact histogram index out of range", () => validateBatch(create(BatchSchema, { seq: 1n, windows: [win("a", { ttfb: { boundsSchema: 1, sparseIndex: [66], sparseCount: [1] } })] }), now), /sparse_index\[0\]/],
  ["compact histogram indexes not ascending", () => validateBatch(create(BatchSchema, { seq: 1n, windows: [win("a", { ttfb: { boundsSchema: 1, sparseIndex: [5, 5], sparseCount: [1, 1] } })] }), now), /ascending/],
  ["compact histogram with unequal lengths", () => validateBatch(create(BatchSchema, { seq: 1n, windows: [win("a", { ttfb: { boundsSchema: 1, sparseIndex: [1], sparseCount: [] } })] }), now), /same length/],
  ["unknown bounds schema", () => validateBatch(create(BatchSchema, { seq: 1n, windows: [win("a", { ttfb: { boundsSchema: 7 } })] }), now), /bounds_schema/],
  ["histogram with the wrong number of buckets", () => validateBatch(create(BatchSchema, { seq: 1n, windows: [win("a", { ttfb: { boundsMs: [1, 2], counts: [1n] } })] }), now), /ttfb/],
];

for (const [name, fn, expect] of table) {
  test(`ingest validation: ${name}`, () => {
    const msg = messageOf(fn);
    if (expect === "") assert.is(msg, "");
    else assert.match(msg, expect);
  });
}

test.run();
