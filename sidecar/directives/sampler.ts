/**
 * Exemplar sampling on the request path: a completed request is kept as an
 * exemplar with the pushed probability for its class (errors at a higher rate
 * than successes), fields capped by recorder/exemplar.ts. O(1), never throws; at most
 * maxPerBatch exemplars wait for the next batch (the rest are counted, not kept).
 */
import type { Exemplar } from "../../proto/gen/originwatch/v1/common_pb.js";
import type { CompletedRequest } from "../proxy/hop.js";
import { isFailure } from "../proxy/outcome.js";
import { exemplarOf } from "../recorder/exemplar.js";

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
    this.pending.push(exemplarOf(r, this.now()));
  }

  /** The exemplars sampled since the last take(). */
  take(): Exemplar[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }
}
