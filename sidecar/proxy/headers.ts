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
 * Request headers to send upstream: a new object without hop-by-hop fields,
 * with X-Forwarded-For set, and `transfer-encoding: chunked` when the request
 * arrived chunked (Node has de-chunked it; it is re-chunked on the way out).
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, peer: string, trusted: boolean): Record<string, string | string[]> {
  const named = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const k in headers) {
    if (HOP_BY_HOP.has(k) || named.has(k)) continue;
    const v = headers[k];
    if (v !== undefined) out[k] = v;
  }
  const prior = out["x-forwarded-for"];
  out["x-forwarded-for"] = trusted && prior ? `${Array.isArray(prior) ? prior.join(", ") : prior}, ${peer}` : peer;
  if (headers["transfer-encoding"] !== undefined) {
    delete out["content-length"];
    out["transfer-encoding"] = "chunked";
  }
  return out;
}

/** Response raw headers (flat [k, v, k, v…]) without hop-by-hop fields, case kept. */
export function downstreamResponseHeaders(raw: readonly string[]): string[] {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === "connection") {
      named ??= new Set();
      for (const t of connectionTokens(raw[i + 1])) named.add(t);
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (HOP_BY_HOP.has(k) || named?.has(k)) continue;
    out.push(raw[i], raw[i + 1]);
  }
  return out;
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
