/**
 * `originwatch certs init DIR`: a development PKI made with openssl — a CA,
 * a central server certificate (SAN localhost + 127.0.0.1 + --hosts) and one
 * client certificate per sidecar node, whose CN and DNS SAN are the node_id
 * the sidecar may claim. For docs, tests and the demo; production should use
 * the operator's own CA.
 */
import type { Command } from "commander";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || (err as Error).message}`);
  }
}

function issue(dir: string, name: string, subjectCn: string, ext: string): void {
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${subjectCn}`], dir);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.crt`, "-days", "825", "-sha256", "-extfile", `${name}.ext`], dir);
  rmSync(join(dir, `${name}.csr`));
  rmSync(join(dir, `${name}.ext`));
}

/** Client certificate for one sidecar: CN and DNS SAN = node_id. */
export function issueNodeCert(dir: string, nodeId: string): { cert: string; key: string } {
  if (!NODE_ID.test(nodeId)) throw new Error(`node id ${JSON.stringify(nodeId)} must match ${NODE_ID.source}`);
  issue(dir, `node-${nodeId}`, nodeId, `subjectAltName=DNS:${nodeId}\nextendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n`);
  return { cert: join(dir, `node-${nodeId}.crt`), key: join(dir, `node-${nodeId}.key`) };
}

export interface DevPki {
  ca: string;
  centralCert: string;
  centralKey: string;
  nodes: Record<string, { cert: string; key: string }>;
}

export function initPki(dir: string, opts: { nodes?: string[]; hosts?: string[]; caName?: string } = {}): DevPki {
  mkdirSync(dir, { recursive: true });
  if (existsSync(join(dir, "ca.key"))) throw new Error(`${dir} already holds a CA (ca.key); use another directory or \`certs node\``);
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-subj", `/CN=${opts.caName ?? "originwatch dev CA"}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], dir);
  const sans = ["DNS:localhost", "IP:127.0.0.1", ...(opts.hosts ?? []).map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`))];
  issue(dir, "central", "originwatch-central", `subjectAltName=${sans.join(",")}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n`);
  const nodes: DevPki["nodes"] = {};
  for (const n of opts.nodes ?? []) nodes[n] = issueNodeCert(dir, n);
  return { ca: join(dir, "ca.crt"), centralCert: join(dir, "central.crt"), centralKey: join(dir, "central.key"), nodes };
}

/** Registers `originwatch certs`. */
export function registerCerts(program: Command): void {
  const certs = program.command("certs").description("development certificates for mTLS between sidecars and the central (uses openssl)");
  certs
    .command("init <dir>")
    .description("create a CA, a central certificate and sidecar certificates")
    .option("--nodes <ids>", "comma-separated sidecar node ids", "")
    .option("--hosts <names>", "extra central host names or IPs for its certificate", "")
    .action((dir: string, opts: { nodes: string; hosts: string }) => {
      const split = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
      try {
        const pki = initPki(dir, { nodes: split(opts.nodes), hosts: split(opts.hosts) });
        process.stdout.write(
          [
            `CA:      ${pki.ca}`,
            `central: ${pki.centralCert} ${pki.centralKey}`,
            ...Object.entries(pki.nodes).map(([n, c]) => `node ${n}: ${c.cert} ${c.key}`),
            "",
            "central: originwatch central --tls-cert central.crt --tls-key central.key --tls-ca ca.crt",
            "sidecar: originwatch sidecar --central https://HOST:7400 --tls-cert node-ID.crt --tls-key node-ID.key --tls-ca ca.crt ...",
            "",
          ].join("\n"),
        );
      } catch (err) {
        process.stderr.write(`originwatch certs init: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
  certs
    .command("node <dir> <nodeId>")
    .description("issue one more sidecar certificate from the CA in dir")
    .action((dir: string, nodeId: string) => {
      try {
        const c = issueNodeCert(dir, nodeId);
        process.stdout.write(`node ${nodeId}: ${c.cert} ${c.key}\n`);
      } catch (err) {
        process.stderr.write(`originwatch certs node: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}
