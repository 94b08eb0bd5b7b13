import { test } from "uvu";
import * as assert from "uvu/assert";
import { Code, ConnectError } from "@connectrpc/connect";
import { PAGE_DEFAULT, PAGE_MAX, decodePageToken, encodePageToken, pageOf, pageSizeOf } from "./paging.js";

const keys = Array.from({ length: 25 }, (_, i) => `k${String(i).padStart(2, "0")}`);
const one = (size: number, token = "", maxBytes = 1 << 20) => pageOf(keys, { list: "L", pageSize: size, pageToken: token, maxBytes }, (k) => k, () => 10);

for (const [asked, got] of [
  [0, PAGE_DEFAULT],
  [1, 1],
  [PAGE_MAX, PAGE_MAX],
  [PAGE_MAX + 1, PAGE_MAX],
  [4_000_000_000, PAGE_MAX],
] as const) {
  test(`page_size ${asked} is applied as ${got}`, () => assert.is(pageSizeOf(asked), got));
}

test("pages follow each other with no gap and no repeat, the last one without a token", () => {
  const seen: string[] = [];
  let token = "";
  let pages = 0;
  do {
    const p = one(10, token);
    seen.push(...p.items);
    token = p.nextPageToken;
    pages++;
  } while (token);
  assert.equal(seen, keys);
  assert.is(pages, 3);
});

test("a page ends before its items exceed the byte budget, with at least one item", () => {
  assert.is(one(100, "", 35).items.length, 3, "10-byte items under a 35-byte budget");
  const p = pageOf(keys, { list: "L", pageSize: 100, maxBytes: 5 }, (k) => k, () => 10);
  assert.equal(p.items, ["k00"], "one item even when it alone is over the budget");
  assert.ok(p.nextPageToken);
});

test("a key added before the token's key does not shift the next page", () => {
  const first = one(5);
  const grown = ["a-new", ...keys];
  const next = pageOf(grown, { list: "L", pageSize: 5, pageToken: first.nextPageToken, maxBytes: 1 << 20 }, (k) => k, () => 1);
  assert.equal(next.items, keys.slice(5, 10));
});

test("tokens: round trip; another list's token or garbage is INVALID_ARGUMENT naming page_token", () => {
  assert.is(decodePageToken("L", encodePageToken("L", "k\n07")), "k\n07");
  assert.is(decodePageToken("L", ""), undefined);
  for (const bad of [encodePageToken("Other", "k07"), "not a token!", "Zm9v"]) {
    try {
      decodePageToken("L", bad);
      assert.unreachable(bad);
    } catch (err) {
      assert.instance(err, ConnectError);
      assert.is((err as ConnectError).code, Code.InvalidArgument);
      assert.match((err as ConnectError).rawMessage, /page_token/);
    }
  }
});

test.run();
