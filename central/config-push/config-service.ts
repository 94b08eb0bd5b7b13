/**
 * ConfigService: read, change (optimistic concurrency) and list the fleet
 * config. Storing is the FleetConfigSource's job (ConfigStore embedded,
 * ConfigKv in cluster mode), distributing is ConfigPush's.
 */
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { ConfigService } from "../../proto/gen/originwatch/v1/config_pb.js";
import { toConnectError } from "../errors.js";
import { decodePageToken, encodePageToken } from "../query/paging.js";
import type { FleetConfigSource } from "./config-store.js";

export function configService(configs: FleetConfigSource): Partial<ServiceImpl<typeof ConfigService>> {
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
      // Pages like every list (query/paging.ts); page_size 0 falls back to limit, then 50.
      const after = decodePageToken("ListConfigHistory", req.pageToken);
      let before: bigint | undefined;
      if (after !== undefined) {
        if (!/^\d+$/.test(after)) throw new ConnectError("page_token is not a next_page_token of ListConfigHistory", Code.InvalidArgument);
        before = BigInt(after);
      }
      const page = await configs.historyPage(req.pageSize || req.limit, before);
      const last = page.configs[page.configs.length - 1];
      return { configs: page.configs, nextPageToken: page.more && last ? encodePageToken("ListConfigHistory", last.version.toString()) : "" };
    },
  };
}
