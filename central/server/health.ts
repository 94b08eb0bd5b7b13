/**
 * grpc.health.v1.Health: SERVING for the server ("") and every service we
 * serve while the central is up; NOT_SERVING once shutdown starts. Watch
 * streams the current status and every change; concurrent Watch streams are
 * capped server-wide (StreamLimit, --max-health-watches).
 */
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { EventEmitter, on } from "node:events";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
  HealthListResponseSchema,
} from "../../proto/gen/grpc/health/v1/health_pb.js";
import type { StreamLimit } from "./stream-limit.js";

export class HealthState extends EventEmitter<{ change: [] }> {
  private serving = true;
  constructor(readonly services: string[]) {
    super();
    this.setMaxListeners(0);
  }
  setServing(serving: boolean): void {
    if (this.serving === serving) return;
    this.serving = serving;
    this.emit("change");
  }
  statusOf(service: string): Status | undefined {
    if (service !== "" && !this.services.includes(service)) return undefined;
    return this.serving ? Status.SERVING : Status.NOT_SERVING;
  }
}

export function healthService(state: HealthState, watches?: StreamLimit): Partial<ServiceImpl<typeof Health>> {
  return {
    check(req) {
      const status = state.statusOf(req.service);
      if (status === undefined) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
      return create(HealthCheckResponseSchema, { status });
    },
    list() {
      const statuses: Record<string, { status: Status }> = {};
      for (const s of ["", ...state.services]) statuses[s] = { status: state.statusOf(s)! };
      return create(HealthListResponseSchema, { statuses });
    },
    async *watch(req, ctx) {
      const release = watches?.acquire();
      try {
        const status = () => state.statusOf(req.service) ?? Status.SERVICE_UNKNOWN;
        let last = status();
        yield create(HealthCheckResponseSchema, { status: last });
        for await (const _ of on(state, "change", { signal: ctx.signal })) {
          const now = status();
          if (now !== last) yield create(HealthCheckResponseSchema, { status: (last = now) });
        }
      } finally {
        release?.();
      }
    },
  };
}
