/**
 * Permanent per-batch refusal on a real central: a batch whose content is
 * invalid or over a cap is answered with BatchReject{seq, code, reason}, never
 * counted, counted as refused on the node record and in total, and the stream
 * goes on: the good batches behind it are counted. Each attack of issue 10
 * that concerns one batch is performed here.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { IngestStream, batch, hello, win } from "../../tools/test/ingest-client.js";
import { eventually } from "../../tools/test/proc.js";
import { type Central, startCentral } from "../main.js";

let dir = "";
let central: Central;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-reject-"));
  central = await startCentral({ listen: "127.0.0.1:0", data: dir }, pino({ level: "silent" }));
});

test.after(async () => {
  await central.close();
  await rm(dir, { recursive: true, force: true });
});

const requests = (origin: string) => central.query.totals.get(origin)?.requests ?? 0n;

test("a poison batch between good ones: the good ones are counted, the poison is rejected and counted, the stream stays up", async () => {
  const s = new IngestStream(central.address);
  await s.send(
    hello("poison-1", ["p.example"]),
    batch(1, { windows: [win("p.example", { ok: 10n })] }),
    batch(2, { windows: [win("p.example", { ok: 1n << 40n })] }), // 2^40 requests in one second
    batch(3, { windows: [win("p.example", { ok: 5n, serverError: 1n })] }),
    batch(4, { windows: [win("p.example", { ok: 7n }, -60_000)] }), // a minute ahead of the central's clock
    batch(5, { windows: [win("p.example", { ok: 2n })] }),
  );
  await s.until(() => s.acks().length >= 3 && s.rejects().length >= 2);
  assert.equal(s.acks(), [1n, 3n, 5n]);
  assert.equal(
    s.rejects().map((r) => [r.seq, r.code]),
    [
      [2n, "CENTRAL_IMPLAUSIBLE_COUNT"],
      [4n, "CENTRAL_WINDOW_SKEW"],
    ],
  );
  assert.match(s.rejects()[0].reason, /batch\.windows\[0\]\.counts\.ok is 1099511627776/);
  assert.match(s.rejects()[1].reason, /start_unix_ms is \d+ ms ahead/);
  assert.is(requests("p.example"), 18n);
  assert.is(central.query.totals.get("p.example")!.failures, 1n);
  assert.is(central.ingest.stats().rejectedBatches >= 2, true);
  const node = central.query.nodes.get("poison-1")!;
  assert.is(node.rejectedBatches, 2);
  assert.match(node.lastRejectReason ?? "", /^CENTRAL_WINDOW_SKEW: /);
  // Still up: one more batch is counted on the same stream.
  await s.send(batch(6, { windows: [win("p.example", { ok: 1n })] }));
  await s.until(() => s.acks().includes(6n));
  assert.is(requests("p.example"), 19n);
  s.close();
});

test("an old sidecar that ignores BatchReject is cleared by the later cumulative ack, and its replay of the poison is acked as a duplicate", async () => {
  const s = new IngestStream(central.address);
  await s.send(hello("old-1", ["old.example"]), batch(1, { windows: [win("old.example", { ok: 1n << 40n })] }), batch(2, { windows: [win("old.example", { ok: 3n })] }));
  await s.until(() => s.acks().includes(2n));
  assert.equal(s.rejects().map((r) => r.seq), [1n]);
  s.close();
  // It reconnects and replays everything it still holds (it never dropped seq 1).
  const again = new IngestStream(central.address);
  await again.send(hello("old-1", ["old.example"]));
  const got = await again.until((g) => g.some((m) => m.kind.case === "welcome"));
  const welcome = got.find((m) => m.kind.case === "welcome")!.kind.value as { highWaterSeq: bigint };
  assert.is(welcome.highWaterSeq, 2n, "the cumulative ack of seq 2 covers seq 1 for an old sidecar");
  await again.send(batch(1, { windows: [win("old.example", { ok: 1n << 40n })] }));
  await again.until(() => again.acks().includes(1n));
  assert.equal(again.rejects(), []);
  assert.is(requests("old.example"), 3n);
  again.close();
});

test("windows and exemplars of origins the hello did not declare are rejected; nothing of them is kept", async () => {
  const s = new IngestStream(central.address);
  await s.send(
    hello("undeclared-1", ["mine.example"]),
    batch(1, { windows: [win("mine.example", { ok: 1n }), win("not-mine.example", { ok: 100n })] }),
    batch(2, { exemplars: [{ origin: "elsewhere.example", path: "/", timeUnixMs: BigInt(Date.now()) }] }),
    batch(3, { windows: [win("mine.example", { ok: 4n })] }),
  );
  await s.until(() => s.acks().includes(3n));
  assert.equal(s.rejects().map((r) => [r.seq, r.code]), [
    [1n, "CENTRAL_ORIGIN_NOT_DECLARED"],
    [2n, "CENTRAL_ORIGIN_NOT_DECLARED"],
  ]);
  assert.match(s.rejects()[0].reason, /batch\.windows\[1\]\.origin "not-mine\.example" was not declared in hello\.origins/);
  assert.match(s.rejects()[1].reason, /batch\.exemplars\[0\]\.origin/);
  assert.is(requests("mine.example"), 4n);
  assert.is(central.query.totals.has("not-mine.example"), false);
  assert.is(central.verdict.isLive("not-mine.example"), false);
  s.close();
});

test("a 10,000-window batch and a 1,001-exemplar batch are rejected at once as too large; the batches behind them flow", async () => {
  const s = new IngestStream(central.address);
  const big = Array.from({ length: 10_000 }, () => win("big.example", { ok: 1n }));
  const exemplars = Array.from({ length: 1001 }, () => ({ origin: "big.example", path: "/x", timeUnixMs: BigInt(Date.now()) }));
  await s.send(hello("big-1", ["big.example"]), batch(1, { windows: big }), batch(2, { exemplars }), batch(3, { windows: [win("big.example", { ok: 2n })] }));
  await s.until(() => s.acks().includes(3n));
  assert.equal(s.rejects().map((r) => [r.seq, r.code]), [
    [1n, "CENTRAL_BATCH_TOO_LARGE"],
    [2n, "CENTRAL_BATCH_TOO_LARGE"],
  ]);
  assert.match(s.rejects()[0].reason, /batch\.windows has 10000 entries, more than 2000/);
  assert.is(requests("big.example"), 2n);
  s.close();
});

test("a window 11 s ahead is rejected (skew bound 10 s), one 9 s ahead is counted; a day-old one is counted but not kept in memory", async () => {
  const s = new IngestStream(central.address);
  await s.send(
    hello("skew-1", ["skew.example"]),
    batch(1, { windows: [win("skew.example", { ok: 1n }, -11_000)] }),
    batch(2, { windows: [win("skew.example", { ok: 2n }, -9_000)] }),
    batch(3, { windows: [win("skew.example", { ok: 4n }, 86_400_000)] }),
  );
  await s.until(() => s.acks().includes(3n));
  assert.equal(s.rejects().map((r) => [r.seq, r.code]), [[1n, "CENTRAL_WINDOW_SKEW"]]);
  assert.is(requests("skew.example"), 6n);
  // The next evaluation tick slides the lookback: only the window inside it stays in memory.
  await eventually(() => central.verdict.engine.lookback.nodes("skew.example")[0]?.counts.ok === 2 || undefined, 5000);
  s.close();
});

test("Welcome carries the limits and the server time, every BatchAck the server time; the node's clock skew and its own reject count are recorded", async () => {
  const s = new IngestStream(central.address);
  const before = Date.now();
  await s.send(hello("limits-1", ["l.example"]), batch(1, { windows: [win("l.example")], clockSkewMs: -1234n, rejectedBatches: 7n }));
  await s.until(() => s.acks().includes(1n));
  const w = s.received[0].kind;
  assert.is(w.case, "welcome");
  if (w.case !== "welcome") return;
  assert.ok(Number(w.value.serverTimeUnixMs) >= before && Number(w.value.serverTimeUnixMs) <= Date.now());
  assert.equal(
    { ...w.value.limits, $typeName: undefined },
    { $typeName: undefined, maxMessageBytes: 1 << 20, maxWindowsPerBatch: 2000, maxExemplarsPerBatch: 1000, maxOriginsPerNode: 1000, maxFutureSkewMs: 10_000, maxWindowsPerSec: 2000 },
  );
  const ack = s.received.find((m) => m.kind.case === "batchAck")!.kind.value as { serverTimeUnixMs: bigint };
  assert.ok(Number(ack.serverTimeUnixMs) >= before);
  const node = central.query.nodes.get("limits-1")!;
  assert.is(node.clockSkewMs, -1234);
  assert.is(node.reportedRejectedBatches, "7");
  s.close();
});

test("reject counts survive a restart on the node record", async () => {
  const s = new IngestStream(central.address);
  await s.send(hello("durable-1", ["d.example"]), batch(1, { windows: [win("d.example", { ok: 1n << 40n })] }));
  await s.until(() => s.rejects().length === 1);
  s.close();
  await new Promise((r) => setTimeout(r, 100));
  await central.close();
  central = await startCentral({ listen: "127.0.0.1:0", data: dir }, pino({ level: "silent" }));
  const node = central.query.nodes.get("durable-1")!;
  assert.is(node.rejectedBatches, 1);
  assert.match(node.lastRejectReason ?? "", /CENTRAL_IMPLAUSIBLE_COUNT/);
});

test.run();
