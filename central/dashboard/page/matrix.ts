/**
 * The ISP × region matrix of one origin, from GetOrigin's per-node
 * breakdown: each cell sums the nodes with that ISP and region; the
 * "all regions" column (region "") is the per-ISP figure the central reports.
 */
import type { OriginStatus } from "../../../proto/gen/originwatch/v1/query_pb.js";

export interface Cell {
  requests: number;
  failures: number;
  failureRatio: number;
  failing: boolean;
}

export interface Matrix {
  isps: string[];
  regions: string[];
  /** region "" = every region of that ISP. */
  cell(isp: string, region: string): Cell | undefined;
}

export function matrixOf(o: Pick<OriginStatus, "isps" | "regions" | "nodes">): Matrix {
  const cells = new Map<string, Cell>();
  const isps = new Set<string>();
  const regions = new Set<string>();
  for (const n of o.nodes) {
    isps.add(n.isp);
    regions.add(n.region);
    const k = `${n.isp}\u0000${n.region}`;
    const c = cells.get(k) ?? { requests: 0, failures: 0, failureRatio: 0, failing: false };
    c.requests += Number(n.requests);
    c.failures += Number(n.failures);
    c.failing ||= n.failing;
    c.failureRatio = c.requests ? c.failures / c.requests : 0;
    cells.set(k, c);
  }
  for (const s of o.isps) {
    isps.add(s.key);
    cells.set(`${s.key}\u0000`, { requests: Number(s.requests), failures: Number(s.failures), failureRatio: s.failureRatio, failing: s.failing });
  }
  for (const r of o.regions) regions.add(r.key);
  return {
    isps: [...isps].sort(),
    regions: [...regions].sort(),
    cell: (isp, region) => cells.get(`${isp}\u0000${region}`),
  };
}
