/**
 * Incidents and faults (issue 15 item 1), read from the verdict engine at
 * scrape time. Both families have bounded labels (kinds and scopes are enums),
 * so every open incident and fault is counted, never capped:
 *
 *   originwatch_incidents_open{kind,scope}  gauge  open incidents; kind ORIGIN_DOWN, ORIGIN_DEGRADED,
 *                                                  ISP_FAULT, REGION_FAULT, NODE_FAULT; scope origin, isp, region, node
 *   originwatch_faults_open{scope}          gauge  faults the last verdicts localise (isp, region, node)
 */
import client from "prom-client";
import { FaultScope, IncidentKind } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { IncidentRecord } from "../verdict/hysteresis.js";

export interface IncidentSource {
  openIncidents(): IncidentRecord[];
  /** The faults of every origin's current verdict. */
  faults(): Iterable<{ scope: FaultScope }>;
}

/** The scope word of an incident kind (the alert's `scope` label uses the same words). */
export function scopeOfKind(kind: IncidentKind): "origin" | "isp" | "region" | "node" {
  switch (kind) {
    case IncidentKind.ISP_FAULT:
      return "isp";
    case IncidentKind.REGION_FAULT:
      return "region";
    case IncidentKind.NODE_FAULT:
      return "node";
    default:
      return "origin";
  }
}

const KINDS = [IncidentKind.ORIGIN_DOWN, IncidentKind.ORIGIN_DEGRADED, IncidentKind.ISP_FAULT, IncidentKind.REGION_FAULT, IncidentKind.NODE_FAULT];
const SCOPES = [FaultScope.ISP, FaultScope.REGION, FaultScope.NODE];

export function registerIncidentMetrics(registry: client.Registry, src: IncidentSource): void {
  new client.Gauge({
    name: "originwatch_incidents_open",
    help: "Open incidents by kind and scope",
    labelNames: ["kind", "scope"],
    registers: [registry],
    collect() {
      const n = new Map<IncidentKind, number>(KINDS.map((k) => [k, 0]));
      for (const inc of src.openIncidents()) n.set(inc.kind, (n.get(inc.kind) ?? 0) + 1);
      for (const [k, v] of n) this.set({ kind: IncidentKind[k], scope: scopeOfKind(k) }, v);
    },
  });
  new client.Gauge({
    name: "originwatch_faults_open",
    help: "Faults localised to an ISP, a region or a node by the current verdicts",
    labelNames: ["scope"],
    registers: [registry],
    collect() {
      const n = new Map<FaultScope, number>(SCOPES.map((s) => [s, 0]));
      for (const f of src.faults()) n.set(f.scope, (n.get(f.scope) ?? 0) + 1);
      for (const [s, v] of n) this.set({ scope: FaultScope[s].toLowerCase() }, v);
    },
  });
}
