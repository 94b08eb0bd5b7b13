/**
 * Start-up in cluster mode when NATS cannot be reached: `connectCluster`
 * rejects with CENTRAL_NATS_UNAVAILABLE, and `originwatch central --nats ...`
 * exits non-zero printing that code (it does not hang or start half-way).
 * A bad --replica-id is CENTRAL_BAD_CONFIG.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CentralError } from "../errors.js";
import { connectCluster } from "./cluster-context.js";
import { validateNatsOptions } from "./nats-options.js";
import { deadPort } from "../../tools/test/sidecar-harness.js";
import { startOriginwatch } from "../../tools/test/proc.js";

test("connectCluster to a port nobody listens on: CENTRAL_NATS_UNAVAILABLE, naming the servers", async () => {
  const url = `nats://127.0.0.1:${await deadPort()}`;
  const o = validateNatsOptions({ servers: [url], user: "ow" }, { ORIGINWATCH_NATS_PASSWORD: "pw" });
  const err = await connectCluster(o, { connectTimeoutMs: 2000 }).then(() => undefined, (e: unknown) => e);
  assert.instance(err, CentralError);
  assert.is((err as CentralError).code, "CENTRAL_NATS_UNAVAILABLE");
  assert.match((err as Error).message, url);
});

test("a replica id that is not a KV key token is CENTRAL_BAD_CONFIG", async () => {
  const o = validateNatsOptions({ servers: ["nats://127.0.0.1:4222"], user: "ow" }, { ORIGINWATCH_NATS_PASSWORD: "pw" });
  const err = await connectCluster(o, { replicaId: "a.b" }).then(() => undefined, (e: unknown) => e);
  assert.is((err as CentralError).code, "CENTRAL_BAD_CONFIG");
});

test("originwatch central --nats with NATS down exits 1 with CENTRAL_NATS_UNAVAILABLE", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-nonats-"));
  try {
    const err = await startOriginwatch(
      ["central", "--listen", "127.0.0.1:0", "--data", join(dir, "c"), "--nats", `nats://127.0.0.1:${await deadPort()}`, "--nats-user", "ow"],
      { env: { ORIGINWATCH_NATS_PASSWORD: "pw" } },
    ).then(
      async (p) => {
        await p.stop("SIGKILL");
        return undefined;
      },
      (e: Error) => e,
    );
    assert.ok(err, "the central did not start");
    assert.match(err!.message, "exited with 1");
    assert.match(err!.message, "CENTRAL_NATS_UNAVAILABLE");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
