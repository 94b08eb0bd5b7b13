/**
 * The DNS lookup the upstream agents use when a resolver is configured
 * (`--resolver HOST:PORT`), instead of the system's getaddrinfo.
 */
import { Resolver } from "node:dns";
import type { LookupFunction } from "node:net";

/**
 * net `lookup` through a specific DNS server. Errors keep getaddrinfo's
 * vocabulary (ENOTFOUND for "no such name", EAI_AGAIN for the rest) so the
 * outcome table sees a DNS failure, never e.g. the resolver's ECONNREFUSED.
 * A address first, then AAAA; timeout 2 s, 2 tries.
 */
export function resolverLookup(server: { host: string; port: number }): LookupFunction {
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([`${server.host.includes(":") ? `[${server.host}]` : server.host}:${server.port}`]);
  return ((hostname: string, options: { all?: boolean; family?: number }, cb: (...a: unknown[]) => void) => {
    const fail = (err: NodeJS.ErrnoException) => {
      const code = err.code === "ENOTFOUND" || err.code === "ENODATA" ? "ENOTFOUND" : "EAI_AGAIN";
      cb(Object.assign(new Error(`dns ${hostname}: ${err.code ?? err.message}`), { code, hostname, syscall: "getaddrinfo" }));
    };
    const done = (addrs: string[], family: 4 | 6) => {
      if (options?.all) cb(null, addrs.map((address) => ({ address, family })));
      else cb(null, addrs[0], family);
    };
    resolver.resolve4(hostname, (err, a4) => {
      if (!err && a4.length) return done(a4, 4);
      resolver.resolve6(hostname, (err6, a6) => {
        if (!err6 && a6.length) return done(a6, 6);
        fail((err ?? err6 ?? Object.assign(new Error("no address"), { code: "ENOTFOUND" })) as NodeJS.ErrnoException);
      });
    });
  }) as unknown as LookupFunction;
}
