import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { BatchSchema, HelloSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { CENTRAL_DEFAULTS } from "../config.js";
import { batchProblem, checkSeq, validateHello } from "./validate.js";

const now = 1_800_000_000_000;
const limits = CENTRAL_DEFAULTS;
const declared = new Set(["img.example", "a"]);
const win = (origin: string, extra: Record<string, unknown> = {}) => ({ origin, startUnixMs: BigInt(now - 1000), lengthMs: 1000, counts: { ok: 1n }, ...extra });
const node = { nodeId: "e", isp: "a", region: "b" };
const messageOf = (fn: () => void) => {
  try {
    fn();
    return "";
  } catch (err) {
    return `${(err as { code?: string }).code}: ${(err as Error).message}`;
  }
};
const hello = (init: Record<string, unknown>) => () => validateHello(create(HelloSchema, init), limits);
/** The refusal of a batch as "CODE: reason" ("" when it may be counted). */
const refusal = (init: Record<string, unknown>, d: ReadonlySet<string> = declared) => () => {
  const r = batchProblem(create(BatchSchema, { seq: 1n, ...init }), { nowMs: now, declared: d, limits });
  if (r) throw Object.assign(new Error(r.reason), { code: r.code });
};

const table: Array<[string, () => void, RegExp | ""]> = [
  ["a good hello passes", hello({ node: { nodeId: "edge-1", isp: "isp-a", region: "eu" }, origins: ["img.example"] }), ""],
  ["hello without node", hello({}), /hello\.node is required/],
  ["hello that declares no origins", hello({ node }), /CENTRAL_BAD_MESSAGE: hello\.origins must name at least one origin/],
  ["hello declaring more origins than one node may", hello({ node, origins: Array.from({ length: 1001 }, (_, i) => `o${i}.example`) }), /CENTRAL_ORIGIN_LIMIT: hello\.origins has 1001 entries/],
  ["node_id with a space", hello({ node: { ...node, nodeId: "edge 1" }, origins: ["a"] }), /node_id/],
  ["isp with an escape sequence", hello({ node: { ...node, isp: "\u001b[2J" }, origins: ["a"] }), /isp/],
  ["region of 10 kB", hello({ node: { ...node, region: "r".repeat(10_240) }, origins: ["a"] }), /region/],
  ["origin with a slash in hello", hello({ node, origins: ["a/b"] }), /origins\[0\]/],
  ["seq 0", () => checkSeq(0n, 0n), /CENTRAL_BAD_MESSAGE: batch\.seq must be at least 1/],
  ["seq 2^32 above the high-water mark", () => checkSeq(5n + (1n << 32n) + 1n, 5n), /jumps more than 2\^32/],
  ["a good batch passes", refusal({ windows: [win("img.example")] }), ""],
  ["window of undeclared origin", refusal({ windows: [win("other.example")] }), /CENTRAL_ORIGIN_NOT_DECLARED: batch\.windows\[0\]\.origin "other\.example" was not declared/],
  ["exemplar of undeclared origin", refusal({ exemplars: [{ origin: "elsewhere.example", path: "/", timeUnixMs: BigInt(now) }] }), /CENTRAL_ORIGIN_NOT_DECLARED: batch\.exemplars\[0\]\.origin/],
  ["window 11 s in the future", refusal({ windows: [win("a", { startUnixMs: BigInt(now + 11_000) })] }), /CENTRAL_WINDOW_SKEW: batch\.windows\[0\]\.start_unix_ms is 11000 ms ahead/],
  ["window 9 s in the future passes", refusal({ windows: [win("a", { startUnixMs: BigInt(now + 9_000) })] }), ""],
  ["window a day old passes (counted; just not kept in memory)", refusal({ windows: [win("a", { startUnixMs: BigInt(now - 86_400_000) })] }), ""],
  ["window of length 0", refusal({ windows: [win("a", { lengthMs: 0 })] }), /CENTRAL_BAD_BATCH: batch\.windows\[0\]\.length_ms/],
  ["2^40 requests in a 1 s window", refusal({ windows: [win("a", { counts: { ok: 1n << 40n } })] }), /CENTRAL_IMPLAUSIBLE_COUNT: batch\.windows\[0\]\.counts\.ok is 1099511627776, more than 1000000/],
  ["counts that add up past the cap", refusal({ windows: [win("a", { counts: { ok: 600_000n, serverError: 600_000n } })] }), /CENTRAL_IMPLAUSIBLE_COUNT: batch\.windows\[0\]\.counts add up to 1200000/],
  ["a TTFB histogram claiming 2^40 requests", refusal({ windows: [win("a", { ttfb: { boundsSchema: 1, sparseIndex: [3], sparseCount: [1], count: 1n << 40n } })] }), /CENTRAL_IMPLAUSIBLE_COUNT: batch\.windows\[0\]\.ttfb/],
  ["2001 windows in one batch", refusal({ windows: Array.from({ length: 2001 }, () => win("a")) }), /CENTRAL_BATCH_TOO_LARGE: batch\.windows has 2001 entries, more than 2000/],
  ["1001 exemplars in one batch", refusal({ exemplars: Array.from({ length: 1001 }, () => ({ origin: "a", path: "/", timeUnixMs: BigInt(now) })) }), /CENTRAL_BATCH_TOO_LARGE: batch\.exemplars/],
  ["compact histogram passes", refusal({ windows: [win("a", { ttfb: { boundsSchema: 1, sparseIndex: [3, 9], sparseCount: [1, 2] } })] }), ""],
  ["compact histogram index out of range", refusal({ windows: [win("a", { ttfb: { boundsSchema: 1, sparseIndex: [66], sparseCount: [1] } })] }), /CENTRAL_BAD_BATCH: .*sparse_index\[0\]/],
  ["compact histogram indexes not ascending", refusal({ windows: [win("a", { ttfb: { boundsSchema: 1, sparseIndex: [5, 5], sparseCount: [1, 1] } })] }), /ascending/],
  ["compact histogram with unequal lengths", refusal({ windows: [win("a", { ttfb: { boundsSchema: 1, sparseIndex: [1], sparseCount: [] } })] }), /same length/],
  ["unknown bounds schema", refusal({ windows: [win("a", { ttfb: { boundsSchema: 7 } })] }), /bounds_schema/],
  ["histogram with the wrong number of buckets", refusal({ windows: [win("a", { ttfb: { boundsMs: [1, 2], counts: [1n] } })] }), /ttfb/],
  ["a negative TTFB sum", refusal({ windows: [win("a", { ttfb: { boundsSchema: 1, sumMs: -1 } })] }), /sum_ms/],
];

for (const [name, fn, expect] of table) {
  test(`ingest validation: ${name}`, () => {
    const msg = messageOf(fn);
    if (expect === "") assert.is(msg, "");
    else assert.match(msg, expect);
  });
}

test.run();
