/**
 * A fake fleet for `npm run bench:push`: N grpc-js IngestService sessions in
 * this one process, each on its own connection (like N sidecars), that say
 * Hello and ACK every pushed config at once. Prints {"msg":"ready"} when all
 * are welcomed. Args: ADDRESS COUNT FIRST_INDEX.
 */
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { type CentralMessage, IngestService, type SidecarMessage, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { grpcService } from "../../proto/grpc-bridge.js";

const [address, countArg, firstArg] = process.argv.slice(2);
const count = Number(countArg);
const first = Number(firstArg);
const Ctor = grpc.makeGenericClientConstructor(grpcService(IngestService), "IngestService");
type Duplex = grpc.ClientDuplexStream<SidecarMessage, CentralMessage>;

let welcomed = 0;
let acks = 0;
const clients: grpc.Client[] = [];
for (let i = first; i < first + count; i++) {
  const client = new Ctor(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }) as unknown as grpc.Client & { stream(): Duplex };
  clients.push(client);
  const call = client.stream();
  call.on("error", (err: Error) => {
    process.stderr.write(`session bench-${i}: ${err.message}\n`);
  });
  call.on("data", (m: CentralMessage) => {
    if (m.kind.case === "welcome") {
      if (++welcomed === count) process.stdout.write(`${JSON.stringify({ msg: "ready", sessions: count })}\n`);
    } else if (m.kind.case === "configPush") {
      acks++;
      call.write(create(SidecarMessageSchema, { kind: { case: "configAck", value: { version: m.kind.value.config!.version, accepted: true } } }));
    }
  });
  call.write(
    create(SidecarMessageSchema, {
      kind: { case: "hello", value: { node: { nodeId: `bench-${i}`, isp: `isp-${i % 4}`, region: `r-${i % 3}`, version: "bench" }, origins: ["bench.origin"], capabilities: ["config-v1"] } },
    }),
  );
}
process.on("SIGTERM", () => {
  for (const c of clients) c.close();
  process.stderr.write(`fleet ${first}: ${acks} acks\n`);
  process.exit(0);
});
