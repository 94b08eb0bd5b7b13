/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha) answered from the
 * protobuf-es descriptors of the services we serve, so grpcurl-class tools
 * (`buf curl`, grpcurl, Postman) can list services and call methods without
 * the .proto files. No reflection package exists for connect-node.
 * Concurrent reflection streams are capped server-wide (StreamLimit,
 * --max-reflection-streams); each is also bounded by the request timeout.
 */
import { create, createRegistry, toBinary, type DescFile, type DescService, type Registry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import * as v1 from "../../proto/gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../proto/gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { StreamLimit } from "./stream-limit.js";

type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "listServicesResponse"; value: { service: Array<{ name: string }> } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

export class ReflectionIndex {
  private registry: Registry;
  private files: DescFile[] = [];
  private byName = new Map<string, DescFile>();

  constructor(private services: DescService[]) {
    const seen = new Set<DescFile>();
    const visit = (f: DescFile) => {
      if (seen.has(f)) return;
      seen.add(f);
      f.dependencies.forEach(visit);
      this.files.push(f);
    };
    services.forEach((s) => visit(s.file));
    this.registry = createRegistry(...this.files);
    for (const f of this.files) this.byName.set(f.proto.name, f);
  }

  serviceNames(): string[] {
    return this.services.map((s) => s.typeName);
  }

  /** The file and all its transitive dependencies, dependencies first. */
  private withDeps(file: DescFile): Uint8Array[] {
    const out: Uint8Array[] = [];
    const seen = new Set<DescFile>();
    const visit = (f: DescFile) => {
      if (seen.has(f)) return;
      seen.add(f);
      f.dependencies.forEach(visit);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
    };
    visit(file);
    // The requested file first, as grpc-go does; clients index them all.
    return [out[out.length - 1], ...out.slice(0, -1)];
  }

  private fileOfSymbol(symbol: string): DescFile | undefined {
    const direct = this.registry.get(symbol);
    if (direct && "file" in direct) return direct.file;
    // Method (pkg.Service.Method) or field/enum value: look up the parent.
    const dot = symbol.lastIndexOf(".");
    if (dot > 0) {
      const parent = this.registry.get(symbol.slice(0, dot));
      if (parent && "file" in parent) return parent.file;
    }
    return undefined;
  }

  answer(req: v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest): Answer {
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.serviceNames().map((name) => ({ name })) } };
      case "fileByFilename": {
        const f = this.byName.get(r.value);
        if (!f) return { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `file not found: ${r.value}` } };
        return { case: "fileDescriptorResponse", value: { fileDescriptorProto: this.withDeps(f) } };
      }
      case "fileContainingSymbol": {
        const f = this.fileOfSymbol(r.value);
        if (!f) return { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `symbol not found: ${r.value}` } };
        return { case: "fileDescriptorResponse", value: { fileDescriptorProto: this.withDeps(f) } };
      }
      case "fileContainingExtension":
        return { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `extension not found: ${r.value.containingType}(${r.value.extensionNumber})` } };
      case "allExtensionNumbersOfType": {
        if (!this.registry.getMessage(r.value)) {
          return { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: `type not found: ${r.value}` } };
        }
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: [] } };
      }
      default:
        return { case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: "empty reflection request" } };
    }
  }
}

export function reflectionV1(index: ReflectionIndex, streams?: StreamLimit): Partial<ServiceImpl<typeof v1.ServerReflection>> {
  return {
    async *serverReflectionInfo(requests) {
      const release = streams?.acquire();
      try {
        for await (const req of requests) {
          yield create(v1.ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse: index.answer(req) });
        }
      } finally {
        release?.();
      }
    },
  };
}

export function reflectionV1alpha(index: ReflectionIndex, streams?: StreamLimit): Partial<ServiceImpl<typeof v1alpha.ServerReflection>> {
  return {
    async *serverReflectionInfo(requests) {
      const release = streams?.acquire();
      try {
        for await (const req of requests) {
          yield create(v1alpha.ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse: index.answer(req) });
        }
      } finally {
        release?.();
      }
    },
  };
}
