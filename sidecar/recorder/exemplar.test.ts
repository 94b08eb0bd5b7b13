import { test } from "uvu";
import * as assert from "uvu/assert";
import { toBinary } from "@bufbuild/protobuf";
import { ExemplarSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import type { CompletedRequest } from "../proxy/hop.js";
import { EXEMPLAR_CAPS, capText, exemplarOf } from "./exemplar.js";

const req = (path: string, method = "GET", upstreamAddr = "10.0.0.5:8080"): CompletedRequest => ({
  origin: "www.example.com",
  outcome: "server_error",
  method,
  path,
  status: 502,
  ttfbMs: 3,
  totalMs: 4,
  upstreamAddr,
});

test("client-chosen fields are capped at recording time: path 256 without query, method 32, upstream address 300", () => {
  const e = exemplarOf(req(`/${"a".repeat(2047)}?token=secret`, "X".repeat(100), "h".repeat(1000)), 1234);
  assert.is(e.path.length, EXEMPLAR_CAPS.path);
  assert.is(e.method.length, 32);
  assert.is(e.upstreamAddr.length, 300);
  assert.is(exemplarOf(req("/a/b?token=secret#frag"), 1).path, "/a/b");
  assert.is(exemplarOf(req("/a#frag?x"), 1).path, "/a");
  assert.is(e.timeUnixMs, 1234n);
  assert.ok(toBinary(ExemplarSchema, e).length < 1024, "one exemplar stays under 1 KB");
});

test("a cut never splits a surrogate pair", () => {
  const s = `${"a".repeat(255)}😀`;
  const c = capText(s, 256);
  assert.is(c.length, 255);
  assert.is(capText("abc", 256), "abc");
});

test.run();
