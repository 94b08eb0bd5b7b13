/**
 * The demo's control endpoint: a tiny HTTP server on loopback so that
 * `originwatch demo fault …` and `… heal` in another terminal can inject
 * faults into the running demo. Loopback only: it changes nothing but the
 * demo's own relays and origin.
 *
 *   POST /fault  {"target":"isp-b","mode":"blackhole"}   → {"ok":true,"message":…}
 *   POST /heal                                          → {"ok":true,"message":…}
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { FaultError, type FaultRequest } from "./faults.js";

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
