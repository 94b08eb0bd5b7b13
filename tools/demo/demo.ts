/**
 * `originwatch demo` (what `npm start` runs): a central with LevelDB under
 * ./data/demo, a controllable origin, a fleet of real sidecars on three ISPs
 * and two regions with steady traffic, and a live view of what the central
 * sees, read through its public query API, until Ctrl-C.
 */
import type { Command } from "commander";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { OriginState, QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { startFleet } from "../fleet/fleet.js";

export interface DemoOptions {
  data: string;
  listen: string;
  rate: number;
  every: number;
}

export async function runDemo(opts: DemoOptions, out: NodeJS.WritableStream = process.stdout): Promise<() => Promise<void>> {
  const fleet = await startFleet({
    dataDir: opts.data,
    listen: opts.listen,
    isps: ["isp-a", "isp-b", "isp-c"],
    regions: ["eu", "us"],
    perCell: 1,
    origins: ["shop.example", "img.example"],
    ratePerNode: opts.rate,
  });
  fleet.startTraffic();
  const client = createClient(QueryService, createConnectTransport({ baseUrl: `http://${fleet.central.address}`, httpVersion: "1.1" }));
  out.write(`originwatch demo: central on ${fleet.central.address} (data in ${opts.data}), ${fleet.nodes.length} sidecars, origin on ${fleet.origin.url}\n`);
  out.write(`  try: npx buf curl --protocol grpc --http2-prior-knowledge -d '{"origin":"shop.example"}' http://${fleet.central.address}/originwatch.v1.QueryService/GetOrigin\n`);
  out.write("  Ctrl-C stops everything.\n\n");
  const show = async () => {
    try {
      const [{ origins }, { nodes }] = await Promise.all([client.listOrigins({}), client.listNodes({})]);
      const t = fleet.totals();
      const lines = [
        `${new Date().toISOString().slice(11, 19)}  nodes connected ${nodes.filter((n) => n.connected).length}/${nodes.length}   traffic sent ${t.sent} (failed ${t.failed})`,
        `  ${"origin".padEnd(16)} ${"state".padEnd(10)} ${"total".padStart(8)} ${"failures".padStart(9)} ${"req/s".padStart(7)} ${"p95 ms".padStart(7)}  faults`,
        ...origins.map(
          (o) =>
            `  ${o.name.padEnd(16)} ${OriginState[o.state].padEnd(10)} ${o.totalRequests.toString().padStart(8)} ${o.totalFailures.toString().padStart(9)} ${o.requestRate.toFixed(1).padStart(7)} ${o.p95TtfbMs.toFixed(1).padStart(7)}  ${o.faults.map((f) => f.key).join(", ") || "-"}`,
        ),
        "",
      ];
      out.write(lines.join("\n") + "\n");
    } catch (err) {
      out.write(`  (central not answering: ${(err as Error).message})\n`);
    }
  };
  const timer = setInterval(show, opts.every * 1000);
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      clearInterval(timer);
      await fleet.close();
    })();
    return stopping;
  };
}

/** Registers `originwatch demo`. */
export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("run a local fleet (central, origin, sidecars on 3 ISPs x 2 regions, traffic) and show what the central sees")
    .option("--data <dir>", "central LevelDB directory", "./data/demo")
    .option("--listen <host:port>", "central address", "127.0.0.1:7400")
    .option("--rate <n>", "requests per second per node and origin", (v) => Number(v), 10)
    .option("--every <s>", "seconds between views", (v) => Number(v), 3)
    .action(async (opts: DemoOptions) => {
      let stop: () => Promise<void>;
      try {
        stop = await runDemo(opts);
      } catch (err) {
        process.stderr.write(`originwatch demo: ${(err as Error).message}\n`);
        process.exit(1);
      }
      const onSignal = () => {
        process.stdout.write("\nstopping the demo fleet...\n");
        stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
    });
}
