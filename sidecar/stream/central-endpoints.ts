/**
 * Where the centrals are: the `--central URL,URL,...` list turned into the
 * addresses a stream may connect to, each name resolved to every A/AAAA
 * record it has (a DNS name for a set of replicas is several centrals).
 *
 * Contract: parseCentrals() checks the list once at start-up (config.ts) and
 * throws a SidecarError naming the bad entry; resolveCentrals() never throws — a
 * name that does not resolve now keeps the addresses it resolved to last time
 * (or none), so a DNS hiccup never takes a working central away.
 */
import { Resolver } from "node:dns";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { configError } from "../errors.js";

/** One configured central URL, checked. */
export interface CentralUrl {
  /** The URL as configured (what logs and /status show). */
  readonly url: string;
  readonly tls: boolean;
  /** Host name or IP literal (no brackets). */
  readonly host: string;
  readonly port: number;
}

/** One address a stream can open: a configured URL at one of its host's addresses. */
export interface CentralEndpoint {
  readonly central: CentralUrl;
  /** The IP connected to (the host itself for an IP literal). */
  readonly address: string;
  /** Stable identity of the endpoint: "url@address" (per-address backoff and spread use it). */
  readonly key: string;
}

/**
 * The comma-separated list (flag) or array (config file) of central URLs,
 * checked: http(s) only, no path, query or credentials, no duplicates, and one
 * scheme for all (the TLS files apply to every central). Throws a
 * SidecarError (CONFIG_INVALID) naming the field and the entry.
 */
export function parseCentrals(v: string | readonly string[]): CentralUrl[] {
  const bad = (problem: string) => configError("central (--central)", problem);
  const items = (typeof v === "string" ? v.split(",") : v).map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) throw bad("must name at least one central URL");
  const seen = new Set<string>();
  const out = items.map((s, i) => {
    const at = items.length > 1 ? ` (entry ${i + 1})` : "";
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw bad(`must be an http(s) URL, got ${JSON.stringify(s)}${at}`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") throw bad(`must use http or https, got ${JSON.stringify(s)}${at}`);
    if (u.username || u.password || u.search || u.hash || (u.pathname !== "/" && u.pathname !== "")) {
      throw bad(`must be http(s)://host:port only (no path, query or credentials), got ${JSON.stringify(s)}${at}`);
    }
    const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
    const id = `${u.protocol}//${host.toLowerCase()}:${port}`;
    if (seen.has(id)) throw bad(`lists ${JSON.stringify(s)} twice`);
    seen.add(id);
    return { url: s, tls: u.protocol === "https:", host, port };
  });
  if (new Set(out.map((c) => c.tls)).size > 1) throw bad("mixes http:// and https:// centrals; use one scheme for all");
  return out;
}

/** Resolves a host name to every address it has (A then AAAA); [] when it has none. */
export type ResolveHost = (host: string) => Promise<string[]>;

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), every address. */
export const systemResolve: ResolveHost = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** A specific DNS server (`--resolver HOST:PORT`): A and AAAA records. */
export function dnsServerResolve(server: { host: string; port: number }): ResolveHost {
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([`${server.host.includes(":") ? `[${server.host}]` : server.host}:${server.port}`]);
  const one = (fn: "resolve4" | "resolve6", host: string) =>
    new Promise<string[]>((resolve) => resolver[fn](host, (err, addrs) => resolve(err ? [] : addrs)));
  return async (host) => {
    const [a4, a6] = await Promise.all([one("resolve4", host), one("resolve6", host)]);
    return [...a4, ...a6];
  };
}

/**
 * Every endpoint of every central, in configured order. IP literals need no
 * lookup (a single IP URL resolves synchronously to itself); a name that fails
 * or has no address keeps `previous` endpoints of that URL.
 */
export async function resolveCentrals(centrals: readonly CentralUrl[], resolve: ResolveHost, previous: readonly CentralEndpoint[] = []): Promise<CentralEndpoint[]> {
  const per = await Promise.all(
    centrals.map(async (c) => {
      if (isIP(c.host) !== 0) return [endpointOf(c, c.host)];
      let addrs: string[] = [];
      try {
        addrs = await resolve(c.host);
      } catch {
        addrs = [];
      }
      if (addrs.length === 0) return previous.filter((e) => e.central.url === c.url);
      return [...new Set(addrs)].map((a) => endpointOf(c, a));
    }),
  );
  return per.flat();
}

/** The endpoints of IP-literal centrals only (what is known without a lookup). */
export function literalEndpoints(centrals: readonly CentralUrl[]): CentralEndpoint[] {
  return centrals.filter((c) => isIP(c.host) !== 0).map((c) => endpointOf(c, c.host));
}

function endpointOf(central: CentralUrl, address: string): CentralEndpoint {
  return { central, address, key: `${central.url}@${address}` };
}

/** grpc-js target "ip:port" (IPv6 in brackets). */
export function grpcTarget(e: CentralEndpoint): string {
  return `${e.address.includes(":") ? `[${e.address}]` : e.address}:${e.central.port}`;
}
