/**
 * The faults the demo can inject, by name, on a running local fleet:
 *   origin down|slow|error|ok   (one origin's behaviour, by its Host)
 *   <isp> | <region> | <node-id>  blackhole|refuse|reset|delay|pass
 * Used by the story and by `originwatch demo fault …` through the control
 * endpoint.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { RelayMode } from "../fault-relay.js";
import type { Fleet } from "../fleet/fleet.js";

export interface FaultRequest {
  /** "origin", an ISP, a region or a node id. */
  target: string;
  mode: string;
  /** For origin faults: which origin (default: the fleet's first). */
  origin?: string;
  /** For delay/slow: milliseconds. */
  ms?: number;
}

export const ORIGIN_MODES = ["down", "slow", "error", "ok"] as const;
export const PATH_MODES = ["blackhole", "refuse", "reset", "delay", "pass"] as const;

export class FaultError extends Error {}

type OriginFault = { kind: "ok" } | { kind: "status"; status: number } | { kind: "delay"; ms: number };

/**
 * Per-origin behaviour of the fleet's one controllable origin: every origin
 * name is a Host on the same server, so one can fail while the others stay up.
 */
export class OriginFaults {
  private readonly faults = new Map<string, OriginFault>();
  constructor(private readonly fleet: Fleet) {}

  async set(origin: string, f: OriginFault): Promise<void> {
    if (f.kind === "ok") this.faults.delete(origin);
    else this.faults.set(origin, f);
    await this.install();
  }

  async clear(): Promise<void> {
    this.faults.clear();
    await this.install();
  }

  private async install(): Promise<void> {
    if (this.faults.size === 0) return this.fleet.origin.setMode({ kind: "ok" });
    const faults = new Map(this.faults);
    await this.fleet.origin.setMode({
      kind: "handler",
      handle: (req: IncomingMessage, res: ServerResponse) => {
        const f = faults.get((req.headers.host ?? "").replace(/:\d+$/, ""));
        const ok = () => {
          if (!res.writableEnded) res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
        };
        req.resume();
        if (!f || f.kind === "ok") return ok();
        if (f.kind === "status") return void res.writeHead(f.status, { "content-type": "text/plain" }).end("origin failing (demo)\n");
        const t = setTimeout(ok, f.ms);
        res.on("close", () => clearTimeout(t));
      },
    });
  }
}

/** Apply one fault; returns a sentence saying what was done. */
export async function applyFault(fleet: Fleet, origins: OriginFaults, f: FaultRequest): Promise<string> {
  if (f.target === "origin") {
    const name = f.origin || fleet.origins[0]!;
    if (!fleet.origins.includes(name)) throw new FaultError(`no origin ${name} in the demo (have ${fleet.origins.join(", ")})`);
    switch (f.mode) {
      case "down":
        await origins.set(name, { kind: "status", status: 503 });
        return `${name} now answers 503 to every request`;
      case "error":
        await origins.set(name, { kind: "status", status: 500 });
        return `${name} now answers 500 to every request`;
      case "slow": {
        const ms = f.ms ?? 1500;
        await origins.set(name, { kind: "delay", ms });
        return `${name} now waits ${ms} ms before answering`;
      }
      case "ok":
        await origins.set(name, { kind: "ok" });
        return `${name} answers normally again`;
      default:
        throw new FaultError(`origin mode must be one of ${ORIGIN_MODES.join(", ")}, got ${JSON.stringify(f.mode)}`);
    }
  }
  let mode: RelayMode;
  switch (f.mode) {
    case "blackhole":
    case "refuse":
    case "pass":
      mode = { kind: f.mode };
      break;
    case "reset":
      // Reset on the first response byte: open keep-alive connections fail too.
      mode = { kind: "reset", afterBytes: 0 };
      break;
    case "delay":
      mode = { kind: "delay", ms: f.ms ?? 1500 };
      break;
    default:
      throw new FaultError(`path mode must be one of ${PATH_MODES.join(", ")}, got ${JSON.stringify(f.mode)}`);
  }
  const what = f.mode === "pass" ? "passes traffic again" : f.mode === "delay" ? `delays traffic by ${(mode as { ms: number }).ms} ms` : `is ${f.mode === "blackhole" ? "blackholed" : f.mode === "refuse" ? "refusing connections" : "resetting connections"}`;
  if (fleet.ispRelays.has(f.target)) {
    await fleet.setIsp(f.target, mode);
    return `every path through ISP ${f.target} ${what}`;
  }
  if (fleet.nodes.some((n) => n.region === f.target)) {
    await fleet.setRegion(f.target, mode);
    return `every node path in region ${f.target} ${what}`;
  }
  if (fleet.nodes.some((n) => n.nodeId === f.target)) {
    await fleet.setNode(f.target, mode);
    return `node ${f.target}'s path ${what}`;
  }
  const known = [...fleet.ispRelays.keys(), ...new Set(fleet.nodes.map((n) => n.region)), ...fleet.nodes.map((n) => n.nodeId)];
  throw new FaultError(`unknown target ${JSON.stringify(f.target)}: use "origin", an ISP, a region or a node (${known.join(", ")})`);
}

export async function healAll(fleet: Fleet, origins: OriginFaults): Promise<string> {
  await fleet.heal();
  await origins.clear();
  return "every path passes traffic and every origin answers normally";
}
