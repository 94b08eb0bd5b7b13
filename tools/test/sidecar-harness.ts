/**
 * An in-process sidecar for tests: real listeners on port 0, the central
 * pointed at a dead port (fail-open) unless given, every completed request and
 * every window it produced captured for assertions.
 */
import net from "node:net";
import { type SidecarConfigInput, validateSidecarConfig } from "../../sidecar/config.js";
import { type Sidecar, startSidecar } from "../../sidecar/main.js";
import type { CompletedRequest } from "../../sidecar/proxy/hop.js";
import type { WindowSummary } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { eventually } from "./proc.js";
import { countsOfWindow } from "../../proto/outcomes.js";

export interface Harness {
  sc: Sidecar;
  address: string;
  completed: CompletedRequest[];
  /** Wait for n completed requests; returns the last. */
  nthCompleted(n: number, timeoutMs?: number): Promise<CompletedRequest>;
  /** Every window produced so far (flushes the open ones). */
  windows(): WindowSummary[];
  /** Sum of a count field over every window so far. */
  count(field: string, origin?: string): number;
  close(): Promise<void>;
}

export async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function startHarness(input: SidecarConfigInput): Promise<Harness> {
  const config = validateSidecarConfig({
    nodeId: "edge-test",
    isp: "isp-test",
    region: "region-test",
    listen: "127.0.0.1:0",
    central: `http://127.0.0.1:${await deadPort()}`,
    ...input,
  });
  const completed: CompletedRequest[] = [];
  const sc = await startSidecar(config, { observer: { completed: (r) => completed.push(r) } });
  const sent: WindowSummary[] = [];
  const send = sc.stream.send.bind(sc.stream);
  sc.stream.send = (w, e) => {
    sent.push(...w);
    send(w, e);
  };
  const windows = () => {
    sent.push(...sc.recorder.flush(true));
    return [...sent];
  };
  return {
    sc,
    address: sc.address,
    completed,
    async nthCompleted(n, timeoutMs = 10_000) {
      await eventually(() => completed.length >= n, timeoutMs, 10);
      return completed[n - 1];
    },
    windows,
    count(field, origin) {
      let n = 0;
      for (const w of windows()) {
        if (origin && w.origin !== origin) continue;
        n += Number((countsOfWindow(w) as unknown as Record<string, bigint>)[field] ?? 0n);
      }
      return n;
    },
    close: () => sc.shutdown(),
  };
}
