import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { Outcome } from "../../proto/gen/originwatch/v1/common_pb.js";
import { ProbeAttemptSchema, ProbeResultSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { Confirmer, judgeAnswers, pickTargets } from "./confirmation.js";
import { type NodeAnswer, ProbeBroker, type ProbeTarget } from "./probe-broker.js";
import { DEFAULT_PROBE } from "./settings.js";

const att = (...o: Outcome[]) => o.map((outcome) => create(ProbeAttemptSchema, { outcome }));
const ans = (attempts: ReturnType<typeof att>, error = ""): NodeAnswer => ({ nodeId: "n", isp: "i", region: "r", attempts, error });
const OK = Outcome.OK;
const REF = Outcome.CONNECT_REFUSED;

const judged: Array<[string, NodeAnswer[], string | undefined]> = [
  ["every sidecar reached the origin: up", [ans(att(OK, OK, OK)), ans(att(OK, OK, OK))], "origin-up"],
  ["every sidecar failed: down", [ans(att(REF, REF, REF)), ans(att(Outcome.STALL, Outcome.SERVER_ERROR, REF))], "origin-down"],
  ["4xx answers mean the origin answers", [ans(att(Outcome.CLIENT_ERROR, Outcome.CLIENT_ERROR, OK))], "origin-up"],
  ["one attempt in three failing still reached it", [ans(att(OK, REF, OK))], "origin-up"],
  ["silent sidecars are ignored", [ans([], "timed out"), ans(att(REF, REF, REF))], "origin-down"],
  ["nobody answered: no confirmation", [ans([], "timed out"), ans([], "session closed")], undefined],
  ["a tie counts as up (never call DOWN on a split)", [ans(att(OK, OK, OK)), ans(att(REF, REF, REF))], "origin-up"],
];
for (const [name, answers, want] of judged) test(`judge: ${name}`, () => assert.is(judgeAnswers(answers), want));

const target = (nodeId: string, isp: string, onSend?: (probeId: string) => void): ProbeTarget & { sent: number } => {
  const t = {
    nodeId,
    isp,
    region: "r",
    sent: 0,
    send(req: { probeId: string }) {
      t.sent++;
      onSend?.(req.probeId);
      return true;
    },
  };
  return t;
};

test("targets spread over ISPs, skip the suspect ISP, at most n", () => {
  const c = [target("a1", "a"), target("a2", "a"), target("b1", "b"), target("b2", "b"), target("c1", "c")];
  assert.equal(pickTargets(c, "a", 3).map((t) => t.nodeId), ["b1", "c1", "b2"]);
  assert.equal(pickTargets(c, "", 2).map((t) => t.nodeId), ["a1", "b1"]);
  assert.equal(pickTargets([target("a1", "a")], "a", 3), []);
});

test("a round settles from the sidecars' answers and is rate-limited per origin", async () => {
  const broker = new ProbeBroker();
  let now = 1_000_000;
  const confirmer = new Confirmer(broker, () => now);
  const answer = (nodeId: string, outcome: Outcome) => (probeId: string) =>
    setImmediate(() => broker.onResult(nodeId, create(ProbeResultSchema, { probeId, origin: "o", attempts: att(outcome, outcome, outcome) })));
  const b1 = target("b1", "b", answer("b1", OK));
  const c1 = target("c1", "c", answer("c1", OK));
  const a1 = target("a1", "a", answer("a1", REF));
  const done = new Promise<string | undefined>((resolve) => (confirmer.onRound = (_o, _a, r) => resolve(r)));
  assert.is(confirmer.request("o", "a", DEFAULT_PROBE, [a1, b1, c1]), "started");
  assert.is(confirmer.pending("o"), true);
  assert.is(confirmer.request("o", "a", DEFAULT_PROBE, [a1, b1, c1]), "pending");
  assert.is(await done, "origin-up");
  assert.equal([a1.sent, b1.sent, c1.sent], [0, 1, 1]);
  assert.is(confirmer.confirmation("o"), "origin-up");
  now += 5000;
  assert.is(confirmer.request("o", "a", DEFAULT_PROBE, [b1, c1]), "rate-limited");
  confirmer.clear("o");
  assert.is(confirmer.confirmation("o"), undefined);
  now += DEFAULT_PROBE.minIntervalMs;
  assert.is(confirmer.request("o", "a", DEFAULT_PROBE, []), "unavailable");
  assert.is(confirmer.request("o", "a", { ...DEFAULT_PROBE, enabled: false }, [b1]), "disabled");
});

test("a silent sidecar times the round out and yields no confirmation", async () => {
  const broker = new ProbeBroker();
  const confirmer = new Confirmer(broker);
  const done = new Promise<NodeAnswer[]>((resolve) => (confirmer.onRound = (_o, a) => resolve(a)));
  confirmer.request("o", "a", { ...DEFAULT_PROBE, timeoutMs: 10 }, [target("b1", "b")]);
  const keepAlive = setTimeout(() => {}, 5000); // the broker's timer is unref'd
  const answers = await done;
  clearTimeout(keepAlive);
  assert.is(answers[0].error, "timed out");
  assert.is(confirmer.confirmation("o"), undefined);
  assert.is(confirmer.pending("o"), false);
});

test("results for unknown probe ids are refused", () => {
  const broker = new ProbeBroker();
  assert.is(broker.onResult("x", create(ProbeResultSchema, { probeId: "nope" })), false);
});

test.run();
