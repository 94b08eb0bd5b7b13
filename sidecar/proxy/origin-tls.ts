/**
 * The TLS identity of an HTTPS origin, one answer for every path that
 * connects to it (the hop's agent, upgrades, confirmation probes): the name
 * sent as SNI and checked against the certificate is the origin's explicit
 * `servername`, else its URL's host — never the cache's Host header (a probe
 * and the hop must not disagree about whether the origin is up). Extra CAs
 * are added to Node's roots; verification is never turned off.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { rootCertificates } from "node:tls";
import type { OriginConfig } from "../config.js";
import { SidecarError } from "../errors.js";

/**
 * SNI / certificate name. "" for an IP host without an explicit name: no SNI,
 * the certificate is checked against the IP (Node derives the name from the
 * Host header unless it is given, so "" must be passed, not undefined).
 */
export function originServername(origin: Pick<OriginConfig, "url" | "servername">): string {
  if (origin.servername) return origin.servername;
  const h = origin.url.hostname.replace(/^\[|\]$/g, "");
  return isIP(h) === 0 ? h : "";
}

/** CA list for the origin: its caFile plus Node's roots, or undefined for Node's roots alone. Throws CONFIG_INVALID when unreadable. */
export function originCa(origin: Pick<OriginConfig, "name" | "caFile">): string[] | undefined {
  if (!origin.caFile) return undefined;
  try {
    return [readFileSync(origin.caFile, "utf8"), ...rootCertificates];
  } catch (err) {
    throw new SidecarError("CONFIG_INVALID", `origins[${origin.name}].caFile cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

/** TLS options for a connection to the origin (empty for http origins). */
export function originTlsOptions(origin: OriginConfig): { servername?: string; ca?: string[]; rejectUnauthorized?: true } {
  if (origin.url.protocol !== "https:") return {};
  return { servername: originServername(origin), ca: originCa(origin), rejectUnauthorized: true };
}
