/**
 * Both wire forms of window counts on a real central (issue 12): a sidecar of
 * the previous release sends OutcomeCounts, a current one packed_counts. Both
 * are counted exactly, into the same totals and verdict lookback; a packed form with more entries than this central knows is refused
 * with a reason naming the field, and the plausibility cap applies to it too.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { IngestStream, batch, hello } from "../../tools/test/ingest-client.js";
import { packCounts } from "../../proto/outcomes.js";
import { type Central, startCentral } from "../main.js";

let dir = "";
let central: Central;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-wire-"));
  central = await startCentral({ listen: "127.0.0.1:0", data: dir }, pino({ level: "silent" }));
});

test.after(async () => {
  await central.close();
  await rm(dir, { recursive: true, force: true });
});

const start = () => BigInt(Date.now() - 1000);

test("an old-form batch (OutcomeCounts) and a compact one (packed_counts) are counted exactly and alike", async () => {
  const s = new IngestStream(central.address);
  const old = { origin: "w.example", startUnixMs: start(), lengthMs: 1000, counts: { ok: 7n, serverError: 2n, bodyTimeout: 1n, upgrade: 3n, stall: 4n, stallRecovered: 1n } };
  const compact = { origin: "w.example", startUnixMs: start(), lengthMs: 1000, packedCounts: packCounts({ ok: 5n, connectRefused: 1n, poolExhausted: 2n, stall: 1n }) };
  await s.send(hello("wire-old", ["w.example"]), batch(1, { windows: [old] }));
  await s.until(() => s.acks().includes(1n));
  const s2 = new IngestStream(central.address);
  await s2.send(hello("wire-new", ["w.example"]), batch(1, { windows: [compact] }));
  await s2.until(() => s2.acks().includes(1n));
  const t = central.query.totals.get("w.example")!;
  // completed: old 7+2+1+3 = 13, compact 5+1+2 = 8; failures: old 2+1, compact 1 (stalls are not completions).
  assert.is(t.requests, 21n);
  assert.is(t.failures, 4n);
  const recent = central.verdict.engine.lookback.nodes("w.example");
  const byNode = Object.fromEntries(recent.map((n) => [n.nodeId, n.counts]));
  assert.is(byNode["wire-old"].upgrade, 3);
  assert.is(byNode["wire-old"].stallRecovered, 1);
  assert.is(byNode["wire-new"].poolExhausted, 2);
  assert.is(byNode["wire-new"].stall, 1);
  assert.is(byNode["wire-new"].ok, 5);
  s.close();
  s2.close();
});

test("a packed form with more entries than the known outcome fields, or an implausible packed count, is refused naming the field", async () => {
  const s = new IngestStream(central.address);
  const tooLong = { origin: "x.example", startUnixMs: start(), lengthMs: 1000, packedCounts: Array.from({ length: 17 }, () => 1) };
  const implausible = { origin: "x.example", startUnixMs: start(), lengthMs: 1000, packedCounts: [4_000_000_000] };
  const good = { origin: "x.example", startUnixMs: start(), lengthMs: 1000, packedCounts: [3] };
  await s.send(hello("wire-bad", ["x.example"]), batch(1, { windows: [tooLong] }), batch(2, { windows: [implausible] }), batch(3, { windows: [good] }));
  await s.until(() => s.acks().includes(3n) && s.rejects().length >= 2);
  assert.equal(s.rejects().map((r) => [r.seq, r.code]), [
    [1n, "CENTRAL_BAD_BATCH"],
    [2n, "CENTRAL_IMPLAUSIBLE_COUNT"],
  ]);
  assert.match(s.rejects()[0].reason, /batch\.windows\[0\]\.packed_counts has 17 entries/);
  assert.match(s.rejects()[1].reason, /batch\.windows\[0\]\.counts\.ok is 4000000000/);
  assert.is(central.query.totals.get("x.example")!.requests, 3n);
  s.close();
});

test.run();
