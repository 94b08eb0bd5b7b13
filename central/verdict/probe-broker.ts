/**
 * Sends ProbeRequests to chosen sidecars over their ingest sessions and
 * collects the ProbeResults of one round, settling when every asked sidecar
 * answered or the round timed out. Probe answers go only to the round that
 * asked: they are never mixed into the passive statistics.
 */
import type { ProbeAttempt, ProbeResult } from "../../proto/gen/originwatch/v1/ingest_pb.js";

export interface ProbeTarget {
  nodeId: string;
  isp: string;
  region: string;
  /** Queue a ProbeRequest on the node's session; false when it is gone. */
  send(req: { probeId: string; origin: string; method: string; path: string; count: number; timeoutMs: number }): boolean;
}

export interface NodeAnswer {
  nodeId: string;
  isp: string;
  region: string;
  attempts: ProbeAttempt[];
  /** Why there are no attempts ("timed out", "session closed"). */
  error: string;
}

export interface RoundOptions {
  origin: string;
  method: string;
  path: string;
  count: number;
  timeoutMs: number;
}

interface Round {
  answers: Map<string, NodeAnswer>;
  waiting: Set<string>;
  done: (answers: NodeAnswer[]) => void;
  timer: NodeJS.Timeout;
  /** probe_id → the node it was sent to: only that node may answer it. */
  probeIds: Map<string, string>;
}

export class ProbeBroker {
  private rounds = new Map<string, Round>();
  private seq = 0;

  /** Ask each target; resolves with one answer per target (errors for the silent ones). */
  round(targets: ProbeTarget[], o: RoundOptions): Promise<NodeAnswer[]> {
    return new Promise((resolve) => {
      const answers = new Map<string, NodeAnswer>();
      const waiting = new Set<string>();
      const probeIds = new Map<string, string>();
      const finish = () => {
        clearTimeout(round.timer);
        for (const id of probeIds.keys()) this.rounds.delete(id);
        for (const id of waiting) {
          const a = answers.get(id);
          if (a && !a.error) a.error = "timed out";
        }
        resolve([...answers.values()]);
      };
      const round: Round = { answers, waiting, probeIds, done: finish, timer: setTimeout(finish, o.timeoutMs + Math.min(500, o.timeoutMs)) };
      round.timer.unref();
      for (const t of targets) {
        const probeId = `p${++this.seq}-${t.nodeId}`;
        answers.set(t.nodeId, { nodeId: t.nodeId, isp: t.isp, region: t.region, attempts: [], error: "" });
        const sent = t.send({ probeId, origin: o.origin, method: o.method, path: o.path, count: o.count, timeoutMs: o.timeoutMs });
        if (!sent) {
          answers.get(t.nodeId)!.error = "session closed";
          continue;
        }
        waiting.add(t.nodeId);
        probeIds.set(probeId, t.nodeId);
        this.rounds.set(probeId, round);
      }
      if (waiting.size === 0) finish();
    });
  }

  /** A ProbeResult from a sidecar; false when no round is waiting for it from this node. */
  onResult(nodeId: string, r: ProbeResult): boolean {
    const round = this.rounds.get(r.probeId);
    if (!round || round.probeIds.get(r.probeId) !== nodeId || !round.waiting.has(nodeId)) return false;
    round.waiting.delete(nodeId);
    this.rounds.delete(r.probeId);
    round.answers.get(nodeId)!.attempts = [...r.attempts];
    if (round.waiting.size === 0) round.done([...round.answers.values()]);
    return true;
  }

  /**
   * The probe sent to `nodeId` will not be answered, and why (a relayed probe
   * whose replica did not answer, cluster mode): the node's answer carries the
   * error at once instead of "timed out" at the end of the round. False when
   * no round is waiting for it.
   */
  fail(nodeId: string, probeId: string, error: string): boolean {
    const round = this.rounds.get(probeId);
    if (!round || round.probeIds.get(probeId) !== nodeId || !round.waiting.has(nodeId)) return false;
    round.waiting.delete(nodeId);
    this.rounds.delete(probeId);
    round.answers.get(nodeId)!.error = error;
    if (round.waiting.size === 0) round.done([...round.answers.values()]);
    return true;
  }
}
