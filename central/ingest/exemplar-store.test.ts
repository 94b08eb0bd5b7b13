import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { ExemplarSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { ExemplarStore } from "./exemplar-store.js";

const ex = (origin: string, t: number, nodeId = "forged") => create(ExemplarSchema, { origin, timeUnixMs: BigInt(t), path: "/x", nodeId });

test("keeps the latest N per origin, newest first, with node_id from the session", () => {
  const s = new ExemplarStore(3);
  s.add("edge-1", [1, 2, 3, 4, 5].map((t) => ex("a", t)));
  s.add("edge-2", [ex("b", 9)]);
  assert.equal(s.latest("a", 10).map((e) => e.timeUnixMs), [5n, 4n, 3n]);
  assert.equal(s.latest("a", 2).map((e) => e.timeUnixMs), [5n, 4n]);
  assert.is(s.latest("a", 1)[0].nodeId, "edge-1");
  assert.is(s.latest("b", 5)[0].nodeId, "edge-2");
  assert.equal(s.latest("none", 5), []);
});

test("never holds more than maxTotal across origins: the oldest arrival leaves first", () => {
  const s = new ExemplarStore(3, 4);
  s.add("edge-1", [ex("a", 1), ex("b", 2), ex("a", 3), ex("c", 4), ex("a", 5), ex("a", 6)]);
  assert.is(s.size, 4);
  assert.equal(s.latest("a", 10).map((e) => e.timeUnixMs), [6n, 5n, 3n]);
  assert.equal(s.latest("b", 10), [], "b's one exemplar was the oldest left");
  assert.equal(s.latest("c", 10).map((e) => e.timeUnixMs), [4n]);
  s.forget("a");
  assert.is(s.size, 1);
  for (let t = 10; t < 5000; t++) s.add("edge-1", [ex("d", t)]);
  assert.is(s.size, 4);
});

test.run();
