import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { Outcome, OutcomeCountsSchema, type OutcomeCounts } from "../../proto/gen/originwatch/v1/common_pb.js";
import { completedFailuresOf, completedOf } from "../../proto/outcomes.js";
import { counts as centralCounts, failuresOf, requestsOf, type Counts } from "../../central/verdict/counts.js";
import {
  BODY_TIMEOUT_CODE,
  CONNECT_TIMEOUT_CODE,
  FIRST_BYTE_TIMEOUT_CODE,
  POOL_EXHAUSTED_CODE,
  OUTCOME_CLASSES,
  OUTCOME_ENUM,
  classifyError,
  classifyStatus,
  failureStatus,
  isFailure,
  type OutcomeClass,
  type Phase,
} from "./outcome.js";

const err = (code: string) => Object.assign(new Error(code), { code });

// Table shape only: every row is also driven by a real socket cause in hop.test.ts.
const rows: Array<[string, Phase, boolean, OutcomeClass]> = [
  ["ECONNREFUSED", "connect", false, "connect_refused"],
  ["EHOSTUNREACH", "connect", false, "connect_refused"],
  [CONNECT_TIMEOUT_CODE, "connect", false, "connect_timeout"],
  [CONNECT_TIMEOUT_CODE, "tls", false, "connect_timeout"],
  ["ETIMEDOUT", "connect", false, "connect_timeout"],
  [FIRST_BYTE_TIMEOUT_CODE, "wait", false, "first_byte_timeout"],
  ["ENOTFOUND", "connect", false, "dns"],
  ["EAI_AGAIN", "connect", false, "dns"],
  ["DEPTH_ZERO_SELF_SIGNED_CERT", "tls", false, "tls"],
  ["ERR_TLS_CERT_ALTNAME_INVALID", "tls", false, "tls"],
  ["ECONNRESET", "tls", false, "tls"],
  ["ECONNRESET", "wait", false, "reset"],
  ["HPE_INVALID_CONSTANT", "wait", false, "reset"],
  ["ECONNRESET", "body", false, "body_error"],
  ["ECONNRESET", "wait", true, "client_abort"],
  ["ECONNREFUSED", "connect", true, "client_abort"],
  ["", "wait", false, "reset"],
  [POOL_EXHAUSTED_CODE, "queue", false, "pool_exhausted"],
  [CONNECT_TIMEOUT_CODE, "queue", false, "pool_exhausted"],
  [POOL_EXHAUSTED_CODE, "queue", true, "client_abort"],
  [BODY_TIMEOUT_CODE, "body", false, "body_timeout"],
  ["ENOTFOUND", "queue", false, "dns"],
];

for (const [code, phase, gone, want] of rows) {
  test(`classifyError ${code || "(no code)"} in ${phase}${gone ? " with the client gone" : ""} → ${want}`, () => {
    assert.is(classifyError(err(code), phase, gone), want);
  });
}

test("classifyError follows cause chains", () => {
  assert.is(classifyError(new Error("wrapped", { cause: err("ECONNREFUSED") }), "connect"), "connect_refused");
});

test("classifyStatus: 2xx/3xx ok, 4xx client_error, 5xx server_error", () => {
  assert.is(classifyStatus(200), "ok");
  assert.is(classifyStatus(304), "ok");
  assert.is(classifyStatus(404), "client_error");
  assert.is(classifyStatus(499), "client_error");
  assert.is(classifyStatus(500), "server_error");
  assert.is(classifyStatus(503), "server_error");
});

test("failures answer 504 for timeouts and 502 otherwise", () => {
  assert.is(failureStatus("connect_timeout"), 504);
  assert.is(failureStatus("first_byte_timeout"), 504);
  assert.is(failureStatus("connect_refused"), 502);
  assert.is(failureStatus("reset"), 502);
  assert.is(failureStatus("tls"), 502);
  assert.is(failureStatus("body_timeout"), 504);
  assert.is(failureStatus("pool_exhausted"), 503, "the sidecar's own capacity, not a gateway failure");
});

test("4xx and client aborts are not failures", () => {
  assert.not.ok(isFailure("client_error"));
  assert.not.ok(isFailure("client_abort"));
  assert.ok(isFailure("server_error"));
  assert.ok(isFailure("first_byte_timeout"));
  assert.ok(isFailure("body_timeout"));
  assert.not.ok(isFailure("pool_exhausted"));
  assert.not.ok(isFailure("upgrade"));
});

/** proto field (camelCase) of each sidecar class, as the recorder fills it. */
const FIELD = (c: OutcomeClass): keyof OutcomeCounts & keyof Counts =>
  c.replace(/_([a-z])/g, (_m, l: string) => l.toUpperCase()) as keyof OutcomeCounts & keyof Counts;

test("every class is classified once and alike on both ends: a request, and a failure exactly when isFailure says so", () => {
  for (const c of OUTCOME_CLASSES) {
    const f = FIELD(c);
    const proto = create(OutcomeCountsSchema, { [f]: 1n });
    assert.is(completedOf(proto), 1n, `${c} is a completed request (proto/outcomes.ts)`);
    assert.is(completedFailuresOf(proto), isFailure(c) ? 1n : 0n, `${c} failure (proto/outcomes.ts)`);
    const central = centralCounts({ [f]: 1 } as Partial<Counts>);
    assert.is(requestsOf(central), 1, `${c} is a request (central/verdict/counts.ts)`);
    assert.is(failuresOf(central), isFailure(c) ? 1 : 0, `${c} failure (central/verdict/counts.ts)`);
  }
});

test("every class maps to a distinct contract enum value", () => {
  const values = new Set(OUTCOME_CLASSES.map((c) => OUTCOME_ENUM[c]));
  assert.is(values.size, OUTCOME_CLASSES.length);
  assert.not.ok(values.has(Outcome.UNSPECIFIED));
});

test.run();
