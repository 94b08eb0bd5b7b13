/**
 * Exemplar sampling on the request path: a completed request is kept as an
 * exemplar with the pushed probability for its class (errors at a higher rate
 * than successes), path without query string. O(1), never throws; at most
 * maxPerBatch exemplars wait for the next batch (the rest are counted, not kept).
 */
import { create } from "@bufbuild/protobuf";
import { type Exemplar, ExemplarSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import type { CompletedRequest } from "../proxy/hop.js";
import { OUTCOME_ENUM, isFailure } from "../proxy/outcome.js";

export interface SampleRates {
  successRate: number;
  errorRate: number;
}

export interface SamplerOptions {
  rates: (origin: string) => SampleRates;
  maxPerBatch?: number;
  random?: () => number;
  now?: () => number;
}

export class ExemplarSampler {
  private pending: Exemplar[] = [];
  /** Sampled exemplars not kept because a batch was full (cumulative). */
  overflow = 0;
  private readonly max: number;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(private opts: SamplerOptions) {
    this.max = opts.maxPerBatch ?? 1000;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
  }

  offer(r: CompletedRequest): void {
    const rates = this.opts.rates(r.origin);
    const rate = isFailure(r.outcome) ? rates.errorRate : rates.successRate;
    if (rate <= 0 || this.random() >= rate) return;
    if (this.pending.length >= this.max) {
      this.overflow++;
      return;
    }
    const q = r.path.indexOf("?");
    this.pending.push(
      create(ExemplarSchema, {
        timeUnixMs: BigInt(this.now()),
        origin: r.origin,
        method: r.method.slice(0, 32),
        path: (q >= 0 ? r.path.slice(0, q) : r.path).slice(0, 2048),
        status: r.status,
        outcome: OUTCOME_ENUM[r.outcome],
        ttfbMs: r.ttfbMs ?? 0,
        totalMs: r.totalMs,
        upstreamAddr: r.upstreamAddr.slice(0, 300),
      }),
    );
  }

  /** The exemplars sampled since the last take(). */
  take(): Exemplar[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }
}
