/**
 * The demo's control endpoint: a tiny HTTP server on loopback so that
 * `originwatch demo fault …` and `… heal` in another terminal can inject
 * faults into the running demo. Loopback only: it changes nothing but the
 * demo's own relays and origin.
 *
 * Not reachable from a web page either (checkRequest): the body must be
 * `application/json` (a cross-site form or text/plain POST needs no CORS
 * preflight, JSON does, and we answer none: 415), the Host must be a loopback
 * name (a DNS-rebinding page sends its own: 403), and an Origin header, when
 * present, must be a loopback origin (403).
 *
 *   POST /fault  {"target":"isp-b","mode":"blackhole"}   → {"ok":true,"message":…}
 *   POST /heal                                          → {"ok":true,"message":…}
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { IncomingMessage } from "node:http";
import { hostOfAuthority, isLoopbackHost } from "../../central/server/exposure.js";
import { FaultError, type FaultRequest } from "./faults.js";

/** Why a request may not reach the control endpoint (status and message), or undefined when it may. */
export function checkRequest(req: IncomingMessage): { status: number; message: string } | undefined {
  const host = hostOfAuthority(req.headers.host);
  if (!host || !isLoopbackHost(host)) return { status: 403, message: `Host ${JSON.stringify(req.headers.host ?? "")} is not a loopback name` };
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let ok = false;
    try {
      ok = isLoopbackHost(new URL(origin).hostname);
    } catch {
      ok = false;
    }
    if (!ok) return { status: 403, message: `cross-site request from ${JSON.stringify(origin)} refused` };
  }
  const type = String(req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json") return { status: 415, message: "content-type must be application/json" };
  return undefined;
}

export interface ControlHandlers {
  fault(f: FaultRequest): Promise<string>;
  heal(): Promise<string>;
}

export interface ControlServer {
  address: string;
  close(): Promise<void>;
}

export const DEFAULT_CONTROL = "127.0.0.1:7401";

export async function startControl(listen: string, h: ControlHandlers): Promise<ControlServer> {
  const i = listen.lastIndexOf(":");
  const host = listen.slice(0, i);
  const port = Number(listen.slice(i + 1));
  if (host !== "127.0.0.1" && host !== "localhost" && host !== "::1" && host !== "[::1]") throw new Error(`--control must be a loopback address, got ${listen}`);
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: object) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body) + "\n");
    if (req.method !== "POST" || (req.url !== "/fault" && req.url !== "/heal")) return reply(404, { ok: false, message: "POST /fault or /heal" });
    const refused = checkRequest(req);
    if (refused) {
      req.resume();
      return reply(refused.status, { ok: false, message: refused.message });
    }
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
      if (body.length > 4096) req.destroy();
    });
    req.on("end", async () => {
      try {
        if (req.url === "/heal") return reply(200, { ok: true, message: await h.heal() });
        const f = JSON.parse(body || "{}") as FaultRequest;
        if (typeof f.target !== "string" || typeof f.mode !== "string") throw new FaultError("body must be {target, mode}");
        reply(200, { ok: true, message: await h.fault(f) });
      } catch (err) {
        reply(err instanceof FaultError || err instanceof SyntaxError ? 400 : 500, { ok: false, message: (err as Error).message });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "EADDRINUSE" ? new Error(`the demo control port ${listen} is in use: is another demo running? (--control to choose another)`) : err),
    );
    server.listen(port, host.replace(/^\[|\]$/g, ""), () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Client side of `originwatch demo fault|heal`. */
export async function sendControl(control: string, path: "/fault" | "/heal", body?: FaultRequest): Promise<{ ok: boolean; message: string }> {
  let res: Response;
  try {
    res = await fetch(`http://${control}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}), signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    return { ok: false, message: `no demo answers on ${control} (${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}): start one with \`npm start\` or \`npx originwatch demo --interactive\`` };
  }
  try {
    return (await res.json()) as { ok: boolean; message: string };
  } catch {
    return { ok: false, message: `unexpected answer from ${control} (HTTP ${res.status})` };
  }
}
