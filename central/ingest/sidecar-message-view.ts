/**
 * The ingest stream's request type as the central's server decodes it:
 * SidecarMessage with its `batch` field read as bytes (the same wire form: a
 * length-delimited field), so connect-es's protobuf-es decode leaves the hot
 * message to batch-decoder.ts and decodes hello, config_ack and probe_result
 * as before. Derived at start from the generated descriptor (one change to
 * one field), so it follows ingest.proto; reflection and clients still see the
 * real IngestService.
 */
import { type DescMessage, type DescMethod, createFileRegistry } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Type, FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { clone } from "@bufbuild/protobuf";
import type { ConfigAck, Hello, ProbeResult } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { IngestService, SidecarMessageSchema, file_originwatch_v1_ingest } from "../../proto/gen/originwatch/v1/ingest_pb.js";

/** A SidecarMessage whose batch is still its encoded bytes. */
export interface SidecarMessageView {
  kind:
    | { case: "hello"; value: Hello }
    | { case: "batch"; value: Uint8Array }
    | { case: "configAck"; value: ConfigAck }
    | { case: "probeResult"; value: ProbeResult }
    | { case: undefined; value?: undefined };
}

function viewSchema(): DescMessage {
  const file = clone(FileDescriptorProtoSchema, file_originwatch_v1_ingest.proto);
  const msg = file.messageType.find((m) => m.name === SidecarMessageSchema.name);
  const field = msg?.field.find((f) => f.name === "batch");
  if (!field) throw new Error("ingest.proto: SidecarMessage.batch not found");
  field.type = FieldDescriptorProto_Type.BYTES;
  field.typeName = "";
  const deps = new Map<string, (typeof file_originwatch_v1_ingest.dependencies)[number]>();
  const walk = (f: typeof file_originwatch_v1_ingest) => {
    for (const d of f.dependencies) {
      deps.set(d.proto.name, d);
      walk(d);
    }
  };
  walk(file_originwatch_v1_ingest);
  const registry = createFileRegistry(file, (name) => deps.get(name));
  const schema = registry.getMessage(SidecarMessageSchema.typeName);
  if (!schema) throw new Error("ingest.proto: SidecarMessage view not built");
  return schema;
}

/** IngestService.Stream with the view as its input: what the central's router serves. */
export const ingestStreamMethod: DescMethod = { ...IngestService.method.stream, input: viewSchema() } as DescMethod;
