import { test } from "uvu";
import * as assert from "uvu/assert";
import { fnv1a32, partitionOf } from "./partition.js";

test("FNV-1a 32 matches the published test vectors (the hash may never change)", () => {
  for (const [s, h] of [
    ["", 0x811c9dc5],
    ["a", 0xe40c292c],
    ["foobar", 0xbf9cf968],
  ] as const) {
    assert.is(fnv1a32(s), h, JSON.stringify(s));
  }
});

test("hashes the UTF-8 bytes, so a non-ASCII origin lands where other implementations put it", () => {
  // "é" is C3 A9 in UTF-8: FNV-1a over those two bytes.
  let h = 0x811c9dc5;
  for (const b of [0xc3, 0xa9]) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  assert.is(fnv1a32("é"), h);
});

test("partitionOf is stable and within [0, P)", () => {
  for (const p of [1, 4, 64, 1024]) {
    for (let i = 0; i < 200; i++) {
      const o = `origin-${i}.example`;
      const v = partitionOf(o, p);
      assert.ok(Number.isInteger(v) && v >= 0 && v < p);
      assert.is(partitionOf(o, p), v);
    }
  }
  assert.is(partitionOf("shop.example", 64), fnv1a32("shop.example") % 64);
});

test("1000 origin names spread over 4 partitions within ±20 % of the mean", () => {
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 1000; i++) counts[partitionOf(`o${i}.cdn.example`, 4)]++;
  for (const c of counts) assert.ok(c > 200 && c < 300, `counts ${counts}`);
});

test.run();
