/**
 * The memory bound (issue 10 items 3 and 4), against a real central process
 * with its default limits: while hostile sessions try a million windows (as
 * 10,000-window batches, then full-size batches as fast as the stream takes
 * them), 130,000 origins from one session, and the origin cap from a spray of
 * nodes, the central's peak RSS stays under 300 MB and an honest sidecar's
 * batches keep being acknowledged, with exact totals.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { type SidecarMessage } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { IngestStream, batch, hello, win } from "../../tools/test/ingest-client.js";
import { type Proc, startOriginwatch } from "../../tools/test/proc.js";
import { CENTRAL_DEFAULTS } from "../config.js";
import { LevelStore } from "../store/level-store.js";

const RSS_BOUND_MB = 300;
const FLOOD_MS = 15_000;
const HEAP_MB = 256;

let dir = "";
let central: Proc;

/** Resident set of a process now and at its peak (VmHWM), in MB. */
async function rssOf(pid: number): Promise<{ now: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  return { now: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-flood-"));
  // As the README's production section runs it: a capped V8 heap, so that
  // garbage is collected rather than grown into (the live set is bounded by the caps).
  central = await startOriginwatch(["central", "--listen", "127.0.0.1:0", "--data", join(dir, "data")], { env: { NODE_OPTIONS: `--max-old-space-size=${HEAP_MB}` } });
});

