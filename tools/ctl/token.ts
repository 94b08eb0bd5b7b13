/**
 * Where `ctl` takes the operator token from, and when it warns about it.
 * A token on the command line is visible to every local user (ps,
 * /proc/PID/cmdline, shell history), so ctl also takes it from a file
 * (`--token-file`, mode 0600) or the environment. Precedence: --token,
 * --token-file, ORIGINWATCH_TOKEN, ORIGINWATCH_TOKEN_FILE.
 *
 * A bearer token sent over plain http to a host that is not loopback can be
 * read by anyone on the path: tokenWarning() says so (ctl prints it on stderr
 * and still makes the call; the central decides).
 */
import { readFileSync } from "node:fs";
import { isLoopbackHost } from "../../central/server/exposure.js";
import { UsageError } from "./client.js";

export interface TokenSources {
  flag?: string;
  file?: string;
  env: NodeJS.ProcessEnv;
}

/** The first non-empty, non-comment line of a token file. */
export function readTokenFile(file: string, what = "--token-file"): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`${what}: cannot read ${file}: ${(err as Error).message}`);
  }
  const line = text
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l !== "" && !l.startsWith("#"));
  if (!line || /\s/.test(line)) throw new UsageError(`${what}: ${file} must hold the token alone on its first line`);
  return line;
}

export function resolveToken(s: TokenSources): string | undefined {
  if (s.flag) return s.flag;
  if (s.file) return readTokenFile(s.file);
  if (s.env.ORIGINWATCH_TOKEN) return s.env.ORIGINWATCH_TOKEN;
  if (s.env.ORIGINWATCH_TOKEN_FILE) return readTokenFile(s.env.ORIGINWATCH_TOKEN_FILE, "ORIGINWATCH_TOKEN_FILE");
  return undefined;
}

/** A warning when a token would travel in clear text beyond this machine; undefined otherwise. */
export function tokenWarning(url: string, token: string | undefined): string | undefined {
  if (!token) return undefined;
  const u = new URL(url);
  if (u.protocol !== "http:" || isLoopbackHost(u.hostname)) return undefined;
  return `warning: sending the operator token over plain http to ${u.host}: anyone on the path can read it. Use https (the central's --tls-cert) and --ca.`;
}
