/**
 * Is one scope's failure ratio significantly above its peers'? (issue 13 item 1)
 *
 * One-sided Fisher exact test: given a scope with `failures` of `requests` and
 * its peers (the rest of the fleet for the origin) with `peerFailures` of
 * `peerRequests`, the null hypothesis is one failure probability for all of
 * them. Conditional on the total failures K among N requests, the scope's
 * failures follow a hypergeometric law; the p-value is P(X >= failures).
 * Under the null P(p-value <= alpha) <= alpha for any common failure ratio and
 * any volumes (exact, conservative; no normal approximation), which is what
 * keeps a healthy node from being blamed under a uniform partial failure.
 * Pure arithmetic: no I/O.
 */

/**
 * Significance level of attribution: a scope is blamed only when the chance of
 * doing so by luck, were it as healthy as its peers, is at most 1e-5 per
 * evaluation (99.999 % one-sided confidence). See central/verdict/README.md.
 */
export const ATTRIBUTION_ALPHA = 1e-5;

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~15 significant digits). */
function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

const lnChoose = (n: number, k: number): number => lnGamma(n + 1) - lnGamma(k + 1) - lnGamma(n - k + 1);

/**
 * P(X >= x) for X hypergeometric: n draws from N items of which K are
 * failures. Integer arguments (callers round weighted counts).
 */
export function hypergeometricUpperTail(x: number, n: number, K: number, N: number): number {
  const lo = Math.max(0, n - (N - K));
  const hi = Math.min(n, K);
  if (x <= lo) return 1;
  if (x > hi) return 0;
  // First term by log-gamma, the rest by the ratio of consecutive terms.
  let term = Math.exp(lnChoose(K, x) + lnChoose(N - K, n - x) - lnChoose(N, n));
  let sum = term;
  for (let k = x; k < hi; k++) {
    term *= ((K - k) * (n - k)) / ((k + 1) * (N - K - n + k + 1));
    sum += term;
    if (term < sum * 1e-15) break; // past the mode the terms only shrink
  }
  return Math.min(1, sum);
}

/**
 * True when a scope's failures are significantly above its peers' pooled
 * ratio at `alpha` (one-sided Fisher exact test). Counts may be weighted
 * (fractional): they are rounded to whole requests first.
 */
export function significantlyAbove(failures: number, requests: number, peerFailures: number, peerRequests: number, alpha = ATTRIBUTION_ALPHA): boolean {
  const n = Math.round(requests);
  const x = Math.min(n, Math.round(failures));
  const m = Math.round(peerRequests);
  const y = Math.min(m, Math.round(peerFailures));
  if (n === 0) return false;
  if (x * m <= y * n) return false; // not even above the peers' ratio
  return hypergeometricUpperTail(x, n, x + y, n + m) <= alpha;
}