test.after(async () => {
  await central?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Re-date the windows of a prepared batch to now and give it a seq (building 10k windows once, not 100 times). */
function redate(msg: SidecarMessage, seq: bigint): SidecarMessage {
  if (msg.kind.case !== "batch") return msg;
  msg.kind.value.seq = seq;
  const start = BigInt(Date.now() - 1000);
  for (const w of msg.kind.value.windows) w.startUnixMs = start;
  return msg;
}

test(`a flood of 1M windows and 130k origins keeps the central under ${RSS_BOUND_MB} MB while another sidecar's totals stay exact`, async () => {
  const pid = central.child.pid!;
  const base = await rssOf(pid);
  const until = Date.now() + FLOOD_MS;
  const streams: IngestStream[] = [];
  const open = () => {
    const s = new IngestStream(central.address);
    streams.push(s);
    return s;
  };

  // The honest sidecar: one batch every 200 ms, 10 ok + 1 5xx each.
  const good = open();
  await good.send(hello("good-1", ["good.example"]));
  await good.until((g) => g.length >= 1);
  let goodSent = 0n;
  const ackTimes: number[] = [];
  const honest = (async () => {
    for (let seq = 1n; Date.now() < until; seq++) {
      await good.send(batch(seq, { windows: [win("good.example", { ok: 10n, serverError: 1n })] }));
      goodSent = seq;
      await sleep(200);
    }
  })();
  good.call.on("data", () => ackTimes.push(Date.now()));

  let peak = base.now;
  const sampler = setInterval(() => void rssOf(pid).then((r) => (peak = Math.max(peak, r.now))), 250);

  // Attack 1: one session tries 1M windows as 100 batches of 10,000; another sends full-size batches as fast as it may.
  const flooder = open();
  const windowsTried = { count: 0 };
  const flood = (async () => {
    await flooder.send(hello("flood-1", ["flood.example"]));
    const tenK = batch(0, { windows: Array.from({ length: 10_000 }, () => win("flood.example")) });
    for (let seq = 1n; seq <= 100n; seq++) {
      await flooder.send(redate(tenK, seq));
      windowsTried.count += 10_000;
    }
    await flooder.until(() => flooder.rejects().length >= 100, 60_000);
  })();
  const fuller = open();
  const floodStart = Date.now();
  const full = (async () => {
    await fuller.send(hello("flood-2", ["flood.example"]));
    const max = batch(0, { windows: Array.from({ length: CENTRAL_DEFAULTS.maxWindowsPerBatch }, () => win("flood.example")) });
    for (let seq = 1n; Date.now() < until; seq++) {
      await fuller.send(redate(max, seq));
      windowsTried.count += CENTRAL_DEFAULTS.maxWindowsPerBatch;
    }
  })();

  // Attack 2: 130,000 origins from one session: declared in one hello (refused), then sprayed in batches (refused).
  const tooMany = open();
  await tooMany.send(hello("spray-hello", Array.from({ length: 130_000 }, (_, i) => `o${i}.example`)));
  const sprayer = open();
  const spray = (async () => {
    await sprayer.send(hello("spray-1", Array.from({ length: 1000 }, (_, i) => `declared-${i}.example`)));
    for (let k = 0, seq = 1n; k < 130_000 && Date.now() < until; k += 2000, seq++) {
      await sprayer.send(batch(seq, { windows: Array.from({ length: 2000 }, (_, i) => win(`sprayed-${k + i}.example`)) }));
    }
  })();

  // Attack 3: nodes that each declare 1000 fresh origins and report on all of them, past --max-origins.
  const fillers = Array.from({ length: 11 }, (_, n) => {
    const s = open();
    const origins = Array.from({ length: 1000 }, (_, i) => `fill-${n}-${i}.example`);
    return (async () => {
      await s.send(hello(`fill-${n}`, origins), batch(1, { windows: origins.map((o) => win(o, { ok: 3n })) }));
      await s.until((g) => g.length >= 2, 30_000);
    })();
  });

  await Promise.all([honest, full]);
  const floodMs = Date.now() - floodStart;
  await Promise.all([flood, spray, ...fillers]);
  await good.until(() => good.acks().includes(goodSent), 30_000);
  clearInterval(sampler);
  const end = await rssOf(pid);
  const tooManyEnd = await tooMany.ended;
  for (const s of streams) s.close();

  const query = createClient(QueryService, createGrpcTransport({ baseUrl: `http://${central.address}` }));
  const goodStatus = (await query.getOrigin({ origin: "good.example" })).origin!;
  const floodStatus = (await query.getOrigin({ origin: "flood.example" })).origin!;
  const floodCounted = Number(floodStatus.totalRequests);
  const allowed = (CENTRAL_DEFAULTS.ingestRatePerSec * floodMs) / 1000 + CENTRAL_DEFAULTS.ingestBurst;
  const gaps = ackTimes.slice(1).map((t, i) => t - ackTimes[i]);
  console.log(
    `flood: ${windowsTried.count} windows tried, ${floodCounted} counted in ${floodMs} ms (throttle allows ${Math.round(allowed)}); ` +
      `central RSS ${base.now.toFixed(0)} MB before, peak ${Math.max(peak, end.peak).toFixed(0)} MB, ${end.now.toFixed(0)} MB after; ` +
      `honest sidecar: ${goodSent} batches, longest gap between acks ${Math.max(...gaps)} ms`,
  );

  assert.ok(windowsTried.count >= 1_000_000, `the flooder tried ${windowsTried.count} windows`);
  assert.ok(end.peak < RSS_BOUND_MB, `central peak RSS ${end.peak.toFixed(0)} MB, bound ${RSS_BOUND_MB} MB`);
  assert.is(goodStatus.totalRequests, goodSent * 11n, "every honest batch counted exactly once");
  assert.is(goodStatus.totalFailures, goodSent);
  assert.equal(good.rejects(), []);
  assert.ok(floodCounted <= allowed, `the flooder got ${floodCounted} windows counted, the throttle allows ${allowed}`);
  assert.equal(flooder.acks(), [], "no 10k-window batch was counted");
  assert.ok(floodCounted > 0);
  assert.is(tooManyEnd.code, grpc.status.RESOURCE_EXHAUSTED, tooManyEnd.details);

  // The refusals are on the node records.
  await central.stop();
  const store = await LevelStore.open(join(dir, "data"));
  try {
    const nodes = new Map((await store.loadNodes()).map((n) => [n.nodeId, n]));
    const totals = await store.loadTotals();
    assert.is(nodes.get("flood-1")!.rejectedBatches, 100, "each 10k-window batch was rejected");
    assert.match(nodes.get("flood-1")!.lastRejectReason ?? "", /CENTRAL_BATCH_TOO_LARGE/);
    assert.ok((nodes.get("spray-1")!.rejectedBatches ?? 0) >= 1);
    assert.match(nodes.get("spray-1")!.lastRejectReason ?? "", /CENTRAL_ORIGIN_NOT_DECLARED/);
    assert.is([...totals.keys()].filter((o) => o.startsWith("sprayed-")).length, 0, "no sprayed origin was kept");
    assert.ok(totals.size <= CENTRAL_DEFAULTS.maxOrigins, `${totals.size} origins kept, cap ${CENTRAL_DEFAULTS.maxOrigins}`);
    const limited = [...nodes.values()].filter((n) => /CENTRAL_ORIGIN_LIMIT/.test(n.lastRejectReason ?? ""));
    assert.ok(limited.length >= 1, "a node past the origin cap was refused");
    assert.is(nodes.has("spray-hello"), false);
  } finally {
    await store.close();
  }
});

test.run();
