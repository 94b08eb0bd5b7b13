/**
 * A central allowlist of node labels (`--node-labels FILE`, issue 10 item 5):
 * ISP and region are whatever a sidecar claims in its hello, and the verdict
 * pools by them, so an operator can pin them. One line per node,
 * `NODE_ID ISP REGION` (# starts a comment). At hello, a listed node gets the
 * listed labels whatever it claims; a claim that disagrees is counted (per
 * node and in total), logged and shown on ListNodes (label_mismatch). A node
 * not in the file keeps its claimed labels and is reported as unlisted.
 */
import { readFileSync } from "node:fs";
import { labelProblem } from "../../proto/names.js";
import { CentralError } from "../errors.js";

export interface Labels {
  isp: string;
  region: string;
}

export interface ResolvedLabels extends Labels {
  /** Why the claim was not taken as is ("" when it agrees with the allowlist). */
  mismatch: string;
  /** The node is not in the allowlist (its claim is used). */
  unlisted: boolean;
}

/** Parses the file; errors name the file and line. */
export function loadNodeLabels(file: string): NodeLabelAllowlist {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CentralError("CENTRAL_BAD_CONFIG", `node labels file ${file}: ${(err as Error).message}`);
  }
  const entries = new Map<string, Labels>();
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) return;
    const parts = line.split(/\s+/);
    const where = `node labels file ${file} line ${i + 1}`;
    if (parts.length !== 3) throw new CentralError("CENTRAL_BAD_CONFIG", `${where}: expected NODE_ID ISP REGION`);
    const [nodeId, isp, region] = parts;
    const problem = labelProblem("node_id", nodeId) ?? labelProblem("isp", isp) ?? labelProblem("region", region);
    if (problem) throw new CentralError("CENTRAL_BAD_CONFIG", `${where}: ${problem}`);
    if (entries.has(nodeId)) throw new CentralError("CENTRAL_BAD_CONFIG", `${where}: node ${nodeId} is listed twice`);
    entries.set(nodeId, { isp, region });
  });
  return new NodeLabelAllowlist(entries);
}

export class NodeLabelAllowlist {
  /** Hellos whose claimed labels disagreed with the allowlist. */
  mismatches = 0;
  /** Hellos from nodes not in the allowlist. */
  unlisted = 0;

  constructor(private entries: ReadonlyMap<string, Labels>) {}

  get size(): number {
    return this.entries.size;
  }

  /** The labels a hello's node gets: the listed ones win; disagreements are counted and described. */
  resolve(nodeId: string, claimed: Labels): ResolvedLabels {
    const listed = this.entries.get(nodeId);
    if (!listed) {
      this.unlisted++;
      return { ...claimed, mismatch: "", unlisted: true };
    }
    if (listed.isp === claimed.isp && listed.region === claimed.region) return { ...listed, mismatch: "", unlisted: false };
    this.mismatches++;
    return { ...listed, mismatch: `claimed isp ${claimed.isp}, region ${claimed.region}; allowlist says isp ${listed.isp}, region ${listed.region}`, unlisted: false };
  }
}
