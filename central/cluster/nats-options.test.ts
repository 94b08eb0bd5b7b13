import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "@nats-io/transport-node";
import { CentralError } from "../errors.js";
import { makeTlsFixture } from "../../tools/test/tls-fixtures.js";
import { startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { NATS_DEFAULTS, NATS_PASSWORD_ENV, natsFlagsToOptions, registerNatsFlags, toConnectOptions, validateNatsOptions } from "./nats-options.js";

const dir = mkdtempSync(join(tmpdir(), "ow-nats-opts-"));
const pwFile = join(dir, "pw");
writeFileSync(pwFile, "s3cret\n");
const emptyFile = join(dir, "empty");
writeFileSync(emptyFile, "");
test.after(() => rmSync(dir, { recursive: true, force: true }));

const ok = { servers: ["nats://127.0.0.1:4222"], user: "ow", passwordFile: pwFile };

test("defaults: no --nats is the embedded central; 64 partitions, R3, 15 min window log, 5 min dedup, 10 s leases", () => {
  const o = validateNatsOptions({}, {});
  assert.equal(o, NATS_DEFAULTS);
  assert.is(o.partitions, 64);
  assert.is(o.replicas, 3);
});

test("reads the password from the file (trailing newline cut) or the environment", () => {
  assert.is(validateNatsOptions(ok, {}).password, "s3cret");
  assert.is(validateNatsOptions({ servers: ["h:4222"], user: "ow" }, { [NATS_PASSWORD_ENV]: "from-env" }).password, "from-env");
});

test("flags parse through commander into the same validation", () => {
  const cmd = registerNatsFlags(new Command()).exitOverride();
  cmd.parse(["--nats", "nats://a:4222,tls://b:4222", "--nats-user", "ow", "--nats-password-file", pwFile, "--partitions", "4", "--nats-linger-ms", "0"], { from: "user" });
  const o = validateNatsOptions(natsFlagsToOptions(cmd.opts()), {});
  assert.equal(o.servers, ["nats://a:4222", "tls://b:4222"]);
  assert.is(o.partitions, 4);
  assert.is(o.replicas, 3);
  assert.is(o.lingerMs, 0);
  assert.is(validateNatsOptions(ok, {}).lingerMs, 50, "default linger");
});

const refusals: Array<[string, Record<string, unknown>, RegExp, NodeJS.ProcessEnv?]> = [
  ["a URL carrying credentials", { ...ok, servers: ["nats://ow:pw@h:4222"] }, /carries credentials/],
  ["an http URL", { ...ok, servers: ["http://h:4222"] }, /--nats entry 1 must use nats:\/\/ or tls:\/\//],
  ["an empty entry", { ...ok, servers: ["nats://h:1", " "] }, /--nats entry 2 is empty/],
  ["a URL with a path", { ...ok, servers: ["nats://h:1/x"] }, /must not have a path/],
  ["zero partitions", { ...ok, partitions: 0 }, /--partitions must be an integer from 1 to 1024, got 0/],
  ["fractional partitions", { ...ok, partitions: 2.5 }, /--partitions must be an integer/],
  ["too many partitions", { ...ok, partitions: 5000 }, /--partitions must be an integer from 1 to 1024/],
  ["a negative linger", { ...ok, lingerMs: -1 }, /--nats-linger-ms must be an integer from 0 to 500, got -1/],
  ["a linger over the cap", { ...ok, lingerMs: 2000 }, /--nats-linger-ms must be an integer from 0 to 500, got 2000/],
  ["a non-number linger", { ...ok, lingerMs: Number("soon") }, /--nats-linger-ms must be an integer from 0 to 500, got NaN/],
  ["NaN replicas (a non-number flag)", { ...ok, replicas: Number("x") }, /--nats-replicas must be an integer from 1 to 5, got NaN/],
  ["a password as an option", { ...ok, password: "pw" }, /never a flag/],
  ["a missing password file", { ...ok, passwordFile: join(dir, "nope") }, /--nats-password-file .* is not a readable file/],
  ["an empty password file", { ...ok, passwordFile: emptyFile }, /--nats-password-file .* is empty/],
  ["a user without a password", { servers: ["h:1"], user: "ow" }, /--nats-user needs a password/],
  ["a password without a user", { servers: ["h:1"] }, /without --nats-user/, { [NATS_PASSWORD_ENV]: "x" }],
  ["--nats without credentials", { servers: ["h:1"] }, /--nats needs credentials/],
  ["a cert without a key", { ...ok, tlsCert: pwFile }, /--nats-tls-cert and --nats-tls-key must be given together/],
  ["a missing CA file", { ...ok, tlsCa: join(dir, "nope.pem") }, /--nats-tls-ca .* is not a readable file/],
  ["credentials without --nats", { user: "ow", passwordFile: pwFile }, /--nats-user, --nats-password-file given without --nats/],
  ["a dedup window longer than the log", { ...ok, dedupWindowMs: 60_000, windowMaxAgeMs: 30_000 }, /dedupWindowMs \(60000\) must be at most windowMaxAgeMs/],
];
for (const [name, partial, msg, env] of refusals) {
  test(`refuses ${name} with CENTRAL_BAD_CONFIG naming the flag`, () => {
    try {
      validateNatsOptions(partial, env ?? {});
      assert.unreachable("validated");
    } catch (err) {
      assert.instance(err, CentralError);
      assert.is((err as CentralError).code, "CENTRAL_BAD_CONFIG");
      assert.match((err as Error).message, msg);
    }
  });
}

if (requireNats("nats options")) {
  test("connects to a TLS-only NATS with --nats-tls-ca and the password file; without the CA the handshake fails", async () => {
    const tls = makeTlsFixture();
    const cluster = await startNatsCluster({ servers: 1, tls: { cert: join(tls.dir, "server.pem"), key: join(tls.dir, "server.key"), ca: tls.caFile } });
    try {
      const pw = join(dir, "cluster-pw");
      writeFileSync(pw, `${cluster.user.password}\n`);
      const base = { servers: [cluster.urls[0]], user: cluster.user.user, passwordFile: pw };
      const nc = await connect(toConnectOptions(validateNatsOptions({ ...base, tlsCa: tls.caFile }, {}), "test"));
      assert.ok(nc.info?.tls_required, "the server requires TLS");
      await nc.close();
      let err: unknown;
      try {
        const bare = await connect({ ...toConnectOptions(validateNatsOptions({ ...base, tlsCa: tls.otherCaFile }, {}), "test"), maxReconnectAttempts: 0, reconnect: false });
        await bare.close();
      } catch (e) {
        err = e;
      }
      assert.ok(err, "a server certificate from another CA is refused");
    } finally {
      await cluster.stop();
      tls.cleanup();
    }
  });
}

test.run();
