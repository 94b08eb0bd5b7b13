/**
 * ConfigService: read, change (optimistic concurrency) and list the fleet
 * config. Storing is ConfigStore's job, distributing is ConfigPush's.
 */
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { ConfigService } from "../../proto/gen/originwatch/v1/config_pb.js";
import { toConnectError } from "../errors.js";
import type { ConfigStore } from "./config-store.js";

export function configService(configs: ConfigStore): Partial<ServiceImpl<typeof ConfigService>> {
  return {
    getConfig() {
      return { config: configs.current() };
    },
    async setConfig(req, ctx) {
      if (!req.config) throw new ConnectError("config is required", Code.InvalidArgument);
      const by = req.config.updatedBy || ctx.requestHeader.get("user-agent")?.slice(0, 128) || "";
      req.config.updatedBy = by;
      try {
        return { config: await configs.set(req.config, req.expectedVersion) };
      } catch (err) {
        throw toConnectError(err);
      }
    },
    async listConfigHistory(req) {
      return { configs: await configs.history(req.limit) };
    },
  };
}
