/**
 * The gate for tests that need a real nats-server (issue 16), shaped like the
 * Prometheus one: the tests run whenever the binary exists; without it they
 * are skipped with a note, unless ORIGINWATCH_REQUIRE_NATS=1 (CI), where a
 * missing binary is a failing test.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { NATS_SERVER_BIN, natsServerAvailable } from "./nats-cluster.js";

/** True when nats-server runs here; otherwise registers a failing test (REQUIRE) or writes a note. */
export function requireNats(what: string): boolean {
  if (natsServerAvailable()) return true;
  if (process.env.ORIGINWATCH_REQUIRE_NATS === "1") {
    test(`nats-server installed (ORIGINWATCH_REQUIRE_NATS=1)`, () => {
      assert.unreachable(`${NATS_SERVER_BIN} missing or not runnable, and ORIGINWATCH_REQUIRE_NATS=1 (apt-get install nats-server)`);
    });
  } else {
    process.stderr.write(`${what}: ${NATS_SERVER_BIN} not found; these tests do not run here (set ORIGINWATCH_REQUIRE_NATS=1 to make that a failure)\n`);
  }
  return false;
}
