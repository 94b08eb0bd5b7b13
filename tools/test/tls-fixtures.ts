/**
 * Throwaway TLS material made with the openssl CLI: a CA and a server
 * certificate it signs (SANs given), in a temp dir. For HTTPS-origin tests.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TlsFixture {
  dir: string;
  caFile: string;
  ca: string;
  key: string;
  cert: string;
  /** A second, unrelated self-signed CA (for "wrong CA" cases). */
  otherCaFile: string;
  cleanup(): void;
}

export function makeTlsFixture(sans: string[] = ["DNS:localhost", "IP:127.0.0.1"]): TlsFixture {
  const dir = mkdtempSync(join(tmpdir(), "ow-tls-"));
  const p = (f: string) => join(dir, f);
  const ossl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj", "/CN=originwatch test CA");
  ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("other.key"), "-out", p("other.pem"), "-days", "2", "-subj", "/CN=unrelated CA");
  ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=origin");
  writeFileSync(p("ext.cnf"), `subjectAltName=${sans.join(",")}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`);
  ossl("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial", "-out", p("server.pem"), "-days", "2", "-extfile", p("ext.cnf"));
  return {
    dir,
    caFile: p("ca.pem"),
    ca: readFileSync(p("ca.pem"), "utf8"),
    key: readFileSync(p("server.key"), "utf8"),
    cert: readFileSync(p("server.pem"), "utf8"),
    otherCaFile: p("other.pem"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
