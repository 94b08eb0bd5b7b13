import { test } from "uvu";
import * as assert from "uvu/assert";
import { validateSidecarConfig } from "../config.js";
import { createRouter, duplicateHost, hostName } from "./routes.js";

const cfg = validateSidecarConfig({
  nodeId: "n",
  isp: "i",
  region: "r",
  origins: ["www.example.com=http://127.0.0.1:9", "img.example.com=https://10.0.0.1:8443/base"],
});
const router = createRouter(cfg.origins);

const cases: Array<[string, string, string | undefined, string]> = [
  // [name, url, host, expected: "origin:<name>:<path>" or "reject:<status>"]
  ["plain Host", "/a?b=1", "www.example.com", "origin:www.example.com:/a?b=1"],
  ["Host with port is stripped", "/", "www.example.com:8081", "origin:www.example.com:/"],
  ["Host is case-insensitive", "/", "WWW.Example.COM", "origin:www.example.com:/"],
  ["trailing dot", "/", "www.example.com.", "origin:www.example.com:/"],
  ["second origin", "/x", "img.example.com", "origin:img.example.com:/x"],
  ["unknown Host is 421", "/", "evil.com", "reject:421"],
  ["suffix trick is 421", "/", "www.example.com.evil.com", "reject:421"],
  ["Host with userinfo is 421", "/", "evil.com@www.example.com", "reject:421"],
  ["missing Host is 400", "/", undefined, "reject:400"],
  ["empty Host is 400", "/", "", "reject:400"],
  ["Host with bad port is 400", "/", "www.example.com:abc", "reject:400"],
  ["absolute-form to another host is 421", "http://evil.com/x", "www.example.com", "reject:421"],
  ["absolute-form to a configured host routes by authority", "http://www.example.com:80/x?y", "evil.com", "origin:www.example.com:/x?y"],
  ["absolute-form non-http scheme is 400", "ftp://www.example.com/x", "www.example.com", "reject:400"],
  ["absolute-form with credentials is 400", "http://u:p@www.example.com/", "www.example.com", "reject:400"],
  ["asterisk-form is 400", "*", "www.example.com", "reject:400"],
  ["authority-form is 400", "www.example.com:443", "www.example.com", "reject:400"],
];

for (const [name, url, host, want] of cases) {
  test(`route: ${name}`, () => {
    const r = router.route(url, host);
    const got = r.kind === "origin" ? `origin:${r.origin.name}:${r.path}` : `reject:${r.status}`;
    assert.is(got, want);
  });
}

test("hostName handles bracketed IPv6 and rejects bare IPv6", () => {
  assert.is(hostName("[::1]:8080"), "::1");
  assert.is(hostName("::1"), undefined);
  assert.is(hostName(undefined), undefined);
});

test("duplicateHost: a second Host field in any case is a duplicate; one is not", () => {
  assert.ok(duplicateHost(["Host", "a", "host", "b"]));
  assert.ok(duplicateHost(["HOST", "a", "X-Y", "z", "hOsT", "a"]), "the same value twice is still two fields");
  assert.not.ok(duplicateHost(["Host", "a", "X-Host", "b", "Hosts", "c"]));
  assert.not.ok(duplicateHost([]));
});

test.run();
