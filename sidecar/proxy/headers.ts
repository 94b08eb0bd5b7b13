/**
 * Header rules of the hop: hop-by-hop fields are stripped both ways (RFC 9110
 * §7.6.1), X-Forwarded-For is appended only for trusted peers, and request
 * body framing is re-derived by Node (never forwarded verbatim) so a smuggled
 * framing header cannot reach the origin.
 */
import type { IncomingHttpHeaders } from "node:http";
import { BlockList, isIP } from "node:net";

/** Always hop-by-hop. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "transfer-encoding",
  "upgrade",
  "proxy-authorization",
  "proxy-authenticate",
  "trailer",
]);

/** Fields a Connection header may not remove: they frame or route the message. */
const PROTECTED: ReadonlySet<string> = new Set(["host", "content-length"]);

/** Field names listed in Connection header value(s). */
export function connectionTokens(value: string | string[] | undefined): Set<string> {
  const out = new Set<string>();
  if (value === undefined) return out;
  for (const v of Array.isArray(value) ? value : [value]) {
    for (const t of v.split(",")) {
      const n = t.trim().toLowerCase();
      if (n && !PROTECTED.has(n)) out.add(n);
    }
  }
  return out;
}

/**
 * Field-name lengths a hop-by-hop field can have: a raw field name of another
 * length is passed without lower-casing it (no allocation per field on the
 * request path).
 */
const HOP_LENGTH: readonly boolean[] = (() => {
  const a: boolean[] = [];
  for (const n of HOP_BY_HOP) a[n.length] = true;
  return a;
})();

/**
 * Turn the cache's request headers into the ones sent upstream, in place (the
 * object is the sidecar's own; a copy per request is measurable): hop-by-hop
 * fields removed, X-Forwarded-For set, and `transfer-encoding: chunked` when
 * the request arrived chunked (Node has de-chunked it; it is re-chunked on the
 * way out, never forwarded verbatim). `raw` is the same request's
 * `rawHeaders`: one pass over it finds the fields to remove, so a request
 * without hop-by-hop fields costs no lookup or delete.
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, raw: readonly string[], peer: string, trusted: boolean): IncomingHttpHeaders {
  let chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (HOP_LENGTH[raw[i].length] !== true) continue;
    const n = raw[i].toLowerCase();
    if (!HOP_BY_HOP.has(n)) continue;
    if (n === "transfer-encoding") chunked = true;
    else if (n === "connection") for (const t of connectionTokens(raw[i + 1])) delete headers[t];
    delete headers[n];
  }
  const prior = headers["x-forwarded-for"];
  headers["x-forwarded-for"] = trusted && prior ? `${prior}, ${peer}` : peer;
  if (chunked) {
    delete headers["content-length"];
    headers["transfer-encoding"] = "chunked";
  }
  return headers;
}

/**
 * Response raw headers (flat [k, v, k, v…]) without hop-by-hop fields, case
 * kept. Returns `raw` itself when there is nothing to remove (never mutated).
 */
export function downstreamResponseHeaders(raw: readonly string[]): string[] {
  /** Fields a Connection header names beyond the always-hop-by-hop ones (rare). */
  let named: string[] | undefined;
  let strip = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (HOP_LENGTH[raw[i].length] !== true) continue;
    const n = raw[i].toLowerCase();
    if (!HOP_BY_HOP.has(n)) continue;
    strip = true;
    // `Connection: keep-alive` (the usual value) names a field that is hop-by-hop anyway.
    const v = raw[i + 1];
    if (n === "connection" && !(v.length === 10 && v.toLowerCase() === "keep-alive")) {
      for (const t of connectionTokens(v)) if (!HOP_BY_HOP.has(t)) (named ??= []).push(t);
    }
  }
  if (!strip) return raw as string[];
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (named !== undefined || HOP_LENGTH[raw[i].length] === true) {
      const k = raw[i].toLowerCase();
      if (HOP_BY_HOP.has(k) || named?.includes(k)) continue;
    }
    out.push(raw[i], raw[i + 1]);
  }
  return out;
}

/** The first Content-Length value of raw headers, without building a headers object. */
export function rawContentLength(raw: readonly string[]): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 14 && raw[i].toLowerCase() === "content-length") return raw[i + 1];
  }
  return undefined;
}

/** Peer address matcher for X-Forwarded-For trust: "loopback", exact IPs and CIDRs. */
export function createPeerMatcher(entries: readonly string[]): (addr: string | undefined) => boolean {
  const list = new BlockList();
  for (const e of entries) {
    if (e === "loopback") {
      list.addSubnet("127.0.0.0", 8, "ipv4");
      list.addAddress("::1", "ipv6");
      continue;
    }
    const [addr, bits] = e.split("/");
    const family = isIP(addr) === 6 ? "ipv6" : "ipv4";
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  return (addr) => {
    if (!addr) return false;
    const a = addr.startsWith("::ffff:") && isIP(addr.slice(7)) === 4 ? addr.slice(7) : addr;
    const fam = isIP(a);
    if (fam === 0) return false;
    return list.check(a, fam === 6 ? "ipv6" : "ipv4");
  };
}

/** The peer as written into X-Forwarded-For (IPv4-mapped IPv6 unwrapped). */
export function peerAddress(addr: string | undefined): string {
  if (!addr) return "unknown";
  return addr.startsWith("::ffff:") && isIP(addr.slice(7)) === 4 ? addr.slice(7) : addr;
}
