/**
 * Stand-in ingest endpoint for bench:hop when `originwatch central` is not
 * available: accepts the stream, welcomes, acknowledges every batch. Child
 * process; prints {"msg":"listening","address":...}.
 */
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { CentralMessageSchema, type CentralMessage, IngestService, type SidecarMessage } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { grpcService } from "../../proto/grpc-bridge.js";

let batches = 0;
const server = new grpc.Server();
server.addService(grpcService(IngestService), {
  stream: (call: grpc.ServerDuplexStream<SidecarMessage, CentralMessage>) => {
    call.on("error", () => {});
    call.on("data", (m: SidecarMessage) => {
      if (m.kind.case === "hello") call.write(create(CentralMessageSchema, { kind: { case: "welcome", value: { sessionId: "bench", highWaterSeq: 0n } } }));
      if (m.kind.case === "batch") {
        batches++;
        call.write(create(CentralMessageSchema, { kind: { case: "batchAck", value: { seq: m.kind.value.seq } } }));
      }
    });
  },
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${JSON.stringify({ msg: "listening", component: "bench-central-stub", address: `127.0.0.1:${port}` })}\n`);
});
process.on("SIGTERM", () => {
  process.stderr.write(`${JSON.stringify({ batches })}\n`);
  process.exit(0);
});
