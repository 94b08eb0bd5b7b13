import { test } from "uvu";
import * as assert from "uvu/assert";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Config, ConfigSchema } from "../../proto/gen/originwatch/v1/config_pb.js";
import { Directives, STATE_FILE } from "./directives.js";

const cfg = (init: MessageInitShape<typeof ConfigSchema>) => create(ConfigSchema, init);

function directives(stateDir?: string, capabilities?: string[]) {
  const applied: Config[] = [];
  const d = new Directives({
    stateDir,
    capabilities,
    firstByteTimeoutMs: (o) => (o === "slow.example" ? 3000 : 30_000),
    originNames: () => ["www.example", "slow.example"],
    apply: (c) => applied.push(c),
  });
  return { d, applied };
}

test("applies and ACKs a valid config, and persists it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-dir-"));
  try {
    const { d, applied } = directives(dir);
    const v = await d.offer(cfg({ version: 3n, sampling: { successRate: 0.2, errorRate: 0.9 }, origins: { "www.example": { sampling: { errorRate: 1 } } } }));
    assert.equal(v, { accepted: true, reason: "" });
    assert.is(d.version, 3n);
    assert.is(applied.length, 1);
    assert.equal(d.rates("www.example"), { successRate: 0.2, errorRate: 1 });
    assert.equal(d.rates("other"), { successRate: 0.2, errorRate: 0.9 });
    const saved = JSON.parse(await readFile(join(dir, STATE_FILE), "utf8"));
    assert.is(saved.version, "3");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("keeps the last good config after a rejected push (missing capability, invalid field, stall over a first-byte timeout)", async () => {
  const { d, applied } = directives(undefined, ["config-v1"]);
  await d.offer(cfg({ version: 1n, stallMs: 1500 }));
  const cases: Array<[Config, RegExp]> = [
    [cfg({ version: 2n, requiredCapabilities: ["brotli"] }), /required_capabilities: this sidecar lacks brotli/],
    [cfg({ version: 3n, sampling: { errorRate: 3 } }), /sampling\.error_rate/],
    [cfg({ version: 4n, stallMs: 5000 }), /stall_ms \(5000\) must be below the first-byte timeout \(3000 ms\) of origin slow\.example/],
    [cfg({ version: 5n, origins: { "slow.example": { stallMs: 3000 } } }), /origins\["slow\.example"\]\.stall_ms/],
  ];
  for (const [c, re] of cases) {
    const v = await d.offer(c);
    assert.is(v.accepted, false);
    assert.match(v.reason, re);
    assert.is(d.version, 1n);
    assert.is(d.current.stallMs, 1500);
  }
  assert.is(applied.length, 1);
  // A fleet stall above slow.example's timeout is fine when slow.example overrides it.
  assert.is((await d.offer(cfg({ version: 6n, stallMs: 5000, origins: { "slow.example": { stallMs: 1000 } } }))).accepted, true);
});

test("at boot, the persisted last good config is applied; a corrupt file is ignored", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-dir-"));
  try {
    const first = directives(dir);
    await first.d.offer(cfg({ version: 7n, windowMs: 2000, lookbackMs: 10_000 }));
    const second = directives(dir);
    assert.is(await second.d.loadPersisted(), true);
    assert.is(second.d.version, 7n);
    assert.is(second.applied[0].windowMs, 2000);
    await writeFile(join(dir, STATE_FILE), "{not json");
    const third = directives(dir);
    assert.is(await third.d.loadPersisted(), false);
    assert.is(third.d.version, 0n);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
