/**
 * Bridge from protobuf-es service descriptors to grpc-js service definitions,
 * so the sidecar's grpc-js client speaks exactly the contract in proto/ with
 * protobuf-es messages (no proto-loader, no second code generator).
 */
import type { DescMessage, DescService, MessageShape } from "@bufbuild/protobuf";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";

/** grpc-js definition of one method; (de)serialisation errors surface as INTERNAL on the call. */
export function grpcMethod<I extends DescMessage, O extends DescMessage>(
  service: DescService,
  name: string,
): MethodDefinition<MessageShape<I>, MessageShape<O>> {
  const m = service.methods.find((x) => x.name === name || x.localName === name);
  if (!m) throw new Error(`service ${service.typeName} has no method ${name}`);
  const input = m.input as I;
  const output = m.output as O;
  return {
    path: `/${service.typeName}/${m.name}`,
    requestStream: m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
    responseStream: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
    requestSerialize: (v: MessageShape<I>) => Buffer.from(toBinary(input, v)),
    requestDeserialize: (b: Buffer) => fromBinary(input, b),
    responseSerialize: (v: MessageShape<O>) => Buffer.from(toBinary(output, v)),
    responseDeserialize: (b: Buffer) => fromBinary(output, b),
    originalName: m.localName,
  };
}

/** grpc-js service definition for every method of a protobuf-es service. */
export function grpcService(service: DescService): ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methods) {
    def[m.localName] = grpcMethod(service, m.name) as MethodDefinition<unknown, unknown>;
  }
  return def as ServiceDefinition;
}
