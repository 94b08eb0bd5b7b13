/**
 * The one HOST:PORT parser of both ends (listen, admin, resolver addresses).
 * Rules: "host:port", "[v6]:port" or ":port"; port 0..65535 (0: any free
 * port); an empty host means every interface ("0.0.0.0") where the caller
 * allows it (a listen address) and is refused otherwise. Errors say what is
 * wrong without the field; callers wrap them in their side's error type,
 * naming the field.
 */
export interface HostPort {
  host: string;
  port: number;
}

/** Parses v or returns the reason it is not a HOST:PORT. */
export function parseHostPort(v: unknown, opts: { emptyHost?: "any" | "refuse" } = {}): HostPort | { error: string } {
  if (typeof v !== "string" || v.trim() === "") return { error: "must be HOST:PORT" };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(v.trim());
  if (!m) return { error: `must be HOST:PORT, got ${JSON.stringify(v)}` };
  const port = Number(m[3]);
  if (port > 65535) return { error: `port must be 0..65535, got ${port}` };
  const host = m[1] ?? m[2] ?? "";
  if (host === "") return (opts.emptyHost ?? "refuse") === "any" ? { host: "0.0.0.0", port } : { error: "needs a host" };
  return { host, port };
}
