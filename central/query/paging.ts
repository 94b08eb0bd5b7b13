/**
 * Paging for every list RPC (issue 10 item 3): no answer may exceed the
 * message limit, however many origins or nodes the central holds. A page holds
 * at most `size` items (page_size 0 = the default, above the maximum =
 * capped) and ends early once its items reach a byte budget (at least one item
 * per page, so paging always progresses).
 *
 * Page tokens are opaque to clients: base64url of `<list>\n<key>`, where key
 * is the last key of the page and the next page starts strictly after it, so
 * an item added or removed between pages never shifts the others. A token of
 * another list, or one that does not decode, is INVALID_ARGUMENT naming
 * page_token.
 */
import { Code, ConnectError } from "@connectrpc/connect";

/** Items per page when the request says 0. */
export const PAGE_DEFAULT = 500;
/** Most items one page may hold, whatever the request says. */
export const PAGE_MAX = 1000;

/** page_size as the server applies it: 0 = the default, capped at the maximum. */
export function pageSizeOf(requested: number | undefined, def = PAGE_DEFAULT, max = PAGE_MAX): number {
  if (!requested || requested <= 0) return def;
  return Math.min(requested, max);
}

export function encodePageToken(list: string, key: string): string {
  return Buffer.from(`${list}\n${key}`, "utf8").toString("base64url");
}

/** The key a token continues after ("" for no token); INVALID_ARGUMENT for a foreign or broken one. */
export function decodePageToken(list: string, token: string): string | undefined {
  if (!token) return undefined;
  const text = /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, "base64url").toString("utf8") : "";
  const nl = text.indexOf("\n");
  if (nl < 0 || text.slice(0, nl) !== list) {
    throw new ConnectError(`page_token is not a next_page_token of ${list}: pass next_page_token back unchanged, or "" for the first page`, Code.InvalidArgument);
  }
  return text.slice(nl + 1);
}

/** Index of the first key strictly after `after` in ascending (code unit) order. */
function firstAfter(keys: readonly string[], after: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (keys[mid] <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface PageRequest {
  /** List name written into the tokens (e.g. "ListOrigins"). */
  list: string;
  pageSize?: number;
  pageToken?: string;
  /** Byte budget of one page (the sum of bytesOf over its items). */
  maxBytes: number;
}

export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

/**
 * One page of `sortedKeys` (ascending by code unit, unique): the keys after
 * the token, rendered one by one until the size or the byte budget is reached.
 */
export function pageOf<T>(sortedKeys: readonly string[], req: PageRequest, render: (key: string) => T, bytesOf: (item: T) => number): Page<T> {
  const size = pageSizeOf(req.pageSize);
  const after = decodePageToken(req.list, req.pageToken ?? "");
  let i = after === undefined ? 0 : firstAfter(sortedKeys, after);
  const items: T[] = [];
  let bytes = 0;
  while (i < sortedKeys.length && items.length < size) {
    const item = render(sortedKeys[i]);
    const b = bytesOf(item);
    if (items.length > 0 && bytes + b > req.maxBytes) break;
    items.push(item);
    bytes += b;
    i++;
  }
  const more = i < sortedKeys.length;
  return { items, nextPageToken: more && items.length > 0 ? encodePageToken(req.list, sortedKeys[i - 1]) : "" };
}

/** Sorts by code unit (the order page tokens assume), not by locale. */
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
