/**
 * Steady traffic through sidecars for end-to-end tests: each target gets one
 * request every `everyMs` on a keep-alive agent; every answer that is not the
 * expected status (or a socket error) is counted as a failure.
 */
import http from "node:http";
import { request } from "./http-request.js";

export interface TrafficTarget {
  /** HOST:PORT of the sidecar's cache-facing listener. */
  address: string;
  host: string;
}

export interface Traffic {
  sent: number;
  ok: number;
  failures: string[];
  /** Stop and wait for the requests in flight. */
  stop(): Promise<void>;
}

export function startTraffic(targets: TrafficTarget[], everyMs = 50, path = "/item"): Traffic {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const inflight = new Set<Promise<void>>();
  const t: Traffic = {
    sent: 0,
    ok: 0,
    failures: [],
    async stop() {
      clearInterval(timer);
      await Promise.all([...inflight]);
      agent.destroy();
    },
  };
  let n = 0;
  const timer = setInterval(() => {
    for (const target of targets) {
      const i = n++;
      t.sent++;
      const p = request(target.address, { path: `${path}/${i}?q=${i}`, headers: { host: target.host }, agent, timeoutMs: 10_000 }).then(
        (r) => {
          if (r.status === 200) t.ok++;
          else t.failures.push(`${target.address} ${i}: status ${r.status}`);
        },
        (err: Error) => {
          t.failures.push(`${target.address} ${i}: ${err.message}`);
        },
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
  }, everyMs);
  return t;
}
