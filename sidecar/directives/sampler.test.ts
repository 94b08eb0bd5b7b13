import { test } from "uvu";
import * as assert from "uvu/assert";
import { Outcome } from "../../proto/gen/originwatch/v1/common_pb.js";
import type { CompletedRequest } from "../proxy/hop.js";
import type { OutcomeClass } from "../proxy/outcome.js";
import { ExemplarSampler } from "./sampler.js";

const req = (outcome: OutcomeClass, path = "/a/b?token=secret"): CompletedRequest => ({
  origin: "www.example",
  outcome,
  method: "GET",
  path,
  status: outcome === "ok" ? 200 : 502,
  ttfbMs: 12,
  totalMs: 20,
  upstreamAddr: "127.0.0.1:8080",
});

test("errors are sampled at the error rate, successes at the success rate", () => {
  let i = 0;
  const seq = [0.05, 0.5, 0.05, 0.5]; // deterministic "random"
  const s = new ExemplarSampler({ rates: () => ({ successRate: 0.1, errorRate: 0.6 }), random: () => seq[i++ % seq.length] });
  for (let n = 0; n < 4; n++) s.offer(req("ok"));
  for (let n = 0; n < 4; n++) s.offer(req("server_error"));
  const got = s.take();
  assert.is(got.filter((e) => e.outcome === Outcome.OK).length, 2);
  assert.is(got.filter((e) => e.outcome === Outcome.SERVER_ERROR).length, 4);
  assert.equal(s.take(), []);
});

test("the path is kept without its query string; 4xx count as successes", () => {
  const s = new ExemplarSampler({ rates: () => ({ successRate: 0, errorRate: 1 }), random: () => 0.5 });
  s.offer(req("client_error"));
  s.offer(req("connect_refused"));
  const got = s.take();
  assert.is(got.length, 1);
  assert.is(got[0].path, "/a/b");
  assert.is(got[0].outcome, Outcome.CONNECT_REFUSED);
  assert.is(got[0].upstreamAddr, "127.0.0.1:8080");
});

test("a batch holds at most maxPerBatch exemplars; the rest are counted", () => {
  const s = new ExemplarSampler({ rates: () => ({ successRate: 1, errorRate: 1 }), maxPerBatch: 3 });
  for (let n = 0; n < 10; n++) s.offer(req("ok"));
  assert.is(s.take().length, 3);
  assert.is(s.overflow, 7);
});

test.run();
