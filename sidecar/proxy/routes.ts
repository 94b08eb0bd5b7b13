/**
 * Routing: the only way a request reaches an upstream. The target is always a
 * configured origin looked up by name; nothing from the Host header or URL is
 * ever used as an address (the sidecar is not an open proxy).
 */
import type { OriginConfig } from "../config.js";

export type Route =
  | { kind: "origin"; origin: OriginConfig; path: string }
  | { kind: "reject"; status: 400 | 421; reason: string };

/** Host header value → origin name: port stripped, lower case, trailing dot removed. */
export function hostName(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  let h = host.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    if (end < 0) return undefined;
    h = h.slice(1, end);
  } else {
    const colon = h.indexOf(":");
    if (colon >= 0) {
      if (h.indexOf(":", colon + 1) >= 0) return undefined; // bare IPv6 without brackets: malformed Host
      const port = h.slice(colon + 1);
      if (port !== "" && !/^\d{1,5}$/.test(port)) return undefined;
      h = h.slice(0, colon);
    }
  }
  if (h.endsWith(".")) h = h.slice(0, -1);
  return h === "" ? undefined : h;
}

export interface Router {
  /** Route a request by its target (url) and Host header. */
  route(url: string, host: string | undefined): Route;
  origin(name: string): OriginConfig | undefined;
}

export function createRouter(origins: readonly OriginConfig[]): Router {
  const byName = new Map(origins.map((o) => [o.name, o]));
  // A Host field that is exactly a configured name is what hostName() would return for it (names are lower
  // case without a trailing dot), except an IPv6 name, which a Host must bracket: those take the full parse.
  const exact = new Map(origins.filter((o) => !o.name.includes(":")).map((o) => [o.name, o]));
  const lookup = (name: string | undefined): OriginConfig | undefined => (name === undefined ? undefined : byName.get(name));
  return {
    origin: (name) => byName.get(name),
    route(url, host) {
      if (url.startsWith("/")) {
        const hit = host === undefined ? undefined : exact.get(host);
        if (hit !== undefined) return { kind: "origin", origin: hit, path: url };
        const name = hostName(host);
        if (name === undefined) return { kind: "reject", status: 400, reason: "missing or malformed Host" };
        const origin = lookup(name);
        if (!origin) return { kind: "reject", status: 421, reason: `no origin configured for host ${name}` };
        return { kind: "origin", origin, path: url };
      }
      // absolute-form (RFC 9112 §3.2.2): the authority replaces Host, and must itself be a configured origin.
      let u: URL;
      try {
        u = new URL(url);
      } catch {
        return { kind: "reject", status: 400, reason: "malformed request target" };
      }
      if (u.protocol !== "http:" && u.protocol !== "https:") return { kind: "reject", status: 400, reason: "request target must be http(s)" };
      if (u.username || u.password) return { kind: "reject", status: 400, reason: "request target must not carry credentials" };
      const name = hostName(u.host);
      const origin = lookup(name);
      if (!origin) return { kind: "reject", status: 421, reason: `no origin configured for host ${name ?? ""}` };
      return { kind: "origin", origin, path: `${u.pathname}${u.search}` };
    },
  };
}

/**
 * More than one Host field line (RFC 9112 §3.2: a server MUST answer 400).
 * Node keeps the first and drops the rest from `headers`; only `rawHeaders`
 * shows them. One pass, a length check before any case folding.
 */
export function duplicateHost(rawHeaders: readonly string[]): boolean {
  let seen = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const k = rawHeaders[i];
    if (k.length === 4 && (k === "Host" || k === "host" || k.toLowerCase() === "host")) {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}
